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
import { formatIpv4, formatMac, type Ipv4 } from "@podnet/core";
import {
  NetlinkError,
  appendRuleOnce,
  formatIptablesRule,
  formatRouteSpec,
  type FdbSpec,
  type IpPrefix,
  type NatTable,
  type NeighSpec,
  type Netlink,
  type RouteEntry,
  type RouteSpec,
} from "@podnet/netlink";
import { serviceTables, type Service } from "./services.js";

export interface NodeChanges {
  added: number;
  removed: number;
  changed: number;
}

/** A change the kernel refused, with its reason ("Nexthop has invalid gateway"). */
export interface Refusal {
  node: string;
  entry: string;
  reason: string;
}

export interface ReconcileReport {
  event: string;
  /** Per node (and "gateway"): entries added, removed, replaced. Nodes with no change are absent. */
  nodes: Record<string, NodeChanges>;
  added: number;
  removed: number;
  changed: number;
  refused: Refusal[];
  durationMs: number;
}

export interface RouteManagerOptions {
  netlink: Netlink;
  provider: NetworkProvider;
  cluster: ClusterNetwork;
  /** The underlay gateway's namespace, for providers that keep their routes there. */
  gatewayNs?: string;
}

const now = () => (globalThis as { performance?: { now(): number } }).performance?.now() ?? Date.now();

function sameRoute(want: RouteSpec, have: RouteEntry): boolean {
  return (
    have.gateway === want.via &&
    (!want.dev || have.dev === want.dev) &&
    have.onlink === Boolean(want.onlink) &&
    have.metric === (want.metric ?? 0)
  );
}

/** One number per prefix: its identity as a value. */
const prefixKey = (p: IpPrefix) => p.network * 64 + p.length;
/** A neighbour's identity: (device, address). */
const neighKey = (e: { dev: string; dst: Ipv4 }) => `${e.dev} ${e.dst}`;
/** A VXLAN FDB entry's identity: (MAC, remote VTEP). */
const fdbKey = (e: { mac: number; dst?: Ipv4 }) => e.mac * 4294967296 + (e.dst ?? 0);

const describeFdb = (e: FdbSpec) =>
  `fdb ${formatMac(e.mac)}${e.dst !== undefined ? ` dst ${formatIpv4(e.dst)}` : ""}`;
const describeNeigh = (e: NeighSpec) => `neigh ${formatIpv4(e.dst)} lladdr ${formatMac(e.lladdr)}`;

class Tally {
  readonly nodes: Record<string, NodeChanges> = {};
  readonly refused: Refusal[] = [];

  count(node: string, kind: keyof NodeChanges, n = 1): void {
    if (n === 0) return;
    (this.nodes[node] ??= { added: 0, removed: 0, changed: 0 })[kind] += n;
  }

