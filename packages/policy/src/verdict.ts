/**
 * One connection's verdict, with its reasons: for each direction an enforcing node checks, either
 * no policy selects the pod (allowed), or the policy and rule that allowed it, or the policies that
 * select the pod and isolate it in that direction, none of which allowed it (default deny).
 */
import { formatIpv4, type Ipv4 } from "@podnet/core";
import { matchingPort, peerMatches, type CompiledPolicies, type PolicyProtocol } from "./compile.js";

/** One end of a connection: a pod by index, or an address outside the cluster's pods. */
export type Endpoint = { pod: number } | { ip: Ipv4 };

export interface DirectionVerdict {
  direction: "ingress" | "egress";
  /** The pod whose policies decide, as namespace/name. */
  pod: string;
  allowed: boolean;
  /**
   * "self": a pod's traffic to itself, which NetworkPolicy cannot block (it never leaves the pod);
   * "own-node": between a pod and its own node, which Kubernetes always allows (kubelet's probes).
   */
  reason: "not-selected" | "allowed" | "default-deny" | "self" | "own-node";
  /** For "allowed": the policy (namespace/name), its rule index and the port clause that matched. */
  by?: { policy: string; rule: number; port?: number };
  /** The policies isolating the pod in this direction, and whether their policyTypes were defaulted. */
  selecting: { policy: string; defaultedTypes: boolean }[];
}

export interface ConnectionVerdict {
  allowed: boolean;
  egress?: DirectionVerdict;
  ingress?: DirectionVerdict;
}

const ipOf = (c: CompiledPolicies, e: Endpoint) => ("pod" in e ? c.pods[e.pod]!.ip : e.ip);
const indexOf = (e: Endpoint) => ("pod" in e ? e.pod : undefined);
export const podKey = (c: CompiledPolicies, index: number) =>
  `${c.pods[index]!.namespace}/${c.pods[index]!.name}`;

function direction(
  c: CompiledPolicies,
  dir: "ingress" | "egress",
  self: number,
  peer: Endpoint,
  dst: Endpoint,
  protocol: PolicyProtocol | "icmp",
  port: number,
): DirectionVerdict {
  const selecting = (dir === "ingress" ? c.ingressOf : c.egressOf)[self]!;
  const base = {
    direction: dir,
    pod: podKey(c, self),
    selecting: selecting.map((pi) => ({
      policy: c.policies[pi]!.key,
      defaultedTypes: c.policies[pi]!.defaultedTypes,
    })),
  };
  if (!selecting.length) return { ...base, allowed: true, reason: "not-selected" };
  const dstPod = "pod" in dst ? c.pods[dst.pod] : undefined;
  const peerIndex = indexOf(peer);
  const peerIp = ipOf(c, peer);
  for (const pi of selecting) {
    for (const rule of c.policies[pi]!.rules) {
      if (rule.direction !== dir || !peerMatches(rule, peerIndex, peerIp)) continue;
      const k = matchingPort(rule, protocol, port, dstPod);
      if (k < 0) continue;
      return {
        ...base,
        allowed: true,
        reason: "allowed",
        by: { policy: c.policies[pi]!.key, rule: rule.index, ...(rule.ports ? { port: k } : {}) },
      };
    }
  }
  return { ...base, allowed: false, reason: "default-deny" };
}

/**
 * The verdict on a new connection from `src` to `dst` on protocol/port. ICMP (port 0) has no port
 * clause to match: only rules without ports allow it, as iptables-based engines do. A pod's
 * connection to its own address never leaves it and is allowed; one that came back to it through
 * a Service (`hairpin`) crossed its node and is judged as any other.
 */
export function connectionVerdict(
  c: CompiledPolicies,
  src: Endpoint,
  dst: Endpoint,
  protocol: PolicyProtocol | "icmp",
  port: number,
  hairpin = false,
): ConnectionVerdict {
  if (!hairpin && "pod" in src && "pod" in dst && src.pod === dst.pod) {
    const self = (d: "ingress" | "egress"): DirectionVerdict => ({
      direction: d,
      pod: podKey(c, src.pod),
      allowed: true,
      reason: "self",
      selecting: [],
    });
    return { allowed: true, egress: self("egress"), ingress: self("ingress") };
  }
  const egress = "pod" in src ? direction(c, "egress", src.pod, dst, dst, protocol, port) : undefined;
  const ingress = "pod" in dst ? direction(c, "ingress", dst.pod, src, dst, protocol, port) : undefined;
  return {
    allowed: (egress?.allowed ?? true) && (ingress?.allowed ?? true),
    ...(egress ? { egress } : {}),
    ...(ingress ? { ingress } : {}),
  };
}

/** An endpoint by pod index, or the pod with this address, or the address itself. */
export function endpointAt(c: CompiledPolicies, ip: Ipv4): Endpoint {
  const pod = c.byIp.get(ip);
  return pod === undefined ? { ip } : { pod };
}

export function describeEndpoint(c: CompiledPolicies, e: Endpoint): string {
  return "pod" in e ? podKey(c, e.pod) : formatIpv4(e.ip);
}

/** One line per direction, e.g. `ingress to y/b: allowed by y/allow-x ingress[0] ports[1]`. */
export function explainDirection(v: DirectionVerdict): string {
  const head = `${v.direction} ${v.direction === "ingress" ? "to" : "from"} ${v.pod}`;
  if (v.reason === "not-selected") return `${head}: allowed, no policy selects ${v.pod} for ${v.direction}`;
  if (v.reason === "self") return `${head}: allowed: a pod's traffic to itself never meets a policy`;
  if (v.reason === "own-node")
    return `${head}: allowed: traffic between a pod and its own node is always allowed (kubelet's probes)`;
  if (v.reason === "allowed")
    return `${head}: allowed by ${v.by!.policy} ${v.direction}[${v.by!.rule}]${v.by!.port !== undefined ? ` ports[${v.by!.port}]` : ""}`;
  const policies = v.selecting
    .map(
      (s) =>
        `${s.policy} (policyTypes${s.defaultedTypes ? " defaulted" : ""} include ${v.direction === "ingress" ? "Ingress" : "Egress"})`,
    )
    .join(", ");
  return `${head}: denied by default: selected by ${policies}, and no rule of them allows it`;
}

export function explainVerdict(v: ConnectionVerdict): string[] {
  const lines = [v.egress, v.ingress].filter((d) => d !== undefined).map(explainDirection);
  return lines.length ? lines : ["allowed: neither end is a pod, and NetworkPolicy selects pods only"];
}
