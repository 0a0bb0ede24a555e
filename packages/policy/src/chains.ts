/**
 * The iptables chains an enforcing node holds, the way iptables-based engines (kube-router,
 * Calico's iptables dataplane) lay them out: FORWARD jumps to PODNET-NETPOL, which returns at once
 * for established and related traffic (conntrack), then sends a new connection from a local pod
 * that an egress policy isolates through that pod's egress chain, and one to a local pod that an
 * ingress policy isolates through its ingress chain. A chain RETURNs on the first rule that allows
 * and DROPs at its end (the default deny). Pods no policy isolates get no chain: their traffic
 * passes. Every rule carries the policy and rule it came from, so a trace names them.
 */
import { Ipv4Prefix, formatIpv4 } from "@podnet/core";
import type { IptablesMatch, IptablesRule } from "@podnet/netlink";
import { resolvePort, type CompiledPolicies, type CompiledRule, type CompiledPort } from "./compile.js";
import { podKey } from "./verdict.js";

export const POLICY_CHAIN = "PODNET-NETPOL";
/** Per-pod chains: PNP-I-<hash> (ingress), PNP-E-<hash> (egress). */
export const POD_CHAIN_PREFIX = "PNP-";

/** FNV-1a of the pod's namespace/name: a chain name that stays put as other pods come and go. */
function hash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, "0").toUpperCase();
}

export const podChain = (direction: "ingress" | "egress", key: string) =>
  `${POD_CHAIN_PREFIX}${direction === "ingress" ? "I" : "E"}-${hash(key)}`;

/** A CIDR less its excepts, as the fewest prefixes that cover exactly the rest. */
export function subtractPrefixes(cidr: Ipv4Prefix, except: readonly Ipv4Prefix[]): Ipv4Prefix[] {
  const inside = except.filter((e) => cidr.overlaps(e));
  if (!inside.length) return [cidr];
  if (inside.some((e) => e.containsPrefix(cidr))) return [];
  const half = cidr.length + 1;
  return [cidr.subnet(0, half), cidr.subnet(1, half)].flatMap((h) => subtractPrefixes(h, inside));
}

const comment = (text: string): IptablesMatch => ({
  kind: "comment",
  comment: text.length > 255 ? `${text.slice(0, 252)}...` : text,
});

interface Peer {
  /** -s or -d; undefined for any. */
  address?: string;
  /** The pod a named port resolves on (egress), when the peer is one pod. */
  pod?: number;
}

/** The peers of a rule as iptables addresses: each selected pod's /32, each ipBlock less its excepts. */
function peers(c: CompiledPolicies, rule: CompiledRule): Peer[] {
  if (!rule.pods) return [{}];
  const blocks = rule.blocks.flatMap((b) => subtractPrefixes(b.cidr, b.except));
  const out: Peer[] = [];
  for (const i of rule.pods) {
    const ip = c.pods[i]!.ip;
    if (!blocks.some((b) => b.contains(ip))) out.push({ address: `${formatIpv4(ip)}/32`, pod: i });
  }
  for (const b of blocks) out.push({ address: b.toString() });
  return out;
}

function portMatches(
  protocol: "tcp" | "udp",
  range: { from: number; to: number },
): Pick<IptablesRule, "protocol"> & { match?: IptablesMatch } {
  if (range.from === 0 && range.to === 65535) return { protocol };
  return {
    protocol,
    match: { kind: protocol, dport: range.from, ...(range.to !== range.from ? { dportEnd: range.to } : {}) },
  };
}

function allowRule(
  direction: "ingress" | "egress",
  address: string | undefined,
  port: ReturnType<typeof portMatches> | undefined,
  why: string,
): IptablesRule {
  return {
    ...(address ? (direction === "ingress" ? { source: address } : { destination: address }) : {}),
    ...(port ? { protocol: port.protocol } : {}),
    matches: [...(port?.match ? [port.match] : []), comment(why)],
    target: { kind: "RETURN" },
  };
}

/** The rules of pod `self`'s chain for one direction. */
function podChainRules(c: CompiledPolicies, direction: "ingress" | "egress", self: number): IptablesRule[] {
  const selecting = (direction === "ingress" ? c.ingressOf : c.egressOf)[self]!;
  const rules: IptablesRule[] = [];
  for (const pi of selecting) {
    const policy = c.policies[pi]!;
    for (const rule of policy.rules) {
      if (rule.direction !== direction) continue;
      const why = `${policy.key} ${direction}[${rule.index}]`;
      const clauses: (CompiledPort | undefined)[] = rule.ports ?? [undefined];
      for (const peer of peers(c, rule))
        for (const clause of clauses) {
          if (!clause) {
            rules.push(allowRule(direction, peer.address, undefined, why));
            continue;
          }
          if (clause.name !== undefined && direction === "egress") {
            // A named port resolves on the destination: one rule per destination pod that has it.
            // Pods inside an ipBlock resolve it too; addresses that are no pod never do.
            const block =
              peer.address !== undefined && peer.pod === undefined
                ? Ipv4Prefix.parse(peer.address)
                : undefined;
            for (const [t, pod] of c.pods.entries()) {
              if (peer.pod !== undefined ? t !== peer.pod : block ? !block.contains(pod.ip) : false) continue;
              const range = resolvePort(clause, pod);
              if (range)
                rules.push(
                  allowRule(direction, `${formatIpv4(pod.ip)}/32`, portMatches(clause.protocol, range), why),
                );
            }
            continue;
          }
          const range = resolvePort(clause, c.pods[self]);
          if (range) rules.push(allowRule(direction, peer.address, portMatches(clause.protocol, range), why));
        }
    }
  }
  const names = selecting.map((pi) => c.policies[pi]!.key).join(", ");
  rules.push({
    matches: [comment(`default deny ${direction} of ${podKey(c, self)}: selected by ${names}`)],
    target: { kind: "DROP" },
  });
  return rules;
}

/** The filter chains node `node` holds for the pods on it. */
export function nodeChains(c: CompiledPolicies, node: string): Map<string, IptablesRule[]> {
  const chains = new Map<string, IptablesRule[]>();
  const top: IptablesRule[] = [
    {
      matches: [
        { kind: "conntrack", ctstate: ["RELATED", "ESTABLISHED"] },
        comment("established and related flows"),
      ],
      target: { kind: "RETURN" },
    },
  ];
  chains.set(POLICY_CHAIN, top);
  for (const direction of ["egress", "ingress"] as const)
    for (const [i, pod] of c.pods.entries()) {
      if (pod.node !== node || !(direction === "ingress" ? c.ingressOf : c.egressOf)[i]!.length) continue;
      const name = podChain(direction, podKey(c, i));
      const address = `${formatIpv4(pod.ip)}/32`;
      top.push({
        ...(direction === "egress" ? { source: address } : { destination: address }),
        matches: [comment(`${direction} of ${podKey(c, i)}`)],
        target: { kind: "jump", chain: name },
      });
      chains.set(name, podChainRules(c, direction, i));
    }
  return chains;
}
