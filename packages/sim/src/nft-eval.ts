/**
 * nftables evaluation in the simulated kernel: what a namespace's tables look like to a packet (a
 * program: base chains by hook, chains, verdict maps), shared by every namespace holding the same,
 * and the walk of a base chain as nf_tables does it. Map lookups are hash lookups on the key's
 * numbers, as the kernel's sets are: a packet to any of 10,000 Services costs the same few rule
 * evaluations.
 */
import { IpProtocol, Ipv4Prefix, formatIpv4, parseIpv4 } from "@podnet/core";
import type { Draws, Offer } from "./draws.js";
import {
  formatNftKey,
  formatNftRule,
  formatNftVerdict,
  nftAtomValue,
  nftKeyId,
  verdictOf,
  type NftHook,
  type NftKey,
  type NftMapElement,
  type NftOperand,
  type NftRule,
  type NftStatement,
  type NftVerdict,
} from "@podnet/netlink";
import { watchedPort } from "./flow-cache.js";
import type { PacketView, Verdict } from "./netfilter.js";
import { setHas, setRef, updateSet, type NftState, type SimNftChain, type SimNftSet } from "./nftables.js";

// ---- programs: what evaluation reads, shared ------------------------------------------------------

/** A table as evaluation reads it: its chains by name, and its verdict maps' elements by key. */
export interface TableProgram {
  name: string;
  chains: ReadonlyMap<string, SimNftChain>;
  maps: ReadonlyMap<string, ReadonlyMap<string, NftMapElement>>;
}

/** A base chain and the table holding it. */
export interface BaseChain {
  table: TableProgram;
  chain: SimNftChain;
}

/** A namespace's base chains by slot (`hookSlot`), each list in priority order. */
export interface NftProgram {
  slots: readonly (readonly BaseChain[])[];
  /** Whether nat (bit 0) and filter (bit 1) base chains exist. */
  types: number;
}

const NONE: readonly BaseChain[] = [];

/** The hooks in slot order: a base chain's slot is its type's five slots (nat first) plus its hook's. */
const HOOKS: readonly NftHook[] = ["prerouting", "input", "forward", "output", "postrouting"];
export const hookSlot = (type: "nat" | "filter", hook: NftHook): number =>
  (type === "nat" ? 0 : HOOKS.length) + HOOKS.indexOf(hook);

/**
 * Programs by their tables' content, for every namespace holding the same: kube-proxy's nftables
 * mode writes one table on every node, and at 5,000 nodes a random pair meets nodes whose own copy
 * is cold (each hook read a node's chain specs, rule lists and maps: a fifth of a random trace, where
 * iptables' shared compiled tables cost a twentieth). Sets are not in a program: `nodeport-ips`
 * holds each node's own address, and a lookup reads the namespace's own set. Weakly held, as
 * iptables' (netfilter.ts).
 */
const sharedPrograms = new Map<string, WeakRef<NftProgram>>();
const forgetProgram = new FinalizationRegistry<string>((key) => {
  if (sharedPrograms.get(key)?.deref() === undefined) sharedPrograms.delete(key);
});
/** Larger tables (kube-proxy's at thousands of Services) get a program of their own: no key to make. */
const SHARE_MAX_ENTRIES = 2_000;

/**
 * Numbers for rule texts and map elements (key and verdict), each distinct one once, kept per object:
 * kube-proxy hands every node the same rule objects, so a key names them by number. Numbers are
 * never reused; the texts start again past a bound (a program keyed before is then only not shared
 * with one keyed after).
 */
const textIds = new Map<string, number>();
let nextTextId = 0;
const TEXT_IDS_MAX = 100_000;
const objectIds = new WeakMap<object, number>();

function idOf(object: NftRule | NftMapElement, text: () => string): number {
  let id = objectIds.get(object);
  if (id !== undefined) return id;
  const t = text();
  id = textIds.get(t);
  if (id === undefined) {
    if (textIds.size >= TEXT_IDS_MAX) textIds.clear();
    textIds.set(t, (id = nextTextId++));
  }
  objectIds.set(object, id);
  return id;
}

