/**
 * nftables in the simulated kernel: a namespace's tables, chains, verdict maps and rules (state and
 * transactions with the kernel's refusals), and the evaluation of the base chains attached to a
 * netfilter hook. Map lookups are hash lookups on numeric keys, as the kernel's sets are: a packet
 * to any of 10,000 Services costs the same few rule evaluations.
 */
import { IpProtocol, Ipv4Prefix, parseIpv4, type SeededRandom } from "@podnet/core";
import {
  NetlinkError,
  NftMessage,
  compareNftKeys,
  formatNftCommand,
  formatNftKey,
  formatNftRule,
  formatNftVerdict,
  isMapElement,
  nftAtomValue,
  nftKeyId,
  verdictOf,
  type NftChain,
  type NftCommand,
  type NftHook,
  type NftKey,
  type NftMap,
  type NftMapElement,
  type NftObject,
  type NftOperand,
  type NftRule,
  type NftSet,
  type NftStatement,
  type NftVerdict,
} from "@podnet/netlink";
import { watchedPort } from "./flow-cache.js";
import type { PacketView, Verdict } from "./netfilter.js";

interface SimNftMap {
  spec: Omit<NftMap, "elem">;
  /** Elements by their numeric key (nftKeyId). */
  elements: Map<string, NftMapElement>;
}

interface SimNftSet {
  spec: Omit<NftSet, "elem">;
  /** Elements by their numeric key (nftKeyId). */
  elements: Map<string, NftKey>;
}

interface SimNftChain {
  spec: NftChain;
  rules: NftRule[];
}

interface SimNftTable {
  name: string;
  chains: Map<string, SimNftChain>;
  maps: Map<string, SimNftMap>;
  sets: Map<string, SimNftSet>;
  /** Maps and sets in the order they were made: the kernel keeps them in one list, nft lists them so. */
  named: (SimNftMap | SimNftSet)[];
  /** How many rules and map elements jump or go to each chain: the kernel's chain use count. */
  uses: Map<string, number>;
}

const ENOENT = "No such file or directory";
const EBUSY = "Device or resource busy";
const EEXIST = "File exists";

/** The kernel refused the transaction (nft: "Could not process rule: …"). */
function refuse(errno: "ENOENT" | "EBUSY" | "EEXIST", reason: string, command: NftCommand): never {
  throw new NetlinkError(errno, NftMessage.couldNotProcess(reason), formatNftCommand(command));
}

/** nft itself found no such table or map before asking the kernel. */
function missing(command: NftCommand): never {
  throw new NetlinkError("ENOENT", NftMessage.noSuchFile, formatNftCommand(command));
}

/** The chains a rule or element sends packets to (jump/goto), each once per reference. */
function targetsOf(verdicts: Iterable<NftVerdict | undefined>): string[] {
  const out: string[] = [];
  for (const v of verdicts) {
    if (!v) continue;
    if ("jump" in v) out.push(v.jump.target);
    else if ("goto" in v) out.push(v.goto.target);
  }
  return out;
}

/** A match's named set ("@nodeport-ips"), if its right side is one. */
const setRef = (right: unknown): string | undefined =>
  typeof right === "string" && right.startsWith("@") ? right : undefined;

/** The chains a rule sends packets to, and the named maps and sets it looks up (as "@name"). */
function ruleTargets(rule: NftRule): string[] {
  const verdicts: (NftVerdict | undefined)[] = [];
  const named: string[] = [];
  for (const s of rule.expr) {
    verdicts.push(verdictOf(s));
    if ("vmap" in s && typeof s.vmap.data === "object") for (const [, v] of s.vmap.data.set) verdicts.push(v);
    else if ("vmap" in s) named.push(s.vmap.data as string);
    else if ("match" in s && setRef(s.match.right)) named.push(s.match.right as string);
  }
  return [...targetsOf(verdicts), ...named];
}

/** A table's map or set by name, made (and listed in order of making) when it has none. */
function made<T extends SimNftMap | SimNftSet>(
  table: SimNftTable,
  registry: Map<string, T>,
  name: string,
  make: () => T,
  undo: (() => void)[],
): T {
  const held = registry.get(name);
  if (held) return held;
  const created = make();
  registry.set(name, created);
  table.named.push(created);
  undo.push(() => {
    registry.delete(name);
    table.named.pop();
  });
  return created;
}

/** Deletes a map or set the table holds by name, undoably, from its place in the listing too. */
function unmade<T extends SimNftMap | SimNftSet>(
  table: SimNftTable,
  registry: Map<string, T>,
  name: string,
  undo: (() => void)[],
): void {
  const held = registry.get(name)!;
  const at = table.named.indexOf(held);
  registry.delete(name);
  table.named.splice(at, 1);
  undo.push(() => {
    registry.set(name, held);
    table.named.splice(at, 0, held);
  });
}

