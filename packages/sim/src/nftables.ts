/**
 * nftables in the simulated kernel: a namespace's tables, chains, verdict maps, sets and rules, and
 * transactions with the kernel's refusals. How packets meet them is nft-eval.ts's.
 */
import {
  NetlinkError,
  NftMessage,
  compareNftKeys,
  formatNftCommand,
  formatNftVerdict,
  isMapElement,
  nftAtomValue,
  nftKeyId,
  verdictOf,
  type NftChain,
  type NftCommand,
  type NftKey,
  type NftMap,
  type NftMapElement,
  type NftObject,
  type NftRule,
  type NftSet,
  type NftVerdict,
} from "@podnet/netlink";
import type { NftContext, NftProgram } from "./nft-eval.js";

export interface SimNftMap {
  spec: Omit<NftMap, "elem">;
  /** Elements by their numeric key (nftKeyId). */
  elements: Map<string, NftMapElement>;
}

export interface SimNftSet {
  spec: Omit<NftSet, "elem">;
  /** Elements by their numeric key (nftKeyId). */
  elements: Map<string, NftKey>;
  /**
   * The same elements as the values a packet's key is read as (a number, or a concatenation's
   * numbers joined as nftKeyId joins them), kept with `elements`: evaluation looks a packet up here.
   */
  values: Set<number | string>;
  /**
   * A set with timeouts (`flags timeout`): when each element expires, by value, in the kernel
   * clock's seconds. An element past it is gone (the kernel's garbage collection), though kept here
   * until the set is next listed or filled.
   */
  expires?: Map<number | string, number>;
}

/** The size the kernel gives a set an `update` statement fills, when none was given. */
const DYNAMIC_SET_SIZE = 65535;

/** Whether `set` holds `value` at second `now`. */
export function setHas(set: SimNftSet, value: number | string, now: number): boolean {
  if (!set.values.has(value)) return false;
  return set.expires === undefined || set.expires.get(value)! > now;
}

/**
 * `update @set { key }` at second `now`: the key joins the set, or its timeout starts again. `key`
 * is the element as listed, made only when it joins.
 */
export function updateSet(set: SimNftSet, value: number | string, key: () => NftKey, now: number): void {
  if (!set.values.has(value)) {
    set.elements.set(typeof value === "number" ? String(value) : value, key());
    set.values.add(value);
  }
  if (set.spec.timeout !== undefined) (set.expires ??= new Map()).set(value, now + set.spec.timeout);
}

export interface SimNftChain {
  spec: NftChain;
  rules: NftRule[];
}

export interface SimNftTable {
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

/** A set element as the value a packet's key is read as: a number, or a concatenation's id. */
const keyValue = (key: NftKey): number | string =>
  typeof key === "object" ? nftKeyId(key) : nftAtomValue(key);

/** A match's named set ("@nodeport-ips"), if its right side is one. */
export const setRef = (right: unknown): string | undefined =>
  typeof right === "string" && right.startsWith("@") ? right : undefined;

/** The chains a rule sends packets to, and the named maps and sets it looks up or fills (as "@name"). */
function ruleTargets(rule: NftRule): string[] {
  const verdicts: (NftVerdict | undefined)[] = [];
  const named: string[] = [];
  for (const s of rule.expr) {
    verdicts.push(verdictOf(s));
    if ("vmap" in s && typeof s.vmap.data === "object") for (const [, v] of s.vmap.data.set) verdicts.push(v);
    else if ("vmap" in s) named.push(s.vmap.data as string);
    else if ("match" in s && setRef(s.match.right)) named.push(s.match.right as string);
    else if ("set" in s) named.push(s.set.set);
  }
  return [...targetsOf(verdicts), ...named];
}

/** The sets a rule fills (`update @name`), by name. */
const filledSets = (rule: NftRule) => rule.expr.flatMap((s) => ("set" in s ? [s.set.set.slice(1)] : []));

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

/** The nftables state of one namespace. */
export class NftState {
  readonly tables = new Map<string, SimNftTable>();
  /**
   * What evaluation reads of these tables (nft-eval.ts), made on the first packet after a
   * transaction; dropped by every transaction.
   */
  program?: NftProgram;
  /** This namespace's sets by slot (nft-eval.ts), made with `program`. */
  setValues?: (SimNftSet | undefined)[];
  /** The evaluation context of this namespace's packets (hooks.ts), made on the first. */
  context?: NftContext;

