/**
 * kube-proxy's nftables mode on every node. A full sync reads the node's `ip kube-proxy` table and
 * writes the difference in one transaction (nft -f); a one-Service change is a partial sync that
 * writes only that Service's map elements and chains, from what the proxy knows it wrote (as
 * kube-proxy keeps its maps' contents in memory), so its cost follows the Service, never the 10,000
 * others. Chains no Service wants are flushed with the change and deleted in a second transaction,
 * once no map element points at them.
 */
import type { ClusterNetwork, NodeNetwork } from "@podnet/cni";
import {
  NetlinkError,
  formatNftVerdict,
  nftKeyId,
  type NftChain,
  type NftCommand,
  type NftKey,
  type NftMapElement,
  type NftObject,
  type NftRule,
  type NftSet,
  type Netlink,
} from "@podnet/netlink";
import type { Tally } from "./apply.js";
import type { ServiceProxy } from "./proxies.js";
import { ServicePartsCache, recordService, removeService, serviceKey, type Service } from "./services.js";
import {
  NFT_MAPS,
  NFT_TABLE,
  CLUSTER_IPS,
  NODEPORT_IPS,
  isServiceChain,
  nftFixed,
  nftFixedCommands,
  nftServiceParts,
  type NftFixed,
  type NftServiceParts,
} from "./services-nftables.js";

const T = { family: "ip", table: NFT_TABLE } as const;

const sameRules = (a: readonly NftRule[], b: readonly NftRule[]) =>
  a.length === b.length && a.every((r, i) => JSON.stringify(r.expr) === JSON.stringify(b[i]!.expr));

const sameElement = (a: NftMapElement, b: NftMapElement) => formatNftVerdict(a[1]) === formatNftVerdict(b[1]);

/** A node's kube-proxy table as listed: rules by chain, elements by map or set and key. */
interface Held {
  chains: Map<string, NftRule[]>;
  maps: Map<string, Map<string, NftMapElement>>;
  sets: Map<string, Map<string, NftKey>>;
  /** Each set's timeout (session affinity's), by name. */
  timeouts: Map<string, number | undefined>;
}

const byKey = (keys: readonly NftKey[]) => new Map(keys.map((k) => [nftKeyId(k), k]));

function heldOf(objects: NftObject[]): Held {
  const held: Held = { chains: new Map(), maps: new Map(), sets: new Map(), timeouts: new Map() };
  for (const o of objects) {
    if ("chain" in o) held.chains.set(o.chain.name, []);
    else if ("rule" in o) held.chains.get(o.rule.chain)!.push(o.rule);
    else if ("map" in o)
      held.maps.set(o.map.name, new Map((o.map.elem ?? []).map((e) => [nftKeyId(e[0]), e])));
    else if ("set" in o) {
      held.sets.set(o.set.name, byKey(o.set.elem ?? []));
      held.timeouts.set(o.set.name, o.set.timeout);
    }
  }
  return held;
}

/** Whether a listed table has exactly the base chains of `fixed`, each at its hook and priority. */
function sameBaseChains(listed: readonly NftObject[], fixed: NftFixed): boolean {
  const spec = (c: NftChain) => `${c.name} ${c.type} ${c.hook} ${c.prio}`;
  const held = listed.flatMap((o) => ("chain" in o && o.chain.hook ? [spec(o.chain)] : [])).sort();
  const wanted = fixed.chains
    .filter((c) => c.hook)
    .map(spec)
    .sort();
  return held.length === wanted.length && held.every((c, i) => c === wanted[i]);
}

/** One transaction being built, with the entries it touches. */
class Writer {
  readonly commands: NftCommand[] = [];
  /** Chains to delete once the first transaction has removed every reference to them. */
  readonly stale: string[] = [];
  /** Session affinity's sets to delete then too (their chains' rules used them). */
  readonly staleSets: string[] = [];
  added = 0;
  removed = 0;

  /** A chain brought to `rules`: created, or flushed and written again. */
  chain(name: string, rules: readonly NftRule[], before: readonly NftRule[] | undefined): void {
    if (before && sameRules(before, rules)) return;
    if (!before) this.commands.push({ add: { chain: { ...T, name } } });
    else if (before.length) this.commands.push({ flush: { chain: { ...T, name } } });
    for (const rule of rules) this.commands.push({ add: { rule } });
    this.removed += before?.length ?? 0;
    this.added += rules.length;
  }

