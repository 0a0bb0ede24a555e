/**
 * Keeps every node's tables in step with the cluster. It has two jobs, which real clusters split:
 * - pod-subnet reachability (routes, neighbours, FDB entries per other node, from the provider):
 *   in Kubernetes this is the CNI's job (flannel) or the cloud route controller's, not kube-proxy's,
 *   although the original notes credit kube-proxy;
 * - Services (ClusterIP, NodePort): kube-proxy's real job, written as kube-proxy's chains.
 * It reads what a node holds through the host API's dumps (never a private copy), computes what
 * it should hold, and applies only the difference. An event touches only the entries it concerns,
 * so a node joining costs O(nodes), not O(nodes²). Entries are compared as values (a prefix, an
 * address, a MAC), so no spelling of a wanted entry can make a resync delete and re-add it.
 */
import { Ipv4Prefix } from "@podnet/core";
import {
  NO_PEER_ENTRIES,
  type ClusterNetwork,
  type NetworkProvider,
  type NodeNetwork,
  type PeerEntries,
} from "@podnet/cni";
import { appendRuleOnce, sameRule, type NatTable, type Netlink, type RouteEntry } from "@podnet/netlink";
import {
  Tally,
  applyDifference,
  fdbKey,
  neighKey,
  now,
  prefixKey,
  type ReconcileReport,
  type Refusal,
} from "./apply.js";
import { ServiceRuleCache, serviceTables, type Service } from "./services.js";

export type { NodeChanges, ReconcileReport, Refusal } from "./apply.js";

export interface RouteManagerOptions {
  netlink: Netlink;
  provider: NetworkProvider;
  cluster: ClusterNetwork;
  /** The underlay gateway's namespace, for providers that keep their routes there. */
  gatewayNs?: string;
}

export class RouteManager {
  readonly nodes = new Map<string, NodeNetwork>();
  readonly services = new Map<string, Service>();
  /** Every change the kernel refused so far, for explaining unreachable destinations. */
  readonly refusals: Refusal[] = [];
  private readonly n: Netlink;
  private readonly provider: NetworkProvider;
  private readonly cluster: ClusterNetwork;
  private readonly clusterPrefix: Ipv4Prefix;
  /** Each Service's kube-proxy rules, computed once per Service value. */
  private readonly serviceRules = new ServiceRuleCache();
  /** Parsed pod CIDRs by text: a node's own is skipped on every full resync. */
  private readonly podPrefixes = new Map<string, Ipv4Prefix>();

  constructor(private readonly options: RouteManagerOptions) {
    this.n = options.netlink;
    this.provider = options.provider;
    this.cluster = options.cluster;
    this.clusterPrefix = Ipv4Prefix.parse(options.cluster.clusterCidr);
  }

  // ---- events -----------------------------------------------------------------------------

  /**
   * Records a node whose tables are already in place — after the manager restarts, or when a
   * cluster is bulk-loaded — without writing anything. `resync()` verifies and repairs.
   */
  adopt(node: NodeNetwork): void {
    this.nodes.set(node.name, node);
  }

  async nodeJoined(node: NodeNetwork): Promise<ReconcileReport> {
    const started = now();
    const tally = new Tally();
    this.nodes.set(node.name, node);
    // The new node takes every peer's entries in one batch; each peer takes the new node's.
    await this.apply(tally, node, this.desired(node));
    for (const peer of this.nodes.values())
      if (peer !== node) await this.apply(tally, peer, this.entries(peer, node));
    await this.syncGatewayFor(tally, node, true);
    await this.syncServices(tally, node);
    return tally.report(`node ${node.name} joined`, started);
  }

  async nodeLeft(name: string): Promise<ReconcileReport> {
    const started = now();
    const tally = new Tally();
    const gone = this.nodes.get(name);
    if (gone) {
      this.nodes.delete(name);
      for (const peer of this.nodes.values())
        await this.apply(tally, peer, NO_PEER_ENTRIES, this.entries(peer, gone));
      await this.syncGatewayFor(tally, gone, false);
    }
    return tally.report(`node ${name} left`, started);
  }

