/**
 * What a run reports: the reachability matrix (every failure with its reason), path metrics of a
 * cross-node pod pair (hops, encapsulations, NAT steps, bytes on the wire and overhead, pod MTU,
 * whether the source address survives) and control-plane metrics (entries per node, changes per event).
 */
import { Ipv4Prefix, formatIpv4, parseIpv4, type Ipv4Header } from "@podnet/core";
import type { FdbDump, NeighDump, NftObject, RouteDump } from "@podnet/netlink";
import { NFT_TABLE, nftEntryCount } from "@podnet/route-manager";
import { wireFrames, type Trace, type TraceSummary } from "@podnet/sim";
import type { ClusterRuntime, ProbeOptions } from "./runtime.js";
import { socketOutcome, socketReason } from "./backend.js";
import { HEADLESS } from "./schema.js";

type End = "pod" | "node" | "outside";
export type CellKind =
  | "pod→pod (same node)"
  | "pod→pod (across nodes)"
  | "pod→itself (localhost)"
  | `${End}→${End | "service" | "address"}`;

/** What kind of path a probe from `from` to `to` takes, named as the matrix names its cells. */
export function probeKind(runtime: ClusterRuntime, from: string, to: string): CellKind {
  const source = runtime.origin(from);
  const target = runtime.resolve(to);
  const fromKind: End = runtime.pods.has(source.ns)
    ? "pod"
    : runtime.nodes.has(source.ns)
      ? "node"
      : "outside";
  if (fromKind === "pod" && target.kind === "address" && target.address.startsWith("127."))
    return "pod→itself (localhost)";
  if (fromKind === "pod" && target.kind === "pod")
    return runtime.pods.get(source.ns)!.node === runtime.pods.get(target.ns!)!.node
      ? "pod→pod (same node)"
      : "pod→pod (across nodes)";
  const toKind = target.kind === "host" ? "outside" : target.kind;
  return `${fromKind}→${toKind}`;
}

export interface ReachabilityCell {
  kind: CellKind;
  from: string;
  to: string;
  protocol: "icmp" | "tcp" | "udp";
  outcome: Trace["outcome"];
  reached: boolean;
  reason: string;
}

export interface PathMetrics {
  from: string;
  to: string;
  reached: boolean;
  /** Why the path's ping was not answered (the trace's sentence); absent when it was. */
  reason?: string;
  routedHops: number;
  namespaces: number;
  encapsulations: number;
  natSteps: number;
  /** The MTU of the source pod's eth0, as its namespace holds it. */
  podMtu: number;
  /**
   * Whether the destination saw the source pod's own address; absent when the ping did not arrive
   * (nothing to say). Hops, encapsulations and NAT steps count the way as far as it went.
   */
  sourcePreserved?: boolean;
  /** ICMP payload size → bytes of the frame on the underlay, and the encapsulation's share. */
  /**
   * A ping of `payload` bytes (DF not set) as it leaves the pod and as it crosses the underlay: bytes
   * of every frame (a packet over the MTU is cut into fragments: `podFrames`, `underlayFrames`).
   */
  wire: {
    payload: number;
    podFrame: number;
    podFrames: number;
    underlayFrame: number;
    underlayFrames: number;
    overheadPercent: number;
  }[];
}

export interface NodeTableCounts {
  routes: number;
  neighbours: number;
  fdb: number;
  natRules: number;
}

/** A node's tables as the host API dumps them: `ip -j route`, permanent `ip -j neigh`, `bridge -j fdb`, `iptables-save -t nat`. */
export interface NodeTables {
  routes: RouteDump[];
  neighbours: NeighDump[];
  fdb: FdbDump[];
  nat: string;
  /** `iptables-save -t filter`: kube-proxy's rejects, NetworkPolicy chains. */
  filter: string;
  /** Under kube-proxy's nftables mode: its `ip kube-proxy` table, as `nft -j list table` (no handles). */
  nft?: NftObject[];
}

const MAX_NODES_WITH_TABLES = 20;

