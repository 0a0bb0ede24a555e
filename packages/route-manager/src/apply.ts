/**
 * Applying a difference to one host: read what it holds, plan the writes that bring it to what it
 * should hold, and send them as one batch (`ip -batch` on Linux), so a node joining a cluster of N
 * costs the new node one batch of N entries and each peer one batch of its few, not one host call
 * per entry. Entries are compared as values: identity is (prefix), (device, address), (MAC, VTEP).
 */
import type { Ipv4 } from "@podnet/core";
import type { PeerEntries } from "@podnet/cni";
import {
  describeEntry,
  fdbIdentity,
  layerRemovals,
  neighIdentity,
  type BatchOp,
  type FdbEntry,
  type IpPrefix,
  type NeighEntry,
  type Netlink,
  type RouteEntry,
  type RouteSpec,
} from "@podnet/netlink";

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

export const now = () => (globalThis as { performance?: { now(): number } }).performance?.now() ?? Date.now();

export class Tally {
  readonly nodes: Record<string, NodeChanges> = {};
  readonly refused: Refusal[] = [];
  /** Kept as counts arrive: a join touches every node, and summing N records per event adds up. */
  private readonly totals: NodeChanges = { added: 0, removed: 0, changed: 0 };

  count(node: string, kind: keyof NodeChanges, n = 1): void {
    if (n === 0) return;
    (this.nodes[node] ??= { added: 0, removed: 0, changed: 0 })[kind] += n;
    this.totals[kind] += n;
  }

  report(event: string, started: number): ReconcileReport {
    return {
      event,
      nodes: this.nodes,
      ...this.totals,
      refused: this.refused,
      durationMs: now() - started,
    };
  }
}

/** One number per prefix: its identity as a value. */
export const prefixKey = (p: IpPrefix) => p.network * 64 + p.length;
/** A neighbour's identity: (device, address). */
export const neighKey = neighIdentity;
/** A VXLAN FDB entry's identity: (device, MAC, remote VTEP). */
export const fdbKey = fdbIdentity;

function sameRoute(want: RouteSpec, have: RouteEntry): boolean {
  return (
    have.gateway === want.via &&
    (!want.dev || have.dev === want.dev) &&
    have.onlink === Boolean(want.onlink) &&
    have.metric === (want.metric ?? 0)
  );
}

/** What a host holds, by identity: read before planning, so planning itself never waits. */
interface Holdings {
  routes(dst: IpPrefix): RouteEntry[];
  neigh(dst: Ipv4, dev: string): NeighEntry[];
  fdb(dev: string, mac: number): FdbEntry[];
}

/** Past this many entries one dump per table is cheaper than a filtered read per entry. */
const WHOLE_TABLE_READ = 16;

