// Shared vitest settings. Every package's vitest.config.ts is `export { default } from "@podnet/vitest-config"`
// unless it needs more (then it merges with mergeConfig).
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // Resolve workspace packages to their TypeScript sources: tests never need a prior build.
    conditions: ["source"],
  },
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // The JSON report is what tooling/scripts/run-tests.mjs sums into the one-line total CI reads.
    reporters: ["default", ["json", { outputFile: "test-results/vitest.json" }]],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
