// The provider conformance suite on real namespaces, as root: every provider @podnet/providers lists,
// built by the same cluster runtime as on the simulator, pods attached by the CNI executables. Each
// cluster gets its own per-run namespace prefix and folder; its namespaces and listeners are removed
// after each test.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeProviderConformance } from "@podnet/cluster/conformance";
import { LinuxNetlink, removeNamespaces, runPrefix } from "@podnet/linux";
import { providers } from "@podnet/providers";
import { requireSystem } from "@podnet/testing";
import { afterAll } from "vitest";
import { LinuxBackend, stopProcesses } from "../src/backend.js";

const system = requireSystem({
  tools: ["ip", "bridge", "iptables", "iptables-save", "sysctl", "ss", "socat", "ping"],
  root: true,
});
const run = runPrefix();
const dir = mkdtempSync(join(tmpdir(), "podnet-conformance-"));
const linux = new LinuxNetlink();
const pids = new Map<LinuxBackend, number[]>();
let n = 0;

afterAll(async () => {
  if (!system.skip) await removeNamespaces(linux, run);
  rmSync(dir, { recursive: true, force: true });
});

describeProviderConformance("real namespaces", {
  providers,
  ...(system.skip ? { skip: system.skip } : {}),
  timeout: 120_000,
  backend: (seed) => {
    const started: number[] = [];
    const backend = new LinuxBackend(
      `${run}${String(n++).padStart(2, "0")}`,
      { dir: join(dir, seed) },
      (pid) => started.push(pid),
    );
    pids.set(backend, started);
    return backend;
  },
  cleanup: async (backend) => {
    await stopProcesses(pids.get(backend as LinuxBackend) ?? []);
    await removeNamespaces(linux, backend.prefix);
  },
});
