/** Node entry: turns a plugin into a real CNI executable (CNI_* env, config on stdin, result on stdout). */
import { readFileSync } from "node:fs";
import type { CniPlugin } from "./plugin.js";
import { runCniCommand } from "./skel.js";

export async function cniMain(plugin: CniPlugin): Promise<void> {
  if (!process.env.CNI_COMMAND) {
    // As skel does with no command: say what this is, on stderr.
    process.stderr.write(
      `${plugin.about}\nCNI protocol versions supported: ${plugin.supportedVersions.join(", ")}\n`,
    );
    process.exitCode = 0;
    return;
  }
  const outcome = await runCniCommand(plugin, { env: process.env, stdin: () => readFileSync(0, "utf8") });
  process.stdout.write(outcome.stdout);
  process.exitCode = outcome.exitCode;
}
