/**
 * One conformance suite for every network provider, on any backend: the simulator runs it over every
 * provider @podnet/providers lists, and so does @podnet/lab on real namespaces, so a provider is held
 * to the same observable contract on both — and a new provider is tested by being listed.
 *
 *   describeProviderConformance("the simulator", { providers, backend: (seed) => new SimBackend(seed) });
 *
 * Each provider builds a three-node cluster through the cluster runtime (nodes set up by the provider,
 * pods attached through its CNI plugin, one Service per kind), then: pods attach and detach; a resync
 * finds nothing to do; the provider keeps the reachability it promises; and a cluster that went through
 * node leave and rejoin, pod moves and Service changes ends with exactly the tables (routes, permanent
 * neighbours, VXLAN FDB entries, iptables rules, per node and on the gateway) and the reachability of
 * the same final state built from scratch. What a provider promises is read from what it declares:
 * pod-to-pod across nodes, Services with endpoints on other nodes and NodePorts when every node gets
 * its own pod subnet; published host ports when its pod config accepts `portMappings`; pods on one
 * node, Services with endpoints on the client's node and hosts outside the cluster always.
 */
import { parseMac } from "@podnet/core";
import type { NetworkProvider } from "@podnet/cni";
import { serviceChain } from "@podnet/route-manager";
import { afterEach, describe, expect, it } from "vitest";
import type { ClusterBackend, ProbeResult } from "./backend.js";
import { ClusterRuntime, type PodState } from "./runtime.js";
import { ScenarioSchema, type PodSpec, type Scenario, type ServiceSpec } from "./schema.js";

export interface ProviderConformanceTarget {
  /** The providers to hold to the contract, by name (@podnet/providers' `providers`). */
  providers: Record<string, () => NetworkProvider>;
  /** A fresh backend for one cluster; `seed` names the cluster (the simulator's seed). */
  backend(seed: string): ClusterBackend | Promise<ClusterBackend>;
  /** Removes everything a backend made (namespaces, processes), after each test. */
  cleanup?(backend: ClusterBackend): Promise<void>;
  /** Skip the whole suite, with the reason (e.g. not root). */
  skip?: string;
  /** Per test, in milliseconds (real namespaces are slower than the simulator). */
  timeout?: number;
}

const web = (name: string, node: string, hostPort?: number, hostIP?: string): PodSpec => ({
  name,
  namespace: "default",
  node,
  labels: { app: "web", [`on-${node}`]: "yes" },
  containers: [
    {
      name: "http",
      ports: [
        {
          containerPort: 8080,
          protocol: "tcp",
          ...(hostPort ? { hostPort } : {}),
          ...(hostIP ? { hostIP } : {}),
        },
      ],
    },
  ],
});

const service = (name: string, selector: Record<string, string>, clusterIP: string, nodePort?: number) =>
  ({
    name,
    namespace: "default",
    type: nodePort ? "NodePort" : "ClusterIP",
    clusterIP,
    selector,
    ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "tcp", ...(nodePort ? { nodePort } : {}) }],
  }) satisfies ServiceSpec;

const NODES = {
  n1: { name: "n1", segment: "lan", address: "10.100.0.2", podCidr: "10.0.1.0/24" },
  n2: { name: "n2", segment: "lan", address: "10.100.0.3", podCidr: "10.0.2.0/24" },
  n3: { name: "n3", segment: "lan", address: "10.100.0.4", podCidr: "10.0.3.0/24" },
};
const node = (name: string) => NODES[name as keyof typeof NODES];

/**
 * The suite's cluster: three nodes on one LAN behind a gateway, an outside host; web pods on every
 * node (w1 publishes host port 8080, w2 publishes it on n2's address alone), w1b serving port 8080
 * beside w1 without publishing it, a client next to them; Service `web` (NodePort) over every web pod, Service `local` over the web pods on n1.
 */
