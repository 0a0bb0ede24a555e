// Writes the errors vitest reports outside any test (an uncaught exception, a worker RPC timeout)
// to test-results/errors.json. They fail a run whose every test passed, and vitest's JSON report
// leaves them out, so the root test script reads them here to say why a package failed.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export default class ErrorsReporter {
  onInit(ctx) {
    this.root = ctx.config.root;
  }

  onFinished(_files, errors = []) {
    const dir = join(this.root, "test-results");
    mkdirSync(dir, { recursive: true });
    const described = errors.map((e) => ({
      message: String(e?.message ?? e),
      stack: typeof e?.stack === "string" ? e.stack.split("\n").slice(0, 8).join("\n") : undefined,
    }));
    writeFileSync(join(dir, "errors.json"), JSON.stringify(described, null, 2));
  }
}
