/**
 * A hash map from numbers to numbers in two typed arrays (open addressing, linear probing,
 * deletion by shifting back, so no tombstones). A node of a 5,000-node cluster holds 5,000 routes,
 * neighbours and FDB entries per table: as Map entries pointing at objects that is ≈ 250 bytes an
 * entry, here ≈ 20. Keys are non-negative integers below 2⁵³ (a prefix's network × 64 + length,
 * a device index × 2³² + an address, a MAC).
 */
import type { SimLayer } from "./layer.js";

const EMPTY = -1;

/** Two ascending lists as one. */
function mergeSorted(a: number[], b: number[]): number[] {
  if (a.length === 0) return b;
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length)
    out.push(j >= b.length || (i < a.length && a[i]! < b[j]!) ? a[i++]! : b[j++]!);
  return out;
}
const MIN_CAPACITY = 8;
const NONE = new Float64Array(0);

function hash(key: number): number {
  const high = Math.floor(key / 4294967296);
  let h = Math.imul((key >>> 0) ^ Math.imul(high, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export class NumberMap {
  private keys: Float64Array;
  private values: Float64Array;
  private mask: number;
  private count = 0;

  /** Nothing is allocated until the first entry: most of a cluster's namespaces are pods with few. */
  constructor() {
    this.keys = NONE;
    this.values = NONE;
    this.mask = -1;
  }

  get size(): number {
    return this.count;
  }

  /** The key's slot, or the empty slot where it would go; -1 before anything is allocated. */
  private slot(key: number): number {
    if (this.mask < 0) return -1;
    let i = hash(key) & this.mask;
    while (this.keys[i] !== EMPTY && this.keys[i] !== key) i = (i + 1) & this.mask;
    return i;
  }

  has(key: number): boolean {
    const i = this.slot(key);
    return i >= 0 && this.keys[i] === key;
  }

  /** The value, or undefined when the key is absent. */
  get(key: number): number | undefined {
    const i = this.slot(key);
    return i >= 0 && this.keys[i] === key ? this.values[i] : undefined;
  }

  set(key: number, value: number): void {
    let i = this.slot(key);
    if (i < 0 || this.keys[i] !== key) {
      if (i < 0 || (this.count + 1) * 4 > (this.mask + 1) * 3) {
        this.grow();
        i = this.slot(key);
      }
      this.keys[i] = key;
      this.count++;
    }
    this.values[i] = value;
  }

  delete(key: number): boolean {
    let i = this.slot(key);
    if (i < 0 || this.keys[i] !== key) return false;
    // Shift later members of the probe run back into the hole, so lookups never stop early.
    for (let j = (i + 1) & this.mask; this.keys[j] !== EMPTY; j = (j + 1) & this.mask) {
      const home = hash(this.keys[j]!) & this.mask;
      if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
        this.keys[i] = this.keys[j]!;
        this.values[i] = this.values[j]!;
        i = j;
      }
    }
    this.keys[i] = EMPTY;
    this.count--;
    return true;
  }

  /** Calls `visit` for every entry, in no particular order. */
  forEach(visit: (value: number, key: number) => void): void {
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) if (keys[i] !== EMPTY) visit(this.values[i]!, keys[i]!);
  }

  /** The keys, in no particular order (a copy: callers may delete while walking it). */
  keyList(): number[] {
    const out: number[] = [];
    this.forEach((_, key) => out.push(key));
    return out;
  }

  private grow(): void {
    const { keys, values } = this;
    const size = Math.max(MIN_CAPACITY, keys.length * 2);
    this.keys = new Float64Array(size).fill(EMPTY);
    this.values = new Float64Array(size);
    this.mask = size - 1;
    this.count = 0;
    for (let i = 0; i < keys.length; i++) if (keys[i] !== EMPTY) this.set(keys[i]!, values[i]!);
  }
}

/** What a table of a layer's shared member reads through (layer.ts), and how it leaves the layer. */
export interface SharedDevices {
  layer: SimLayer;
  self: number;
  /** The member's device name for a link index, and back (the layer names devices). */
  deviceName(index: number): string | undefined;
  deviceIndex(name: string): number | undefined;
  conflict(): void;
}

/**
 * A namespace's neighbour table: (device index × 2³² + address) → MAC and whether it is permanent,
 * packed into one number (MAC × 2 + permanent; MACs are below 2⁴⁸, so exact). A layer's shared
 * member also sees the layer's permanent neighbours; a write touching one materialises it first.
 */
export class NeighbourTable {
  private readonly map = new NumberMap();
  shared?: SharedDevices;

  get size(): number {
    return this.map.size + this.layerKeys().length;
  }

  private packed(key: number): number | undefined {
    const own = this.map.get(key);
    if (own !== undefined || !this.shared) return own;
    const mac = this.layerMac(key);
    return mac === undefined ? undefined : mac * 2 + 1;
  }

  private layerMac(key: number): number | undefined {
    const shared = this.shared;
    if (!shared) return undefined;
    const dev = shared.deviceName(Math.floor(key / 4294967296));
    return dev === undefined ? undefined : shared.layer.neighbour(dev, key % 4294967296, shared.self);
  }

  /** True when this table itself (not a layer) holds the key. */
  holdsOwn(key: number): boolean {
    return this.map.has(key);
  }

  /** This table's own keys (not a layer's). */
  ownKeys(): number[] {
    return this.map.keyList();
  }

  mac(key: number): number | undefined {
    const packed = this.packed(key);
    return packed === undefined ? undefined : Math.floor(packed / 2);
  }

  permanent(key: number): boolean {
    const packed = this.packed(key);
    return packed !== undefined && packed % 2 === 1;
  }

  set(key: number, mac: number, permanent: boolean): void {
    if (this.layerMac(key) !== undefined) this.shared!.conflict();
    this.map.set(key, mac * 2 + (permanent ? 1 : 0));
  }

  delete(key: number): boolean {
    if (!this.map.has(key) && this.layerMac(key) !== undefined) this.shared!.conflict();
    return this.map.delete(key);
  }

  keys(): number[] {
    const own = this.map.keyList();
    return this.shared ? [...own, ...this.layerKeys()] : own;
  }

  /** Every key in ascending order (the dump's): a layer's part comes presorted, merged with this table's. */
  sortedKeys(): number[] {
    const own = this.map.keyList().sort((a, b) => a - b);
    const shared = this.shared;
    if (!shared) return own;
    const devices = shared.layer
      .neighbourDevices()
      .map((dev) => [shared.deviceIndex(dev), dev] as const)
      .filter((d): d is readonly [number, string] => d[0] !== undefined)
      .sort((a, b) => a[0] - b[0]);
    const layer: number[] = [];
    for (const [index, dev] of devices)
      for (const dst of shared.layer.deviceKeysSorted("neighbours", dev))
        if (shared.layer.deviceOwner("neighbours", dev, dst) !== shared.self)
          layer.push(index * 4294967296 + dst);
    return mergeSorted(own, layer);
  }

  private layerKeys(): number[] {
    const shared = this.shared;
    if (!shared) return [];
    const out: number[] = [];
    for (const dev of shared.layer.neighbourDevices()) {
      const index = shared.deviceIndex(dev);
      if (index === undefined) continue;
      for (const [dst] of shared.layer.deviceEntries("neighbours", dev, shared.self))
        out.push(index * 4294967296 + dst);
    }
    return out;
  }

  /** Leaves the layer, keeping its neighbours as this table's own. */
  materialise(): void {
    const keys = this.layerKeys();
    const macs = keys.map((key) => this.layerMac(key)!);
    this.shared = undefined;
    keys.forEach((key, i) => this.map.set(key, macs[i]! * 2 + 1));
  }
}

/**
 * A VXLAN device's forwarding table: inner MAC → remote VTEPs. Almost every entry has one VTEP
 * (flannel's per-node entry), kept in a typed hash; the few with several (the all-zeros flood
 * list) keep an array aside.
 */
export class VxlanFdb {
  private readonly single = new NumberMap();
  private readonly several = new Map<number, number[]>();
  /** A layer's shared member's VXLAN device also sees the layer's entries for its name (layer.ts). */
  shared?: { layer: SimLayer; self: number; dev: string; conflict(): void };

  private layerRemote(mac: number): number | undefined {
    const shared = this.shared;
    return shared?.layer.fdb(shared.dev, mac, shared.self);
  }

  get(mac: number): readonly number[] | undefined {
    const one = this.single.get(mac);
    if (one !== undefined) return [one];
    const several = this.several.get(mac);
    if (several || !this.shared) return several;
    const remote = this.layerRemote(mac);
    return remote === undefined ? undefined : [remote];
  }

  has(mac: number): boolean {
    return this.holdsOwn(mac) || this.layerRemote(mac) !== undefined;
  }

  /** True when this table itself (not a layer) holds the MAC. */
  holdsOwn(mac: number): boolean {
    return this.single.has(mac) || this.several.has(mac);
  }

  /** This table's own MACs (not a layer's). */
  ownKeys(): number[] {
    return [...this.single.keyList(), ...this.several.keys()];
  }

  set(mac: number, remotes: readonly number[]): void {
    if (this.layerRemote(mac) !== undefined) this.shared!.conflict();
    this.delete(mac);
    if (remotes.length === 1) this.single.set(mac, remotes[0]!);
    else if (remotes.length > 1) this.several.set(mac, [...remotes]);
  }

  delete(mac: number): boolean {
    if (this.layerRemote(mac) !== undefined) this.shared!.conflict();
    return this.single.delete(mac) || this.several.delete(mac);
  }

  /** Every entry, by MAC (the kernel dumps in hash order; callers sort when they compare). */
  entries(): [number, readonly number[]][] {
    const out: [number, readonly number[]][] = [];
    this.single.forEach((remote, mac) => out.push([mac, [remote]]));
    for (const [mac, remotes] of this.several) out.push([mac, remotes]);
    out.sort((a, b) => a[0] - b[0]);
    const shared = this.shared;
    if (!shared) return out;
    // The layer's MACs come presorted: merge rather than sort thousands per dump.
    const merged: [number, readonly number[]][] = [];
    let i = 0;
    for (const mac of shared.layer.deviceKeysSorted("fdb", shared.dev)) {
      const remote = shared.layer.fdb(shared.dev, mac, shared.self);
      if (remote === undefined) continue;
      while (i < out.length && out[i]![0] < mac) merged.push(out[i++]!);
      merged.push([mac, [remote]]);
    }
    while (i < out.length) merged.push(out[i++]!);
    return merged;
  }

  /** Leaves the layer, keeping its entries as this table's own. */
  materialise(): void {
    const shared = this.shared;
    if (!shared) return;
    this.shared = undefined;
    for (const [mac, remote] of shared.layer.deviceEntries("fdb", shared.dev, shared.self))
      this.single.set(mac, remote);
  }
}