function group<T>(items: T[], key: (item: T) => string | number): Map<string | number, T[]> {
  const out = new Map<string | number, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

const macKey = (dev: string, mac: number) => `${dev} ${mac}`;

/** The host's entries with the identities of `entries`: a filtered read each, or whole tables when many. */
async function holdings(
  n: Netlink,
  ns: string,
  entries: readonly PeerEntries[],
  size: number,
): Promise<Holdings> {
  let byPrefix: Map<string | number, RouteEntry[]>;
  let byNeigh: Map<string | number, NeighEntry[]>;
  let byMac: Map<string | number, FdbEntry[]>;
  if (size < WHOLE_TABLE_READ) {
    byPrefix = new Map();
    byNeigh = new Map();
    byMac = new Map();
    for (const e of entries) {
      for (const r of e.routes)
        if (!byPrefix.has(prefixKey(r.dst)))
          byPrefix.set(prefixKey(r.dst), await n.route.entries(ns, { exact: r.dst }));
      for (const x of e.neighbours)
        if (!byNeigh.has(neighKey(x)))
          byNeigh.set(neighKey(x), await n.neigh.entries(ns, { dst: x.dst, dev: x.dev }));
      for (const f of e.fdb)
        if (!byMac.has(macKey(f.dev, f.mac)))
          byMac.set(macKey(f.dev, f.mac), await n.fdb.entries(ns, { dev: f.dev, mac: f.mac }));
    }
  } else {
    const [routes, neighbours, fdb] = await Promise.all([
      n.route.entries(ns),
      n.neigh.entries(ns),
      n.fdb.entries(ns),
    ]);
    byPrefix = group(routes, (r) => prefixKey(r.dst));
    byNeigh = group(neighbours, neighKey);
    byMac = group(fdb, (e) => macKey(e.dev, e.mac));
  }
  return {
    routes: (dst) => byPrefix.get(prefixKey(dst)) ?? [],
    neigh: (dst, dev) => byNeigh.get(neighKey({ dst, dev })) ?? [],
    fdb: (dev, mac) => byMac.get(macKey(dev, mac)) ?? [],
  };
}

interface Planned {
  op: BatchOp;
  counts: keyof NodeChanges;
  /** The peer (index into `want`) a wanted entry belongs to; removals belong to none. */
  peer?: number;
}

const EMPTY: PeerEntries = Object.freeze({ routes: [], neighbours: [], fdb: [] }) as PeerEntries;

/**
 * Brings host `ns` (reported as `who`) to hold every peer's entries in `want` (one PeerEntries per
 * peer), and removes the `stale` entries `want` does not keep: one read, one batch. Neighbours, then
 * FDB entries, then routes, as flannel writes them, so the kernel never has to ask; removals after.
 * Refusals are reported, not thrown. A peer is programmed whole or not at all: when any of its writes
 * is refused, its other entries are removed again, as flannel's vxlan backend deletes the neighbour
 * and FDB entry it wrote when the route fails — no half-programmed peer is left to blackhole its
 * subnet, and the next resync writes the peer again.
 */
export async function applyDifference(
  n: Netlink,
  tally: Tally,
  refusals: Refusal[],
  who: string,
  ns: string,
  want: readonly PeerEntries[],
  stale: PeerEntries = EMPTY,
): Promise<void> {
  let size = stale.routes.length + stale.neighbours.length + stale.fdb.length;
  for (const peer of want) size += peer.routes.length + peer.neighbours.length + peer.fdb.length;
  if (size === 0) return;
  const have = await holdings(n, ns, stale === EMPTY ? want : [...want, stale], size);
  const plan: Planned[] = [];
  const plannedNeigh = new Set<string>();
  for (let i = 0; i < want.length; i++)
    for (const neigh of want[i]!.neighbours) {
      const [held] = have.neigh(neigh.dst, neigh.dev);
      const key = neighKey(neigh);
      if (!plannedNeigh.has(key) && held?.lladdr === neigh.lladdr && held.state.includes("PERMANENT"))
        continue;
      plan.push({
        op: { op: "neigh.replace", spec: neigh },
        counts: held || plannedNeigh.has(key) ? "changed" : "added",
        peer: i,
      });
      plannedNeigh.add(key);
    }
  const plannedFdb = new Set<string>();
  for (let i = 0; i < want.length; i++)
    for (const fdb of want[i]!.fdb) {
      const key = fdbKey(fdb);
      if (plannedFdb.has(key) || have.fdb(fdb.dev, fdb.mac).some((e) => e.dst === fdb.dst)) continue;
      plan.push({
        op: { op: "fdb.append", spec: fdb },
        counts: "added",
        peer: i,
      });
      plannedFdb.add(key);
    }
  // A second wanted route to one destination replaces the first, as writing them one by one would.
  const plannedRoutes = new Set<number>();
  const keepRoutes = new Set<number>();
  for (let i = 0; i < want.length; i++)
    for (const route of want[i]!.routes) {
      const key = prefixKey(route.dst);
      keepRoutes.add(key);
      const held = have.routes(route.dst).filter((r) => r.protocol !== "kernel");
      if (!plannedRoutes.has(key) && held.some((r) => sameRoute(route, r))) continue;
      const replacing = held.length > 0 || plannedRoutes.has(key);
      plan.push({
        op: { op: replacing ? "route.replace" : "route.add", spec: route },
        counts: replacing ? "changed" : "added",
        peer: i,
      });
      plannedRoutes.add(key);
    }
  for (const route of stale.routes) {
    if (keepRoutes.has(prefixKey(route.dst))) continue;
    for (const r of have.routes(route.dst)) {
      if (r.protocol === "kernel") continue;
      const spec = { dst: route.dst, ...(r.gateway !== undefined ? { via: r.gateway } : {}) };
      plan.push({ op: { op: "route.del", spec }, counts: "removed" });
    }
  }
  const keepFdb = stale.fdb.length ? new Set(want.flatMap((p) => p.fdb.map(fdbKey))) : undefined;
  for (const fdb of stale.fdb) {
    if (keepFdb!.has(fdbKey(fdb))) continue;
    if (have.fdb(fdb.dev, fdb.mac).some((e) => e.dst === fdb.dst))
      plan.push({ op: { op: "fdb.del", spec: fdb }, counts: "removed" });
  }
  const keepNeigh = stale.neighbours.length
    ? new Set(want.flatMap((p) => p.neighbours.map(neighKey)))
    : undefined;
  for (const neigh of stale.neighbours) {
    if (keepNeigh!.has(neighKey(neigh))) continue;
    if (have.neigh(neigh.dst, neigh.dev).length)
      plan.push({
        op: { op: "neigh.del", spec: neigh },
        counts: "removed",
      });
  }
  if (plan.length === 0) return;
  const results = await n.batch(
    ns,
    plan.map((p) => p.op),
  );
  const failedPeers = new Set<number>();
  for (let i = 0; i < results.length; i++)
    if (results[i] && plan[i]!.peer !== undefined) failedPeers.add(plan[i]!.peer!);
  for (let i = 0; i < results.length; i++) {
    const error = results[i];
    const planned = plan[i]!;
    if (!error) {
      // A write of a peer rolled back below changed nothing in the end.
      if (planned.peer === undefined || !failedPeers.has(planned.peer)) tally.count(who, planned.counts);
      continue;
    }
    const undone = planned.peer !== undefined && layerRemovals(want[planned.peer]!).length > 1;
    const refusal = {
      node: who,
      entry: describeEntry(planned.op),
      reason: undone ? `${error.reason} (the peer's other entries were removed again)` : error.reason,
    };
    tally.refused.push(refusal);
    refusals.push(refusal);
  }
  // The rollback: every entry of a failed peer, whatever of it was held before. A removal of an entry
  // that is not there fails, and is meant to.
  if (failedPeers.size)
    await n.batch(
      ns,
      [...failedPeers].flatMap((i) => layerRemovals(want[i]!)),
    );
}
