/**
 * Layers written the way a real cluster writes them: every member takes every other owner's
 * entries in its own tables, through batches (`ip -batch` on Linux). The Linux backend's layers are
 * exactly this; the simulator uses it for the members its shared storage cannot hold (one whose
 * tables differ from what sharing assumes), so both follow one definition of what a layer does.
 */
import type { NetlinkError } from "./errors.js";
import type {
  BatchOp,
  BatchResult,
  FdbSpec,
  LayerEntries,
  LayerHeld,
  LayerRefusal,
  NeighSpec,
} from "./types.js";
import { formatIpv4, formatMac } from "@podnet/core";
import { formatRouteSpec } from "./values.js";

/** An owner's entries as writes, flannel's order: neighbours, then FDB entries, then routes. */
export function layerWrites(entries: LayerEntries): BatchOp[] {
  return [
    ...entries.neighbours.map((spec): BatchOp => ({ op: "neigh.replace", spec })),
    ...entries.fdb.map((spec): BatchOp => ({ op: "fdb.append", spec })),
    ...entries.routes.map((spec): BatchOp => ({ op: "route.replace", spec })),
  ];
}

/** An owner's entries as removals: what is written back when its writes fail half way (flannel's undo). */
export function layerRemovals(entries: LayerEntries): BatchOp[] {
  return [
    ...entries.routes.map((r): BatchOp => ({ op: "route.del", spec: { dst: r.dst, via: r.via } })),
    ...entries.fdb.map((spec): BatchOp => ({ op: "fdb.del", spec })),
    ...entries.neighbours.map((e): BatchOp => ({ op: "neigh.del", spec: { dst: e.dst, dev: e.dev } })),
  ];
}

/** A neighbour's identity in one namespace: (device, address). */
export const neighIdentity = (e: Pick<NeighSpec, "dev" | "dst">) => `${e.dev} ${e.dst}`;
/** A VXLAN FDB entry's identity: (device, MAC, remote VTEP). */
export const fdbIdentity = (e: Pick<FdbSpec, "dev" | "mac" | "dst">) => `${e.dev} ${e.mac} ${e.dst}`;

/** The removals that take `before` to `after`, skipping what `after` writes again anyway. */
function removalsBetween(before: LayerEntries, after: LayerEntries): BatchOp[] {
  const routes = new Set(after.routes.map((r) => r.dst.network * 64 + r.dst.length));
  const fdb = new Set(after.fdb.map(fdbIdentity));
  const neigh = new Set(after.neighbours.map(neighIdentity));
  return layerRemovals({
    routes: before.routes.filter((r) => !routes.has(r.dst.network * 64 + r.dst.length)),
    fdb: before.fdb.filter((f) => !fdb.has(fdbIdentity(f))),
    neighbours: before.neighbours.filter((e) => !neigh.has(neighIdentity(e))),
  });
}

const EMPTY: LayerEntries = Object.freeze({ routes: [], neighbours: [], fdb: [] }) as LayerEntries;

/**
 * The entry a write is about, as a refusal names it: "10.0.2.0/24 via 10.100.0.3 dev eth0",
 * "neigh 10.244.2.0 lladdr 96:fe:d6:d5:45:cf", "fdb 96:fe:d6:d5:45:cf dst 192.168.50.2".
 */
export function describeEntry(op: BatchOp): string {
  switch (op.op) {
    case "route.add":
    case "route.replace":
    case "route.del":
      return formatRouteSpec(op.spec);
    case "neigh.replace":
      return `neigh ${formatIpv4(op.spec.dst)} lladdr ${formatMac(op.spec.lladdr)}`;
    case "neigh.del":
      return `neigh ${formatIpv4(op.spec.dst)}`;
    default:
      return `fdb ${formatMac(op.spec.mac)}${op.spec.dst !== undefined ? ` dst ${formatIpv4(op.spec.dst)}` : ""}`;
  }
}

interface Member {
  owner: string;
  /** Owners whose entries this member does not hold: the kernel refused one of them here. */
  refused: Set<string>;
}

interface Layer {
  owners: Map<string, LayerEntries>;
  members: Map<string, Member>;
}

