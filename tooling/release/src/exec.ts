import { spawn } from "node:child_process";

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
}

/** Runs a command to the end and returns its status and output; never throws for a non-zero exit. */
export function run(argv: string[], { cwd, env = process.env, input, timeoutMs = 300_000 }: RunOptions) {
  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    // A command may exit before reading its input; its status says why, not the EPIPE that follows.
    child.stdin.on("error", () => {});
    child.stdin.end(input ?? "");
  });
}

/** The output of a run, for an assertion message. */
export function describeRun(argv: string[], result: RunResult): string {
  return `${argv.join(" ")} → exit ${result.status}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}
