// Services on the kernel beside the simulator, where `podnet verify`'s outcomes do not tell:
// - externalTrafficPolicy: the address the endpoint sees. Local keeps the outside client's; Cluster
//   masquerades it (here to node2's cbr0 address, the endpoint being on node2). On the simulator, the
//   source of the request as web1 took it; on the kernel, the destination of the reply tuple conntrack
//   holds on node2 — where web1's answer goes.
// - sessionAffinity ClientIP: a client's connections all reach one endpoint, where a Service without
//   it spreads them; on the kernel, the listener that answered each.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ClusterRuntime, loadScenario, type Scenario } from "@podnet/cluster";
import { formatIpv4 } from "@podnet/core";
import { LinuxNetlink, removeNamespaces, runPrefix } from "@podnet/linux";
import { PROXY_NAMES } from "@podnet/route-manager";
import { getProvider } from "@podnet/providers";
import { requireSystem } from "@podnet/testing";
import { afterAll, describe, expect, it } from "vitest";
import { LinuxBackend, stopProcesses } from "../src/backend.js";

const system = requireSystem({
  tools: ["ip", "bridge", "iptables", "iptables-save", "nft", "sysctl", "ss", "socat", "conntrack"],
  root: true,
});
const FIXTURE = fileURLToPath(new URL("fixtures/traffic-policy-source.yaml", import.meta.url));
const AFFINITY = fileURLToPath(new URL("fixtures/session-affinity.yaml", import.meta.url));
const linux = new LinuxNetlink();
const dir = mkdtempSync(join(tmpdir(), "podnet-services-"));
const pids: number[] = [];
const runs: string[] = [];

afterAll(async () => {
  stopProcesses(pids);
  for (const run of runs) await removeNamespaces(linux, run);
  rmSync(dir, { recursive: true, force: true });
});

/** `scenario` built under cbr0-host-gw on the simulator and on real namespaces (removed after all). */
async function onBoth(scenario: Scenario) {
  const provider = getProvider("cbr0-host-gw");
  const sim = await ClusterRuntime.build(scenario, provider);
  const run = runPrefix();
  runs.push(run);
  const kernel = await ClusterRuntime.build(scenario, provider, {
    backend: new LinuxBackend(run, { dir }, (pid) => pids.push(pid)),
  });
  return { sim, kernel };
}

/** The fixture without its NetworkPolicy: only the Services and the endpoint. */
function scenario(proxy: string) {
  const text = readFileSync(FIXTURE, "utf8");
  const s = loadScenario(text, FIXTURE);
  return { ...s, networkPolicies: [], proxy: proxy as (typeof PROXY_NAMES)[number] };
}

/** The source web1 saw for a connection from outside to node2's `port`, on the simulator. */
function simSource(rt: ClusterRuntime, port: number): string | undefined {
  const trace = rt.trace("outside", `node2:${port}`, { protocol: "tcp" });
  const hop = trace.hops.find((h) => h.ns === rt.ns("web1") && h.event === "deliver");
  const ip = hop?.packet.headers[0];
  return ip?.kind === "ipv4" ? formatIpv4(ip.src) : undefined;
}

/** Where web1's answer goes, by node2's conntrack entry for the NodePort: the source it saw. */
function kernelSource(rt: ClusterRuntime, port: number): string | undefined {
  const out = spawnSync(
    "ip",
    ["netns", "exec", rt.ns("node2"), "conntrack", "-L", "-p", "tcp", "--orig-port-dst", String(port)],
    { encoding: "utf8" },
  ).stdout;
  // "tcp 6 … src=<client> dst=<node> sport=… dport=<port> … src=<endpoint> dst=<seen> sport=8080 …"
  const line = out.split("\n").find((l) => l.includes(`dport=${port}`));
  return line?.match(/dst=(\S+)/g)?.[1]?.slice(4);
}

describe.skipIf(system.skip)("externalTrafficPolicy on the kernel: the address the endpoint sees", () => {
  it.each(PROXY_NAMES)(
    "%s: Local keeps the client's address, Cluster masquerades it, on both backends",
    async (proxy) => {
      const { sim, kernel } = await onBoth(scenario(proxy));
      const seen: Record<string, { sim?: string; kernel?: string }> = {};
      for (const [policy, port] of [
        ["Local", 30080],
        ["Cluster", 30081],
      ] as const) {
        const probe = await kernel.probe("outside", `node2:${port}`, { protocol: "tcp" });
        expect(probe.outcome).toBe("reached");
        seen[policy] = { sim: simSource(sim, port), kernel: kernelSource(kernel, port) };
      }
      expect(seen).toEqual({
        Local: { sim: "10.100.0.50", kernel: "10.100.0.50" },
        Cluster: { sim: "10.0.1.1", kernel: "10.0.1.1" },
      });
    },
    120_000,
  );
});

describe.skipIf(system.skip)("sessionAffinity on the kernel: a client stays on one endpoint", () => {
  it.each(PROXY_NAMES)(
    "%s: twelve connections through the sticky Service reach one listener, through the other several",
    async (proxy) => {
      const { sim, kernel } = await onBoth({
        ...loadScenario(readFileSync(AFFINITY, "utf8"), AFFINITY),
        proxy,
      });
      const listeners = async (from: string, to: string) => {
        const onKernel = new Set<string>();
        const onSim = new Set<string>();
        for (let i = 0; i < 12; i++) {
          const probe = await kernel.probe(from, to, { protocol: "tcp" });
          expect(probe.outcome).toBe("reached");
          onKernel.add(probe.detail.replace(/^.*answered by /, ""));
          onSim.add(sim.trace(from, to, { protocol: "tcp" }).deliveredTo!.ns);
        }
        return { kernel: onKernel.size, sim: onSim.size };
      };
      for (const [from, to] of [
        ["client", "svc/sticky"],
        ["outside", "node2:30080"],
        ["node1", "svc/sticky"],
      ] as const)
        expect([from, await listeners(from, to)]).toEqual([from, { kernel: 1, sim: 1 }]);
      // Without affinity twelve draws over three endpoints all alike is 1 in 177,147.
      const spread = await listeners("client", "svc/spread");
      expect([spread.kernel > 1, spread.sim > 1]).toEqual([true, true]);
    },
    120_000,
  );
});