  /** A node's pod CIDR was assigned, changed or released: peers drop the old entries, take the new. */
  async nodeUpdated(node: NodeNetwork): Promise<ReconcileReport> {
    const started = now();
    const tally = new Tally();
    const before = this.nodes.get(node.name);
    this.nodes.set(node.name, node);
    for (const peer of this.nodes.values()) {
      if (peer.name === node.name) continue;
      await this.apply(
        tally,
        peer,
        this.entries(peer, node),
        before ? this.entries(peer, before) : undefined,
      );
    }
    await this.apply(tally, node, this.desired(node));
    if (before) await this.syncGatewayFor(tally, before, false);
    await this.syncGatewayFor(tally, node, true);
    return tally.report(`node ${node.name} updated`, started);
  }

  async serviceChanged(service: Service): Promise<ReconcileReport> {
    this.services.set(`${service.namespace}/${service.name}`, service);
    return this.syncAllServices(`service ${service.namespace}/${service.name} changed`);
  }

  /** kube-proxy's full sync: the whole Service list at once (a start, a relist), one sync per node. */
  async servicesReplaced(services: Iterable<Service>): Promise<ReconcileReport> {
    this.services.clear();
    for (const service of services) this.services.set(`${service.namespace}/${service.name}`, service);
    return this.syncAllServices(`${this.services.size} services synced`);
  }

  async serviceDeleted(namespace: string, name: string): Promise<ReconcileReport> {
    this.services.delete(`${namespace}/${name}`);
    return this.syncAllServices(`service ${namespace}/${name} deleted`);
  }

  /** Compares every node's whole tables with what they should hold and repairs them. */
  async resync(): Promise<ReconcileReport> {
    const started = now();
    const tally = new Tally();
    for (const node of this.nodes.values()) {
      await this.syncNodeFully(tally, node);
      await this.syncServices(tally, node);
    }
    await this.syncGatewayFully(tally);
    return tally.report("full resync", started);
  }

  // ---- desired state ----------------------------------------------------------------------

  private entries(self: NodeNetwork, peer: NodeNetwork): PeerEntries {
    if (self.name === peer.name) return NO_PEER_ENTRIES;
    if (this.provider.podAddressing === "per-node-subnet" && (!self.podCidr || !peer.podCidr))
      return NO_PEER_ENTRIES;
    return this.provider.peerEntries(self, peer, this.cluster);
  }

  /** Every entry a node should hold, across all its peers. */
  desired(node: NodeNetwork): PeerEntries {
    const all: PeerEntries = { routes: [], neighbours: [], fdb: [] };
    for (const peer of this.nodes.values()) {
      const e = this.entries(node, peer);
      all.routes.push(...e.routes);
      all.neighbours.push(...e.neighbours);
      all.fdb.push(...e.fdb);
    }
    return all;
  }

  // ---- applying differences ---------------------------------------------------------------

  private apply(tally: Tally, node: NodeNetwork, want: PeerEntries, stale?: PeerEntries): Promise<void> {
    return applyDifference(this.n, tally, this.refusals, node.name, node.ns, want, stale);
  }

  private applyGateway(tally: Tally, gw: string, want: PeerEntries, stale?: PeerEntries): Promise<void> {
    return applyDifference(this.n, tally, this.refusals, "gateway", gw, want, stale);
  }

  /** Routes the manager owns: inside the cluster CIDR, not the default route, not the kernel's. */
  private owned(r: RouteEntry): boolean {
    return r.protocol !== "kernel" && r.dst.length > 0 && this.clusterPrefix.containsPrefix(r.dst);
  }

  private podPrefix(node: NodeNetwork): Ipv4Prefix | undefined {
    if (!node.podCidr) return undefined;
    let prefix = this.podPrefixes.get(node.podCidr);
    if (!prefix) this.podPrefixes.set(node.podCidr, (prefix = Ipv4Prefix.parse(node.podCidr)));
    return prefix;
  }

