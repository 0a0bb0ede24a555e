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
import type { LayerRefusal, Netlink, RouteEntry } from "@podnet/netlink";
import {
  Tally,
  applyDifference,
  fdbKey,
  neighKey,
  prefixKey,
  type NodeChanges,
  type Refusal,
} from "./apply.js";

export interface PeerRoutesOptions {
  netlink: Netlink;
  provider: NetworkProvider;
  cluster: ClusterNetwork;
  /** The underlay gateway's namespace, for providers that keep their routes there. */
  gatewayNs?: string;
}

/** The nodes of one peer group (`NetworkProvider.peerGroup`) and what each owner put in their layer. */
interface Group {
  layer: string;
  /** Every node of the group; any one of them computes a peer's entries for all. */
  members: Map<string, NodeNetwork>;
  /** The members attached to the layer: the ones a write reaches. */
  attached: Map<string, NodeNetwork>;
  written: Map<string, PeerEntries>;
  /** The entries in `written`, summed: what a member attaching receives, counted without a walk. */
  writtenTotal: number;
}

/** Records an owner's entries in the group, keeping the sum in step. */
function putWritten(group: Group, owner: string, entries: PeerEntries): void {
  group.writtenTotal += size(entries) - size(group.written.get(owner) ?? NO_PEER_ENTRIES);
  group.written.set(owner, entries);
}

function dropWritten(group: Group, owner: string): void {
  group.writtenTotal -= size(group.written.get(owner) ?? NO_PEER_ENTRIES);
  group.written.delete(owner);
}

const routeSame = (a: PeerEntries["routes"][number], b: PeerEntries["routes"][number]) =>
  a.dst.equals(b.dst) &&
  a.via === b.via &&
  a.dev === b.dev &&
  Boolean(a.onlink) === Boolean(b.onlink) &&
  (a.metric ?? 0) === (b.metric ?? 0);

/** What replacing `before` by `after` does to a member: entries added, removed, changed (by identity). */
function changes(before: PeerEntries, after: PeerEntries): NodeChanges {
  const out = { added: 0, removed: 0, changed: 0 };
  const count = <T>(a: T[], b: T[], key: (x: T) => string | number, same: (x: T, y: T) => boolean) => {
    const old = new Map(a.map((x) => [key(x), x]));
    for (const y of b) {
      const x = old.get(key(y));
      if (x === undefined) out.added++;
      else if (!same(x, y)) out.changed++;
      old.delete(key(y));
    }
    out.removed += old.size;
  };
  count(before.routes, after.routes, (r) => prefixKey(r.dst), routeSame);
  count(before.neighbours, after.neighbours, neighKey, (x, y) => x.lladdr === y.lladdr);
  count(before.fdb, after.fdb, fdbKey, () => true);
  return out;
}

