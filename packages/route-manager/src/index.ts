export {
  RouteManager,
  type RouteManagerOptions,
  type ReconcileReport,
  type NodeChanges,
  type Refusal,
} from "./route-manager.js";
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
