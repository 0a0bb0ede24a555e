// Services on the kernel beside the simulator, where `podnet verify`'s outcomes do not tell:
// - externalTrafficPolicy: the address the endpoint sees. Local keeps the outside client's; Cluster
//   masquerades it (here to node2's cbr0 address, the endpoint being on node2). On the simulator, the
//   source of the request as web1 took it; on the kernel, the destination of the reply tuple conntrack
//   holds on node2 — where web1's answer goes. Masqueraded, the source port is drawn again too
//   (kube-proxy's MASQUERADE --random-fully): whether the port web1 sees is the client's.
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
  await stopProcesses(pids);
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

/** What web1 saw of a connection from outside to node2's `port`: its source, and whether its port is the client's. */
interface Seen {
  source?: string;
  clientPort?: boolean;
}

/** On the simulator: the request as web1 took it, against the one the client sent. */
function simSource(rt: ClusterRuntime, port: number): Seen {
  const trace = rt.trace("outside", `node2:${port}`, { protocol: "tcp" });
  const hop = trace.hops.find((h) => h.ns === rt.ns("web1") && h.event === "deliver");
  const [ip, tcp] = hop?.packet.headers ?? [];
  const [, sent] = trace.hops[0]!.packet.headers;
  return ip?.kind === "ipv4" && tcp?.kind === "tcp" && sent?.kind === "tcp"
    ? { source: formatIpv4(ip.src), clientPort: tcp.srcPort === sent.srcPort }
    : {};
}

/** On the kernel: node2's conntrack entry for the NodePort, its reply tuple's destination against its original source. */
function kernelSource(rt: ClusterRuntime, port: number): Seen {
  const out = spawnSync(
    "ip",
    ["netns", "exec", rt.ns("node2"), "conntrack", "-L", "-p", "tcp", "--orig-port-dst", String(port)],
    { encoding: "utf8" },
  ).stdout;
  // "tcp 6 … src=<client> dst=<node> sport=<client port> dport=<port> … src=<endpoint> dst=<seen>
  // sport=8080 dport=<port seen> …"
  const line = out.split("\n").find((l) => l.includes(`dport=${port}`));
  const source = line?.match(/dst=(\S+)/g)?.[1]?.slice(4);
  const [sent, seen] = [...(line?.matchAll(/sport=(\d+) dport=(\d+)/g) ?? [])];
  return source && sent && seen ? { source, clientPort: sent[1] === seen[2] } : {};
}

describe.skipIf(system.skip)(
  "externalTrafficPolicy on the kernel: the address and port the endpoint sees",
  () => {
    it.each(PROXY_NAMES)(
      "%s: Local keeps the client's address and port, Cluster masquerades them, on both backends",
      async (proxy) => {
        const { sim, kernel } = await onBoth(scenario(proxy));
        const seen: Record<string, { sim: Seen; kernel: Seen }> = {};
        for (const [policy, port] of [
          ["Local", 30080],
          ["Cluster", 30081],
        ] as const) {
          const probe = await kernel.probe("outside", `node2:${port}`, { protocol: "tcp" });
          expect(probe.outcome).toBe("reached");
          seen[policy] = { sim: simSource(sim, port), kernel: kernelSource(kernel, port) };
        }
        // Masqueraded, the port is drawn at random (1 in 64,512 that it is the client's again).
        expect(seen).toEqual({
          Local: {
            sim: { source: "10.100.0.50", clientPort: true },
            kernel: { source: "10.100.0.50", clientPort: true },
          },
          Cluster: {
            sim: { source: "10.0.1.1", clientPort: false },
            kernel: { source: "10.0.1.1", clientPort: false },
          },
        });
      },
      120_000,
    );
  },
);

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
