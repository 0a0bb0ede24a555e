/**
 * kube-proxy's job: every node's Service rules (ClusterIP, NodePort), written as kube-proxy's
 * iptables chains. A full sync (a node joining, a relist, a resync) reads the node's whole tables and
 * rewrites only the chains whose rules differ. A one-Service change is a partial sync, as kube-proxy's
 * iptables-restore of changed chains: it reads and writes only that Service's own chains, and edits
 * the shared chains (KUBE-SERVICES, KUBE-NODEPORTS) only where that Service's entries sit, and only when
 * they changed. Its cost follows the Service, not the 10,000 others.
 */
import type { ClusterNetwork, NodeNetwork } from "@podnet/cni";
import {
  insertRuleOnce,
  chainRules,
  sameRule,
  type IptablesRule,
  type NatTable,
  type Netlink,
} from "@podnet/netlink";
import type { Tally } from "./apply.js";
import type { ServiceProxy } from "./proxies.js";
import {
  nodeSharedChains,
  sameSharedEntries,
  ServiceRuleCache,
  sharedChains,
  sortedServiceTables,
  type SharedChains,
} from "./services-iptables.js";
import {
  compareServiceKeys,
  hasLocalPolicy,
  localVariant,
  recordService,
  removeService,
  serviceKey,
  type Service,
} from "./services.js";

const ROUTE_LOCALNET = "net.ipv4.conf.all.route_localnet";

export class IptablesProxy implements ServiceProxy {
  readonly name = "iptables";
  readonly services = new Map<string, Service>();
  /** Each Service's kube-proxy rules, computed once per Service value. */
  private readonly serviceRules = new ServiceRuleCache();
  /** The Services' keys in kube-proxy's order, kept sorted as Services come and go. */
  private readonly order: string[] = [];
  /**
   * The shared chains' entries, by node variant: one for every node unless a Service has a Local
   * traffic policy, then one for each set of local endpoints those Services have on a node.
   */
  private readonly shared = new Map<string, SharedChains>();
  /** The Services with a Local traffic policy, by key: what a node's variant is made of. */
  private readonly local = new Set<string>();
  /** Nodes that had a full sync: only they can take a partial one. */
  private readonly synced = new Set<string>();

  constructor(
    private readonly n: Netlink,
    private readonly cluster: ClusterNetwork,
  ) {}

  /** Records a Service; returns the value it replaces. */
  set(service: Service): Service | undefined {
    const before = recordService(this.services, service);
    const key = serviceKey(service);
    if (!before) this.order.splice(this.position(key), 0, key);
    const local = hasLocalPolicy(service) || (before !== undefined && hasLocalPolicy(before));
    if (hasLocalPolicy(service)) this.local.add(key);
    else this.local.delete(key);
    if (local || !sameSharedEntries(this.partsOf(before), this.partsOf(service))) this.shared.clear();
    return before;
  }

  replaceAll(services: Iterable<Service>): void {
    this.services.clear();
    this.local.clear();
    for (const service of services) {
      this.services.set(serviceKey(service), service);
      if (hasLocalPolicy(service)) this.local.add(serviceKey(service));
    }
    this.order.length = 0;
    this.order.push(...[...this.services.keys()].sort(compareServiceKeys));
    this.shared.clear();
  }

  /** Forgets a Service; returns the value it had. */
  delete(namespace: string, name: string): Service | undefined {
    const before = removeService(this.services, namespace, name);
    if (!before) return undefined;
    this.order.splice(this.position(serviceKey(before)), 1);
    this.local.delete(serviceKey(before));
    this.shared.clear();
    return before;
  }

  /** A node that left: should it come back, it takes a full sync first. */
  forget(node: string): void {
    this.synced.delete(node);
  }

  /** Writes kube-proxy's chains on one node, rewriting only chains whose rules differ. */
  async sync(tally: Tally, node: NodeNetwork): Promise<void> {
    const n = this.n;
    const ns = node.ns;
    // kube-proxy's start-up, once per node: NodePorts on 127.0.0.1 leave lo only with route_localnet.
    // Read first: a resync after a restart finds it on and writes nothing.
    if (!this.synced.has(node.name) && (await n.sysctl.get(ns, ROUTE_LOCALNET)) !== "1")
      await n.sysctl.set(ns, ROUTE_LOCALNET, "1");
    const sorted = this.order.map((key) => this.services.get(key)!);
    const desired = sortedServiceTables(
      sorted,
      this.sharedChains(node.name),
      this.cluster.clusterCidr,
      this.serviceRules,
      node.name,
    );
    for (const table of ["nat", "filter"] as NatTable[]) {
      const want = table === "nat" ? desired.nat : desired.filter;
      const have = new Map(
        (await n.iptables.list(ns, table))
          .filter((c) => c.name.startsWith("KUBE-"))
          .map((c) => [c.name, c.rules]),
      );
      for (const chain of want) if (!have.has(chain.name)) await n.iptables.newChain(ns, table, chain.name);
      for (const chain of want)
        await this.rewrite(tally, node, table, chain.name, have.get(chain.name) ?? [], chain.rules);
      for (const hook of desired.hooks.filter((h) => h.table === table)) {
        if (await insertRuleOnce(n, ns, table, hook.chain, hook.rule)) tally.count(node.name, "added");
      }
      const wanted = new Set(want.map((c) => c.name));
      await this.removeChains(
        tally,
        node,
        table,
        [...have].filter(([name]) => !wanted.has(name)),
      );
    }
    this.synced.add(node.name);
  }