function scenario(
  name: string,
  parts: { nodes?: Scenario["nodes"]; pods?: PodSpec[]; services?: ServiceSpec[] } = {},
): Scenario {
  return ScenarioSchema.parse({
    name,
    cluster: { clusterCidr: "10.0.0.0/16", nodeMaskSize: 24, serviceCidr: "10.96.0.0/16" },
    underlay: {
      segments: [{ name: "lan", subnet: "10.100.0.0/24", gateway: "10.100.0.1" }],
      routers: [{ name: "gw", interfaces: [{ segment: "lan", address: "10.100.0.1" }] }],
      hosts: [{ name: "outside", segment: "lan", address: "10.100.0.50" }],
    },
    nodes: parts.nodes ?? Object.values(NODES),
    pods: parts.pods ?? [
      web("w1", "n1", 8080),
      // Serves the port w1 publishes, without publishing it: what arrives for it is not w1's.
      {
        name: "w1b",
        node: "n1",
        containers: [{ name: "http", ports: [{ containerPort: 8080, protocol: "tcp" }] }],
      },
      { name: "client", node: "n1" },
      web("w2", "n2", 8080, NODES.n2.address),
      web("w3", "n3"),
    ],
    services: parts.services ?? [
      service("web", { app: "web" }, "10.96.0.10", 30080),
      service("local", { "on-n1": "yes" }, "10.96.0.11"),
    ],
  });
}

interface Cell {
  from: string;
  to: string;
  /** Whether the provider promises this cell reaches its target. */
  promised: boolean;
  /** The provider promises it does not: nothing there is meant to answer. */
  unreached?: boolean;
}

/** Whether the provider's pod ports on `node` have hairpin mode (a frame may leave by the port it came in on). */
function hairpinOn(provider: NetworkProvider, runtime: ClusterRuntime, node: string): boolean {
  const config = provider.podNetworkConfig(runtime.nodes.get(node)!, runtime.cluster);
  return Boolean((config as { hairpinMode?: boolean }).hairpinMode);
}

/** The probes the suite makes, each with whether the provider promises it. */
function cells(provider: NetworkProvider, runtime: ClusterRuntime): Cell[] {
  const perNode = provider.podAddressing === "per-node-subnet";
  const out: Cell[] = [];
  const pods = [...runtime.pods.values()];
  for (const from of ["client", "w2"]) {
    const origin = runtime.pods.get(from)!;
    for (const target of pods) {
      if (target.spec.name === from || !target.spec.containers[0]!.ports.length) continue;
      out.push({ from, to: `${target.spec.name}:8080`, promised: perNode || target.node === origin.node });
    }
    // A Service whose endpoints are all on the client's node is reached under every provider, but a
    // pod that is one of the endpoints reaches itself through the bridge only with hairpin mode on its
    // port (flannel's config sets it; Docker leaves it off), and kube-proxy may pick it.
    const hairpin = hairpinOn(provider, runtime, origin.node);
    for (const svc of runtime.services.values()) {
      const endpoints = runtime.selectedPods(svc.spec);
      const local = endpoints.every((p) => p.node === origin.node);
      const self = endpoints.includes(origin);
      out.push({
        from,
        to: `svc/${runtime.serviceRef(svc)}`,
        promised: endpoints.length > 0 && (perNode || local) && (hairpin || !self),
      });
    }
    out.push({ from, to: "outside", promised: true });
  }
  const nodePort = runtime.services.get("default/web")!.spec.ports[0]!.nodePort!;
  out.push({ from: "outside", to: `n2:${nodePort}`, promised: perNode });
  const published = pods.find((p) => p.spec.containers.some((c) => c.ports.some((port) => port.hostPort)));
  if (published) {
    // A hostPort answers on the node's own addresses, from anywhere: outside, another node's pod, a
    // pod beside it (masqueraded, so the answer comes back through the node), the node itself and its
    // 127.0.0.1. The publishing pod reaches itself that way only with hairpin mode on its port.
    const at = published.node;
    const publishes = runtime.publishesPorts();
    const hairpin = hairpinOn(provider, runtime, at);
    for (const from of ["outside", "w2", "client", at])
      out.push({ from, to: `${at}:8080`, promised: publishes });
    out.push({ from: at, to: "127.0.0.1:8080", promised: publishes });
    out.push({ from: published.spec.name, to: `${at}:8080`, promised: publishes && hairpin });
  }
  for (const pod of pods.filter((p) => p.spec.containers.some((c) => c.ports.some((port) => port.hostIP)))) {
    // Published on the node's address alone (Kubernetes' hostIP): reached there, from outside and
    // from the node itself, but not on the node's 127.0.0.1, where every address would answer.
    const publishes = runtime.publishesPorts();
    for (const from of ["outside", pod.node]) out.push({ from, to: `${pod.node}:8080`, promised: publishes });
    out.push({ from: pod.node, to: "127.0.0.1:8080", promised: false, unreached: true });
  }
  return out;
}

