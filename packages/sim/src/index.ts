export { SimKernel, SocketError, type SimKernelOptions } from "./kernel.js";
export { dumpRoute } from "./kernel-routes.js";
export type { SendOptions } from "./walk.js";
export { Draws, type Offer } from "./draws.js";
export {
  tracePcap,
  wireFrames,
  traceJson,
  traceDevices,
  type Trace,
  type TraceSummary,
  type TraceHop,
  type TraceEvent,
  type TraceOutcome,
} from "./trace.js";
export { RouteTable, type SimRoute } from "./route-table.js";
export type { SimSocket } from "./namespace.js";