/** A base chain and the table holding it. */
export interface BaseChain {
  table: SimNftTable;
  chain: SimNftChain;
}

const NONE: readonly BaseChain[] = [];

/** The nftables state of one namespace. */
export class NftState {
  readonly tables = new Map<string, SimNftTable>();
  /** Base chains by type and hook, in priority order; rebuilt after a transaction. */
  private hooks: Record<"nat" | "filter", Map<NftHook, BaseChain[]>> | undefined;

  /** Whether a base chain of this type is attached to some hook. */
  hasBaseChains(type: "nat" | "filter"): boolean {
    return this.baseChains()[type].size > 0;
  }

  /** The base chains of a type at a hook, in priority order (none: an empty list). */
  chainsAt(type: "nat" | "filter", hook: NftHook): readonly BaseChain[] {
    return this.baseChains()[type].get(hook) ?? NONE;
  }

  private baseChains(): Record<"nat" | "filter", Map<NftHook, BaseChain[]>> {
    if (this.hooks) return this.hooks;
    const hooks = { nat: new Map<NftHook, BaseChain[]>(), filter: new Map<NftHook, BaseChain[]>() };
    for (const table of this.tables.values())
      for (const chain of table.chains.values()) {
        const { hook, type } = chain.spec;
        if (!hook || !type) continue;
        const at = hooks[type];
        if (!at.has(hook)) at.set(hook, []);
        at.get(hook)!.push({ table, chain });
      }
    for (const at of Object.values(hooks))
      for (const chains of at.values())
        chains.sort((a, b) => (a.chain.spec.prio ?? 0) - (b.chain.spec.prio ?? 0));
    return (this.hooks = hooks);
  }

  /**
   * Applies a transaction: every command, or — at the first refusal — none (each change is undone).
   */
  apply(commands: readonly NftCommand[]): void {
    const undo: (() => void)[] = [];
    try {
      for (const command of commands) this.applyOne(command, undo);
    } catch (error) {
      for (const step of undo.reverse()) step();
      throw error;
    } finally {
      this.hooks = undefined;
    }
  }

  /** A table named by an add (nft looks it up) or by a delete or flush (the kernel does). */
  private table(name: string, command: NftCommand): SimNftTable {
    return this.tables.get(name) ?? ("add" in command ? missing(command) : refuse("ENOENT", ENOENT, command));
  }

  private use(
    table: SimNftTable,
    targets: string[],
    delta: 1 | -1,
    command: NftCommand,
    undo: (() => void)[],
  ) {
    if (delta === 1)
      for (const t of targets)
        if (
          t.startsWith("@")
            ? !table.maps.has(t.slice(1)) && !table.sets.has(t.slice(1))
            : !table.chains.has(t)
        )
          refuse("ENOENT", ENOENT, command);
    for (const t of targets) table.uses.set(t, (table.uses.get(t) ?? 0) + delta);
    undo.push(() => {
      for (const t of targets) table.uses.set(t, (table.uses.get(t) ?? 0) - delta);
    });
  }