  /**
   * One Service went from `before` to `after` (absent: created, deleted): a partial sync of one node.
   * A node that never had a full sync takes one instead.
   */
  async changed(tally: Tally, node: NodeNetwork, before?: Service, after?: Service): Promise<void> {
    if (!this.synced.has(node.name)) return this.sync(tally, node);
    const ns = node.ns;
    const was = this.partsOf(before, node.name);
    const is = this.partsOf(after, node.name);
    // By name: two endpoints with one address (docker-bridge's pods on different nodes) share a chain.
    const own = new Map(is?.chains ?? []);
    const held = new Map<string, IptablesRule[] | undefined>();
    for (const [name] of own) {
      const [chain] = await this.n.iptables.list(ns, "nat", name);
      if (!chain) await this.n.iptables.newChain(ns, "nat", name);
      held.set(name, chain?.rules);
    }
    for (const [name, rules] of own)
      await this.rewrite(tally, node, "nat", name, held.get(name) ?? [], rules);
    if (!sameSharedEntries(was, is))
      for (const chain of nodeSharedChains(this.sharedChains(node.name)))
        await this.edit(tally, node, chain.table, chain.name, chain.rules);
    const gone: [string, IptablesRule[]][] = [];
    for (const name of new Set((was?.chains ?? []).map(([name]) => name))) {
      if (held.has(name)) continue;
      const [chain] = await this.n.iptables.list(ns, "nat", name);
      if (chain) gone.push([name, chain.rules]);
    }
    await this.removeChains(tally, node, "nat", gone);
  }

  /** A Service's rules on `node` (any node's, for the node-independent entries `set` compares). */
  private partsOf(service: Service | undefined, node?: string) {
    return service && this.serviceRules.get(service, this.cluster.clusterCidr, node);
  }

  private sharedChains(node: string): SharedChains {
    const variant = [...this.local].map((key) => localVariant(this.services.get(key)!, node)).join(";");
    let shared = this.shared.get(variant);
    if (!shared)
      this.shared.set(
        variant,
        (shared = sharedChains(
          this.order.map((key) => this.services.get(key)!),
          this.cluster.clusterCidr,
          this.serviceRules,
          node,
        )),
      );
    return shared;
  }

  /** Where `key` is or would be in `order` (binary search). */
  private position(key: string): number {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareServiceKeys(this.order[mid]!, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** A chain whose rules differ is flushed and written again, as iptables-restore writes a chain. */
  private async rewrite(
    tally: Tally,
    node: NodeNetwork,
    table: NatTable,
    chain: string,
    before: IptablesRule[],
    after: IptablesRule[],
  ): Promise<void> {
    if (before.length === after.length && before.every((r, i) => sameRule(r, after[i]!))) return;
    if (before.length) await this.n.iptables.flush(node.ns, table, chain);
    for (const r of after) await this.n.iptables.append(node.ns, table, chain, r);
    tally.count(node.name, "removed", before.length);
    tally.count(node.name, "added", after.length);
  }

  /**
   * A long shared chain brought to `after` by deleting and inserting only the rules between the part
   * it has in common at the start and at the end: a Service added among 10,000 is one insertion.
   */
  private async edit(
    tally: Tally,
    node: NodeNetwork,
    table: NatTable,
    chain: string,
    after: IptablesRule[],
  ): Promise<void> {
    const before = await chainRules(this.n, node.ns, table, chain);
    const shorter = Math.min(before.length, after.length);
    let head = 0;
    while (head < shorter && sameRule(before[head]!, after[head]!)) head++;
    let tail = 0;
    while (
      tail < shorter - head &&
      sameRule(before[before.length - 1 - tail]!, after[after.length - 1 - tail]!)
    )
      tail++;
    for (const r of before.slice(head, before.length - tail))
      await this.n.iptables.delete(node.ns, table, chain, r);
    const inserted = after.slice(head, after.length - tail);
    for (const [i, r] of inserted.entries())
      await this.n.iptables.insert(node.ns, table, chain, r, head + i + 1);
    tally.count(node.name, "removed", before.length - head - tail);
    tally.count(node.name, "added", inserted.length);
  }

  /** Chains no Service wants: every one flushed first (they may jump to each other), then deleted. */
  private async removeChains(
    tally: Tally,
    node: NodeNetwork,
    table: NatTable,
    chains: [string, IptablesRule[]][],
  ): Promise<void> {
    for (const [name, rules] of chains) {
      await this.n.iptables.flush(node.ns, table, name);
      tally.count(node.name, "removed", rules.length);
    }
    for (const [name] of chains) await this.n.iptables.deleteChain(node.ns, table, name);
  }
}
