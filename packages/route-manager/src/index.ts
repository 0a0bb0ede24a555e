export {
  RouteManager,
  type RouteManagerOptions,
  type ReconcileReport,
  type NodeChanges,
  type Refusal,
} from "./route-manager.js";
export {
  serviceTables,
  serviceChain,
  endpointChain,
  servicePortName,
  endpointProbability,
  MASQ_MARK,
  type Service,
  type ServicePort,
  type ServiceTables,
} from "./services.js";
