// Runs a CNI executable the way a runtime does: CNI_* in the environment, config on stdin.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const PODNET_IPAM = fileURLToPath(new URL("../bin/podnet-ipam.mjs", import.meta.url));
export const HOST_LOCAL = "/usr/lib/cni/host-local";

export interface Invocation {
  command: string;
  containerId?: string;
  ifname?: string;
  config: string | object;
  env?: Record<string, string | undefined>;
  /** Kill the plugin after this long and report exit code "timeout" (for inputs that could hang). */
  timeoutMs?: number;
}

export interface Outcome {
  /** Parsed JSON, or the raw text when it is not JSON (empty for DEL/CHECK success). */
  stdout: unknown;
  exitCode: number | "timeout";
}

export function invoke(binary: string, call: Invocation): Promise<Outcome> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
  const defaults: Record<string, string | undefined> = {
    CNI_COMMAND: call.command,
    CNI_CONTAINERID: call.containerId ?? "c1",
    CNI_NETNS: "/nonexistent/netns",
    CNI_IFNAME: call.ifname ?? "eth0",
    CNI_PATH: "/usr/lib/cni",
    ...call.env,
  };
  for (const [k, v] of Object.entries(defaults)) if (v !== undefined) env[k] = v;
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [], { env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let timedOut = false;
    const timer =
      call.timeoutMs === undefined
        ? undefined
        : setTimeout(() => ((timedOut = true), child.kill("SIGKILL")), call.timeoutMs);
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      let parsed: unknown = stdout;
      try {
        parsed = stdout.trim() ? JSON.parse(stdout) : "";
      } catch {
        // leave raw
      }
      resolve({ stdout: parsed, exitCode: timedOut ? "timeout" : (code ?? -1) });
    });
    // A plugin that refuses its environment exits before reading stdin (host-local does, at once):
    // the EPIPE that follows is not an answer, and unheard it fails the run as an uncaught error.
    child.stdin.on("error", () => {});
    child.stdin.end(typeof call.config === "string" ? call.config : JSON.stringify(call.config));
  });
}