const size = (e: PeerEntries) => e.routes.length + e.neighbours.length + e.fdb.length;

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
  /** Peer groups by key, when the provider has them: each peer's entries are one layer write per group. */
  private readonly groups = new Map<string, Group>();

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
    if (this.provider.peerGroup) {
      // As without groups: the new node takes every peer's entries, then each peer takes the new node's.
      if (this.eligible(node)) await this.join(tally, node);
      for (const group of this.groups.values()) await this.setOwner(tally, group, node);
    } else {
      // The new node takes every peer's entries in one batch; each peer takes the new node's.
      await this.apply(tally, node, this.desired(node));
      for (const peer of this.nodes.values())
        if (peer !== node) await this.apply(tally, peer, [this.entries(peer, node)]);
    }
    await this.syncGatewayFor(tally, node, true);
  }

  /**
   * Many nodes whose machines are up, programmed at once (a cluster bulk-loaded): with peer groups,
   * every owner's entries are put in its groups' layers first, then each member attaches (all at
   * once with `parallel`, as real hosts do), so each member is written once.
   */
  async joinedAll(tally: Tally, nodes: readonly NodeNetwork[], parallel = false): Promise<void> {
    for (const node of nodes) this.nodes.set(node.name, node);
    if (!this.provider.peerGroup) return this.resync(tally, parallel);
    const joining = nodes.filter((node) => this.eligible(node));
    for (const node of joining) this.group(node).members.set(node.name, node);
    for (const group of this.groups.values())
      for (const node of this.nodes.values()) await this.setOwner(tally, group, node);
    const attach = (node: NodeNetwork) => this.attach(tally, this.group(node), node);
    if (parallel) await Promise.all(joining.map(attach));
    else for (const node of joining) await attach(node);
    await this.syncGatewayFully(tally);
  }

  async left(tally: Tally, name: string): Promise<void> {
    const gone = this.nodes.get(name);
    if (!gone) return;
    this.nodes.delete(name);
    if (this.provider.peerGroup) {
      for (const group of this.groups.values()) {
        group.members.delete(name);
        if (group.attached.delete(name)) await this.n.layer.detach(group.layer, gone.ns);
        if (group.written.has(name)) await this.setOwner(tally, group, gone, NO_PEER_ENTRIES);
        dropWritten(group, name);
      }
    } else
      for (const peer of this.nodes.values()) await this.apply(tally, peer, [], this.entries(peer, gone));
    await this.syncGatewayFor(tally, gone, false);
  }

  /** A node's pod CIDR was assigned, changed or released: peers drop the old entries, take the new. */
  async updated(tally: Tally, node: NodeNetwork): Promise<void> {
    const before = this.nodes.get(node.name);
    this.nodes.set(node.name, node);
    if (this.provider.peerGroup) {
      for (const group of this.groups.values()) await this.setOwner(tally, group, node);
      if (this.eligible(node) && !this.group(node).attached.has(node.name)) await this.join(tally, node);
    } else {
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
    }
    if (before) await this.syncGatewayFor(tally, before, false);
    await this.syncGatewayFor(tally, node, true);
  }

  /**
   * Compares every node's whole tables, and the gateway's, with what they should hold and repairs
   * them. With peer groups, the layers are then recorded as held (`layer.adopt`, no writes): a
   * manager that restarted learns them, and on a consistent cluster nothing is written at all.
   */
  async resync(tally: Tally, parallel = false): Promise<void> {
    const nodes = [...this.nodes.values()];
    if (parallel) await Promise.all(nodes.map((node) => this.syncNodeFully(tally, node)));
    else for (const node of nodes) await this.syncNodeFully(tally, node);
    if (this.provider.peerGroup) {
      const eligible = nodes.filter((node) => this.eligible(node));
      for (const node of eligible) this.group(node).members.set(node.name, node);
      for (const group of this.groups.values()) {
        for (const node of nodes) {
          const entries = this.ownerEntries(group, node);
          if (entries) putWritten(group, node.name, entries);
        }
        for (const node of eligible) if (group.members.has(node.name)) group.attached.set(node.name, node);
        await this.n.layer.adopt(group.layer, {
          owners: [...group.written],
          members: [...group.attached.values()].map((m) => [m.ns, m.name]),
        });
      }
    }
    await this.syncGatewayFully(tally);
  }

  // ---- peer groups ------------------------------------------------------------------------

  /** A node takes peers' entries once it has what its provider needs for them (a pod CIDR). */
  private eligible(node: NodeNetwork): boolean {
    return this.provider.podAddressing !== "per-node-subnet" || node.podCidr !== undefined;
  }

  private group(node: NodeNetwork): Group {
    const key = this.provider.peerGroup!(node);
    let group = this.groups.get(key);
    if (!group)
      this.groups.set(
        key,
        (group = {
          layer: key === "" ? "peers" : `peers/${key}`,
          members: new Map(),
          attached: new Map(),
          written: new Map(),
          writtenTotal: 0,
        }),
      );
    return group;
  }

  /** A node joins its group: owners nobody needed until now are written, then it attaches. */
  private async join(tally: Tally, node: NodeNetwork): Promise<void> {
    const group = this.group(node);
    group.members.set(node.name, node);
    for (const peer of this.nodes.values())
      if (peer !== node && !group.written.has(peer.name)) await this.setOwner(tally, group, peer);
    await this.attach(tally, group, node);
  }

  private async attach(tally: Tally, group: Group, node: NodeNetwork): Promise<void> {
    group.attached.set(node.name, node);
    const refused = await this.n.layer.attach(group.layer, node.ns, node.name);
    // Everything written but its own entries and the owners the kernel refused for it.
    const lost = new Set(refused.map((r) => r.owner));
    lost.add(node.name);
    let added = group.writtenTotal;
    for (const owner of lost) added -= size(group.written.get(owner) ?? NO_PEER_ENTRIES);
    tally.count(node.name, "added", added);
    this.refused(tally, group, refused);
  }

  /**
   * Puts a peer's entries (computed for any other member: they are alike in a group) in a group's
   * layer, when they changed. Nothing when no member but the peer itself needs them yet.
   */
  private async setOwner(
    tally: Tally,
    group: Group,
    peer: NodeNetwork,
    entries?: PeerEntries,
  ): Promise<void> {
    entries ??= this.ownerEntries(group, peer);
    if (!entries) return;
    const before = group.written.get(peer.name) ?? NO_PEER_ENTRIES;
    const change = changes(before, entries);
    if (group.written.has(peer.name) && change.added + change.removed + change.changed === 0) return;
    putWritten(group, peer.name, entries);
    const refused = await this.n.layer.set(group.layer, peer.name, entries);
    const lost = new Set(refused.map((r) => r.ns));
    for (const member of group.attached.values())
      if (member.name !== peer.name && !lost.has(member.ns))
        for (const kind of ["added", "removed", "changed"] as const)
          tally.count(member.name, kind, change[kind]);
    this.refused(tally, group, refused);
  }

  /** A peer's entries for a group's members, or undefined when no member but itself needs them. */
  private ownerEntries(group: Group, peer: NodeNetwork): PeerEntries | undefined {
    if (this.provider.podAddressing === "per-node-subnet" && !peer.podCidr) return NO_PEER_ENTRIES;
    for (const member of group.members.values())
      if (member.name !== peer.name) return this.provider.peerEntries(member, peer, this.cluster);
    return undefined;
  }

  private refused(tally: Tally, group: Group, refusals: LayerRefusal[]): void {
    if (refusals.length === 0) return;
    const byNs = new Map([...group.attached.values()].map((m) => [m.ns, m.name]));
    for (const r of refusals) {
      const whole = size(group.written.get(r.owner) ?? NO_PEER_ENTRIES) > 1;
      const refusal = {
        node: byNs.get(r.ns) ?? r.ns,
        entry: r.entry,
        reason: whole ? `${r.error.reason} (the peer's other entries were removed again)` : r.error.reason,
      };
      tally.refused.push(refusal);
      this.refusals.push(refusal);
    }
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