/** Every node's tables (the first 20 nodes of a large cluster). */
export async function nodeTables(runtime: ClusterRuntime): Promise<Record<string, NodeTables>> {
  const out: Record<string, NodeTables> = {};
  for (const name of [...runtime.nodes.keys()].slice(0, MAX_NODES_WITH_TABLES)) {
    out[name] = {
      routes: await runtime.k.route.list(runtime.ns(name)),
      neighbours: (await runtime.k.neigh.list(runtime.ns(name))).filter((n) => n.state.includes("PERMANENT")),
      fdb: (await runtime.k.fdb.list(runtime.ns(name))).filter((f) => f.dst),
      nat: await runtime.k.iptables.save(runtime.ns(name), "nat"),
      filter: await runtime.k.iptables.save(runtime.ns(name), "filter"),
      ...(runtime.proxy === "nftables"
        ? { nft: await runtime.k.nft.list(runtime.ns(name), "ip", NFT_TABLE) }
        : {}),
    };
  }
  return out;
}

export interface ControlPlaneMetrics {
  perNode: Record<string, NodeTableCounts>;
  total: NodeTableCounts;
  events: {
    description: string;
    /**
     * Whether the counts are the route manager's (routes, neighbours, FDB entries, kube-proxy's
     * rules): false for a NetworkPolicy event, whose chains its description counts.
     */
    counted: boolean;
    added: number;
    removed: number;
    changed: number;
    refused: number;
    durationMs: number;
  }[];
}

const MAX_PODS_IN_MATRIX = 12;

/** A reason made complete: a refused route that would have carried the packet is the real cause. */
function explain(runtime: ClusterRuntime, trace: TraceSummary, target: string): string {
  if (trace.outcome === "reached") return trace.reason;
  const ip = parseIpv4(target);
  const refusals = runtime.manager.refusals.filter((r) => {
    const dst = r.entry.split(" ")[0]!;
    return dst.includes("/") && Ipv4Prefix.parse(dst).contains(ip);
  });
  if (!refusals.length) return trace.reason;
  const r = refusals[0]!;
  return `${trace.reason} — the route that would carry it was refused on ${r.node}: ${r.entry}: ${r.reason}`;
}

/** One cell of the matrix before it is probed: who, to whom, how. */
export interface PlannedCell {
  kind: CellKind;
  from: string;
  /** The target as a probe names it (`db`, `svc/web:80`). */
  to: string;
  protocol: "icmp" | "tcp" | "udp";
}

/**
 * Connections per endpoint a probe to a load-balanced Service makes: kube-proxy picks an endpoint at
 * random for each connection, and 8 draw every one of a Service's endpoints but once in ~3,000.
 */
export const SAMPLES_PER_ENDPOINT = 8;

/**
 * A probe's summary on the simulator. To a Service with several endpoints, that many connections
 * (kube-proxy picks an endpoint at random for each): the first that was not reached, with how many
 * of how many were not, else the first. One endpoint that refuses fails a Service as a client meets
 * it, some of the time; a single draw would pass or fail by chance.
 */
export function probeSummary(
  runtime: ClusterRuntime,
  from: string,
  to: string,
  options: ProbeOptions & { protocol: "icmp" | "tcp" | "udp" },
  sample = true,
): { summary: TraceSummary; failed?: { count: number; of: number } } {
  const endpoints = sample
    ? (runtime.serviceOf(to, options.port, options.protocol)?.endpoints.length ?? 0)
    : 0;
  const first = runtime.summary(from, to, options);
  if (endpoints < 2) return { summary: first };
  const tries = SAMPLES_PER_ENDPOINT * endpoints;
  let failed = first.outcome === "reached" ? undefined : first;
  let count = failed ? 1 : 0;
  for (let i = 1; i < tries; i++) {
    const next = runtime.summary(from, to, options);
    if (next.outcome === "reached") continue;
    failed ??= next;
    count++;
  }
  return failed ? { summary: failed, failed: { count, of: tries } } : { summary: first };
}

/** A reason with how often a load-balanced Service failed, where it did some of the time. */
export const sampledReason = (reason: string, failed?: { count: number; of: number }) =>
  failed && failed.count < failed.of
    ? `${reason} (${failed.count} of ${failed.of} connections: kube-proxy picks an endpoint at random for each)`
    : reason;

