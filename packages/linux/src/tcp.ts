import { spawn, type ChildProcess } from "node:child_process";
import { run } from "./exec.js";

/** A TCP listener inside a namespace (a Node process), answering each connection with `reply`. */
export async function listenTcp(ns: string, port: number, reply: string): Promise<ChildProcess> {
  const code = `require("net").createServer((s) => s.end(${JSON.stringify(reply)})).listen(${port}, () => console.log("listening"))`;
  const child = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", code], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once("data", () => resolve());
    child.once("exit", (c) => reject(new Error(`listener in ${ns} exited with ${c}`)));
  });
  return child;
}

export interface TcpResult {
  /** connected: the reply text; refused/unreachable/timeout: the error. */
  outcome: "connected" | "refused" | "unreachable" | "timeout";
  reply?: string;
  error?: string;
}

/** One real TCP connection from inside a namespace, as `connect()` sees it. */
export async function connectTcp(
  ns: string,
  address: string,
  port: number,
  timeoutMs = 3000,
): Promise<TcpResult> {
  const code = `const s = require("net").connect(${port}, ${JSON.stringify(address)}); let d = "";
s.setTimeout(${timeoutMs}, () => { console.log(JSON.stringify({ outcome: "timeout" })); process.exit(0); });
s.on("data", (c) => (d += c)); s.on("end", () => console.log(JSON.stringify({ outcome: "connected", reply: d })));
s.on("error", (e) => console.log(JSON.stringify({ outcome: e.code === "ECONNREFUSED" ? "refused" : "unreachable", error: e.code })));`;
  const { stdout } = await run(["ip", "netns", "exec", ns, process.execPath, "-e", code]);
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? '{"outcome":"timeout"}') as TcpResult;
}
