/**
 * Pod-subnet reachability: the routes, neighbours and FDB entries each node holds per other node
 * (from the provider's `peerEntries`), and the gateway's routes for providers that keep them there.
 * In Kubernetes this is the CNI's job (flannel) or the cloud route controller's, not kube-proxy's.
 * It reads what a node holds through the host API's dumps (never a private copy), computes what it
 * should hold, and applies only the difference. An event touches only the entries it concerns, so a
 * node joining costs O(nodes), not O(nodes²). A peer is written whole or not at all (flannel's undo:
 * see `applyDifference`).
 */
import { Ipv4Prefix } from "@podnet/core";
import {
  NO_PEER_ENTRIES,
  type ClusterNetwork,
  type NetworkProvider,
  type NodeNetwork,
  type PeerEntries,
} from "@podnet/cni";
import type { Netlink, RouteEntry } from "@podnet/netlink";
import { applyDifference, fdbKey, neighKey, prefixKey, type Refusal, type Tally } from "./apply.js";

export interface PeerRoutesOptions {
  netlink: Netlink;
  provider: NetworkProvider;
  cluster: ClusterNetwork;
  /** The underlay gateway's namespace, for providers that keep their routes there. */
  gatewayNs?: string;
}

export class PeerRoutes {
  readonly nodes = new Map<string, NodeNetwork>();
  /** Every change the kernel refused so far, for explaining unreachable destinations. */
  readonly refusals: Refusal[] = [];
  private readonly n: Netlink;
  private readonly provider: NetworkProvider;
  private readonly cluster: ClusterNetwork;
  private readonly clusterPrefix: Ipv4Prefix;
  /** Parsed pod CIDRs by text: a node's own is skipped on every full resync. */
  private readonly podPrefixes = new Map<string, Ipv4Prefix>();

  constructor(private readonly options: PeerRoutesOptions) {
    this.n = options.netlink;
    this.provider = options.provider;
    this.cluster = options.cluster;
    this.clusterPrefix = Ipv4Prefix.parse(options.cluster.clusterCidr);
  }

  /** Records a node whose tables are already in place, without writing anything. */
  adopt(node: NodeNetwork): void {
    this.nodes.set(node.name, node);
  }

  async joined(tally: Tally, node: NodeNetwork): Promise<void> {
    this.nodes.set(node.name, node);
    // The new node takes every peer's entries in one batch; each peer takes the new node's.
    await this.apply(tally, node, this.desired(node));
    for (const peer of this.nodes.values())
      if (peer !== node) await this.apply(tally, peer, [this.entries(peer, node)]);
    await this.syncGatewayFor(tally, node, true);
  }

  async left(tally: Tally, name: string): Promise<void> {
    const gone = this.nodes.get(name);
    if (!gone) return;
    this.nodes.delete(name);
    for (const peer of this.nodes.values()) await this.apply(tally, peer, [], this.entries(peer, gone));
    await this.syncGatewayFor(tally, gone, false);
  }

  /** A node's pod CIDR was assigned, changed or released: peers drop the old entries, take the new. */
  async updated(tally: Tally, node: NodeNetwork): Promise<void> {
    const before = this.nodes.get(node.name);
    this.nodes.set(node.name, node);
    for (const peer of this.nodes.values()) {
      if (peer.name === node.name) continue;
      await this.apply(
        tally,
        peer,
        [this.entries(peer, node)],
        before ? this.entries(peer, before) : undefined,
      );
    }
    await this.apply(tally, node, this.desired(node));
    if (before) await this.syncGatewayFor(tally, before, false);
    await this.syncGatewayFor(tally, node, true);
  }

  /** Compares every node's whole tables, and the gateway's, with what they should hold and repairs them. */
  async resync(tally: Tally, parallel = false): Promise<void> {
    const nodes = [...this.nodes.values()];
    if (parallel) await Promise.all(nodes.map((node) => this.syncNodeFully(tally, node)));
    else for (const node of nodes) await this.syncNodeFully(tally, node);
    await this.syncGatewayFully(tally);
  }

  // ---- desired state ----------------------------------------------------------------------

  private entries(self: NodeNetwork, peer: NodeNetwork): PeerEntries {
    if (self.name === peer.name) return NO_PEER_ENTRIES;
    if (this.provider.podAddressing === "per-node-subnet" && (!self.podCidr || !peer.podCidr))
      return NO_PEER_ENTRIES;
    return this.provider.peerEntries(self, peer, this.cluster);
  }

  /** Every entry a node should hold, one PeerEntries per peer. */
  desired(node: NodeNetwork): PeerEntries[] {
    const all: PeerEntries[] = [];
    for (const peer of this.nodes.values()) {
      const e = this.entries(node, peer);
      if (e.routes.length || e.neighbours.length || e.fdb.length) all.push(e);
    }
    return all;
  }

  // ---- applying differences ---------------------------------------------------------------

  private apply(tally: Tally, node: NodeNetwork, want: PeerEntries[], stale?: PeerEntries): Promise<void> {
    return applyDifference(this.n, tally, this.refusals, node.name, node.ns, want, stale);
  }

  private applyGateway(tally: Tally, gw: string, want: PeerEntries[], stale?: PeerEntries): Promise<void> {
    return applyDifference(this.n, tally, this.refusals, "gateway", gw, want, stale);
  }

  /** Routes this job owns: inside the cluster CIDR, not the default route, not the kernel's. */
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
    const wantRoutes = new Set(want.flatMap((p) => p.routes.map((r) => prefixKey(r.dst))));
    const wantNeigh = new Set(want.flatMap((p) => p.neighbours.map(neighKey)));
    const wantFdb = new Set(want.flatMap((p) => p.fdb.map(fdbKey)));
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
    if (present) await this.applyGateway(tally, gw, [entries]);
    else await this.applyGateway(tally, gw, [], entries);
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
      want.map((route) => ({ routes: [route], neighbours: [], fdb: [] })),
      { routes: stale, neighbours: [], fdb: [] },
    );
  }
}
