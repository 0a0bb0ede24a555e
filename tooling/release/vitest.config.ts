import base from "@podnet/vitest-config";
import { defineConfig, mergeConfig } from "vitest/config";

// Each package's check installs from the registry; four at a time keep a 2-core machine busy.
export default mergeConfig(base, defineConfig({ test: { maxConcurrency: 4, testTimeout: 600_000 } }));
