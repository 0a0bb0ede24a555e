export {
  bridgePlugin,
  loadBridgeConfig,
  hostVethName,
  namespaceOf,
  ownNamespaceError,
  masqChain,
  type BridgeConfig,
  type BridgePluginOptions,
} from "./bridge.js";