  /** A map's elements brought from `before` to `after` (both by key id). */
  elements(map: string, before: Map<string, NftMapElement>, after: Map<string, NftMapElement>): void {
    const gone: NftMapElement[] = [];
    const added: NftMapElement[] = [];
    for (const [id, element] of before) {
      const want = after.get(id);
      if (!want || !sameElement(element, want)) gone.push(element);
    }
    for (const [id, element] of after) {
      const had = before.get(id);
      if (!had || !sameElement(had, element)) added.push(element);
    }
    if (gone.length)
      this.commands.push({ delete: { element: { ...T, name: map, elem: gone.map((e) => e[0]) } } });
    if (added.length) this.commands.push({ add: { element: { ...T, name: map, elem: added } } });
    this.removed += gone.length;
    this.added += added.length;
  }

  /** A set's keys brought from `before` to `after` (both by key id). */
  keys(set: string, before: Map<string, NftKey>, after: Map<string, NftKey>): void {
    const gone = [...before].filter(([id]) => !after.has(id)).map(([, k]) => k);
    const added = [...after].filter(([id]) => !before.has(id)).map(([, k]) => k);
    if (gone.length) this.commands.push({ delete: { element: { ...T, name: set, elem: gone } } });
    if (added.length) this.commands.push({ add: { element: { ...T, name: set, elem: added } } });
    this.removed += gone.length;
    this.added += added.length;
  }

  /**
   * Session affinity's sets brought from `before` (name → timeout) to `after`: a new one, or one
   * whose timeout changed, is added (an add changes a set's timeout); one no longer wanted goes after.
   */
  sets(before: ReadonlyMap<string, number | undefined>, after: readonly NftSet[]): void {
    const wanted = new Set<string>();
    for (const set of after) {
      wanted.add(set.name);
      if (!before.has(set.name) || before.get(set.name) !== set.timeout) this.commands.push({ add: { set } });
    }
    for (const name of before.keys()) if (!wanted.has(name)) this.staleSets.push(name);
  }

  /** A chain no longer wanted: flushed now, deleted after. */
  drop(name: string, rules: number): void {
    if (rules) this.commands.push({ flush: { chain: { ...T, name } } });
    this.stale.push(name);
    this.removed += rules;
  }

  async apply(n: Netlink, tally: Tally, node: NodeNetwork): Promise<void> {
    // Element deletions first (a changed element is deleted, then added again), then new chains, so
    // every rule and element added after them finds the chain it points at.
    const rank = (c: NftCommand) =>
      "delete" in c
        ? 0
        : "add" in c && ("table" in c.add || "map" in c.add || "set" in c.add || "chain" in c.add)
          ? 1
          : 2;
    const ordered = this.commands.sort((a, b) => rank(a) - rank(b));
    if (ordered.length) await n.nft.run(node.ns, ordered);
    if (this.stale.length || this.staleSets.length)
      await n.nft.run(node.ns, [
        ...this.stale.map((name): NftCommand => ({ delete: { chain: { ...T, name } } })),
        ...this.staleSets.map((name): NftCommand => ({ delete: { set: { ...T, name, type: "ipv4_addr" } } })),
      ]);
    tally.count(node.name, "added", this.added);
    tally.count(node.name, "removed", this.removed);
  }
}

function elementsOf(parts: Iterable<NftServiceParts>, field: (typeof NFT_MAPS)[number][0]) {
  const out = new Map<string, NftMapElement>();
  for (const p of parts) for (const e of p[field]) out.set(nftKeyId(e[0]), e);
  return out;
}

export class NftablesProxy implements ServiceProxy {
  readonly name = "nftables";
  readonly services = new Map<string, Service>();
  private readonly parts = new ServicePartsCache<NftServiceParts>(nftServiceParts);
  private readonly synced = new Set<string>();
  /** kube-proxy's fixed part, for the service CIDR it was made for. */
  private fixedFor?: { serviceCidr: string; fixed: NftFixed };

  constructor(
    private readonly n: Netlink,
    private readonly cluster: ClusterNetwork,
  ) {}

  set(service: Service): Service | undefined {
    return recordService(this.services, service);
  }

  replaceAll(services: Iterable<Service>): void {
    this.services.clear();
    for (const service of services) this.services.set(serviceKey(service), service);
  }