// By the rule's data, not its text: two rules nft prints alike can differ (a prefix written as a
// string matches nothing, as an object it matches).
const ruleNumber = (rule: NftRule) =>
  idOf(rule, () => `rule ${JSON.stringify([rule.table, rule.chain, rule.expr])}`);
const elementNumber = (e: NftMapElement) =>
  idOf(e, () => `element ${nftKeyId(e[0])} ${formatNftVerdict(e[1])}`);

/** The program of a namespace's nftables state as it is now (shared with those holding the same). */
export function programOf(state: NftState): NftProgram {
  if (state.program) return state.program;
  state.setValues = setValues(state);
  let entries = 0;
  for (const table of state.tables.values()) {
    for (const chain of table.chains.values()) entries += chain.rules.length + 1;
    for (const map of table.maps.values()) entries += map.elements.size;
  }
  if (entries > SHARE_MAX_ENTRIES) return (state.program = build(state, false));
  // Tables, chains and maps in the order the state holds them: base chains of one priority run in
  // that order, so it is part of what is shared. As JSON: names may hold any character.
  const parts: (string | number)[] = [];
  for (const table of state.tables.values()) {
    parts.push(`table ${table.name}`);
    for (const chain of table.chains.values()) {
      const { hook, type, prio, policy } = chain.spec;
      parts.push(`chain ${chain.spec.name}`, `${hook} ${type} ${prio} ${policy}`);
      for (const rule of chain.rules) parts.push(ruleNumber(rule));
    }
    for (const map of table.maps.values()) {
      parts.push(`map ${map.spec.name}`);
      for (const element of map.elements.values()) parts.push(elementNumber(element));
    }
  }
  const key = JSON.stringify(parts);
  let shared = sharedPrograms.get(key)?.deref();
  if (!shared) {
    shared = build(state, true);
    sharedPrograms.set(key, new WeakRef(shared));
    forgetProgram.register(shared, key);
  }
  return (state.program = shared);
}

/**
 * Named sets by number, for their table and name: a lookup reads its namespace's slot for the set
 * (`NftState.setValues`), not three maps of the namespace's own (its tables, their sets, the
 * elements by text) — under random pairs at 5,000 nodes, kube-proxy's `ip daddr @nodeport-ips` on
 * every node's prerouting was most of what a node's nftables cost a trace.
 */
const setSlots = new Map<string, number>();
function setSlot(table: string, name: string): number {
  const key = JSON.stringify([table, name]);
  let slot = setSlots.get(key);
  if (slot === undefined) setSlots.set(key, (slot = setSlots.size));
  return slot;
}

/** A state's sets by slot: each set itself, not a copy. */
function setValues(state: NftState): (SimNftSet | undefined)[] {
  const out: SimNftSet[] = [];
  for (const table of state.tables.values())
    for (const [name, set] of table.sets) out[setSlot(table.name, name)] = set;
  return out;
}

/**
 * A program from a state: a shared one copies what it reads (the namespace it was made from changes
 * by transactions of its own), one of a namespace's own reads its tables in place (a transaction
 * drops it).
 */
function build(state: NftState, copy: boolean): NftProgram {
  const slots: BaseChain[][] = Array.from({ length: 2 * HOOKS.length }, () => []);
  let types = 0;
  for (const table of state.tables.values()) {
    const chains = copy
      ? new Map([...table.chains].map(([name, c]) => [name, { spec: c.spec, rules: c.rules.slice() }]))
      : table.chains;
    const maps = new Map(
      [...table.maps].map(([name, m]) => [name, copy ? new Map(m.elements) : m.elements] as const),
    );
    const program: TableProgram = { name: table.name, chains, maps };
    for (const chain of chains.values()) {
      const { hook, type } = chain.spec;
      if (!hook || !type) continue;
      slots[hookSlot(type, hook)]!.push({ table: program, chain });
      types |= type === "nat" ? 1 : 2;
    }
  }
  for (const chains of slots) chains.sort((a, b) => (a.chain.spec.prio ?? 0) - (b.chain.spec.prio ?? 0));
  return { slots: slots.map((chains) => (chains.length ? chains : NONE)), types };
}

