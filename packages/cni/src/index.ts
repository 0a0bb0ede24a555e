export { CniError, CniErrorCode } from "./errors.js";
export type * from "./types.js";
export {
  LEGACY_VERSIONS,
  ALL_VERSIONS,
  compareVersions,
  checkVersionSupported,
  resultForVersion,
  goQuotedList,
} from "./version.js";
export {
  parseCniArgs,
  type CniPlugin,
  type CniParams,
  type CniHost,
  type CniCommand,
  type PluginConfig,
} from "./plugin.js";
export { GoTypeError, goUnmarshal, jsonKind, type GoType } from "./go-json.js";
export { decodePrevResult } from "./prev-result.js";
export { deepFreeze, memoFrozen } from "./frozen.js";
export { cniChainName } from "./chain-name.js";
export { runCniCommand, goJsonError, type CniInvocation, type CniOutcome } from "./skel.js";
export {
  addNetworkList,
  delNetworkList,
  checkNetworkList,
  requestConfig,
  type CniRuntimeParams,
  type PluginRegistry,
} from "./chain.js";
export {
  NO_PEER_ENTRIES,
  type NetworkProvider,
  type NodeNetwork,
  type ClusterNetwork,
  type PeerEntries,
} from "./provider.js";
export {
  podAttachment,
  createSandbox,
  addPod,
  delPod,
  podAddress,
  joinNode,
  type NodeJoin,
  type PodAttachment,
  type PublishedPort,
} from "./attach.js";
