import { Ipv4Prefix, IpProtocol, parseIpv4, type Header, type Ipv4Header } from "@podnet/core";
import {
  formatIptablesRule,
  statisticThreshold,
  type CtState,
  type IptablesRule,
  type NatTable,
} from "@podnet/netlink";
import type { Offer } from "./draws.js";
import { watchedPort } from "./flow-cache.js";
import type { SimKernel } from "./kernel.js";
import { recentMatches, type RecentMatch } from "./recent.js";
import type { ConntrackEntry, SimNamespace } from "./namespace.js";

/** A rule with its text parsed once: evaluation runs on every hop of every trace. */
interface CompiledRule {
  source?: { prefix: Ipv4Prefix; negated: boolean };
  destination?: { prefix: Ipv4Prefix; negated: boolean };
  inInterface?: { name: string; negated: boolean };
  outInterface?: { name: string; negated: boolean };
  protocol?: number;
  dport?: number;
  /** The last port of a --dport range; dport alone when absent. */
  dportEnd?: number;
  sport?: number;
  /** -m multiport --dports: any of these. */
  dports?: readonly number[];
  /** conntrack states as a bit set (CT_BIT), any of which matches (none, when negated). */
  ctstate?: number;
  ctstateNegated?: boolean;
  mark?: { value: number; mask: number; negated: boolean };
  /** -m addrtype --dst-type LOCAL: whether it is negated. */
  dstLocal?: { negated: boolean };
  /** -m addrtype --src-type LOCAL: whether it is negated. */
  srcLocal?: { negated: boolean };
  /** -m recent (session affinity's lists). */
  recent?: RecentMatch;
  threshold?: number;
  rule: IptablesRule;
  /** The rule as iptables-save prints it after "-A CHAIN", made the first time a path names it. */
  text?: string;
  /** The number of the rule's kind and text (`ruleId`), part of its table's key. */
  id?: number;
  /** "-A CHAIN rule" as a trace names it, made once for the chain the rule was last met in. */
  line?: string;
  lineChain?: string;
}

/**
 * The rule's line in a trace's path; a string per matched rule per packet was the walk's own garbage.
 * Its text is made when a path first names it, not when it is compiled: a random trace at 5,000
 * nodes meets nodes it never met, each with a rule of its own that it compiles (the provider's
 * masquerade rule), and formatting each one was a sixtieth of the first second of random pairs.
 * One rule object can sit in two chains (kube-proxy's jump to KUBE-SERVICES from PREROUTING and
 * OUTPUT), so the text is kept apart from the line.
 */
function ruleLine(c: CompiledRule, chain: string): string {
  if (c.lineChain !== chain) {
    c.line = `-A ${chain} ${(c.text ??= formatIptablesRule(c.rule))}`;
    c.lineChain = chain;
  }
  return c.line!;
}

const compiled = new WeakMap<IptablesRule, CompiledRule>();

/**
 * Address matches by their text: every node holds the same few (its rules are the cluster's).
 * Emptied when it grows past what any one cluster holds, so a long-lived process (`podnet web`)
 * does not keep every address it ever met.
 */
const prefixMatches = new Map<string, { prefix: Ipv4Prefix; negated: boolean }>();
const PREFIX_MATCHES_MAX = 100_000;

function prefixMatch(text: string | undefined) {
  if (text === undefined) return undefined;
  let match = prefixMatches.get(text);
  if (!match) {
    const negated = text.startsWith("!");
    const bare = negated ? text.slice(1) : text;
    const prefix = bare.includes("/") ? Ipv4Prefix.parse(bare) : new Ipv4Prefix(parseIpv4(bare), 32);
    if (prefixMatches.size >= PREFIX_MATCHES_MAX) prefixMatches.clear();
    prefixMatches.set(text, (match = Object.freeze({ prefix, negated })));
  }
  return match;
}

function nameMatch(text: string | undefined) {
  if (text === undefined) return undefined;
  return text.startsWith("!") ? { name: text.slice(1), negated: true } : { name: text, negated: false };
}

