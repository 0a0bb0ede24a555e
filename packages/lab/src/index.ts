export { LinuxBackend, cniExecutables, type LabPaths } from "./backend.js";
export {
  LabError,
  LabInterrupted,
  up,
  down,
  list,
  exec,
  labPrefix,
  namespacesNeeded,
  MAX_NAMESPACES,
  type UpOptions,
  type LabSummary,
} from "./lab.js";
export { labRoot, labDir, LAB_NAME, type LabState } from "./state.js";
export { verify, type VerifyCell, type VerifyReport } from "./verify.js";
export {
  benchDatapath,
  type DatapathFigures,
  type DatapathRow,
  type DatapathOptions,
  BENCH_SERVICE,
  withBenchService,
} from "./datapath.js";
export { BLOCK_MEGABYTES, type MeasureSettings } from "./measure.js";
export { spread, type Spread } from "./stats.js";
