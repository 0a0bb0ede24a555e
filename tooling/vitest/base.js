// Shared vitest settings. Every package's vitest.config.ts is `export { default } from "@podnet/vitest-config"`
// unless it needs more (then it merges with mergeConfig).
import { defineConfig } from "vitest/config";
import ErrorsReporter from "./errors-reporter.js";

export default defineConfig({
  // Resolve workspace packages to their TypeScript sources: tests never need a prior build. Tests
  // run in Vite's SSR mode, which reads ssr.resolve.conditions; the others keep Vite's defaults.
  resolve: { conditions: ["source", "module", "browser", "development|production"] },
  ssr: { resolve: { conditions: ["source", "module", "node", "development|production"] } },
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // The JSON report is what tooling/scripts/run-tests.mjs sums into the one-line total CI reads.
    reporters: ["default", ["json", { outputFile: "test-results/vitest.json" }], new ErrorsReporter()],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