function compile(rule: IptablesRule): CompiledRule {
  let c = compiled.get(rule);
  if (c) return c;
  c = {
    source: prefixMatch(rule.source),
    destination: prefixMatch(rule.destination),
    inInterface: nameMatch(rule.inInterface),
    outInterface: nameMatch(rule.outInterface),
    protocol:
      rule.protocol === undefined
        ? undefined
        : { tcp: IpProtocol.TCP, udp: IpProtocol.UDP, icmp: IpProtocol.ICMP }[rule.protocol],
    rule,
  };
  for (const m of rule.matches ?? []) {
    if (m.kind === "tcp" || m.kind === "udp") {
      c.dport = m.dport;
      c.dportEnd = m.dportEnd ?? m.dport;
      c.sport = m.sport;
    } else if (m.kind === "conntrack") {
      c.ctstate = m.ctstate.reduce((bits, state) => bits | CT_BIT[state], 0);
      c.ctstateNegated = m.negated ?? false;
    } else if (m.kind === "mark") c.mark = { value: m.value, mask: m.mask, negated: m.negated ?? false };
    else if (m.kind === "addrtype") {
      if (m.dstType) c.dstLocal = { negated: m.negated ?? false };
      if (m.srcType) c.srcLocal = { negated: m.srcNegated ?? false };
    } else if (m.kind === "statistic") c.threshold = statisticThreshold(m.probability);
    else if (m.kind === "multiport") c.dports = m.dports;
    else if (m.kind === "recent") c.recent = m;
  }
  compiled.set(rule, c);
  return c;
}

/**
 * A chain's rules compiled. A packet crossing a 10,000-Service KUBE-SERVICES looked each rule's
 * compiled form up in a weak map: a third of a `podnet run` at 4,000 Services. Now a chain costs one
 * lookup when entered.
 */
interface CompiledChain {
  rules: readonly CompiledRule[];
  index?: ChainIndex;
}
const NO_COMPILED: CompiledChain = { rules: [] };

/** A table's chains, compiled as packets enter them. */
interface CompiledTable {
  chains: Map<string, CompiledChain>;
}

/** A namespace's compiled tables for one version of its rules (`SimNamespace.iptablesVersion`). */
export interface CompiledIptables {
  version: number;
  indexFrom: number;
  nat?: CompiledTable;
  filter?: CompiledTable;
}

/**
 * Compiled tables by their rules' text, for every namespace holding the same table. At 5,000 nodes a
 * random pair crosses two nodes it has rarely or never crossed: with a compiled copy per node, each
 * of the eight hooks it runs (kube-proxy's PREROUTING, FORWARD and POSTROUTING, twice) read a
 * dozen cold objects of that node's own (its chains, compiled rules, their prefixes), which took
 * a third of a random trace; every node's kube-proxy table is the same, so the compiled one stays in
 * cache. Weakly held: a table no namespace holds any more (a policy rewritten, a namespace deleted)
 * leaves with its key.
 */
const sharedTables = new Map<string, WeakRef<CompiledTable>>();
const forgetTable = new FinalizationRegistry<string>((key) => {
  if (sharedTables.get(key)?.deref() === undefined) sharedTables.delete(key);
});
/**
 * Tables with more rules are compiled for their namespace alone: their text would be a large key to
 * make after each change (kube-proxy's at 10,000 Services holds 60,000 rules, on few nodes).
 */
const SHARE_MAX_RULES = 2_000;

/**
 * Rule texts by number, a number for each distinct target kind and text (the kind because a jump to
 * a chain named like a target prints as that target): a table's key names its rules by number, so
 * that keying the table a random trace meets at a node's first contact is not formatting and hashing
 * a kilobyte of rule text for each of 5,000 nodes. Kept with each compiled rule: kube-proxy hands
 * every node the same rule objects, so theirs are looked up once, and each node's own (the provider's
 * masquerade rule) once for that node. Numbers are never reused, so the map can start again when a
 * long-lived process (`podnet web`) has met too many texts: a table keyed before then is only not
 * shared with one keyed after.
 */
const ruleIds = new Map<string, number>();
let nextRuleId = 0;
const RULE_IDS_MAX = 100_000;

function ruleId(rule: IptablesRule): number {
  const c = compile(rule);
  if (c.id !== undefined) return c.id;
  const key = `${rule.target.kind} ${(c.text ??= formatIptablesRule(rule))}`;
  let id = ruleIds.get(key);
  if (id === undefined) {
    if (ruleIds.size >= RULE_IDS_MAX) ruleIds.clear();
    ruleIds.set(key, (id = nextRuleId++));
  }
  return (c.id = id);
}