  private applyOne(command: NftCommand, undo: (() => void)[]): void {
    if ("add" in command) {
      const body = command.add;
      if ("table" in body) {
        if (this.tables.has(body.table.name)) return;
        const name = body.table.name;
        this.tables.set(name, {
          name,
          chains: new Map(),
          maps: new Map(),
          sets: new Map(),
          named: [],
          uses: new Map(),
        });
        undo.push(() => this.tables.delete(name));
      } else if ("chain" in body) {
        const table = this.table(body.chain.table, command);
        const name = body.chain.name;
        if (table.chains.has(name)) return;
        table.chains.set(name, { spec: { ...body.chain }, rules: [] });
        undo.push(() => table.chains.delete(name));
      } else if ("map" in body) {
        const table = this.table(body.map.table, command);
        const { elem, ...spec } = body.map;
        const map = made(table, table.maps, spec.name, () => ({ spec, elements: new Map() }), undo);
        this.addElements(table, map, elem ?? [], command, undo);
      } else if ("set" in body) {
        const table = this.table(body.set.table, command);
        const { elem, ...spec } = body.set;
        const set = made(table, table.sets, spec.name, () => ({ spec, elements: new Map() }), undo);
        this.addKeys(set, elem ?? [], undo);
      } else if ("rule" in body) {
        const table = this.table(body.rule.table, command);
        const chain = table.chains.get(body.rule.chain) ?? refuse("ENOENT", ENOENT, command);
        this.use(table, ruleTargets(body.rule), 1, command, undo);
        chain.rules.push(body.rule);
        undo.push(() => chain.rules.pop());
      } else {
        const table = this.table(body.element.table, command);
        const set = table.sets.get(body.element.name);
        if (set)
          return this.addKeys(
            set,
            body.element.elem.filter((e): e is NftKey => !isMapElement(e)),
            undo,
          );
        const map = table.maps.get(body.element.name) ?? missing(command);
        this.addElements(table, map, body.element.elem.filter(isMapElement), command, undo);
      }
    } else if ("delete" in command) {
      const body = command.delete;
      if ("table" in body) {
        const table = this.table(body.table.name, command);
        this.tables.delete(table.name);
        undo.push(() => this.tables.set(table.name, table));
      } else if ("chain" in body) {
        const table = this.table(body.chain.table, command);
        const chain = table.chains.get(body.chain.name) ?? refuse("ENOENT", ENOENT, command);
        if (chain.rules.length || (table.uses.get(chain.spec.name) ?? 0) > 0) refuse("EBUSY", EBUSY, command);
        table.chains.delete(chain.spec.name);
        undo.push(() => table.chains.set(chain.spec.name, chain));
      } else if ("map" in body) {
        const table = this.table(body.map.table, command);
        const map = table.maps.get(body.map.name) ?? refuse("ENOENT", ENOENT, command);
        if ((table.uses.get(`@${body.map.name}`) ?? 0) > 0) refuse("EBUSY", EBUSY, command);
        this.removeElements(table, map, [...map.elements.keys()], command, undo);
        unmade(table, table.maps, body.map.name, undo);
      } else if ("set" in body) {
        const table = this.table(body.set.table, command);
        if (!table.sets.has(body.set.name)) refuse("ENOENT", ENOENT, command);
        if ((table.uses.get(`@${body.set.name}`) ?? 0) > 0) refuse("EBUSY", EBUSY, command);
        unmade(table, table.sets, body.set.name, undo);
      } else {
        const table = this.table(body.element.table, command);
        const ids = body.element.elem.map((e) => nftKeyId(isMapElement(e) ? e[0] : e));
        const set = table.sets.get(body.element.name);
        const held = set ?? table.maps.get(body.element.name) ?? refuse("ENOENT", ENOENT, command);
        for (const id of ids) if (!held.elements.has(id)) refuse("ENOENT", ENOENT, command);
        if (set) this.removeKeys(set, ids, undo);
        else this.removeElements(table, held as SimNftMap, ids, command, undo);
      }
    } else {
      const body = command.flush;
      if ("chain" in body) {
        const table = this.table(body.chain.table, command);
        const chain = table.chains.get(body.chain.name) ?? refuse("ENOENT", ENOENT, command);
        const rules = chain.rules;
        this.use(table, rules.flatMap(ruleTargets), -1, command, undo);
        chain.rules = [];
        undo.push(() => (chain.rules = rules));
      } else if ("set" in body) {
        const table = this.table(body.set.table, command);
        const set = table.sets.get(body.set.name) ?? missing(command);
        this.removeKeys(set, [...set.elements.keys()], undo);
      } else {
        const table = this.table(body.map.table, command);
        const map = table.maps.get(body.map.name) ?? missing(command);
        this.removeElements(table, map, [...map.elements.keys()], command, undo);
      }
    }
  }

  private addElements(
    table: SimNftTable,
    map: SimNftMap,
    elements: NftMapElement[],
    command: NftCommand,
    undo: (() => void)[],
  ): void {
    for (const element of elements) {
      const id = nftKeyId(element[0]);
      const held = map.elements.get(id);
      if (held) {
        // `add` of an element already there is accepted when it is the same, refused when it differs.
        if (formatNftVerdict(held[1]) !== formatNftVerdict(element[1])) refuse("EEXIST", EEXIST, command);
        continue;
      }
      this.use(table, targetsOf([element[1]]), 1, command, undo);
      map.elements.set(id, element);
      undo.push(() => map.elements.delete(id));
    }
  }

  /** A set's keys: adding one already there is no change (nft's `add element`). */
  private addKeys(set: SimNftSet, keys: NftKey[], undo: (() => void)[]): void {
    for (const key of keys) {
      const id = nftKeyId(key);
      if (set.elements.has(id)) continue;
      set.elements.set(id, key);
      undo.push(() => set.elements.delete(id));
    }
  }

  private removeKeys(set: SimNftSet, ids: string[], undo: (() => void)[]): void {
    for (const id of ids) {
      const key = set.elements.get(id)!;
      set.elements.delete(id);
      undo.push(() => set.elements.set(id, key));
    }
  }

