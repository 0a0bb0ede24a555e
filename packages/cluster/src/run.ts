import type { NetworkProvider } from "@podnet/cni";
import { policyKey } from "@podnet/policy";
import {
  controlPlaneMetrics,
  probeKind,
  nodeTables,
  pathMetrics,
  probeSummary,
  reachability,
  sampledReason,
  type ControlPlaneMetrics,
  type NodeTables,
  type PathMetrics,
  type ReachabilityCell,
} from "./analysis.js";
import { ClusterRuntime, type BuildOptions } from "./runtime.js";
import { socketOutcome, socketReason } from "./backend.js";
import type { Scenario } from "./schema.js";

/** The documented shape of `podnet run --json` (version 1). */
export interface RunResult {
  schemaVersion: 1;
  scenario: string;
  provider: string;
  /** kube-proxy's mode: "iptables" or "nftables". */
  proxy: string;
  /** The NetworkPolicy engine: "none" (nothing enforced) or "iptables". */
  policy: string;
  nodes: { name: string; address: string; podCidr?: string }[];
  pods: { name: string; namespace: string; node: string; ip: string }[];
  services: { name: string; namespace: string; clusterIP: string; endpoints: string[] }[];
  /** Per node (the first 20): routes, permanent neighbours, FDB entries, and the nat table. */
  tables: Record<string, NodeTables>;
  reachability: ReachabilityCell[];
  summary: { reached: number; total: number };
  probes: ReachabilityCell[];
  path?: PathMetrics;
  controlPlane: ControlPlaneMetrics;
  /** What the scenario asks for that this provider does not do (a hostPort it does not publish). */
  notes?: string[];
}

/**
 * The scenario's hostPorts a provider leaves unpublished: only a provider whose CNI chain ends in a
 * portmap plugin (its config declares the portMappings capability) publishes them, and otherwise a
 * probe to the node's port is refused with no word of why.
 */
function unpublishedPorts(runtime: ClusterRuntime): string[] {
  if (runtime.publishesPorts()) return [];
  return [...runtime.pods].flatMap(([name, pod]) =>
    pod.spec.containers.flatMap((c) =>
      c.ports
        .filter((p) => p.hostPort !== undefined)
        .map(
          (p) =>
            `${name}/${c.name}'s hostPort ${p.hostPort} is not published: ${runtime.provider.name}'s CNI chain has no portmap plugin (${p.protocol} ${pod.node}:${p.hostPort} reaches nothing)`,
        ),
    ),
  );
}

/**
 * NetworkPolicy matches pods by address: where pods of different nodes share one (docker-bridge
 * gives every node 172.17.0.0/16), a verdict may be another pod's, in the chains as in the tables.
 */
/**
 * A named targetPort no selected pod has (`targetPort: htp`): the API server takes it, and the
 * EndpointSlice controller then leaves that port without endpoints — connections to it are refused
 * without a word anywhere else. Said once per Service port.
 */
export function unresolvedTargetPorts(runtime: ClusterRuntime): string[] {
  const out: string[] = [];
  for (const svc of runtime.services.values())
    svc.spec.ports.forEach((port, i) => {
      if (typeof port.targetPort !== "string" || !svc.endpoints.length || svc.portEndpoints[i]!.length)
        return;
      out.push(
        `svc/${runtime.serviceRef(svc)} port ${port.port}/${port.protocol.toUpperCase()} names targetPort ${JSON.stringify(port.targetPort)}, which ${svc.endpoints.length === 1 ? "its one selected pod does not have" : `none of its ${svc.endpoints.length} selected pods has`} (a container port of that name and protocol): the port has no endpoints`,
      );
    });
  return out;
}

export function sharedAddresses(runtime: ClusterRuntime): string[] {
  const byIp = new Map<string, string[]>();
  for (const [name, pod] of runtime.pods) byIp.set(pod.ip, [...(byIp.get(pod.ip) ?? []), name]);
  const shared = [...byIp].filter(([, pods]) => pods.length > 1);
  if (!shared.length) return [];
  const listed = shared
    .slice(0, 3)
    .map(([ip, pods]) => `${ip}: ${pods.join(", ")}`)
    .join("; ");
  return [
    `NetworkPolicy matches pods by address, and under ${runtime.provider.name} pods of different nodes share ${shared.length === 1 ? "one" : shared.length} (${listed}${shared.length > 3 ? "; …" : ""}): a verdict on one of them may be another's`,
  ];
}

export interface RunOptions extends BuildOptions {
  /** Called after each of the scenario's probes, with how many there are (20,000 take seconds). */
  onProbe?: (done: number, total: number) => void | Promise<void>;
}

/**
 * With no policy engine, the scenario's NetworkPolicies (listed, from manifests, or set by its events)
 * are only data: every probe passes them by. Said once, so a reachable cell is not read as allowed.
 */
