/**
 * Policies compiled against one set of pods: every selector becomes a set of pod indexes (a bitset
 * of 32-bit words), every ipBlock a CIDR with its excepts, every port a numeric range per
 * protocol. Verdicts and matrices then run on numbers only: no label is read after compiling.
 */
import { Ipv4Prefix, type Ipv4 } from "@podnet/core";
import {
  NAMESPACE_NAME_LABEL,
  policyKey,
  policyTypes,
  type LabelSelector,
  type NetworkPolicy,
  type PolicyPeer,
  type PolicyPort,
} from "./schema.js";

export type PolicyProtocol = "tcp" | "udp";

/** A pod as the policy engine sees it: identity, labels, address and its named container ports. */
export interface PolicyPod {
  name: string;
  namespace: string;
  labels: Readonly<Record<string, string>>;
  ip: Ipv4;
  ports: readonly { name?: string; port: number; protocol: PolicyProtocol }[];
  /** The node holding the pod: where its chains live. */
  node?: string;
}

export interface PolicyNamespace {
  name: string;
  labels: Readonly<Record<string, string>>;
}

export interface PolicyInput {
  pods: readonly PolicyPod[];
  namespaces: readonly PolicyNamespace[];
  policies: readonly NetworkPolicy[];
}

/** A set of pod indexes. */
export class PodSet {
  readonly words: Uint32Array;
  constructor(readonly size: number) {
    this.words = new Uint32Array((size + 31) >>> 5);
  }
  static all(size: number): PodSet {
    const set = new PodSet(size);
    set.words.fill(0xffffffff);
    if (size & 31) set.words[set.words.length - 1] = (1 << (size & 31)) - 1;
    return set;
  }
  add(i: number): void {
    this.words[i >>> 5]! |= 1 << (i & 31);
  }
  has(i: number): boolean {
    return (this.words[i >>> 5]! & (1 << (i & 31))) !== 0;
  }
  or(other: PodSet): void {
    const w = this.words;
    const o = other.words;
    for (let k = 0; k < w.length; k++) w[k]! |= o[k]!;
  }
  and(other: PodSet): void {
    const w = this.words;
    const o = other.words;
    for (let k = 0; k < w.length; k++) w[k]! &= o[k]!;
  }
  *[Symbol.iterator](): IterableIterator<number> {
    for (let k = 0; k < this.words.length; k++) {
      let word = this.words[k]!;
      while (word) {
        const bit = 31 - Math.clz32(word & -word);
        yield (k << 5) + bit;
        word &= word - 1;
      }
    }
  }
}

export function selectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {}))
    if (labels[key] !== value) return false;
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, req.key);
    const value = labels[req.key];
    switch (req.operator) {
      case "In":
        if (!has || !req.values!.includes(value!)) return false;
        break;
      case "NotIn":
        if (has && req.values!.includes(value!)) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
    }
  }
  return true;
}

/** A CIDR less its excepts, as address ranges on numbers. */
export interface CompiledBlock {
  cidr: Ipv4Prefix;
  except: Ipv4Prefix[];
}

export function blockContains(block: CompiledBlock, address: Ipv4): boolean {
  return block.cidr.contains(address) && !block.except.some((e) => e.contains(address));
}

/** A port clause: a protocol and a range, or a name resolved against the destination pod. */
export interface CompiledPort {
  protocol: PolicyProtocol;
  /** Absent: every port of the protocol. */
  from?: number;
  to?: number;
  name?: string;
}

export interface CompiledRule {
  direction: "ingress" | "egress";
  policy: number;
  /** The rule's index in the policy's ingress or egress list. */
  index: number;
  /** Undefined: any peer (no from/to). */
  pods?: PodSet;
  blocks: CompiledBlock[];
  /** Undefined: any port, any protocol. */
  ports?: CompiledPort[];
}

export interface CompiledPolicy {
  policy: NetworkPolicy;
  key: string;
  selected: PodSet;
  ingress: boolean;
  egress: boolean;
  defaultedTypes: boolean;
  rules: CompiledRule[];
}

export interface CompiledPolicies {
  pods: readonly PolicyPod[];
  namespaces: ReadonlyMap<string, Readonly<Record<string, string>>>;
  policies: CompiledPolicy[];
  /** Per pod, the policies selecting it for ingress / for egress, in policy order. */
  ingressOf: number[][];
  egressOf: number[][];
  byIp: Map<Ipv4, number>;
}

/** Namespace labels as the API server keeps them: the name label is always there. */
function namespaceLabels(input: PolicyInput): Map<string, Readonly<Record<string, string>>> {
  const out = new Map<string, Readonly<Record<string, string>>>();
  const ensure = (name: string) => {
    if (!out.has(name)) out.set(name, { [NAMESPACE_NAME_LABEL]: name });
  };
  for (const ns of input.namespaces) out.set(ns.name, { ...ns.labels, [NAMESPACE_NAME_LABEL]: ns.name });
  for (const pod of input.pods) ensure(pod.namespace);
  for (const p of input.policies) ensure(p.metadata.namespace);
  return out;
}