/** A probe's outcome; "reached" only when the target (a pod, or one of the Service's endpoints) answered. */
async function probe(runtime: ClusterRuntime, cell: Cell): Promise<ProbeResult["outcome"]> {
  return (await runtime.probe(cell.from, cell.to)).outcome;
}

/**
 * Every node's tables (and the routers'), as values in a form two builds of one state share. Pod
 * addresses, which host-local hands out round robin and so depend on history, are named by pod: in
 * kube-proxy's chains each Service's jump to its i-th endpoint chain names the i-th endpoint pod and
 * carries that chain's rules inline (the chains are named after the address), and elsewhere an address
 * held by a pod on the node is named by the pod. MACs of a node's own links (VTEPs), random on a real
 * kernel, are named by node and link.
 */
export async function clusterTables(runtime: ClusterRuntime): Promise<Record<string, unknown>> {
  const k = runtime.k;
  const macs = new Map<number, string>();
  for (const node of runtime.nodes.values())
    for (const link of await k.link.list(node.ns))
      if (link.address && link.ifname !== "lo")
        macs.set(parseMac(link.address), `${node.name}/${link.ifname}`);
  const macName = (mac: number | undefined) => (mac === undefined ? undefined : (macs.get(mac) ?? mac));
  // Each Service chain's endpoint pods, in the order the Service lists them.
  const endpointPods = new Map<string, PodState[]>();
  for (const svc of runtime.services.values()) {
    for (const [i, port] of svc.spec.ports.entries()) {
      const servicePort = { ...port, targetPort: port.targetPort ?? port.port };
      const { namespace, name } = svc.spec;
      const value = { namespace, name, clusterIP: svc.clusterIP, ports: [servicePort], endpoints: [] };
      const pods = svc.portEndpoints[i]!.map((e) => runtime.pods.get(e.pod)!);
      endpointPods.set(serviceChain(value, servicePort), pods);
    }
  }
  const named = (text: string, pod: PodState) =>
    text.replace(
      new RegExp(`(?<![\\d.])${pod.ip.replace(/\./g, "\\.")}(?![\\d])`, "g"),
      `<${pod.spec.name}>`,
    );
  const out: Record<string, unknown> = {};
  const places = [
    ...[...runtime.nodes.values()].map((n) => ({ name: n.name, ns: n.ns })),
    ...runtime.spec.underlay.routers.map((r) => ({ name: r.name, ns: runtime.ns(r.name) })),
  ].sort((a, b) => a.name.localeCompare(b.name));
  for (const { name, ns } of places) {
    const localPods = [...runtime.pods.values()].filter((p) => p.node === name);
    const iptables: Record<string, string[]> = {};
    for (const table of ["nat", "filter"] as const) {
      const chains = await k.iptables.list(ns, table);
      const rulesOf = new Map(chains.map((c) => [c.name, c.rules]));
      for (const chain of chains) {
        if (chain.name.startsWith("KUBE-SEP-")) continue; // inlined where a Service jumps to it
        const pods = endpointPods.get(chain.name);
        let endpoint = 0;
        iptables[`${table} ${chain.name}`] = chain.rules.flatMap((rule) => {
          const target = rule.target.kind === "jump" ? rule.target.chain : "";
          if (pods && target.startsWith("KUBE-SEP-")) {
            const pod = pods[endpoint++]!;
            const inline = (rulesOf.get(target) ?? []).map((r) => `  ${named(JSON.stringify(r), pod)}`);
            return [
              named(JSON.stringify(rule).replace(target, `KUBE-SEP(${pod.spec.name})`), pod),
              ...inline,
            ];
          }
          return [localPods.reduce((text, pod) => named(text, pod), JSON.stringify(rule))];
        });
      }
    }
    out[name] = {
      // `linkdown` is a device's carrier, not an entry anyone writes: on Linux an empty bridge has
      // carrier after it is created and loses it when its last port leaves, so a node whose pods all
      // moved away differs from one that never had any (the simulator does not model this).
      routes: (await k.route.entries(ns)).map(({ linkdown: _carrier, ...route }) => route),
      neighbours: (await k.neigh.entries(ns))
        .filter((e) => e.state.includes("PERMANENT"))
        .map((e) => ({ ...e, lladdr: macName(e.lladdr) }))
        .sort((a, b) => `${a.dev} ${a.dst}`.localeCompare(`${b.dev} ${b.dst}`)),
      // An FDB is a set: the kernel dumps it in hash order, the simulator in insertion order.
      fdb: (await k.fdb.entries(ns))
        .filter((e) => e.dst !== undefined)
        .map((e) => ({ ...e, mac: macName(e.mac) }))
        .sort((a, b) =>
          `${a.dev} ${String(a.mac)} ${a.dst}`.localeCompare(`${b.dev} ${String(b.mac)} ${b.dst}`),
        ),
      iptables: Object.fromEntries(Object.entries(iptables).sort(([a], [b]) => a.localeCompare(b))),
    };
  }
  return out;
}