function compiledTable(ns: SimNamespace, table: NatTable, indexFrom: number): CompiledTable {
  if (ns.ruleCount(table) > SHARE_MAX_RULES) return { chains: new Map() };
  // Chains without rules read as no chain at all (a jump into one returns), so they are left out.
  const parts: (string | number)[] = [`${indexFrom} ${table}`];
  for (const [chain, rules] of [...ns.tables[table]].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!rules.length) continue;
    parts.push(`:${chain}`);
    for (const rule of rules) parts.push(ruleId(rule));
  }
  // As JSON: a chain's name could hold any character, a newline included.
  const key = JSON.stringify(parts);
  let shared = sharedTables.get(key)?.deref();
  if (!shared) {
    shared = { chains: new Map() };
    sharedTables.set(key, new WeakRef(shared));
    forgetTable.register(shared, key);
  }
  return shared;
}

function compiledRulesOf(ns: SimNamespace, table: NatTable, chain: string, indexFrom: number): CompiledChain {
  let state = ns.compiledIptables;
  if (state?.version !== ns.iptablesVersion || state.indexFrom !== indexFrom) {
    if (!ns.rulesOf(table, chain).length) return NO_COMPILED;
    ns.compiledIptables = state = { version: ns.iptablesVersion, indexFrom };
  }
  const tableNow = (state[table] ??= compiledTable(ns, table, indexFrom));
  let entry = tableNow.chains.get(chain);
  if (!entry) {
    // A shared table holds the same rules in every namespace using it: any of them compiles it.
    const rules = ns.rulesOf(table, chain);
    const compiledRules = rules.map((r) => compile(r));
    const index = rules.length >= indexFrom ? chainIndex(compiledRules) : undefined;
    entry = rules.length ? { rules: compiledRules, ...(index ? { index } : {}) } : NO_COMPILED;
    tableNow.chains.set(chain, entry);
  }
  return entry;
}

/**
 * A long chain's rules that name one destination (`-d a.b.c.d/32`), by that address, and the
 * others, in order. A packet is checked against the rules for its own destination and the others
 * only: a rule for another address fails on `-d` before anything else of it is read (no port
 * watched, no random number drawn), so skipping it changes nothing but the time. The kernel walks
 * kube-proxy's KUBE-SERVICES rule by rule, and so `ruleEvaluations` still counts every rule passed.
 */
interface ChainIndex {
  byDestination: Map<number, Int32Array>;
  others: Int32Array;
}
function chainIndex(rules: readonly CompiledRule[]): ChainIndex | undefined {
  const byDestination = new Map<number, number[]>();
  const others: number[] = [];
  rules.forEach((c, i) => {
    const d = c.destination;
    if (d && !d.negated && d.prefix.length === 32) {
      const list = byDestination.get(d.prefix.network);
      if (list) list.push(i);
      else byDestination.set(d.prefix.network, [i]);
    } else others.push(i);
  });
  // Mostly other rules: little to skip, and two searches a step cost more than reading them.
  if (others.length * 2 > rules.length) return undefined;
  return {
    byDestination: new Map([...byDestination].map(([address, list]) => [address, Int32Array.from(list)])),
    others: Int32Array.from(others),
  };
}

/** The first index in the ascending `list` at or after `at`; `end` when there is none. */
function firstFrom(list: Int32Array | undefined, at: number, end: number): number {
  if (!list) return end;
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]! < at) lo = mid + 1;
    else hi = mid;
  }
  return lo < list.length ? list[lo]! : end;
}

/** conntrack states as bits, for -m conntrack --ctstate. */
const CT_BIT: Record<CtState, number> = {
  INVALID: 1,
  NEW: 2,
  RELATED: 4,
  ESTABLISHED: 8,
  UNTRACKED: 16,
  SNAT: 32,
  DNAT: 64,
};

export interface PacketView {
  ip: Ipv4Header;
  l4: Header;
  mark: number;
  /** The packet's conntrack entry, when conntrack saw it (PREROUTING or OUTPUT). */
  ct?: {
    direction: "original" | "reply";
    isNew: boolean;
    related?: boolean;
    entry?: Pick<ConntrackEntry, "dnatBy" | "snatBy">;
  };
}

/**
 * The conntrack state of a packet: NEW for the first packet of a flow, ESTABLISHED for the rest
 * (the simulator confirms a flow with its first packet), RELATED for an ICMP error about a tracked
 * flow, INVALID for what conntrack could not track; and xt_conntrack's virtual SNAT and DNAT when
 * the flow's translation is set (its IPS_SRC_NAT / IPS_DST_NAT status bits).
 */