// ---- evaluation -------------------------------------------------------------------------------------

/** What evaluation needs of the namespace around it. */
export interface NftContext {
  random: Draws;
  /** The namespace's name: where a Service's draw was made. */
  ns: string;
  /** fib daddr type local, fib saddr type local. */
  isLocal(address: number): boolean;
  /** The kernel clock's second: when a set's elements expire. */
  clock(): number;
  /** A set with timeouts was read or filled: what the flow cache may not replay. */
  changed(): void;
  /** Counts every rule evaluated. */
  count(): void;
}

type Getter = (p: PacketView, ctx: NftContext) => number | string | undefined;

function ports(p: PacketView): { sport?: number; dport?: number } {
  return p.l4.kind === "tcp" || p.l4.kind === "udp" ? { sport: p.l4.srcPort, dport: p.l4.dstPort } : {};
}

const L4: Record<string, number> = { tcp: IpProtocol.TCP, udp: IpProtocol.UDP };

function getter(o: NftOperand): Getter {
  if ("payload" in o) {
    const { protocol, field } = o.payload;
    if (protocol === "ip") return field === "saddr" ? (p) => p.ip.src : (p) => p.ip.dst;
    const want = L4[protocol];
    return (p) =>
      want !== undefined && p.ip.protocol !== want ? undefined : watchedPort(ports(p)[field as "dport"]);
  }
  if ("meta" in o) return o.meta.key === "l4proto" ? (p) => p.ip.protocol : (p) => p.mark;
  if ("fib" in o)
    return o.fib.flags[0] === "saddr"
      ? (p, ctx) => (ctx.isLocal(p.ip.src) ? "local" : "unicast")
      : (p, ctx) => (ctx.isLocal(p.ip.dst) ? "local" : "unicast");
  if ("ct" in o) return (p) => (p.ct && !p.ct.isNew ? "established" : "new");
  if ("&" in o) {
    const mask = o["&"][1];
    return (p) => (p.mark & mask) >>> 0;
  }
  if ("concat" in o) {
    const parts = o.concat.map(getter);
    return (p, ctx) => {
      let key = "";
      for (let i = 0; i < parts.length; i++) {
        const v = parts[i]!(p, ctx);
        if (v === undefined) return undefined;
        key += i ? `|${v}` : String(v);
      }
      return key;
    };
  }
  const { mod, offset } = o.numgen;
  return (_p, ctx) => String(ctx.random.numgen(mod) + offset);
}

type Step =
  | { kind: "test"; test: (p: PacketView, ctx: NftContext) => boolean }
  /** Membership of a named set of the rule's table: `ip daddr @nodeport-ips`. */
  | { kind: "lookup"; key: Getter; set: number; negated: boolean }
  /** `update @set { ip saddr }`. */
  | { kind: "update"; key: Getter; set: number }
  | { kind: "mark"; op: "|" | "^"; value: number }
  /** `numgen`: the key is `numgen random mod N`, a Service's draw among its endpoints. */
  | {
      kind: "vmap";
      key: Getter;
      map: string | Map<string, NftMapElement>;
      numgen?: { mod: number; offset: number };
    }
  | { kind: "verdict"; verdict: NftVerdict }
  | { kind: "dnat"; address: number; port?: number }
  | { kind: "masquerade"; randomFully: boolean }
  | { kind: "reject" };

