// The upstream NetworkPolicy e2e cases on real namespaces, as root: upstream's model built by the
// same cluster runtime as on the simulator (cbr0-host-gw, pods attached by the CNI executables),
// the iptables policy engine writing real chains, and every pair probed with real sockets. A probe
// that disagrees is tried up to 4 more times, as upstream's suite retries: on this shared 2-core
// machine an answer can miss the 2 s window, also between pods no policy selects. Probes run 16 at
// a time (a dropped one waits 2 s).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ClusterRuntime, checkUpstreamCase, upstreamScenario } from "@podnet/cluster";
import { LinuxNetlink, removeNamespaces, runPrefix } from "@podnet/linux";
import { iptablesPolicyEngine } from "@podnet/policy";
import { OWN_CASES, UPSTREAM_CASES } from "@podnet/policy/upstream";
import { getProvider } from "@podnet/providers";
import { requireSystem } from "@podnet/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LinuxBackend, stopProcesses } from "../src/backend.js";

const system = requireSystem({
  tools: ["ip", "bridge", "iptables", "iptables-save", "sysctl", "ss", "socat", "ping"],
  root: true,
});
const run = runPrefix();
const dir = mkdtempSync(join(tmpdir(), "podnet-netpol-"));
const linux = new LinuxNetlink();
const pids: number[] = [];
let runtime: ClusterRuntime;

describe.skipIf(system.skip)(
  "the upstream NetworkPolicy cases on the kernel, cbr0-host-gw + iptables",
  () => {
    beforeAll(async () => {
      const backend = new LinuxBackend(run, { dir }, (pid) => pids.push(pid));
      runtime = await ClusterRuntime.build(upstreamScenario(), getProvider("cbr0-host-gw"), {
        backend,
        policy: iptablesPolicyEngine,
      });
    }, 120_000);
    afterAll(async () => {
      await stopProcesses(pids);
      await removeNamespaces(linux, run);
      rmSync(dir, { recursive: true, force: true });
    });
    for (const c of [...UPSTREAM_CASES, ...OWN_CASES])
      it(
        c.name,
        async () => {
          // In words, so that a failure shows each pair's outcome (an object diff is cut short).
          const mismatches = await checkUpstreamCase(runtime, c, { concurrency: 16, retries: 4 });
          expect(
            mismatches.map(
              (m) =>
                `${m.from} → ${m.to} ${m.probe}: expected ${m.expected ? "reached" : "blocked"}, ${m.outcome}`,
            ),
          ).toEqual([]);
        },
        120_000,
      );
  },
);