function cell(runtime: ClusterRuntime, planned: PlannedCell, sample: boolean): ReachabilityCell {
  const { summary: trace, failed } = probeSummary(
    runtime,
    planned.from,
    planned.to,
    { protocol: planned.protocol },
    sample,
  );
  const target = runtime.resolve(planned.to).address;
  // A refused connection reached no one who took it (a RST or port unreachable, whoever sent it).
  const reached = trace.outcome === "reached";
  return {
    ...planned,
    outcome: socketOutcome(planned.protocol, trace),
    reached,
    reason: sampledReason(socketReason(planned.protocol, trace, explain(runtime, trace, target)), failed),
  };
}

/** Pods to probe: the first pods of each node (all of them in small clusters). */
function samplePods(runtime: ClusterRuntime): string[] {
  const pods = [...runtime.pods.keys()];
  if (pods.length <= MAX_PODS_IN_MATRIX) return pods;
  const byNode = new Map<string, string[]>();
  for (const [name, p] of runtime.pods) byNode.set(p.node, [...(byNode.get(p.node) ?? []), name]);
  const sample: string[] = [];
  for (const list of byNode.values())
    if (sample.length < MAX_PODS_IN_MATRIX) sample.push(...list.slice(0, 2));
  return sample.slice(0, MAX_PODS_IN_MATRIX);
}

/** The cells of the reachability matrix (pods sampled in large clusters), on any backend. */
export function reachabilityPlan(runtime: ClusterRuntime): PlannedCell[] {
  const cells: PlannedCell[] = [];
  const add = (kind: CellKind, from: string, to: string, protocol: PlannedCell["protocol"] = "icmp") =>
    cells.push({ kind, from, to, protocol });
  const pods = samplePods(runtime);
  const nodes = [...runtime.nodes.keys()].slice(0, MAX_PODS_IN_MATRIX);
  for (const a of pods) {
    for (const b of pods) {
      if (a === b) continue;
      const same = runtime.pods.get(a)!.node === runtime.pods.get(b)!.node;
      add(same ? "pod→pod (same node)" : "pod→pod (across nodes)", a, b);
    }
    for (const n of nodes) add("pod→node", a, n);
    for (const svc of runtime.services.values()) {
      if (svc.clusterIP === HEADLESS) continue; // no address: its pods are the pod→pod cells
      // A Service is probed on its first port, with that port's protocol (a DNS Service's is UDP).
      const port = svc.spec.ports[0]!;
      add("pod→service", a, `svc/${runtime.serviceRef(svc)}:${port.port}`, port.protocol);
    }
    for (const host of runtime.hosts.keys()) add("pod→outside", a, host);
  }
  for (const n of nodes) for (const b of pods) add("node→pod", n, b);
  return cells;
}

/**
 * Connections the matrix may make to sample its Service cells: a Service's walk is never replayed
 * (each draws its endpoint), and 12 pods × 10,000 Services × 5 endpoints × 8 would be 4.8 million.
 * Past it each Service cell is one connection, one of kube-proxy's draws; a scenario's own probes
 * are always sampled.
 */
export const MATRIX_SAMPLES = 100_000;

/** The reachability matrix on the simulator, each failure with its reason. */
export function reachability(runtime: ClusterRuntime): ReachabilityCell[] {
  const plan = reachabilityPlan(runtime);
  let connections = 0;
  for (const c of plan)
    if (c.kind === "pod→service")
      connections +=
        SAMPLES_PER_ENDPOINT * (runtime.serviceOf(c.to, undefined, c.protocol)?.endpoints.length ?? 1);
  const sample = connections <= MATRIX_SAMPLES;
  return plan.map((planned) => cell(runtime, planned, sample));
}

/**
 * Pod pairs across nodes tried for one whose ping arrives, before the path is described by the first
 * pair and why it failed: a NetworkPolicy that drops the first pair says nothing of the path itself.
 */
const PATH_CANDIDATES = 64;

/** The pair whose path the metrics describe: the first across nodes that a ping crosses, if any. */
function samplePair(runtime: ClusterRuntime): [string, string] | undefined {
  const pods = [...runtime.pods.entries()];
  let first: [string, string] | undefined;
  let tried = 0;
  for (const [from, a] of pods)
    for (const [to, b] of pods) {
      if (a.node === b.node) continue;
      first ??= [from, to];
      if (runtime.summary(from, to, { protocol: "icmp" }).outcome === "reached") return [from, to];
      if (++tried >= PATH_CANDIDATES) return first;
    }
  return first;
}