  /**
   * Applies a transaction: every command, or — at the first refusal — none (each change is undone).
   */
  apply(commands: readonly NftCommand[], now: number): void {
    const undo: (() => void)[] = [];
    try {
      for (const command of commands) this.applyOne(command, undo, now);
    } catch (error) {
      for (const step of undo.reverse()) step();
      throw error;
    } finally {
      this.program = undefined;
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

  private applyOne(command: NftCommand, undo: (() => void)[], now: number): void {
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
        const set = made(
          table,
          table.sets,
          spec.name,
          () => ({ spec, elements: new Map(), values: new Set<number | string>() }),
          undo,
        );
        // Adding a set that is there with another timeout changes its timeout (elements keep theirs).
        if (spec.timeout !== undefined && set.spec.timeout !== spec.timeout) {
          const before = set.spec;
          set.spec = { ...before, timeout: spec.timeout };
          undo.push(() => (set.spec = before));
        }
        this.addKeys(set, elem ?? [], undo, now);
      } else if ("rule" in body) {
        const table = this.table(body.rule.table, command);
        const chain = table.chains.get(body.rule.chain) ?? refuse("ENOENT", ENOENT, command);
        this.use(table, ruleTargets(body.rule), 1, command, undo);
        // A set an update statement fills becomes dynamic, and is listed with a size from then on.
        for (const name of filledSets(body.rule)) {
          const set = table.sets.get(name)!;
          if (set.spec.size !== undefined) continue;
          const before = set.spec;
          set.spec = { ...before, size: DYNAMIC_SET_SIZE };
          undo.push(() => (set.spec = before));
        }
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
            now,
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

  /**
   * A set's keys: adding one already there is no change (nft's `add element`); in a set with
   * timeouts each expires the set's timeout after now.
   */
  private addKeys(set: SimNftSet, keys: NftKey[], undo: (() => void)[], now: number): void {
    for (const key of keys) {
      const id = nftKeyId(key);
      const value = keyValue(key);
      if (set.elements.has(id) && setHas(set, value, now)) continue;
      const expires = set.expires?.get(value);
      set.elements.set(id, key);
      set.values.add(value);
      if (set.spec.timeout !== undefined) (set.expires ??= new Map()).set(value, now + set.spec.timeout);
      undo.push(() => {
        set.elements.delete(id);
        set.values.delete(value);
        if (expires !== undefined) set.expires!.set(value, expires);
        else set.expires?.delete(value);
      });
    }
  }

  private removeKeys(set: SimNftSet, ids: string[], undo: (() => void)[]): void {
    for (const id of ids) {
      const key = set.elements.get(id)!;
      const value = keyValue(key);
      const expires = set.expires?.get(value);
      set.elements.delete(id);
      set.values.delete(value);
      set.expires?.delete(value);
      undo.push(() => {
        set.elements.set(id, key);
        set.values.add(value);
        if (expires !== undefined) set.expires!.set(value, expires);
      });
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
  list(name: string, now: number): NftObject[] | undefined {
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
        purgeExpired(set, now);
        const elem = [...set.elements.values()].sort(compareNftKeys);
        out.push({ set: elem.length ? { ...set.spec, elem } : { ...set.spec } });
      }
    }
    for (const chain of table.chains.values()) out.push({ chain: { ...chain.spec } });
    for (const chain of table.chains.values()) for (const rule of chain.rules) out.push({ rule });
    return out;
  }
}

/** Forgets the elements of a set with timeouts that expired by `now`. */
function purgeExpired(set: SimNftSet, now: number): void {
  if (!set.expires) return;
  for (const [value, at] of set.expires) {
    if (at > now) continue;
    set.expires.delete(value);
    set.values.delete(value);
    set.elements.delete(typeof value === "number" ? String(value) : value);
  }
}
