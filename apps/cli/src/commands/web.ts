/** `podnet web`: serves the web app on 127.0.0.1. */
import { existsSync } from "node:fs";
import type { Command } from "commander";
import { UsageError } from "../errors.js";
import { print } from "../format.js";
import { integerIn, jsonOption } from "../options.js";

export function webCommand(cli: Command): void {
  cli
    .command("web")
    .description("serve the web app on 127.0.0.1 (it opens nothing; point a browser at the address)")
    .option(
      "--port <port>",
      "port to listen on (0 picks a free one)",
      integerIn("--port", "a port", 0, 65535),
      5173,
    )
    .addOption(jsonOption("one line: the address served"))
    .addHelpText("after", "\nExample:\n  podnet web --port 8080   # then open http://127.0.0.1:8080/")
    .action(async (opts: { port: number; json?: boolean }) => {
      const { DIST_DIR, ListenError, serveStatic } = await import("@podnet/web/serve");
      if (!existsSync(`${DIST_DIR}/index.html`))
        throw new UsageError(`the web app is not built (${DIST_DIR}); run the build first`);
      let url: string;
      try {
        ({ url } = await serveStatic(DIST_DIR, opts.port));
      } catch (error) {
        if (error instanceof ListenError) throw new UsageError(`--port: ${error.message}`);
        throw error;
      }
      if (opts.json) process.stdout.write(JSON.stringify({ url }) + "\n");
      else print(false, null, () => `podnet web: serving ${url} (Ctrl-C to stop)`);
      await new Promise(() => undefined);
    });
}
