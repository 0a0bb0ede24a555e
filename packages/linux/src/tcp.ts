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

/** connect()'s errors as socat words them, by the errno names Node gives the same failures. */
const SOCAT_ERRORS: [RegExp, string][] = [
  [/Connection refused/, "ECONNREFUSED"],
  [/No route to host/, "EHOSTUNREACH"],
  [/Network is unreachable/, "ENETUNREACH"],
  [/Permission denied/, "EACCES"],
  [/Operation not permitted/, "EPERM"],
  [/Connection reset by peer/, "ECONNRESET"],
];

/**
 * One real TCP connection from inside a namespace, as `connect()` sees it: connected (with what the
 * listener sent before closing), refused, unreachable, or nothing for `timeoutMs` (connecting, or
 * connected and silent). With `send`, that many bytes are written once connected and the sending side
 * is closed (the listener's `count` mode answers how many arrived).
 */
export async function connectTcp(
  ns: string,
  address: string,
  port: number,
  timeoutMs = 3000,
  send = 0,
): Promise<TcpResult> {
  if (send > 0) return connectAndSend(ns, address, port, timeoutMs, send);
  // socat, not a Node process: a probe is a connection, and Node's start-up was ~140 ms of CPU a
  // probe against socat's ~10 ms — most of what a kernel verify or the lab tests spent. Its notices
  // (-d -d) say whether the connection was made; its exit status alone does not (an idle timeout
  // after connecting also exits 0).
  const seconds = String(timeoutMs / 1000);
  const { stdout, stderr, code } = await run([
    "ip",
    "netns",
    "exec",
    ns,
    "socat",
    "-d",
    "-d",
    "-u",
    "-T",
    seconds,
    `TCP4:${address}:${port},connect-timeout=${seconds}`,
    "STDOUT",
  ]);
  if (/inactivity timeout triggered/.test(stderr)) return { outcome: "timeout" };
  if (code === 0) return { outcome: "connected", reply: stdout };
  const failure = /\bE (?:connect\(.*?\)|connecting to .*?): (.*)$/m.exec(stderr)?.[1];
  if (failure === undefined || /timed out/.test(failure)) {
    if (failure === undefined && !/opening connection/.test(stderr))
      throw new Error(`socat in ${ns} did not run: ${stderr.trim() || `exit ${code}`}`);
    return { outcome: "timeout" };
  }
  const errno = SOCAT_ERRORS.find(([words]) => words.test(failure))?.[1] ?? failure;
  return { outcome: errno === "ECONNREFUSED" ? "refused" : "unreachable", error: errno };
}

/** A connection that writes `send` bytes: a Node process, which half-closes after writing. */
async function connectAndSend(
  ns: string,
  address: string,
  port: number,
  timeoutMs: number,
  send: number,
): Promise<TcpResult> {
  const code = `const s = require("net").connect(${port}, ${JSON.stringify(address)}); let d = "";
s.on("connect", () => s.end(Buffer.alloc(${send})));
s.setTimeout(${timeoutMs}, () => { console.log(JSON.stringify({ outcome: "timeout" })); process.exit(0); });
s.on("data", (c) => (d += c)); s.on("end", () => console.log(JSON.stringify({ outcome: "connected", reply: d })));
s.on("error", (e) => console.log(JSON.stringify({ outcome: e.code === "ECONNREFUSED" ? "refused" : "unreachable", error: e.code })));`;
  const { stdout } = await run(["ip", "netns", "exec", ns, process.execPath, "-e", code]);
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? '{"outcome":"timeout"}') as TcpResult;
}
