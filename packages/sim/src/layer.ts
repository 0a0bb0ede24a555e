/**
 * A layer's entries stored once for all its shared members (see `Netlink.layer`). In a host-gw
 * cluster of N nodes every node holds the N − 1 routes "10.0.k.0/24 via 10.100.0.k dev eth0": N²
 * entries if each node's table held its own, N here. A shared member's tables read through to
 * this storage, skipping its own owner's entries; everything a member could observe is what
 * per-member writes would give, because the storage holds only what every member would accept
 * alike. A member for which that stops being true (a write of its own touching a layer entry, a
 * device of the layer going down, an entry its kernel would refuse) is *materialised*: the kernel
 * copies what it sees into its own tables, and from then on the layer reaches it by ordinary
 * writes (`LayerFanout`, the Linux backend's way).
 */
import type { RouteValue } from "./route-table.js";
import { NumberMap } from "./number-map.js";

/** An owner's entries as values, each one the same in every member. */
export interface OwnerValues {
  routes: RouteValue[];
  neighbours: { dev: string; dst: number; mac: number }[];
  fdb: { dev: string; mac: number; dst: number }[];
}

const NONE = -1;

/** The kernel's route dump order on prefix keys (network × 64 + length): by network, longer prefixes first. */
export const dumpOrder = (a: number, b: number) =>
  Math.floor(a / 64) - Math.floor(b / 64) || (b % 64) - (a % 64);

/** Entries naming a device: all of them, routes that need it up (onlink), FDB entries (VXLAN). */
interface DeviceUse {
  any: number;
  onlink: number;
  fdb: number;
}

/** One table per device name: key (address or MAC) → owner, and key → value. */
class DeviceEntries {
  readonly owner = new NumberMap();
  readonly value = new NumberMap();
}

/** What a member's tables need to read through: the storage, and whose entries to skip. */
export interface LayerView {
  layer: SimLayer;
  /** The member's own owner: its entries are not the member's. */
  self: number;
}

/** A layer's checked gateways per device (sorted), and whether some checked route has none. */
export interface GatewayIndex {
  byDevice: ReadonlyMap<string, { gateways: Float64Array; owners: Int32Array }>;
  gatewayless: boolean;
}

export class SimLayer {
  /** Owner names → numbers, as members and entries refer to them. */
  private readonly ids = new Map<string, number>();
  private readonly names: string[] = [];
  private readonly owned = new Map<number, OwnerValues>();
  /** Shared members: namespace name → its owner's number. */
  readonly shared = new Map<string, number>();
  /**
   * Set once the layer held something sharing cannot express (two owners writing one entry, an
   * entry that is not a plain peer entry): every member is then written one by one.
   */
  fanoutOnly = false;

  private readonly routeOwner = new NumberMap();
  private readonly routeValues = new Map<number, RouteValue>();
  private readonly lengthCounts = new Int32Array(33);
  /** Prefix lengths with layer routes, longest first; `version` changes with them. */
  lengths: number[] = [];
  version = 0;
  private readonly neighbours = new Map<string, DeviceEntries>();
  private readonly fdbs = new Map<string, DeviceEntries>();
  /** Device names any entry names, with counts: a member's device of these going down materialises it. */
  private readonly devices = new Map<string, DeviceUse>();
  private readonly routeCounts = new Map<number, number>();
  private routeTotal = 0;
  private neighbourTotal = 0;
  private fdbTotal = 0;

  constructor(readonly name: string) {}

