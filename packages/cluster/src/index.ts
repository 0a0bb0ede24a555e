export {
  ScenarioSchema,
  scenarioJsonSchema,
  type Scenario,
  type ScenarioInput,
  type NodeSpec,
  type PodSpec,
  type ServiceSpec,
  type ProbeSpec,
  type EventSpec,
  type NamespaceSpec,
  HEADLESS,
  headlessTarget,
} from "./schema.js";
export {
  loadScenario,
  checkScenario,
  formatIssue,
  formatPath,
  MAX_SCENARIO_BYTES,
  ScenarioError,
  withProxy,
  type ScenarioIssue,
  type ScenarioScale,
} from "./load.js";
export { SCENARIO_LIMITS, existingNamespaces } from "./check.js";
export { NFT_TABLE, PROXY_NAMES, type ProxyName } from "@podnet/route-manager";
export { parseTarget, parseOrigin, noPortNamed, type TargetText } from "./target.js";
export { affinitySeconds } from "./services.js";
export { providerIssues } from "./check.js";
export { ServiceIndex, parseServiceRef } from "./service-ref.js";
export { expandScenario } from "./generate.js";
export {
  ClusterRuntime,
  TargetError,
  type BuildOptions,
  type ProbeOptions,
  type PodState,
  type ServiceState,
  type EventReport,
} from "./runtime.js";
export {
  reachability,
  reachabilityPlan,
  probeKind,
  probeSummary,
  MATRIX_SAMPLES,
  SAMPLES_PER_ENDPOINT,
  pathMetrics,
  controlPlaneMetrics,
  nodeTables,
  type NodeTables,
  type ReachabilityCell,
  type PlannedCell,
  type CellKind,
  type PathMetrics,
  type ControlPlaneMetrics,
  type NodeTableCounts,
} from "./analysis.js";
export {
  runScenario,
  sharedAddresses,
  unenforcedPolicies,
  type RunOptions,
  type RunResult,
  type BenchRow,
} from "./run.js";
export { benchServiceProxy, MAX_BENCH_SERVICES, type ServiceProxyRow } from "./services-bench.js";
export {
  SimBackend,
  traceSocketOutcome,
  traceSocketNote,
  requestTranslated,
  type ClusterBackend,
  type PodAttachment,
  type ProbeRequest,
  type ProbeResult,
  type TableSizes,
} from "./backend.js";
export { loadManifests, type Manifests, type ManifestReader } from "./manifests.js";
export { applyPolicies, clusterPolicies, outsideHosts, policyPods, traceVerdict } from "./policy.js";
export { upstreamScenario, checkUpstreamCase, type UpstreamMismatch } from "./policy-upstream.js";
