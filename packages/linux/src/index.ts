export { LinuxNetlink, errorLine } from "./netlink.js";
export { runPrefix, removeNamespaces, cleanupOnExit, currentNamespace } from "./run-prefix.js";
export { run, type ExecResult } from "./exec.js";
export { ping, type PingResult, type PingOptions } from "./probes.js";
export { listenTcp, connectTcp, type TcpResult } from "./tcp.js";
