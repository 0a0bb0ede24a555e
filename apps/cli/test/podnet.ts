// The built `podnet` binary, run as a user runs it: for the CLI's test files. Asynchronous, so a slow
// command never blocks the test worker: vitest's RPC to it times out after 60 s of a blocked event loop.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const BIN = fileURLToPath(new URL("../bin/podnet.mjs", import.meta.url));
export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export interface PodnetRun {
  code: number | null;
  stdout: string;
  stderr: string;
  json: () => any; // eslint-disable-line @typescript-eslint/no-explicit-any -- what each test reads
}

export function podnet(args: string[], env: Record<string, string> = {}): Promise<PodnetRun> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? "", NO_COLOR: "1", ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", fail);
    child.on("close", (code) => ok({ code, stdout, stderr, json: () => JSON.parse(stdout) }));
  });
}