export function describeProviderConformance(name: string, target: ProviderConformanceTarget): void {
  describe.skipIf(target.skip)(`provider conformance: ${name}`, () => {
    const made: ClusterBackend[] = [];
    afterEach(async () => {
      for (const backend of made.splice(0)) await target.cleanup?.(backend);
    });

    async function build(provider: NetworkProvider, s: Scenario): Promise<ClusterRuntime> {
      const backend = await target.backend(s.name);
      made.push(backend);
      const runtime = await ClusterRuntime.build(s, provider, { backend });
      for (const report of runtime.reports) expect(report.report?.refused ?? []).toEqual([]);
      return runtime;
    }

    const test = (title: string, body: () => Promise<void>) => it(title, body, target.timeout);

    for (const [providerName, make] of Object.entries(target.providers)) {
      describe(providerName, () => {
        test("attaches pods through its CNI plugin and detaches them, giving the address back", async () => {
          const provider = make();
          const runtime = await build(provider, scenario(`${providerName}-attach`));
          const k = runtime.k;
          const n2 = runtime.nodes.get("n2")!;
          const linksBefore = (await k.link.list(n2.ns)).length;
          const w2 = runtime.pods.get("w2")!;
          // The pod's link carries its address and the MTU the provider promises.
          const eth0 = (await k.addr.list(runtime.ns("w2"))).find((a) => a.ifname === "eth0")!;
          expect(eth0.addr_info.map((a) => a.local)).toEqual([w2.ip]);
          expect(eth0.mtu).toBe(provider.podMtu(n2.underlayMtu));
          if (provider.podAddressing === "per-node-subnet")
            expect(w2.ip.startsWith(n2.podCidr!.split(".").slice(0, 3).join(".") + ".")).toBe(true);
          await runtime.removePod("w2");
          expect(await k.netns.list()).not.toContain(runtime.ns("w2"));
          // Its host side is gone with it.
          expect((await k.link.list(n2.ns)).length).toBe(linksBefore - 1);
          const again = await runtime.addPod(web("w2b", "n2"));
          expect(again.ip).not.toBe("");
          expect((await k.link.list(n2.ns)).length).toBe(linksBefore);
          expect((await runtime.probe("w2b", "w2b:8080")).outcome).toBe("reached");
        });

        test("leaves nothing for a resync to do after nodes join and pods attach", async () => {
          const runtime = await build(make(), scenario(`${providerName}-resync`));
          const report = await runtime.manager.resync();
          expect([report.added, report.removed, report.changed, report.refused]).toEqual([0, 0, 0, []]);
        });

        test("gives every node of a peer group the same entries for a peer, as peerGroup promises", async () => {
          const provider = make();
          if (!provider.peerGroup) return;
          const runtime = await build(provider, scenario(`${providerName}-groups`));
          const nodes = [...runtime.nodes.values()];
          for (const peer of nodes) {
            const readers = nodes.filter((n) => n !== peer);
            for (const a of readers)
              for (const b of readers)
                if (provider.peerGroup(a) === provider.peerGroup(b))
                  expect(provider.peerEntries(a, peer, runtime.cluster)).toEqual(
                    provider.peerEntries(b, peer, runtime.cluster),
                  );
          }
        });

        test("keeps the reachability it promises", async () => {
          const provider = make();
          const runtime = await build(provider, scenario(`${providerName}-reach`));
          const broken: string[] = [];
          for (const cell of cells(provider, runtime).filter((c) => c.promised || c.unreached)) {
            const outcome = await probe(runtime, cell);
            if ((outcome === "reached") !== cell.promised)
              broken.push(`${cell.from} → ${cell.to}: ${outcome}`);
          }
          expect(broken).toEqual([]);
        });

        test("ends node leave and rejoin, pod moves and Service changes with the tables and reachability of the same state built from scratch", async () => {
          const provider = make();
          const runtime = await build(provider, scenario(`${providerName}-history`));
          // n2 leaves (its pods are deleted through CNI DEL) and rejoins; w2 comes back.
          await runtime.removeNode("n2");
          await runtime.addNode(node("n2"));
          await runtime.addPod(web("w2", "n2", 8080, NODES.n2.address));
          // w3 moves from n3 to n2; client moves nowhere but restarts.
          await runtime.removePod("w3");
          await runtime.addPod(web("w3", "n2"));
          await runtime.removePod("client");
          await runtime.addPod({
            name: "client",
            namespace: "default",
            node: "n1",
            labels: {},
            containers: [{ name: "app", ports: [] }],
          });
          // Services change: web's NodePort moves, local goes and comes back over n2's pods.
          await runtime.setService(service("web", { app: "web" }, "10.96.0.10", 30081));
          await runtime.removeService("local");
          await runtime.setService(service("local", { "on-n2": "yes" }, "10.96.0.11"));
          for (const report of runtime.reports) expect(report.report?.refused ?? []).toEqual([]);

          // The same final state, from scratch: nodes, pods and Services in the order the history left them.
          const scratch = await build(
            provider,
            scenario(`${providerName}-scratch`, {
              nodes: [...runtime.nodes.keys()].map(node),
              pods: [...runtime.pods.values()].map((p) => ({ ...p.spec, node: p.node })),
              services: [...runtime.services.values()].map((s) => s.spec),
            }),
          );
          expect(await clusterTables(runtime)).toEqual(await clusterTables(scratch));
          const resync = await runtime.manager.resync();
          expect([resync.added, resync.removed, resync.changed]).toEqual([0, 0, 0]);

          // Reachability: every cell the provider promises is reached in both; with a subnet per node
          // (addresses unique in the cluster) every cell has the same outcome in both. Under a range
          // repeated on every node, which pod an address reaches across nodes depends on the order
          // addresses were handed out, as it does with Docker.
          const promisedEverywhere = provider.podAddressing === "per-node-subnet";
          const seen: string[] = [];
          const want: string[] = [];
          for (const cell of cells(provider, scratch)) {
            if (!cell.promised && !promisedEverywhere) continue;
            seen.push(`${cell.from} → ${cell.to}: ${await probe(runtime, cell)}`);
            want.push(`${cell.from} → ${cell.to}: ${await probe(scratch, cell)}`);
          }
          expect(seen).toEqual(want);
          for (const cell of cells(provider, scratch).filter((c) => c.promised))
            expect(seen).toContain(`${cell.from} → ${cell.to}: reached`);
        });
      });
    }
  });
}