/** Layers as per-member batches over any host API's `batch`. */
export class LayerFanout {
  private readonly layers = new Map<string, Layer>();

  constructor(private readonly batch: (ns: string, ops: readonly BatchOp[]) => Promise<BatchResult>) {}

  private layer(name: string): Layer {
    let layer = this.layers.get(name);
    if (!layer) this.layers.set(name, (layer = { owners: new Map(), members: new Map() }));
    return layer;
  }

  /** What `owner` has put in the layer (none when nothing). */
  entries(layer: string, owner: string): LayerEntries {
    return this.layers.get(layer)?.owners.get(owner) ?? EMPTY;
  }

  /** Every owner's entries, in the order they were first set. */
  owners(layer: string): ReadonlyMap<string, LayerEntries> {
    return this.layer(layer).owners;
  }

  async attach(layer: string, ns: string, owner: string): Promise<LayerRefusal[]> {
    const l = this.layer(layer);
    const member: Member = { owner, refused: new Set() };
    l.members.set(ns, member);
    const writes = [...l.owners].filter(([o]) => o !== owner);
    return this.write(ns, member, writes, []);
  }

  /** Records a member that already holds every other owner's entries (none refused), writing nothing. */
  adoptMember(layer: string, ns: string, owner: string): void {
    this.layer(layer).members.set(ns, { owner, refused: new Set() });
  }

  /** Records a layer its members already hold, writing nothing. */
  async adopt(layer: string, held: LayerHeld): Promise<void> {
    const l = this.layer(layer);
    for (const [owner, entries] of held.owners) l.owners.set(owner, entries);
    for (const [ns, owner] of held.members) this.adoptMember(layer, ns, owner);
  }

  async set(layer: string, owner: string, entries: LayerEntries): Promise<LayerRefusal[]> {
    const l = this.layer(layer);
    const before = l.owners.get(owner) ?? EMPTY;
    l.owners.set(owner, entries);
    const refusals = await Promise.all(
      [...l.members]
        .filter(([, m]) => m.owner !== owner)
        .map(([ns, m]) => {
          // A member that refused the owner's old entries holds none of them: nothing to remove.
          const removals = m.refused.has(owner) ? [] : removalsBetween(before, entries);
          m.refused.delete(owner);
          return this.write(ns, m, [[owner, entries]], removals);
        }),
    );
    return refusals.flat();
  }

  async detach(layer: string, ns: string): Promise<void> {
    this.layers.get(layer)?.members.delete(ns);
  }

  /** Forgets a namespace that is gone, in every layer. */
  forget(ns: string): void {
    for (const l of this.layers.values()) l.members.delete(ns);
  }

  /**
   * One batch with the owners' writes and the removals, then, for each owner whose writes were
   * refused, one batch taking all of its entries out again (a removal of an entry that is not there
   * fails, and is meant to).
   */
  private async write(
    ns: string,
    member: Member,
    owners: [string, LayerEntries][],
    removals: BatchOp[],
  ): Promise<LayerRefusal[]> {
    const ops: BatchOp[] = [];
    const ownerOf: string[] = [];
    // Across owners: every neighbour, then every FDB entry, then every route, so a Linux batch is
    // three runs of one tool rather than three per owner.
    for (const pick of ["neighbours", "fdb", "routes"] as const)
      for (const [owner, entries] of owners)
        for (const op of layerWrites({ ...EMPTY, [pick]: entries[pick] })) {
          ops.push(op);
          ownerOf.push(owner);
        }
    ops.push(...removals);
    if (ops.length === 0) return [];
    const results = await this.batch(ns, ops);
    const refusals: LayerRefusal[] = [];
    const failed = new Map<string, LayerEntries>();
    for (let i = 0; i < ownerOf.length; i++) {
      const error: NetlinkError | undefined = results[i];
      if (!error) continue;
      const owner = ownerOf[i]!;
      refusals.push({ ns, owner, entry: describeEntry(ops[i]!), error });
      failed.set(owner, owners.find(([o]) => o === owner)![1]);
    }
    if (failed.size) {
      for (const owner of failed.keys()) member.refused.add(owner);
      await this.batch(ns, [...failed.values()].flatMap(layerRemovals));
    }
    return refusals;
  }
}