export function compilePolicies(input: PolicyInput): CompiledPolicies {
  const { pods } = input;
  const n = pods.length;
  const namespaces = namespaceLabels(input);
  const podsIn = (namespace: (ns: string) => boolean, selector: LabelSelector | undefined) => {
    const set = new PodSet(n);
    for (let i = 0; i < n; i++) {
      const pod = pods[i]!;
      if (namespace(pod.namespace) && (!selector || selectorMatches(selector, pod.labels))) set.add(i);
    }
    return set;
  };
  const peerPods = (peer: PolicyPeer, home: string): PodSet | undefined => {
    if (peer.ipBlock) return undefined;
    const nsSelector = peer.namespaceSelector;
    return podsIn(
      nsSelector ? (ns) => selectorMatches(nsSelector, namespaces.get(ns)!) : (ns) => ns === home,
      peer.podSelector,
    );
  };
  const compileRule = (
    direction: "ingress" | "egress",
    policy: number,
    index: number,
    home: string,
    peers: PolicyPeer[] | undefined,
    ports: PolicyPort[] | undefined,
  ): CompiledRule => {
    const rule: CompiledRule = { direction, policy, index, blocks: [] };
    if (peers && peers.length) {
      rule.pods = new PodSet(n);
      for (const peer of peers) {
        const set = peerPods(peer, home);
        if (set) rule.pods.or(set);
        else
          rule.blocks.push({
            cidr: Ipv4Prefix.parse(peer.ipBlock!.cidr),
            except: (peer.ipBlock!.except ?? []).map((e) => Ipv4Prefix.parse(e)),
          });
      }
      // ipBlocks match pods by address too (the upstream suite allows a pod's own /32).
      for (const block of rule.blocks)
        for (let i = 0; i < n; i++) if (blockContains(block, pods[i]!.ip)) rule.pods.add(i);
    }
    if (ports && ports.length)
      rule.ports = ports.map((p) => {
        const protocol = p.protocol === "UDP" ? "udp" : "tcp";
        if (p.port === undefined) return { protocol };
        if (typeof p.port === "string") return { protocol, name: p.port };
        return { protocol, from: p.port, to: p.endPort ?? p.port };
      });
    return rule;
  };
  const policies = input.policies.map((policy, pi): CompiledPolicy => {
    const home = policy.metadata.namespace;
    const types = policyTypes(policy);
    const rules: CompiledRule[] = [];
    if (types.ingress)
      for (const [k, r] of (policy.spec.ingress ?? []).entries())
        rules.push(compileRule("ingress", pi, k, home, r.from, r.ports));
    if (types.egress)
      for (const [k, r] of (policy.spec.egress ?? []).entries())
        rules.push(compileRule("egress", pi, k, home, r.to, r.ports));
    return {
      policy,
      key: policyKey(policy),
      selected: podsIn((ns) => ns === home, policy.spec.podSelector),
      ingress: types.ingress,
      egress: types.egress,
      defaultedTypes: types.defaulted,
      rules,
    };
  });
  const ingressOf: number[][] = pods.map(() => []);
  const egressOf: number[][] = pods.map(() => []);
  for (const [pi, p] of policies.entries())
    for (const i of p.selected) {
      if (p.ingress) ingressOf[i]!.push(pi);
      if (p.egress) egressOf[i]!.push(pi);
    }
  const byIp = new Map<Ipv4, number>();
  for (const [i, pod] of pods.entries()) byIp.set(pod.ip, i);
  return { pods, namespaces, policies, ingressOf, egressOf, byIp };
}

/** The number a port clause stands for on a destination pod; a name the pod lacks matches nothing. */
export function resolvePort(
  port: CompiledPort,
  dst: PolicyPod | undefined,
): { from: number; to: number } | undefined {
  if (port.name === undefined) return { from: port.from ?? 0, to: port.to ?? 65535 };
  const named = dst?.ports.find((p) => p.name === port.name && p.protocol === port.protocol);
  return named ? { from: named.port, to: named.port } : undefined;
}

/** The index of the first port clause of `rule` that admits (protocol, port) to `dst`, -1 for none. */
export function matchingPort(
  rule: CompiledRule,
  protocol: PolicyProtocol | "icmp",
  port: number,
  dst: PolicyPod | undefined,
): number {
  if (!rule.ports) return 0;
  for (const [k, clause] of rule.ports.entries()) {
    if (clause.protocol !== protocol) continue;
    const range = resolvePort(clause, dst);
    if (range && port >= range.from && port <= range.to) return k;
  }
  return -1;
}

/** Whether a rule's peers include pod `index` (or, for an address outside the cluster, `ip`). */
export function peerMatches(rule: CompiledRule, index: number | undefined, ip: Ipv4): boolean {
  if (!rule.pods) return true;
  if (index !== undefined) return rule.pods.has(index);
  return rule.blocks.some((b) => blockContains(b, ip));
}
