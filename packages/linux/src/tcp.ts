import { spawn, type ChildProcess } from "node:child_process";
import { run } from "./exec.js";

/**
 * A TCP listener inside a namespace (a Node process). Each connection is answered with `reply`
 * at once, or, with `count`, read to its end first and answered with the number of bytes read.
 */
export async function listenTcp(
  ns: string,
  port: number,
  reply: string,
  options: { count?: boolean } = {},
): Promise<ChildProcess> {
  const answer = options.count
    ? `(s) => { let n = 0; s.on("data", (c) => (n += c.length)); s.on("end", () => s.end(String(n))); }`
    : `(s) => s.end(${JSON.stringify(reply)})`;
  const code = `require("net").createServer(${answer}).listen(${port}, () => console.log("listening"))`;
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

/**
 * One real TCP connection from inside a namespace, as `connect()` sees it. With `send`, that many
 * bytes are written once connected and the sending side is closed (the listener's `count` mode
 * answers how many arrived).
 */
export async function connectTcp(
  ns: string,
  address: string,
  port: number,
  timeoutMs = 3000,
  send = 0,
): Promise<TcpResult> {
  const code = `const s = require("net").connect(${port}, ${JSON.stringify(address)}); let d = "";
if (${send}) s.on("connect", () => s.end(Buffer.alloc(${send})));
s.setTimeout(${timeoutMs}, () => { console.log(JSON.stringify({ outcome: "timeout" })); process.exit(0); });
s.on("data", (c) => (d += c)); s.on("end", () => console.log(JSON.stringify({ outcome: "connected", reply: d })));
s.on("error", (e) => console.log(JSON.stringify({ outcome: e.code === "ECONNREFUSED" ? "refused" : "unreachable", error: e.code })));`;
  const { stdout } = await run(["ip", "netns", "exec", ns, process.execPath, "-e", code]);
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? '{"outcome":"timeout"}') as TcpResult;
}