  private removeElements(
    table: SimNftTable,
    map: SimNftMap,
    ids: string[],
    command: NftCommand,
    undo: (() => void)[],
  ): void {
    for (const id of ids) {
      const element = map.elements.get(id)!;
      this.use(table, targetsOf([element[1]]), -1, command, undo);
      map.elements.delete(id);
      undo.push(() => map.elements.set(id, element));
    }
  }

  /**
   * `nft -j list table ip NAME` without handles: the table, its maps and sets in the order they were
   * made (elements in key order), its chains, then every chain's rules.
   */
  list(name: string): NftObject[] | undefined {
    const table = this.tables.get(name);
    if (!table) return undefined;
    const out: NftObject[] = [{ table: { family: "ip", name } }];
    for (const named of table.named) {
      if ("map" in named.spec) {
        const map = named as SimNftMap;
        const elem = [...map.elements.values()].sort((a, b) => compareNftKeys(a[0], b[0]));
        out.push({ map: elem.length ? { ...map.spec, elem } : { ...map.spec } });
      } else {
        const set = named as SimNftSet;
        const elem = [...set.elements.values()].sort(compareNftKeys);
        out.push({ set: elem.length ? { ...set.spec, elem } : { ...set.spec } });
      }
    }
    for (const chain of table.chains.values()) out.push({ chain: { ...chain.spec } });
    for (const chain of table.chains.values()) for (const rule of chain.rules) out.push({ rule });
    return out;
  }
}

// ---- evaluation ---------------------------------------------------------------------------------

/** What evaluation needs of the namespace around it. */
export interface NftContext {
  random: SeededRandom;
  /** fib daddr type local. */
  isLocal(address: number): boolean;
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
  if ("fib" in o) return (p, ctx) => (ctx.isLocal(p.ip.dst) ? "local" : "unicast");
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
  return (_p, ctx) => String((ctx.random.nextUint32() % mod) + offset);
}

type Step =
  | { kind: "test"; test: (p: PacketView, ctx: NftContext) => boolean }
  /** Membership of a named set of the rule's table: `ip daddr @nodeport-ips`. */
  | { kind: "lookup"; key: Getter; set: string; negated: boolean }
  | { kind: "mark"; op: "|" | "^"; value: number }
  | { kind: "vmap"; key: Getter; map: string | Map<string, NftMapElement> }
  | { kind: "verdict"; verdict: NftVerdict }
  | { kind: "dnat"; address: number; port?: number }
  | { kind: "masquerade" }
  | { kind: "reject" };

function compileStatement(s: NftStatement): Step {
  const verdict = verdictOf(s);
  if (verdict) return { kind: "verdict", verdict };
  if ("match" in s) {
    const { op, left, right } = s.match;
    const get = getter(left);
    const negated = op === "!=";
    const set = setRef(right);
    if (set) return { kind: "lookup", key: get, set: set.slice(1), negated };
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
    return {
      kind: "vmap",
      key: getter(s.vmap.key),
      map:
        typeof data === "string"
          ? data.slice(1)
          : new Map(data.set.map((e) => [String(nftKeyId(e[0] as NftKey)), e])),
    };
  }
  if ("dnat" in s) return { kind: "dnat", address: parseIpv4(s.dnat.addr), port: s.dnat.port };
  return "reject" in s ? { kind: "reject" } : { kind: "masquerade" };
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
    steps: rule.expr.map(compileStatement),
    text: `ip ${rule.table} ${rule.chain}: ${formatNftRule(rule)}`,
  }));

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
  table: string,
  chain: string,
  packet: PacketView,
  ctx: NftContext,
): Verdict {
  const t = state.tables.get(table)!;
  const path: string[] = [];
  const stack: { chain: SimNftChain; at: number }[] = [{ chain: t.chains.get(chain)!, at: 0 }];
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
        const held = key !== undefined && t.sets.get(step.set)?.elements.has(String(key)) === true;
        if (held === step.negated) continue next;
      } else if (step.kind === "mark") {
        packet.mark = (step.op === "|" ? packet.mark | step.value : packet.mark ^ step.value) >>> 0;
      } else if (step.kind === "vmap") {
        const key = step.key(packet, ctx);
        const map = typeof step.map === "string" ? t.maps.get(step.map)?.elements : step.map;
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
        return { kind: "MASQUERADE", path };
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
  const base = t.chains.get(chain)!.spec;
  return base.policy === "drop"
    ? { kind: "DROP", path: [...path, `ip ${table} ${chain}: policy drop`] }
    : { kind: "ACCEPT", path };
}
