/**
 * NetworkPolicy in a built cluster: the pods as the policy engine sees them (namespace, labels,
 * address, named ports, node), the scenario's policies compiled against them, the engine applied
 * on every node, and the outside hosts a policy matrix includes.
 */
import { parseIpv4 } from "@podnet/core";
import {
  compilePolicies,
  type CompiledPolicies,
  type NetworkPolicy,
  type OutsideHost,
  type PolicyApplyReport,
  type PolicyPod,
} from "@podnet/policy";
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
