import base from "@podnet/vitest-config";
import { defineConfig, mergeConfig } from "vitest/config";

// Two test files at a time, where vitest's default on a 2-core machine is one: these tests mostly
// wait — on processes in namespaces, listeners, timeouts of dropped probes — and the package's files
// run one after another took 13 of CI's 20 minutes. Their namespaces are kept apart by per-run
// prefixes, and no assertion is a timing.
export default mergeConfig(base, defineConfig({ test: { maxWorkers: 2, minWorkers: 1 } }));