function ctBits(p: PacketView): number {
  if (!p.ct) return CT_BIT.INVALID;
  const nat =
    (p.ct.entry?.snatBy !== undefined ? CT_BIT.SNAT : 0) |
    (p.ct.entry?.dnatBy !== undefined ? CT_BIT.DNAT : 0);
  if (p.ct.related) return CT_BIT.RELATED | nat;
  return (p.ct.isNew ? CT_BIT.NEW : CT_BIT.ESTABLISHED) | nat;
}

export type Verdict =
  | { kind: "ACCEPT"; path: string[] }
  | { kind: "DROP"; path: string[] }
  | { kind: "REJECT"; rejectWith: string; path: string[] }
  | { kind: "DNAT"; address: number; port?: number; path: string[] }
  | { kind: "SNAT"; address: number; port?: number; path: string[] }
  /** `randomFully`: the rule asks for a random source port (--random-fully, nft's fully-random). */
  | { kind: "MASQUERADE"; randomFully: boolean; path: string[] };

function ports(l4: Header): { src?: number; dst?: number } {
  return l4.kind === "tcp" || l4.kind === "udp" ? { src: l4.srcPort, dst: l4.dstPort } : {};
}

function matches(
  ns: SimNamespace,
  c: CompiledRule,
  p: PacketView,
  inDev: string | undefined,
  outDev: string | undefined,
  kernel: RuleKernel,
): boolean {
  if (c.source && c.source.prefix.contains(p.ip.src) === c.source.negated) return false;
  if (c.destination && c.destination.prefix.contains(p.ip.dst) === c.destination.negated) return false;
  if (c.inInterface && (inDev === c.inInterface.name) === c.inInterface.negated) return false;
  if (c.outInterface && (outDev === c.outInterface.name) === c.outInterface.negated) return false;
  if (c.protocol !== undefined && p.ip.protocol !== c.protocol) return false;
  if (c.dport !== undefined || c.sport !== undefined) {
    const { src, dst } = ports(p.l4);
    if (c.dport !== undefined && (watchedPort(dst) === undefined || dst! < c.dport || dst! > c.dportEnd!))
      return false;
    if (c.sport !== undefined && watchedPort(src) !== c.sport) return false;
  }
  if (c.dports !== undefined) {
    const dst = watchedPort(ports(p.l4).dst);
    if (dst === undefined || !c.dports.includes(dst)) return false;
  }
  if (c.ctstate !== undefined && ((ctBits(p) & c.ctstate) === 0) !== c.ctstateNegated) return false;
  if (c.mark && ((p.mark & c.mark.mask) >>> 0 === c.mark.value) === c.mark.negated) return false;
  // xt_addrtype asks the routing tables: LOCAL is what the local table holds (own addresses, 127/8).
  if (c.dstLocal && ns.isLocal(p.ip.dst) === c.dstLocal.negated) return false;
  if (c.srcLocal && ns.isLocal(p.ip.src) === c.srcLocal.negated) return false;
  if (c.threshold !== undefined && !kernel.random.statistic(c.threshold)) return false;
  if (c.recent) {
    // Its lists change with every packet filed, and what it finds with the clock: a walk reading
    // them is not one the flow cache may replay.
    kernel.epoch++;
    if (!recentMatches(ns.recentLists, c.recent, p.ip.src, kernel.clock)) return false;
  }
  return true;
}

/** What rule evaluation needs of the kernel: its random numbers, clock and flow-cache epoch. */
export type RuleKernel = Pick<SimKernel, "random" | "chainIndexFrom" | "clock" | "epoch">;

function parseTo(text: string): { address: number; port?: number } {
  const [address, port] = text.split(":");
  return port === undefined
    ? { address: parseIpv4(address!) }
    : { address: parseIpv4(address!), port: Number(port) };
}

/** The endpoint a rule's jump leads to: the DNAT of the chain it jumps to (a KUBE-SEP chain's). */
function leadsTo(ns: SimNamespace, table: NatTable, rule: IptablesRule): Offer | undefined {
  if (rule.target.kind !== "jump") return undefined;
  for (const r of ns.rulesOf(table, rule.target.chain))
    if (r.target.kind === "DNAT") {
      const to = parseTo(r.target.toDestination);
      return { address: to.address, port: to.port };
    }
  return undefined;
}

/** The verdict ACCEPT: shared, since nothing changes it and no reader names an ACCEPT's rules. */
const ACCEPTED: Verdict = Object.freeze({ kind: "ACCEPT", path: Object.freeze([]) as unknown as string[] });

