export {
  RouteManager,
  type RouteManagerOptions,
  type ReconcileReport,
  type NodeChanges,
  type Refusal,
} from "./route-manager.js";
export { PeerRoutes, type PeerRoutesOptions } from "./peers.js";
export { IptablesProxy } from "./proxy.js";
export { NftablesProxy } from "./proxy-nftables.js";
export { SERVICE_PROXIES, PROXY_NAMES, type ProxyName, type ServiceProxy } from "./proxies.js";
export {
  NFT_TABLE,
  nftServiceChain,
  nftEndpointChain,
  nftExternalChain,
  nftLocalChain,
  nftAffinitySet,
  nftServiceParts,
  nftFixed,
  nftEntryCount,
  type NftServiceParts,
} from "./services-nftables.js";
export { Tally } from "./apply.js";
export {
  serviceTables,
  ServiceRuleCache,
  serviceChain,
  externalChain,
  localChain,
  endpointChain,
  endpointProbability,
  type ServiceTables,
} from "./services-iptables.js";
export {
  servicePortName,
  portEndpoints,
  portPlan,
  AFFINITY_TIMEOUT,
  MASQ_MARK,
  serviceKey,
  compareServiceKeys,
  type Service,
  type ServicePort,
  type Endpoint,
  type PortPlan,
} from "./services.js";
