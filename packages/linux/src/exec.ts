import { execFile } from "node:child_process";

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

/**
 * Runs a program without a shell; never rejects, the caller reads the exit code. With `timeoutMs`
 * the program is killed when it takes longer (a non-zero code, "killed after N ms" on stderr).
 */
export function run(argv: readonly string[], input?: string, timeoutMs?: number): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = execFile(
      argv[0]!,
      argv.slice(1),
      {
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
        ...(timeoutMs ? { timeout: timeoutMs, killSignal: "SIGKILL" } : {}),
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 127) : 0;
        const killed = error?.killed && timeoutMs ? `${argv[0]} killed after ${timeoutMs} ms` : "";
        resolve({
          stdout,
          stderr: killed || stderr || (error && !stderr ? String(error.message) : ""),
          code,
        });
      },
    );
    // A command that exits before reading its input (a refused argument) answers through its exit
    // status; the EPIPE its closed stdin raises would otherwise be an uncaught error.
    child.stdin?.on("error", () => {});
    if (input !== undefined) child.stdin?.end(input);
  });
}