  ownerId(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.names.length;
      this.ids.set(name, id);
      this.names.push(name);
    }
    return id;
  }

  ownerName(id: number): string {
    return this.names[id]!;
  }

  private index?: { version: number; gateways: GatewayIndex };

  /**
   * The gateways the kernel checks (routes not onlink), per device name, sorted by address with their
   * owners: a member's check then asks, per interval of its own routing table, whether any other
   * owner's gateway falls there (layers.ts), instead of one route lookup per gateway.
   */
  gatewaysByDevice(): GatewayIndex {
    if (this.index?.version !== this.version) {
      const lists = new Map<string, [gateway: number, owner: number][]>();
      let gatewayless = false;
      for (const [id, values] of this.owned)
        for (const r of values.routes) {
          if (r.onlink) continue;
          if (r.gateway === undefined) gatewayless = true;
          else {
            const list = lists.get(r.devName) ?? [];
            list.push([r.gateway, id]);
            lists.set(r.devName, list);
          }
        }
      const byDevice = new Map<string, { gateways: Float64Array; owners: Int32Array }>();
      for (const [dev, list] of lists) {
        list.sort((a, b) => a[0] - b[0]);
        byDevice.set(dev, {
          gateways: Float64Array.from(list, (e) => e[0]),
          owners: Int32Array.from(list, (e) => e[1]),
        });
      }
      this.index = { version: this.version, gateways: { byDevice, gatewayless } };
    }
    return this.index.gateways;
  }

  /**
   * How each device name is used, across every owner: by routes that need it up (onlink), by
   * neighbours, by FDB entries (it must be a VXLAN device). A member checks these once per device.
   */
  deviceUses(): ReadonlyMap<string, Readonly<DeviceUse>> {
    return this.devices;
  }

  usesDevice(name: string): boolean {
    return this.devices.has(name);
  }

  /** True when another owner already writes one of these entries: members would see the later one win. */
  collides(id: number, values: OwnerValues): boolean {
    const seen = new Set<string>();
    const fresh = (key: string) => !seen.has(key) && Boolean(seen.add(key));
    for (const r of values.routes) {
      const key = r.dst.network * 64 + r.dst.length;
      const owner = this.routeOwner.get(key);
      if ((owner !== undefined && owner !== id) || !fresh(`r${key}`)) return true;
    }
    for (const n of values.neighbours) {
      const owner = this.neighbours.get(n.dev)?.owner.get(n.dst);
      if ((owner !== undefined && owner !== id) || !fresh(`n${n.dev} ${n.dst}`)) return true;
    }
    for (const f of values.fdb) {
      const owner = this.fdbs.get(f.dev)?.owner.get(f.mac);
      if ((owner !== undefined && owner !== id) || !fresh(`f${f.dev} ${f.mac}`)) return true;
    }
    return false;
  }

  /** True when the storage holds exactly these values for the owner. */
  holds(id: number, values: OwnerValues): boolean {
    const have = this.owned.get(id) ?? { routes: [], neighbours: [], fdb: [] };
    const same = <T>(a: T[], b: T[]) =>
      a.length === b.length && a.every((x, i) => JSON.stringify(x) === JSON.stringify(b[i]));
    return (
      same(have.routes, values.routes) &&
      same(have.neighbours, values.neighbours) &&
      same(have.fdb, values.fdb)
    );
  }

  /** Replaces an owner's entries in the storage (callers have materialised who must not see the change). */
  replace(id: number, values: OwnerValues): void {
    const before = this.owned.get(id);
    if (before) this.remove(id, before);
    this.owned.set(id, values);
    for (const r of values.routes) {
      const key = r.dst.network * 64 + r.dst.length;
      this.routeOwner.set(key, id);
      this.routeValues.set(key, r);
      this.version++;
      if (this.lengthCounts[r.dst.length]!++ === 0) this.updateLengths();
      this.useDevice(r.devName, 1, r.onlink ? "onlink" : undefined);
    }
    this.routeCounts.set(id, values.routes.length);
    this.routeTotal += values.routes.length;
    this.neighbourTotal += values.neighbours.length;
    this.fdbTotal += values.fdb.length;
    for (const n of values.neighbours) {
      const table = this.device(this.neighbours, n.dev);
      table.owner.set(n.dst, id);
      table.value.set(n.dst, n.mac);
      this.version++;
      this.useDevice(n.dev, 1);
    }
    for (const f of values.fdb) {
      const table = this.device(this.fdbs, f.dev);
      table.owner.set(f.mac, id);
      table.value.set(f.mac, f.dst);
      this.version++;
      this.useDevice(f.dev, 1, "fdb");
    }
  }

  /** Empties the storage (the layer dissolves into per-member writes). */
  clear(): void {
    for (const [id, values] of [...this.owned]) this.remove(id, values);
    this.owned.clear();
  }

  private remove(id: number, values: OwnerValues): void {
    for (const r of values.routes) {
      const key = r.dst.network * 64 + r.dst.length;
      this.routeOwner.delete(key);
      this.routeValues.delete(key);
      if (--this.lengthCounts[r.dst.length]! === 0) this.updateLengths();
      this.useDevice(r.devName, -1, r.onlink ? "onlink" : undefined);
    }
    this.routeTotal -= this.routeCounts.get(id) ?? 0;
    this.routeCounts.delete(id);
    this.neighbourTotal -= values.neighbours.length;
    this.fdbTotal -= values.fdb.length;
    for (const n of values.neighbours) {
      const table = this.neighbours.get(n.dev)!;
      table.owner.delete(n.dst);
      table.value.delete(n.dst);
      this.useDevice(n.dev, -1);
    }
    for (const f of values.fdb) {
      const table = this.fdbs.get(f.dev)!;
      table.owner.delete(f.mac);
      table.value.delete(f.mac);
      this.useDevice(f.dev, -1, "fdb");
    }
    this.owned.delete(id);
    this.version++;
  }

  private device(tables: Map<string, DeviceEntries>, dev: string): DeviceEntries {
    let table = tables.get(dev);
    if (!table) tables.set(dev, (table = new DeviceEntries()));
    return table;
  }

  private useDevice(dev: string, delta: 1 | -1, kind?: "onlink" | "fdb"): void {
    let use = this.devices.get(dev);
    if (!use) this.devices.set(dev, (use = { any: 0, onlink: 0, fdb: 0 }));
    use.any += delta;
    if (kind) use[kind] += delta;
    if (use.any === 0) this.devices.delete(dev);
  }

  private updateLengths(): void {
    this.lengths = [];
    for (let length = 32; length >= 0; length--) if (this.lengthCounts[length]) this.lengths.push(length);
    this.version++;
  }

  // ---- what a member sees -----------------------------------------------------------------

  /** The route to exactly this prefix key, unless it is `self`'s. */
  routeAt(key: number, self: number): RouteValue | undefined {
    const owner = this.routeOwner.get(key);
    return owner === undefined || owner === self ? undefined : this.routeValues.get(key);
  }

  /** The prefix keys of every route `self` sees. */
  routeKeys(self: number): number[] {
    const out: number[] = [];
    this.routeOwner.forEach((owner, key) => {
      if (owner !== self) out.push(key);
    });
    return out;
  }

  private sorted?: { version: number; keys: Float64Array };

  /**
   * Every route's prefix key in the kernel's dump order, sorted once per change of the layer rather
   * than once per member's dump: 5,000 members each dumping 5,000 routes would sort 25 million keys.
   */
  routeKeysInDumpOrder(): Float64Array {
    if (this.sorted?.version !== this.version) {
      const keys = new Float64Array(this.routeOwner.size);
      let i = 0;
      this.routeOwner.forEach((_, key) => (keys[i++] = key));
      keys.sort(dumpOrder);
      this.sorted = { version: this.version, keys };
    }
    return this.sorted.keys;
  }

  routeCount(self: number): number {
    return this.routeTotal - (this.routeCounts.get(self) ?? 0);
  }

  /** How many neighbours and FDB entries `self` sees (a shared member has every device they name). */
  entryCounts(self: number): { neighbours: number; fdb: number } {
    const own = this.owned.get(self);
    return {
      neighbours: this.neighbourTotal - (own?.neighbours.length ?? 0),
      fdb: this.fdbTotal - (own?.fdb.length ?? 0),
    };
  }

  /** The MAC of a (permanent) neighbour on device `dev`, unless it is `self`'s. */
  neighbour(dev: string, dst: number, self: number): number | undefined {
    return this.visible(this.neighbours.get(dev), dst, self);
  }

  /** The remote VTEP of a MAC on VXLAN device `dev`, unless it is `self`'s. */
  fdb(dev: string, mac: number, self: number): number | undefined {
    return this.visible(this.fdbs.get(dev), mac, self);
  }

  /** Every (key, value) `self` sees on a device's neighbour or FDB table. */
  deviceEntries(kind: "neighbours" | "fdb", dev: string, self: number): [number, number][] {
    const table = (kind === "neighbours" ? this.neighbours : this.fdbs).get(dev);
    const out: [number, number][] = [];
    table?.owner.forEach((owner, key) => {
      if (owner !== self) out.push([key, table.value.get(key)!]);
    });
    return out;
  }

  private sortedDevices = new Map<string, { version: number; keys: Float64Array }>();

  /**
   * A device's neighbour addresses or FDB MACs in ascending order, whoever owns them, sorted once per
   * change of the layer rather than once per member's dump (see `routeKeysInDumpOrder`).
   */
  deviceKeysSorted(kind: "neighbours" | "fdb", dev: string): Float64Array {
    const id = `${kind} ${dev}`;
    let cached = this.sortedDevices.get(id);
    if (cached?.version !== this.version) {
      const table = (kind === "neighbours" ? this.neighbours : this.fdbs).get(dev);
      const keys = new Float64Array(table?.owner.size ?? 0);
      let i = 0;
      table?.owner.forEach((_, key) => (keys[i++] = key));
      keys.sort();
      this.sortedDevices.set(id, (cached = { version: this.version, keys }));
    }
    return cached.keys;
  }

  /** The owner of a device's neighbour address or FDB MAC, or -1. */
  deviceOwner(kind: "neighbours" | "fdb", dev: string, key: number): number {
    return (kind === "neighbours" ? this.neighbours : this.fdbs).get(dev)?.owner.get(key) ?? NONE;
  }

  /** Device names with neighbour entries. */
  neighbourDevices(): string[] {
    return [...this.neighbourDeviceNames()];
  }

  /** The same names unlisted: a member's neighbour lookup asks for them on every miss of its own. */
  neighbourDeviceNames(): IterableIterator<string> {
    return this.neighbours.keys();
  }

  private visible(table: DeviceEntries | undefined, key: number, self: number): number | undefined {
    const owner = table?.owner.get(key) ?? NONE;
    return owner === NONE || owner === self ? undefined : table!.value.get(key);
  }
}