/**
 * The chains being walked, one entry per depth: module-level and reused, since an evaluation neither
 * nests nor yields, and a frame object per chain per hook per hop was a tenth of what a random trace
 * allocated (with its path array).
 */
const frameRules: CompiledChain[] = [];
const frameAt: number[] = [];
const frameName: string[] = [];
/**
 * The rules matched so far and the chains they matched in, reused the same way: a verdict gets their
 * lines only when it is one a reader names the rules of (a drop, a reject, a translation). An
 * ACCEPT's path is never read, and most verdicts are ACCEPTs.
 */
const matched: CompiledRule[] = [];
const matchedIn: string[] = [];

/** The lines of the first `found` rules matched, for a verdict's path. */
function pathOf(found: number): string[] {
  const path: string[] = [];
  for (let i = 0; i < found; i++) path.push(ruleLine(matched[i]!, matchedIn[i]!));
  return path;
}

/**
 * Walks one built-in chain as netfilter does: first match decides, jumps push, RETURN and the
 * end of a user chain pop, the end of a built-in chain is its policy (ACCEPT). MARK changes the
 * packet's mark and goes on. `path` lists the rules that matched, for the trace; an ACCEPT's path
 * is made only when `explain` asks for it (a trace showing every hook: `SendOptions.hooks`).
 */
export function evaluateChain(
  ns: SimNamespace,
  table: NatTable,
  chain: string,
  packet: PacketView,
  inDev: string | undefined,
  outDev: string | undefined,
  kernel: RuleKernel,
  explain = false,
): Verdict {
  const { chainIndexFrom } = kernel;
  let found = 0;
  let top = 0;
  frameRules[0] = compiledRulesOf(ns, table, chain, chainIndexFrom);
  frameAt[0] = 0;
  frameName[0] = chain;
  let depth = 0;
  while (top >= 0) {
    const chainNow = frameRules[top]!;
    const rules = chainNow.rules;
    let at = frameAt[top]!;
    if (chainNow.index) {
      const end = rules.length;
      const { byDestination, others } = chainNow.index;
      const next = Math.min(firstFrom(others, at, end), firstFrom(byDestination.get(packet.ip.dst), at, end));
      ns.ruleEvaluations += next - at;
      at = next;
    }
    if (at >= rules.length) {
      top--;
      continue;
    }
    const c = rules[at]!;
    const rule = c.rule;
    frameAt[top] = at + 1;
    ns.ruleEvaluations++;
    // A wanted endpoint (`SendOptions.endpoint`) decides a Service's draw by where each rule leads.
    if (c.threshold !== undefined && kernel.random.wanted)
      kernel.random.decide(
        ns.name,
        () => rules.flatMap((r) => leadsTo(ns, table, r.rule) ?? []),
        leadsTo(ns, table, rule),
      );
    if (!matches(ns, c, packet, inDev, outDev, kernel)) continue;
    matched[found] = c;
    matchedIn[found++] = frameName[top]!;
    const t = rule.target;
    switch (t.kind) {
      case "jump": {
        if (++depth > 64) return { kind: "DROP", path: [...pathOf(found), "chain loop: more than 64 jumps"] };
        top++;
        frameRules[top] = compiledRulesOf(ns, table, t.chain, chainIndexFrom);
        frameAt[top] = 0;
        frameName[top] = t.chain;
        break;
      }
      case "RETURN":
        top--;
        break;
      case "MARK":
        packet.mark = ((packet.mark & ~t.mask) ^ t.value) >>> 0;
        break;
      case "ACCEPT":
        return explain ? { kind: "ACCEPT", path: pathOf(found) } : ACCEPTED;
      case "DROP":
        return { kind: "DROP", path: pathOf(found) };
      case "REJECT":
        return { kind: "REJECT", rejectWith: t.rejectWith, path: pathOf(found) };
      case "DNAT":
        return { kind: "DNAT", ...parseTo(t.toDestination), path: pathOf(found) };
      case "SNAT":
        return { kind: "SNAT", ...parseTo(t.toSource), path: pathOf(found) };
      case "MASQUERADE":
        return { kind: "MASQUERADE", randomFully: t.randomFully === true, path: pathOf(found) };
    }
  }
  return explain ? { kind: "ACCEPT", path: [...pathOf(found), `-P ${chain} ACCEPT`] } : ACCEPTED;
}