  report(event: string, started: number): ReconcileReport {
    const sum = (k: keyof NodeChanges) => Object.values(this.nodes).reduce((s, c) => s + c[k], 0);
    return {
      event,
      nodes: this.nodes,
      added: sum("added"),
      removed: sum("removed"),
      changed: sum("changed"),
      refused: this.refused,
      durationMs: now() - started,
    };
  }
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
    for (const peer of this.nodes.values()) {
      if (peer === node) continue;
      await this.syncPeer(tally, node, this.entries(node, peer));
      await this.syncPeer(tally, peer, this.entries(peer, node));
    }
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
        await this.syncPeer(tally, peer, NO_PEER_ENTRIES, this.entries(peer, gone));
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
      await this.syncPeer(
        tally,
        peer,
        this.entries(peer, node),
        before ? this.entries(peer, before) : undefined,
      );
      await this.syncPeer(tally, node, this.entries(node, peer));
    }
    if (before) await this.syncGatewayFor(tally, before, false);
    await this.syncGatewayFor(tally, node, true);
    return tally.report(`node ${node.name} updated`, started);
  }

  async serviceChanged(service: Service): Promise<ReconcileReport> {
    this.services.set(`${service.namespace}/${service.name}`, service);
    return this.syncAllServices(`service ${service.namespace}/${service.name} changed`);
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

  private async attempt(
    tally: Tally,
    node: string,
    entry: string,
    change: () => Promise<void>,
  ): Promise<boolean> {
    try {
      await change();
      return true;
    } catch (error) {
      if (!(error instanceof NetlinkError)) throw error;
      tally.refused.push({ node, entry, reason: error.reason });
      this.refusals.push({ node, entry, reason: error.reason });
      return false;
    }
  }

  /** Brings one node's entries for one peer to `want`, removing `stale` entries `want` does not keep. */
  private async syncPeer(
    tally: Tally,
    self: NodeNetwork,
    want: PeerEntries,
    stale?: PeerEntries,
  ): Promise<void> {
    const ns = self.ns;
    const n = this.n;
    // Added in flannel's order — neighbour, FDB, route — so the kernel never has to ask.
    for (const neigh of want.neighbours) await this.ensureNeigh(tally, self, neigh);
    for (const fdb of want.fdb) {
      const have = await n.fdb.entries(ns, { dev: fdb.dev, mac: fdb.mac });
      if (!have.some((e) => e.dst === fdb.dst)) {
        if (await this.attempt(tally, self.name, describeFdb(fdb), () => n.fdb.append(ns, fdb)))
          tally.count(self.name, "added");
      }
    }
    for (const route of want.routes) await this.ensureRoute(tally, self.name, ns, route);
    if (!stale) return;
    const keep = new Set(want.routes.map((r) => prefixKey(r.dst)));
    for (const route of stale.routes) {
      if (keep.has(prefixKey(route.dst))) continue;
      await this.removeRoutes(tally, self.name, ns, route);
    }
    const keepFdb = new Set(want.fdb.map(fdbKey));
    for (const fdb of stale.fdb) {
      if (keepFdb.has(fdbKey(fdb))) continue;
      const have = await n.fdb.entries(ns, { dev: fdb.dev, mac: fdb.mac });
      if (
        have.some((e) => e.dst === fdb.dst) &&
        (await this.attempt(tally, self.name, describeFdb(fdb), () => n.fdb.del(ns, fdb)))
      )
        tally.count(self.name, "removed");
    }
    const keepNeigh = new Set(want.neighbours.map(neighKey));
    for (const neigh of stale.neighbours) {
      if (keepNeigh.has(neighKey(neigh))) continue;
      const have = await n.neigh.entries(ns, { dst: neigh.dst, dev: neigh.dev });
      if (
        have.length &&
        (await this.attempt(tally, self.name, `neigh ${formatIpv4(neigh.dst)}`, () => n.neigh.del(ns, neigh)))
      )
        tally.count(self.name, "removed");
    }
  }

  /** Deletes the non-kernel routes to `route.dst`, whatever their gateway. */
  private async removeRoutes(tally: Tally, who: string, ns: string, route: RouteSpec): Promise<void> {
    const have = (await this.n.route.entries(ns, { exact: route.dst })).filter(
      (r) => r.protocol !== "kernel",
    );
    for (const r of have)
      if (
        await this.attempt(tally, who, formatRouteSpec(route), () =>
          this.n.route.del(ns, { dst: route.dst, ...(r.gateway !== undefined ? { via: r.gateway } : {}) }),
        )
      )
        tally.count(who, "removed");
  }

  private async ensureNeigh(tally: Tally, self: NodeNetwork, neigh: NeighSpec): Promise<void> {
    const [have] = await this.n.neigh.entries(self.ns, { dst: neigh.dst, dev: neigh.dev });
    if (have?.lladdr === neigh.lladdr && have.state.includes("PERMANENT")) return;
    if (
      await this.attempt(tally, self.name, describeNeigh(neigh), () => this.n.neigh.replace(self.ns, neigh))
    )
      tally.count(self.name, have ? "changed" : "added");
  }

  private async ensureRoute(tally: Tally, who: string, ns: string, route: RouteSpec): Promise<void> {
    const have = (await this.n.route.entries(ns, { exact: route.dst })).filter(
      (r) => r.protocol !== "kernel",
    );
    if (have.some((r) => sameRoute(route, r))) return;
    const ok = await this.attempt(tally, who, formatRouteSpec(route), () =>
      have.length ? this.n.route.replace(ns, route) : this.n.route.add(ns, route),
    );
    if (ok) tally.count(who, have.length ? "changed" : "added");
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
    await this.syncPeer(tally, node, want, stale);
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
    if (present) return this.ensureRoute(tally, "gateway", gw, route);
    await this.removeRoutes(tally, "gateway", gw, route);
  }

  private async syncGatewayFully(tally: Tally): Promise<void> {
    const gw = this.options.gatewayNs;
    if (!gw || !this.provider.gatewayRoutes) return;
    const nodes = [...this.nodes.values()].filter(
      (node) => this.provider.podAddressing !== "per-node-subnet" || node.podCidr,
    );
    const want = this.provider.gatewayRoutes(nodes, this.cluster);
    for (const route of want) await this.ensureRoute(tally, "gateway", gw, route);
    const wanted = new Set(want.map((w) => prefixKey(w.dst)));
    for (const r of await this.n.route.entries(gw)) {
      if (!this.owned(r) || wanted.has(prefixKey(r.dst))) continue;
      const spec = { dst: r.dst, ...(r.gateway !== undefined ? { via: r.gateway } : {}) };
      if (await this.attempt(tally, "gateway", formatRouteSpec(spec), () => this.n.route.del(gw, spec)))
        tally.count("gateway", "removed");
    }
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
    const desired = serviceTables(this.services.values(), this.cluster.clusterCidr, node.address);
    for (const table of ["nat", "filter"] as NatTable[]) {
      const want = table === "nat" ? desired.nat : desired.filter;
      const have = new Map(
        (await n.iptables.list(ns, table))
          .filter((c) => c.name.startsWith("KUBE-"))
          .map((c) => [c.name, c.rules]),
      );
      for (const chain of want) if (!have.has(chain.name)) await n.iptables.newChain(ns, table, chain.name);
      for (const chain of want) {
        const before = (have.get(chain.name) ?? []).map(formatIptablesRule);
        const after = chain.rules.map(formatIptablesRule);
        if (before.length === after.length && before.every((r, i) => r === after[i])) continue;
        if (before.length) await n.iptables.flush(ns, table, chain.name);
        for (const r of chain.rules) await n.iptables.append(ns, table, chain.name, r);
        tally.count(node.name, "removed", before.length);
        tally.count(node.name, "added", after.length);
      }
      for (const hook of desired.hooks.filter((h) => h.table === table)) {
        if (await appendRuleOnce(n, ns, table, hook.chain, hook.rule)) tally.count(node.name, "added");
      }
      const gone = [...have.keys()].filter((name) => !want.some((c) => c.name === name));
      for (const name of gone) {
        await n.iptables.flush(ns, table, name);
        tally.count(node.name, "removed", have.get(name)!.length);
      }
      for (const name of gone) await n.iptables.deleteChain(ns, table, name);
    }
  }
}