export function unenforcedPolicies(scenario: Scenario): string[] {
  const names = new Set([
    ...scenario.networkPolicies.map(policyKey),
    ...scenario.events.flatMap((e) => (e.action === "setNetworkPolicy" ? [policyKey(e.networkPolicy)] : [])),
  ]);
  if (!names.size) return [];
  const count =
    names.size === 1 ? "the scenario's NetworkPolicy is" : `the scenario's ${names.size} NetworkPolicies are`;
  return [
    `${count} not enforced: no policy engine runs beside the provider (--policy iptables enforces ${names.size === 1 ? "it" : "them"})`,
  ];
}

/** Builds the scenario under the provider, runs its probes and events, and measures it. */
export async function runScenario(
  scenario: Scenario,
  provider: NetworkProvider,
  options: RunOptions = {},
): Promise<{ result: RunResult; runtime: ClusterRuntime }> {
  const runtime = await ClusterRuntime.build(scenario, provider, options);
  await runtime.runEvents();
  const cells = reachability(runtime);
  const traffic = runtime.spec.traffic;
  const probes: ReachabilityCell[] = [];
  for (const p of traffic) {
    const { summary: trace, failed } = probeSummary(runtime, p.from, p.to, {
      protocol: p.protocol,
      ...(p.port ? { port: p.port } : {}),
      ...(p.size !== undefined ? { size: p.size } : {}),
    });
    // Reached only where a listener took it: a refused connection (a RST, a port unreachable) fails
    // the probe, over TCP and UDP alike, whoever refused it.
    const reached = trace.outcome === "reached";
    probes.push({
      kind: probeKind(runtime, p.from, p.to),
      from: p.from,
      to: p.to,
      protocol: p.protocol,
      // As a socket (and `podnet verify` on the kernel) sees it: a REJECT's port unreachable is
      // "refused".
      outcome: socketOutcome(p.protocol, trace),
      reached,
      reason: sampledReason(socketReason(p.protocol, trace, trace.reason), failed),
    });
    if (options.onProbe) await options.onProbe(probes.length, traffic.length);
  }
  const path = await pathMetrics(runtime);
  const result: RunResult = {
    schemaVersion: 1,
    scenario: scenario.name,
    provider: provider.name,
    proxy: runtime.proxy,
    policy: runtime.policyEngine.name,
    nodes: [...runtime.nodes.values()].map((n) => ({
      name: n.name,
      address: n.address,
      ...(n.podCidr ? { podCidr: n.podCidr } : {}),
    })),
    pods: [...runtime.pods].map(([name, p]) => ({
      name,
      namespace: p.spec.namespace,
      node: p.node,
      ip: p.ip,
    })),
    services: [...runtime.services.values()].map((s) => ({
      name: s.spec.name,
      namespace: s.spec.namespace,
      clusterIP: s.clusterIP,
      endpoints: s.endpoints,
    })),
    tables: await nodeTables(runtime),
    reachability: cells,
    summary: { reached: cells.filter((c) => c.reached).length, total: cells.length },
    probes,
    ...(path ? { path } : {}),
    controlPlane: await controlPlaneMetrics(runtime),
  };
  const notes = [
    ...unpublishedPorts(runtime),
    ...unresolvedTargetPorts(runtime),
    ...(runtime.policyEngine.name === "none" ? unenforcedPolicies(scenario) : sharedAddresses(runtime)),
  ];
  if (notes.length) result.notes = notes;
  return { result, runtime };
}

/** One row of `podnet bench` (schemaVersion 1): a scenario under a provider, podnet and the network. */
export interface BenchRow {
  scenario: string;
  provider: string;
  /** kube-proxy's mode: "iptables" or "nftables". */
  proxy: string;
  /** The NetworkPolicy engine: "none" or "iptables". */
  policy: string;
  nodes: number;
  pods: number;
  buildMs: number;
  reconcileMs: number;
  /** Random pod pairs, each walked: the first second after the build (first contacts included). */
  tracesPerSecond: number;
  /** The same sequence of pairs in the second after that one. */
  laterTracesPerSecond?: number;
  /**
   * Of those two seconds' pairs, the share walked (in %): the rest were pairs met again, answered by
   * the flow cache. A small scenario has few pairs (its sequence repeats), and its traces/s is then
   * mostly replays; at 5,000 nodes every pair is a first.
   */
  tracesWalkedPercent?: number;
  /** The first of those pairs (10,000 at most) answered again by the flow cache, once learned. */
  replayedTracesPerSecond?: number;
  /** One pair on two nodes probed again and again (the flow cache answers after the first). */
  warmTracesPerSecond?: number;
  hopsPerTrace: number;
  peakRssMiB: number;
  reachable: string;
  podMtu?: number;
  overheadPercentAt1400?: number;
  routesPerNode: number;
  neighboursAndFdbPerNode: number;
  natRulesPerNode: number;
}