export async function pathMetrics(runtime: ClusterRuntime): Promise<PathMetrics | undefined> {
  const pair = samplePair(runtime);
  if (!pair) return undefined;
  const [from, to] = pair;
  const src = runtime.pods.get(from)!;
  const node = runtime.nodes.get(src.node)!;
  const wire = [56, 512, 1400].map((payload) => {
    const trace = runtime.trace(from, to, { protocol: "icmp", size: payload, dontFragment: false });
    const frames = trace.hops.filter(
      (h) => h.direction === "request" && h.wire === "out" && h.packet.headers[0]?.kind === "ethernet",
    );
    // Each fragment is a frame of its own on the wire, with its own headers.
    const bytes = (hop: (typeof frames)[number] | undefined) =>
      hop ? wireFrames(hop).map((f) => f.length) : [];
    const pod = bytes(frames[0]);
    const underlay = bytes(frames.find((h) => h.ns === src.node && h.dev === node.nic));
    const podFrame = pod.reduce((a, b) => a + b, 0);
    const underlayFrame = underlay.reduce((a, b) => a + b, 0);
    return {
      payload,
      podFrame,
      podFrames: pod.length,
      underlayFrame,
      underlayFrames: underlay.length,
      overheadPercent:
        podFrame && underlayFrame ? Math.round(((underlayFrame - podFrame) / podFrame) * 1000) / 10 : 0,
    };
  });
  const trace = runtime.trace(from, to, { protocol: "icmp" });
  const request = trace.hops.filter((h) => h.direction === "request");
  const delivered = request.find((h) => h.event === "deliver" && h.ns === to);
  const seenSource = delivered ? formatIpv4((delivered.packet.headers[0] as Ipv4Header).src) : undefined;
  return {
    from,
    to,
    reached: trace.outcome === "reached",
    ...(trace.outcome === "reached" ? {} : { reason: `${trace.outcome}: ${trace.reason}` }),
    routedHops: request.filter((h) => h.event === "forward").length,
    namespaces: new Set(request.map((h) => h.ns)).size,
    encapsulations: request.filter((h) => h.event === "encap").length,
    natSteps: trace.hops.filter((h) => h.event === "nat").length,
    // What the pod's own link says, not what the provider promises.
    podMtu:
      (await runtime.k.link.list(runtime.ns(from))).find((l) => l.ifname === "eth0")?.mtu ??
      runtime.provider.podMtu(node.underlayMtu),
    ...(delivered ? { sourcePreserved: seenSource === src.ip } : {}),
    wire,
  };
}

/**
 * The node's NAT entries: its nat table's rules, and under kube-proxy's nftables mode also the rules
 * and map elements of its `ip kube-proxy` table.
 */
async function natEntries(runtime: ClusterRuntime, ns: string): Promise<number> {
  let n = (await runtime.k.iptables.list(ns, "nat")).reduce((sum, chain) => sum + chain.rules.length, 0);
  if (runtime.proxy === "nftables") n += nftEntryCount(await runtime.k.nft.list(ns, "ip", NFT_TABLE));
  return n;
}

export async function controlPlaneMetrics(runtime: ClusterRuntime): Promise<ControlPlaneMetrics> {
  const perNode: Record<string, NodeTableCounts> = {};
  const total: NodeTableCounts = { routes: 0, neighbours: 0, fdb: 0, natRules: 0 };
  for (const name of runtime.nodes.keys()) {
    const ns = runtime.ns(name);
    const sizes = await runtime.tableSizes(ns);
    const counts: NodeTableCounts = {
      routes: sizes.routes,
      neighbours: sizes.permanentNeighbours,
      fdb: sizes.remoteFdb,
      natRules: await natEntries(runtime, ns),
    };
    perNode[name] = counts;
    for (const k of Object.keys(total) as (keyof NodeTableCounts)[]) total[k] += counts[k];
  }
  const events = runtime.reports.map((e) => ({
    description: e.description,
    counted: e.policy === undefined,
    added: e.report?.added ?? 0,
    removed: e.report?.removed ?? 0,
    changed: e.report?.changed ?? 0,
    refused: e.report?.refused.length ?? 0,
    durationMs: Math.round((e.report?.durationMs ?? 0) * 100) / 100,
  }));
  return { perNode, total, events };
}
