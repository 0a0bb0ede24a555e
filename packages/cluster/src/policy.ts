/**
 * NetworkPolicy in a built cluster: the pods as the policy engine sees them (namespace, labels,
 * address, named ports, node), the scenario's policies compiled against them, the engine applied
 * on every node, and the outside hosts a policy matrix includes.
 */
import { parseIpv4, type Ipv4Header } from "@podnet/core";
import {
  compilePolicies,
  connectionVerdict,
  endpointAt,
  type ConnectionVerdict,
  type CompiledPolicies,
  type NetworkPolicy,
  type OutsideHost,
  type PolicyApplyReport,
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
  policies: readonly NetworkPolicy[] = runtime.spec.networkPolicies,
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
  for (const node of runtime.nodes.keys()) {
    const r = await runtime.policyEngine.apply(runtime.k, runtime.ns(node), node, compiled);
    total.written += r.written;
    total.removed += r.removed;
    total.rules += r.rules;
  }
  return total;
}

/**
 * The policy verdict on the connection a trace carried: the innermost IPv4 header of its last
 * request hop (after any Service DNAT, before any encapsulation) names the two ends and the port.
 * Undefined when no policy engine runs or the trace carried no IPv4 packet.
 */
export function traceVerdict(runtime: ClusterRuntime, trace: Trace): ConnectionVerdict | undefined {
  if (runtime.policyEngine.name === "none") return undefined;
  for (let i = trace.hops.length - 1; i >= 0; i--) {
    const hop = trace.hops[i]!;
    if (hop.direction !== "request") continue;
    const headers = hop.packet.headers;
    const at = headers.findLastIndex((h) => h.kind === "ipv4");
    if (at < 0) continue;
    const ip = headers[at] as Ipv4Header;
    const l4 = headers[at + 1];
    // The connection's own packet, as far as it went (after any DNAT): not an ICMP error a router
    // sent back about it ("no route to host"), which is from the router to the sender.
    if (l4?.kind === "icmp" && l4.type !== 8) continue;
    const compiled = clusterPolicies(runtime);
    const protocol = l4?.kind === "tcp" || l4?.kind === "udp" ? l4.kind : "icmp";
    const port = l4?.kind === "tcp" || l4?.kind === "udp" ? l4.dstPort : 0;
    return connectionVerdict(
      compiled,
      endpointAt(compiled, ip.src),
      endpointAt(compiled, ip.dst),
      protocol,
      port,
    );
  }
  return undefined;
}
