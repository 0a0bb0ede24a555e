/**
 * NetworkPolicy in a built cluster: the pods as the policy engine sees them (namespace, labels,
 * address, named ports, node), the scenario's policies compiled against them, the engine applied
 * on every node, and the outside hosts a policy matrix includes.
 */
import { formatIpv4, parseIpv4, type Ipv4Header } from "@podnet/core";
import {
  compilePolicies,
  connectionVerdict,
  endpointAt,
  type ConnectionVerdict,
  type CompiledPolicies,
  type DirectionVerdict,
  type NetworkPolicy,
  type OutsideHost,
  type PolicyApplyReport,
  type PolicyEngine,
  type PolicyPod,
} from "@podnet/policy";
import type { Trace } from "@podnet/sim";
import type { ClusterRuntime } from "./runtime.js";

export function policyPods(runtime: ClusterRuntime): PolicyPod[] {
  return [...runtime.pods.values()].map((p) => ({
    name: p.spec.name,
    namespace: p.spec.namespace,
    labels: p.spec.labels,
    ip: parseIpv4(p.ip),
    node: p.node,
    ports: p.spec.containers.flatMap((c) =>
      c.ports.map((port) => ({
        ...(port.name !== undefined ? { name: port.name } : {}),
        port: port.containerPort,
        protocol: port.protocol,
      })),
    ),
  }));
}

/** The cluster's pods under `policies` (the scenario's own by default). */
export function clusterPolicies(
  runtime: ClusterRuntime,
  policies: readonly NetworkPolicy[] = runtime.networkPolicies,
  namespaces = runtime.spec.namespaces,
): CompiledPolicies {
  return compilePolicies({ pods: policyPods(runtime), namespaces, policies });
}

/** The scenario's outside hosts, as sources and as targets on the ports they listen on. */
export function outsideHosts(runtime: ClusterRuntime): OutsideHost[] {
  return runtime.spec.underlay.hosts.map((h) => ({
    name: h.name,
    ip: parseIpv4(h.address),
    ports: h.listen,
  }));
}

/** Writes the policy engine's state on every node; nothing for the `none` engine. */
export async function applyPolicies(runtime: ClusterRuntime): Promise<PolicyApplyReport> {
  const total: PolicyApplyReport = { written: 0, removed: 0, rules: 0 };
  if (runtime.policyEngine.name === "none") return total;
  const compiled = clusterPolicies(runtime);
  // Past the engine's limits nothing is written: every node keeps the chains it had.
  runtime.policyEngine.check?.(compiled, runtime.nodes.keys());
  for (const node of runtime.nodes.keys()) {
    const r = await runtime.policyEngine.apply(runtime.k, runtime.ns(node), node, compiled);
    total.written += r.written;
    total.removed += r.removed;
    total.rules += r.rules;
  }
  return total;
}

/** What setting or removing a policy changed on the nodes, for the event's line. */
export function policyApplied(engine: PolicyEngine, report: PolicyApplyReport): string {
  if (engine.name === "none") return " (not enforced: no policy engine)";
  const chains = (n: number) => `${n} chain${n === 1 ? "" : "s"}`;
  return ` (${chains(report.written)} written, ${chains(report.removed)} removed)`;
}

/** A request hop's connection packet: its innermost IPv4 header and what follows, if it has one. */
function connectionPacket(hop: Trace["hops"][number]): { ip: Ipv4Header; l4: unknown } | undefined {
  if (hop.direction !== "request") return undefined;
  const headers = hop.packet.headers;
  const at = headers.findLastIndex((h) => h.kind === "ipv4");
  if (at < 0) return undefined;
  const l4 = headers[at + 1];
  // The connection's own packet, not an ICMP error a router sent back about it ("no route to host").
  if (l4?.kind === "icmp" && l4.type !== 8) return undefined;
  return { ip: headers[at] as Ipv4Header, l4 };
}

/**
 * The policy verdict on the connection a trace carried, each direction judged where its chains
 * run and on the packet as it was there: egress at the sender's node, from the address the sender
 * used; ingress at the receiving pod's node, from the source the packet had when it reached that
 * node (after the sending node's masquerade, before the receiving node's own, which POSTROUTING does
 * after the FORWARD hook). The destination is the one delivered to (after any Service DNAT). Between
 * a pod and its own node nothing is enforced, as Kubernetes has it. Undefined when no policy engine
 * runs or the trace carried no IPv4 packet.
 */
export function traceVerdict(runtime: ClusterRuntime, trace: Trace): ConnectionVerdict | undefined {
  if (runtime.policyEngine.name === "none") return undefined;
  const sent = trace.hops.flatMap((hop) => {
    const packet = connectionPacket(hop);
    return packet ? [{ ns: hop.ns, ...packet }] : [];
  });
  // The first packet with a source address: a socket's first hop has none yet (0.0.0.0).
  const first = sent.find((p) => p.ip.src !== 0) ?? sent[0];
  const last = sent.at(-1);
  if (!first || !last) return undefined;
  const compiled = clusterPolicies(runtime);
  const l4 = last.l4 as { kind?: string; dstPort?: number } | undefined;
  const protocol = l4?.kind === "tcp" || l4?.kind === "udp" ? l4.kind : "icmp";
  const port = protocol === "icmp" ? 0 : (l4?.dstPort ?? 0);
  const src = endpointAt(compiled, first.ip.src);
  const dst = endpointAt(compiled, last.ip.dst);
  const nodeOf = (e: typeof src) => {
    const node = "pod" in e ? compiled.pods[e.pod]!.node : undefined;
    return node === undefined ? undefined : runtime.ns(node);
  };
  const arrived = sent.find((p) => p.ns === nodeOf(dst));
  const seen = arrived ? endpointAt(compiled, arrived.ip.src) : src;
  const ownNode = (direction: "ingress" | "egress", pod: number): DirectionVerdict => ({
    direction,
    pod: `${compiled.pods[pod]!.namespace}/${compiled.pods[pod]!.name}`,
    allowed: true,
    reason: "own-node",
    selecting: [],
  });
  // To itself: through a Service the packet left the pod and crossed its node (hairpin).
  const sameEnd = "pod" in src && "pod" in dst && src.pod === dst.pod;
  const hairpin = sameEnd && sent.some((p) => p.ns !== first.ns);
  // To its own node: taken there, or sent to the node's address. Not where the walk ended: a packet
  // the node dropped (its egress chains, say) ends there too.
  const srcNode = "pod" in src ? compiled.pods[src.pod]!.node : undefined;
  const toOwnNode =
    srcNode !== undefined &&
    (trace.deliveredTo?.ns === nodeOf(src) ||
      runtime.nodes.get(srcNode)?.address === formatIpv4(first.ip.dst));
  const egress =
    "pod" in src && !sameEnd && toOwnNode
      ? ownNode("egress", src.pod)
      : connectionVerdict(compiled, src, dst, protocol, port, hairpin).egress;
  const ingress =
    "pod" in dst && !sameEnd && first.ns === nodeOf(dst)
      ? ownNode("ingress", dst.pod)
      : connectionVerdict(compiled, seen, dst, protocol, port, hairpin).ingress;
  return {
    allowed: (egress?.allowed ?? true) && (ingress?.allowed ?? true),
    ...(egress ? { egress } : {}),
    ...(ingress ? { ingress } : {}),
  };
}