  private async syncNodeFully(tally: Tally, node: NodeNetwork): Promise<void> {
    const n = this.n;
    const want = this.desired(node);
    const own = this.podPrefix(node);
    const routes = (await n.route.entries(node.ns)).filter(
      (r) => this.owned(r) && !(own && r.dst.equals(own)),
    );
    const vxlans = new Set(
      (await n.link.list(node.ns)).filter((l) => l.linkinfo?.info_kind === "vxlan").map((l) => l.ifname),
    );
    const neighbours = (await n.neigh.entries(node.ns)).filter(
      (e) => vxlans.has(e.dev) && e.state.includes("PERMANENT"),
    );
    const fdb = (await n.fdb.entries(node.ns)).filter((e) => vxlans.has(e.dev) && e.dst !== undefined);
    const wantRoutes = new Set(want.routes.map((r) => prefixKey(r.dst)));
    const wantNeigh = new Set(want.neighbours.map(neighKey));
    const wantFdb = new Set(want.fdb.map(fdbKey));
    const stale: PeerEntries = {
      routes: routes.filter((r) => !wantRoutes.has(prefixKey(r.dst))).map((r) => ({ dst: r.dst })),
      neighbours: neighbours
        .filter((e) => !wantNeigh.has(neighKey(e)))
        .map((e) => ({ dst: e.dst, dev: e.dev, lladdr: e.lladdr ?? 0 })),
      fdb: fdb
        .filter((e) => !wantFdb.has(fdbKey(e)))
        .map((e) => ({ mac: e.mac, dev: e.dev, dst: e.dst!, self: true })),
    };
    await this.apply(tally, node, want, stale);
  }

  private async syncGatewayFor(tally: Tally, node: NodeNetwork, present: boolean): Promise<void> {
    const gw = this.options.gatewayNs;
    if (
      !gw ||
      !this.provider.gatewayRoutes ||
      (this.provider.podAddressing === "per-node-subnet" && !node.podCidr)
    )
      return;
    const [route] = this.provider.gatewayRoutes([node], this.cluster);
    if (!route) return;
    const entries = { routes: [route], neighbours: [], fdb: [] };
    if (present) await this.applyGateway(tally, gw, entries);
    else await this.applyGateway(tally, gw, NO_PEER_ENTRIES, entries);
  }

  private async syncGatewayFully(tally: Tally): Promise<void> {
    const gw = this.options.gatewayNs;
    if (!gw || !this.provider.gatewayRoutes) return;
    const nodes = [...this.nodes.values()].filter(
      (node) => this.provider.podAddressing !== "per-node-subnet" || node.podCidr,
    );
    const want = this.provider.gatewayRoutes(nodes, this.cluster);
    const wanted = new Set(want.map((w) => prefixKey(w.dst)));
    const stale = (await this.n.route.entries(gw))
      .filter((r) => this.owned(r) && !wanted.has(prefixKey(r.dst)))
      .map((r) => ({ dst: r.dst }));
    await this.applyGateway(
      tally,
      gw,
      { routes: want, neighbours: [], fdb: [] },
      { routes: stale, neighbours: [], fdb: [] },
    );
  }

  // ---- services ---------------------------------------------------------------------------

  private async syncAllServices(event: string): Promise<ReconcileReport> {
    const started = now();
    const tally = new Tally();
    for (const node of this.nodes.values()) await this.syncServices(tally, node);
    return tally.report(event, started);
  }

  /** Writes kube-proxy's chains on one node, rewriting only chains whose rules differ. */
  private async syncServices(tally: Tally, node: NodeNetwork): Promise<void> {
    const n = this.n;
    const ns = node.ns;
    const desired = serviceTables(
      this.services.values(),
      this.cluster.clusterCidr,
      node.address,
      this.serviceRules,
    );
    for (const table of ["nat", "filter"] as NatTable[]) {
      const want = table === "nat" ? desired.nat : desired.filter;
      const have = new Map(
        (await n.iptables.list(ns, table))
          .filter((c) => c.name.startsWith("KUBE-"))
          .map((c) => [c.name, c.rules]),
      );
      for (const chain of want) if (!have.has(chain.name)) await n.iptables.newChain(ns, table, chain.name);
      for (const chain of want) {
        const before = have.get(chain.name) ?? [];
        const after = chain.rules;
        if (before.length === after.length && before.every((r, i) => sameRule(r, after[i]!))) continue;
        if (before.length) await n.iptables.flush(ns, table, chain.name);
        for (const r of after) await n.iptables.append(ns, table, chain.name, r);
        tally.count(node.name, "removed", before.length);
        tally.count(node.name, "added", after.length);
      }
      for (const hook of desired.hooks.filter((h) => h.table === table)) {
        if (await appendRuleOnce(n, ns, table, hook.chain, hook.rule)) tally.count(node.name, "added");
      }
      const wanted = new Set(want.map((c) => c.name));
      const gone = [...have.keys()].filter((name) => !wanted.has(name));
      for (const name of gone) {
        await n.iptables.flush(ns, table, name);
        tally.count(node.name, "removed", have.get(name)!.length);
      }
      for (const name of gone) await n.iptables.deleteChain(ns, table, name);
    }
  }
}
