/**
 * The iptables chains an enforcing node holds, the way iptables-based engines (kube-router,
 * Calico's iptables dataplane) lay them out: FORWARD jumps to PODNET-NETPOL, which returns at once
 * for established and related traffic (conntrack), then sends a new connection from a local pod
 * that an egress policy isolates through that pod's egress chain, and one to a local pod that an
 * ingress policy isolates through its ingress chain. A chain RETURNs on the first rule that allows
 * and DROPs at its end (the default deny). Pods no policy isolates get no chain: their traffic
 * passes. Every rule carries the policy and rule it came from, so a trace names them.
 */
import { Ipv4Prefix, PodnetError, formatIpv4 } from "@podnet/core";
import { MULTIPORT_MAX_PORTS, type IptablesMatch, type IptablesRule } from "@podnet/netlink";
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

/** Single ports of one protocol allowed to one peer, and where their rule goes. */
interface PortGroup {
  at: number;
  protocol: "tcp" | "udp";
  ports: number[];
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
      for (const peer of peers(c, rule)) {
        // Single ports of one protocol share a multiport rule, up to 15 each (XT_MULTI_PORTS), placed
        // where its first port was: a rule with 100 ports was 100 rules per peer, and 200 peers 20,000
        // rules in each selected pod's chain.
        const open: Record<"tcp" | "udp", PortGroup | undefined> = { tcp: undefined, udp: undefined };
        const groups: PortGroup[] = [];
        const seen = new Set<string>();
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
          if (!range) continue;
          const protocol = clause.protocol;
          if (range.from !== range.to) {
            rules.push(allowRule(direction, peer.address, portMatches(protocol, range), why));
            continue;
          }
          const key = `${protocol}/${range.from}`;
          if (seen.has(key)) continue;
          seen.add(key);
          const group = open[protocol];
          if (group && group.ports.length < MULTIPORT_MAX_PORTS) {
            group.ports.push(range.from);
            continue;
          }
          // The group's place in the chain, its rule made once its ports are known.
          const started: PortGroup = { at: rules.length, protocol, ports: [range.from] };
          open[protocol] = started;
          groups.push(started);
          rules.push(allowRule(direction, peer.address, undefined, why));
        }
        for (const g of groups)
          rules[g.at] = allowRule(
            direction,
            peer.address,
            g.ports.length === 1
              ? portMatches(g.protocol, { from: g.ports[0]!, to: g.ports[0]! })
              : { protocol: g.protocol, match: { kind: "multiport", dports: g.ports } },
            why,
          );
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

/**
 * The most rules the iptables engine writes on one node, and on all of them. A rule per peer pod
 * and port grows with pods² where every pod may reach every other (ipset-based engines keep such
 * peers in sets); 200 pods allowed in on 100 ports was 4 million rules and 3 GB (a rule holds about
 * 1.2 KB in the simulator). Past these a build is refused, not begun.
 */
export const MAX_POLICY_RULES_PER_NODE = 250_000;
export const MAX_POLICY_RULES = 1_000_000;

/** NetworkPolicies whose chains would exceed what the engine writes on a node, or on all nodes. */
export class PolicyLimitError extends PodnetError {
  constructor(where: string, rules: number, limit: number) {
    super(
      "EPOLICY",
      `${where}: the NetworkPolicies make at least ${rules.toLocaleString("en-US")} iptables rules (one per peer pod and port, in each selected pod's chain); the iptables engine writes at most ${limit.toLocaleString("en-US")}${limit === MAX_POLICY_RULES_PER_NODE ? " per node" : " in a cluster"}: select fewer peers or ports per rule (an ipBlock is one rule)`,
    );
  }
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
  let total = top.length;
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
      const rules = podChainRules(c, direction, i);
      total += rules.length + 1;
      if (total > MAX_POLICY_RULES_PER_NODE)
        throw new PolicyLimitError(`node ${node}`, total, MAX_POLICY_RULES_PER_NODE);
      chains.set(name, rules);
    }
  return chains;
}

/**
 * Refuses policies whose chains pass the engine's limits on any node or on all of them together,
 * before a rule is written: each node's chains are made and counted in turn (one node's at a time in
 * memory). Without policies a node holds one rule: nothing to count.
 */
export function checkRuleLimits(c: CompiledPolicies, nodes: Iterable<string>): void {
  if (!c.policies.length) return;
  let total = 0;
  for (const node of nodes) {
    for (const rules of nodeChains(c, node).values()) total += rules.length;
    if (total > MAX_POLICY_RULES) throw new PolicyLimitError("the cluster", total, MAX_POLICY_RULES);
  }
}
