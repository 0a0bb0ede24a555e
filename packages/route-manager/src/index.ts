export {
  RouteManager,
  type RouteManagerOptions,
  type ReconcileReport,
  type NodeChanges,
  type Refusal,
} from "./route-manager.js";
export { PeerRoutes, type PeerRoutesOptions } from "./peers.js";
export { ServiceProxy } from "./proxy.js";
export { Tally } from "./apply.js";
export {
  serviceTables,
  ServiceRuleCache,
  serviceChain,
  endpointChain,
  servicePortName,
  endpointProbability,
  MASQ_MARK,
  type Service,
  type ServicePort,
  type ServiceTables,
} from "./services.js";