  delete(namespace: string, name: string): Service | undefined {
    return removeService(this.services, namespace, name);
  }

  forget(node: string): void {
    this.synced.delete(node);
  }

  async sync(tally: Tally, node: NodeNetwork): Promise<void> {
    let listed: NftObject[] = [];
    try {
      listed = await this.n.nft.list(node.ns, "ip", NFT_TABLE);
    } catch (error) {
      if (!(error instanceof NetlinkError && error.errno === "ENOENT")) throw error;
    }
    const w = new Writer();
    const fixed = this.fixed();
    // A table of another layout (an older podnet's) is written anew in the same transaction, as
    // kube-proxy re-creates its base chains when it starts: a chain's priority cannot be changed.
    if (!this.synced.has(node.name) && listed.length && !sameBaseChains(listed, fixed)) {
      w.commands.push({ delete: { table: { family: "ip", name: NFT_TABLE } } });
      w.removed += listed.filter((o) => "rule" in o).length;
      listed = [];
    }
    if (!listed.length) {
      w.commands.push(...nftFixedCommands(fixed));
      w.added += fixed.rules.length;
    }
    const held = heldOf(listed);
    if (listed.length) {
      for (const map of fixed.maps) if (!held.maps.has(map.name)) w.commands.push({ add: { map } });
      for (const set of fixed.sets) if (!held.sets.has(set.name)) w.commands.push({ add: { set } });
      for (const chain of fixed.chains) {
        const rules = fixed.rules.filter((r) => r.chain === chain.name);
        if (!held.chains.has(chain.name)) w.commands.push({ add: { chain } });
        w.chain(chain.name, rules, held.chains.get(chain.name) ?? []);
      }
    }
    const all = [...this.services.values()].map((s) => this.partsOf(s, node.name)!);
    const wanted = new Set<string>();
    for (const p of all)
      for (const [name, rules] of p.chains) {
        wanted.add(name);
        w.chain(name, rules, held.chains.get(name));
      }
    for (const [field, map] of NFT_MAPS)
      w.elements(map, held.maps.get(map) ?? new Map(), elementsOf(all, field));
    w.keys(NODEPORT_IPS, held.sets.get(NODEPORT_IPS) ?? new Map(), byKey([node.address]));
    w.keys(CLUSTER_IPS, held.sets.get(CLUSTER_IPS) ?? new Map(), byKey(all.flatMap((p) => p.clusterIps)));
    for (const [name, rules] of held.chains)
      if (isServiceChain(name) && !wanted.has(name)) w.drop(name, rules.length);
    const affinity = new Map([...held.timeouts].filter(([name]) => isServiceChain(name)));
    w.sets(
      affinity,
      all.flatMap((p) => p.sets),
    );
    await w.apply(this.n, tally, node);
    this.synced.add(node.name);
  }

  async changed(tally: Tally, node: NodeNetwork, before?: Service, after?: Service): Promise<void> {
    if (!this.synced.has(node.name)) return this.sync(tally, node);
    const was = this.partsOf(before, node.name);
    const is = this.partsOf(after, node.name);
    const w = new Writer();
    const had = new Map(was?.chains ?? []);
    for (const [name, rules] of is?.chains ?? []) w.chain(name, rules, had.get(name));
    for (const [field, map] of NFT_MAPS)
      w.elements(map, elementsOf(was ? [was] : [], field), elementsOf(is ? [is] : [], field));
    w.keys(CLUSTER_IPS, byKey(was?.clusterIps ?? []), byKey(is?.clusterIps ?? []));
    const kept = new Set((is?.chains ?? []).map(([name]) => name));
    for (const [name, rules] of had) if (!kept.has(name)) w.drop(name, rules.length);
    w.sets(new Map((was?.sets ?? []).map((set) => [set.name, set.timeout])), is?.sets ?? []);
    await w.apply(this.n, tally, node);
  }

  private fixed(): NftFixed {
    const serviceCidr = this.cluster.serviceCidr;
    if (this.fixedFor?.serviceCidr !== serviceCidr)
      this.fixedFor = { serviceCidr, fixed: nftFixed(serviceCidr) };
    return this.fixedFor.fixed;
  }

  private partsOf(service: Service | undefined, node: string): NftServiceParts | undefined {
    return service && this.parts.get(service, this.cluster.clusterCidr, node);
  }
}