function compileStatement(s: NftStatement, table: string): Step {
  const verdict = verdictOf(s);
  if (verdict) return { kind: "verdict", verdict };
  if ("match" in s) {
    const { op, left, right } = s.match;
    const get = getter(left);
    const negated = op === "!=";
    const set = setRef(right);
    if (set) return { kind: "lookup", key: get, set: setSlot(table, set.slice(1)), negated };
    if (typeof right === "object") {
      const prefix = new Ipv4Prefix(parseIpv4(right.prefix.addr), right.prefix.len);
      return {
        kind: "test",
        test: (p, ctx) => {
          const v = get(p, ctx);
          return typeof v === "number" && prefix.contains(v) !== negated;
        },
      };
    }
    const want = "fib" in left || "ct" in left ? right : nftAtomValue(right);
    return {
      kind: "test",
      test: (p, ctx) => {
        const v = get(p, ctx);
        return v !== undefined && (v === want) !== negated;
      },
    };
  }
  if ("mangle" in s) {
    const [op, [, value]] = Object.entries(s.mangle.value)[0]! as ["|" | "^", [unknown, number]];
    return { kind: "mark", op, value };
  }
  if ("vmap" in s) {
    const data = s.vmap.data;
    const key = s.vmap.key;
    return {
      kind: "vmap",
      key: getter(key),
      ...(typeof key === "object" && key !== null && "numgen" in key
        ? { numgen: { mod: key.numgen.mod, offset: key.numgen.offset } }
        : {}),
      map:
        typeof data === "string"
          ? data.slice(1)
          : new Map(data.set.map((e) => [String(nftKeyId(e[0] as NftKey)), e])),
    };
  }
  if ("dnat" in s) return { kind: "dnat", address: parseIpv4(s.dnat.addr), port: s.dnat.port };
  if ("set" in s) return { kind: "update", key: getter(s.set.elem), set: setSlot(table, s.set.set.slice(1)) };
  if ("reject" in s) return { kind: "reject" };
  const flags = (s as { masquerade?: { flags?: string | string[] } | null }).masquerade?.flags;
  return { kind: "masquerade", randomFully: [flags ?? []].flat().includes("fully-random") };
}

/** A rule compiled once: its steps, and its text for traces ("ip kube-proxy services: …"). */
interface CompiledRule {
  steps: Step[];
  text: string;
}

/** The value `map` holds for `key`, made by `make` the first time. */
export function memo<K extends object, V>(map: WeakMap<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) map.set(key, (value = make()));
  return value;
}

const compiled = new WeakMap<NftRule, CompiledRule>();
const compile = (rule: NftRule): CompiledRule =>
  memo(compiled, rule, () => ({
    steps: rule.expr.map((s) => compileStatement(s, rule.table)),
    text: `ip ${rule.table} ${rule.chain}: ${formatNftRule(rule)}`,
  }));

/** The endpoint each key of a Service's verdict map leads to (the DNAT of the chain it goes to). */
function offers(
  t: { chains: ReadonlyMap<string, SimNftChain> },
  map: ReadonlyMap<string, NftMapElement>,
  draw: { mod: number; offset: number },
): Offer[] {
  const out: Offer[] = [];
  for (let i = 0; i < draw.mod; i++) {
    const verdict = map.get(String(i + draw.offset))?.[1];
    const target =
      verdict && ("goto" in verdict ? verdict.goto.target : "jump" in verdict ? verdict.jump.target : "");
    const chain = target ? t.chains.get(target) : undefined;
    let found: Offer = { address: -1, port: undefined };
    for (const rule of chain?.rules ?? [])
      for (const step of compile(rule).steps)
        if (step.kind === "dnat") found = { address: step.address, port: step.port };
    out.push(found);
  }
  return out;
}

/** " (key : verdict)", the element a verdict map chose, for traces; formatted once per element. */
const chosenText = new WeakMap<NftMapElement, string>();
const chosen = (element: NftMapElement): string =>
  memo(chosenText, element, () => ` (${formatNftKey(element[0])} : ${formatNftVerdict(element[1])})`);

/**
 * Walks one base chain as nf_tables does: a rule's statements run in order until one does not
 * match; jump pushes, goto replaces, return and the end of a regular chain pop, the end of the base
 * chain is its policy. Verdict maps look the packet's key up. `path` names table, chain and rule.
 */
export function evaluateNftChain(
  state: NftState,
  base: BaseChain,
  packet: PacketView,
  ctx: NftContext,
  /** A policy accept names the policy too (`SendOptions.hooks`). */
  explain = false,
): Verdict {
  const t = base.table;
  const table = t.name;
  const chain = base.chain.spec.name;
  const path: string[] = [];
  const stack: { chain: SimNftChain; at: number }[] = [{ chain: base.chain, at: 0 }];
  let depth = 0;
  next: while (stack.length) {
    const frame = stack[stack.length - 1]!;
    if (frame.at >= frame.chain.rules.length) {
      stack.pop();
      continue;
    }
    const rule = frame.chain.rules[frame.at++]!;
    ctx.count();
    let verdict: NftVerdict | undefined;
    const c = compile(rule);
    let picked: NftMapElement | undefined;
    for (const step of c.steps) {
      if (step.kind === "test") {
        if (!step.test(packet, ctx)) continue next;
      } else if (step.kind === "lookup") {
        const key = step.key(packet, ctx);
        // Sets are the namespace's own, not the program's.
        const set = state.setValues?.[step.set];
        if (set?.expires) ctx.changed();
        const held = key !== undefined && set !== undefined && setHas(set, key, ctx.clock());
        if (held === step.negated) continue next;
      } else if (step.kind === "update") {
        const key = step.key(packet, ctx);
        const set = state.setValues?.[step.set];
        if (key !== undefined && set) {
          ctx.changed();
          updateSet(set, key, () => (typeof key === "number" ? formatIpv4(key) : key), ctx.clock());
        }
      } else if (step.kind === "mark") {
        packet.mark = (step.op === "|" ? packet.mark | step.value : packet.mark ^ step.value) >>> 0;
      } else if (step.kind === "vmap") {
        const map = typeof step.map === "string" ? t.maps.get(step.map) : step.map;
        // A wanted endpoint (`SendOptions.endpoint`) decides a Service's draw by what each key leads to.
        const draw = step.numgen;
        const key =
          draw && map && ctx.random.wanted
            ? String(ctx.random.numgen(draw.mod, ctx.ns, () => offers(t, map, draw)) + draw.offset)
            : step.key(packet, ctx);
        const element = key === undefined ? undefined : map?.get(String(key));
        if (!element) continue next;
        verdict = element[1];
        picked = element;
        break;
      } else if (step.kind === "verdict") {
        verdict = step.verdict;
        break;
      } else {
        path.push(c.text);
        if (step.kind === "dnat") return { kind: "DNAT", address: step.address, port: step.port, path };
        if (step.kind === "reject") return { kind: "REJECT", rejectWith: "icmp-port-unreachable", path };
        return { kind: "MASQUERADE", randomFully: step.randomFully, path };
      }
    }
    path.push(picked ? c.text + chosen(picked) : c.text);
    if (!verdict) continue;
    if ("accept" in verdict) return { kind: "ACCEPT", path };
    if ("drop" in verdict) return { kind: "DROP", path };
    if ("return" in verdict) {
      stack.pop();
      continue;
    }
    if (++depth > 64) return { kind: "DROP", path: [...path, "chain loop: more than 64 jumps"] };
    const target = "jump" in verdict ? verdict.jump.target : verdict.goto.target;
    const callee = { chain: t.chains.get(target)!, at: 0 };
    if ("goto" in verdict) stack.pop();
    stack.push(callee);
  }
  // A base chain's policy (accept, or drop).
  return base.chain.spec.policy === "drop"
    ? { kind: "DROP", path: [...path, `ip ${table} ${chain}: policy drop`] }
    : { kind: "ACCEPT", path: explain ? [...path, `ip ${table} ${chain}: policy accept`] : path };
}
