import { prefixMask, type Ipv4Prefix } from "@podnet/core";
import type { SimLink } from "./link.js";
import { dumpOrder, type LayerView } from "./layer.js";
import { NumberMap } from "./number-map.js";

/** A route as the kernel model and the packet walk read it: its device is a link of the namespace. */
export interface SimRoute {
  dst: Ipv4Prefix;
  gateway?: number;
  dev: SimLink;
  metric: number;
  protocol?: "kernel";
  scope: "global" | "link" | "host";
  prefsrc?: number;
  onlink: boolean;
}

/** A route's value, the same in every namespace that holds it: its device by name. */
export interface RouteValue extends Omit<SimRoute, "dev"> {
  devName: string;
}

/**
 * A value as one namespace's route, naming its device. Field by field: an object rest and spread per
 * route made was a twentieth of a trace to pods whose routes nobody had read yet.
 */
function routeView(v: RouteValue, dev: SimLink): SimRoute {
  const route: SimRoute = { dst: v.dst, dev, metric: v.metric, scope: v.scope, onlink: v.onlink };
  if (v.gateway !== undefined) route.gateway = v.gateway;
  if (v.protocol !== undefined) route.protocol = v.protocol;
  if (v.prefsrc !== undefined) route.prefsrc = v.prefsrc;
  return route;
}

const SCOPES = { global: 0, link: 1, host: 2 } as const;

/** A hash of a route's value, computed without building anything (writes are the hot path). */
function routeHash(r: SimRoute): number {
  let h = Math.imul(r.dst.network ^ 0x9e3779b9, 0x85ebca6b) ^ (r.dst.length * 0x27d4eb2d);
  h = Math.imul(h ^ (r.gateway ?? 0x7fffffff), 0xc2b2ae35) ^ r.metric;
  h = Math.imul(h ^ (r.prefsrc ?? 0x3fffffff), 0x85ebca6b) ^ (SCOPES[r.scope] * 4 + (r.onlink ? 2 : 0));
  const name = r.dev.name;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return (h ^ (r.protocol ? 1 : 0)) >>> 0;
}

export function sameValue(v: RouteValue, r: SimRoute): boolean {
  return (
    v.dst.network === r.dst.network &&
    v.dst.length === r.dst.length &&
    v.gateway === r.gateway &&
    v.devName === r.dev.name &&
    v.metric === r.metric &&
    v.protocol === r.protocol &&
    v.scope === r.scope &&
    v.prefsrc === r.prefsrc &&
    v.onlink === r.onlink
  );
}

/**
 * Every distinct route value of a kernel, stored once. In a host-gw cluster of N nodes each of
 * the N routes "10.0.k.0/24 via 10.100.0.k dev eth0" is held by N − 1 nodes: one value, and each
 * node's table holds only its number. Values are reference-counted and their numbers reused.
 */
export class RoutePool {
  /** Value hash → numbers of the values with that hash (almost always one). */
  private readonly byHash = new Map<number, number[]>();
  private readonly values: (RouteValue | undefined)[] = [];
  private readonly hashes: number[] = [];
  private refs = new Uint32Array(64);
  private readonly free: number[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** The number of the route's value, counting one more holder. */
  acquire(route: SimRoute): number {
    const hash = routeHash(route);
    let id = this.lookup(hash, route);
    if (id === undefined) {
      id = this.free.pop() ?? this.values.length;
      if (id >= this.refs.length) {
        const grown = new Uint32Array(this.refs.length * 2);
        grown.set(this.refs);
        this.refs = grown;
      }
      const value: RouteValue = {
        dst: route.dst,
        devName: route.dev.name,
        metric: route.metric,
        scope: route.scope,
        onlink: route.onlink,
      };
      if (route.gateway !== undefined) value.gateway = route.gateway;
      if (route.protocol !== undefined) value.protocol = route.protocol;
      if (route.prefsrc !== undefined) value.prefsrc = route.prefsrc;
      this.values[id] = value;
      this.hashes[id] = hash;
      const bucket = this.byHash.get(hash);
      if (bucket) bucket.push(id);
      else this.byHash.set(hash, [id]);
      this.count++;
    }
    this.refs[id]!++;
    return id;
  }

  /** The number of a route's value, if some table holds it. */
  find(route: SimRoute): number | undefined {
    return this.lookup(routeHash(route), route);
  }

  private lookup(hash: number, route: SimRoute): number | undefined {
    const bucket = this.byHash.get(hash);
    if (bucket) for (const id of bucket) if (sameValue(this.values[id]!, route)) return id;
    return undefined;
  }

  release(id: number): void {
    if (--this.refs[id]! > 0) return;
    const hash = this.hashes[id]!;
    const bucket = this.byHash.get(hash)!.filter((other) => other !== id);
    if (bucket.length) this.byHash.set(hash, bucket);
    else this.byHash.delete(hash);
    this.values[id] = undefined;
    this.free.push(id);
    this.count--;
  }

  value(id: number): RouteValue {
    return this.values[id]!;
  }
}

const prefixKey = (p: Ipv4Prefix) => p.network * 64 + p.length;

/**
 * One namespace's main routing table: prefix → the number of the route value in the kernel's pool,
 * in a typed hash (about 20 bytes a route, shared values stored once). Destinations with several
 * routes (different metrics) keep their list aside. Lookup is longest-prefix match by one probe per
 * prefix length in use (a handful: /32, /24, /16, /0 in practice), not a scan over routes, because
 * a node in a 5,000-node host-gw cluster holds 5,000 routes and every hop of every trace looks up.
 */
export class RouteTable {
  /** Prefix key → number of the lowest-metric route to it. */
  private readonly heads = new NumberMap();
  /**
   * Prefix key → every route to it, lowest metric first; only for destinations with several. This
   * and the caches below are made on first use: most tables (150,000 pods' two routes) never need them.
   */
  private lists?: Map<number, number[]>;
  private readonly lengthCounts = new Int32Array(33);
  /** Prefix lengths that hold routes, longest first. */
  private lengths: number[] = [];
  private count = 0;
  /** Routes the walk looked up, as SimRoutes: traffic uses few of a table's routes. */
  private views?: Map<number, SimRoute>;
  /**
   * Set while the namespace is a shared member of a layer (layer.ts): the layer's routes are read
   * through, and a write touching one first materialises the member (`conflict`), so this table
   * then holds them itself and the write meets exactly what per-member writes would have left.
   */
  shared?: LayerView & { conflict(): void };
  /** The layer route last looked up, and its view (see `layerView`). */
  private lastLayerValue?: RouteValue;
  private lastLayerView?: SimRoute;
  /** Private and layer prefix lengths merged, for the layer version and private lengths they were made of. */
  private merged?: { lengths: number[]; version: number; own: number[] };

  constructor(
    private readonly pool: RoutePool,
    private readonly link: (name: string) => SimLink | undefined,
  ) {}

  get size(): number {
    return this.count + (this.shared ? this.shared.layer.routeCount(this.shared.self) : 0);
  }

  /** The layer's route to exactly this prefix key that this namespace sees, if any. */
  private layerRoute(key: number): RouteValue | undefined {
    return this.shared?.layer.routeAt(key, this.shared.self);
  }

  /** Numbers of the routes to a destination, lowest metric first. */
  ids(key: number): readonly number[] {
    const list = this.lists?.get(key);
    if (list) return list;
    const head = this.heads.get(key);
    return head === undefined ? [] : [head];
  }

  private view(id: number): SimRoute {
    const value = this.pool.value(id);
    return routeView(value, this.link(value.devName)!);
  }

  /** The values of the routes to exactly this destination, lowest metric first (no copies). */
  exactValues(dst: Ipv4Prefix): RouteValue[] {
    const own = this.ids(prefixKey(dst)).map((id) => this.pool.value(id));
    const layer = this.layerRoute(prefixKey(dst));
    return layer ? [layer] : own;
  }

  /** The prefix keys of this table's own routes (not a layer's). */
  ownKeys(): number[] {
    return this.heads.keyList();
  }

  /** True when this table itself (not a layer) holds a route to exactly this destination. */
  holdsOwn(dst: Ipv4Prefix): boolean {
    return this.heads.has(prefixKey(dst));
  }

  /** Routes with exactly this destination, lowest metric first. */
  exact(dst: Ipv4Prefix): SimRoute[] {
    const layer = this.layerRoute(prefixKey(dst));
    return layer ? [this.layerView(layer)] : this.ids(prefixKey(dst)).map((id) => this.view(id));
  }

  /**
   * A layer route as this namespace's own (its device this namespace's link). Only the last one is
   * kept: random pod pairs at 5,000 nodes look up a different one each time, and a view kept per
   * route a node ever used (25 million of them in the end) cost a weak map insertion each, grew
   * without bound and slowed every collection; a new one is a short-lived object.
   */
  private layerView(value: RouteValue): SimRoute {
    if (this.lastLayerValue === value) return this.lastLayerView!;
    const view = routeView(value, this.link(value.devName)!);
    this.lastLayerValue = value;
    this.lastLayerView = view;
    return view;
  }

  /** Leaves the layer, keeping its routes as this table's own (see `shared`). */
  materialise(): RouteValue[] {
    const shared = this.shared;
    if (!shared) return [];
    this.shared = undefined;
    this.lastLayerValue = this.lastLayerView = undefined;
    const values = shared.layer.routeKeys(shared.self).map((key) => shared.layer.routeAt(key, shared.self)!);
    for (const value of values) this.insert(routeView(value, this.link(value.devName)!));
    return values;
  }

  insert(route: SimRoute): void {
    const key = prefixKey(route.dst);
    if (this.layerRoute(key)) this.shared!.conflict();
    const id = this.pool.acquire(route);
    const existing = this.ids(key);
    if (existing.length === 0) {
      this.heads.set(key, id);
      if (this.lengthCounts[route.dst.length]!++ === 0) this.updateLengths();
    } else {
      const list = [...existing];
      const at = list.findIndex((other) => this.pool.value(other).metric > route.metric);
      list.splice(at < 0 ? list.length : at, 0, id);
      (this.lists ??= new Map()).set(key, list);
      this.heads.set(key, list[0]!);
    }
    this.count++;
  }

  remove(route: SimRoute): boolean {
    const id = this.pool.find(route);
    const key = prefixKey(route.dst);
    const list = this.ids(key);
    if (id === undefined || !list.includes(id)) {
      const layer = this.layerRoute(key);
      if (!layer || !sameValue(layer, route)) return false;
      this.shared!.conflict();
      return this.remove(route);
    }
    const remaining = list.filter((other) => other !== id);
    if (remaining.length === 0) {
      this.heads.delete(key);
      if (--this.lengthCounts[route.dst.length]! === 0) this.updateLengths();
    } else this.heads.set(key, remaining[0]!);
    if (remaining.length > 1) this.lists!.set(key, remaining);
    else this.lists?.delete(key);
    this.views?.delete(id);
    this.pool.release(id);
    this.count--;
    return true;
  }

  /** Removes a route read with exactValues/allValues. */
  removeValue(value: RouteValue): boolean {
    const { devName, ...rest } = value;
    return this.remove({ ...rest, dev: this.link(devName)! });
  }

  /** Removes this table's own routes that match (the kernel materialises a member first when layer routes may). */
  removeWhere(predicate: (route: SimRoute) => boolean): SimRoute[] {
    const gone = this.ownValues()
      .map((v) => {
        const { devName, ...rest } = v;
        return { ...rest, dev: this.link(devName)! };
      })
      .filter(predicate);
    for (const route of gone) this.remove(route);
    return gone;
  }

  /** Longest-prefix match; among equal prefixes the lowest metric wins. */
  lookup(address: number): SimRoute | undefined {
    const shared = this.shared;
    const lengths = shared ? this.mergedLengths() : this.lengths;
    for (const length of lengths) {
      const key = ((address & prefixMask(length)) >>> 0) * 64 + length;
      const id = this.heads.get(key);
      if (id === undefined) {
        const layer = shared?.layer.routeAt(key, shared.self);
        if (layer) return this.layerView(layer);
        continue;
      }
      let view = this.views?.get(id);
      if (!view) (this.views ??= new Map()).set(id, (view = this.view(id)));
      return view;
    }
    return undefined;
  }

  private mergedLengths(): number[] {
    const layer = this.shared!.layer;
    const m = this.merged;
    if (!m || m.version !== layer.version || m.own !== this.lengths) {
      const all = new Set([...this.lengths, ...layer.lengths]);
      this.merged = { lengths: [...all].sort((a, b) => b - a), version: layer.version, own: this.lengths };
    }
    return this.merged!.lengths;
  }

  /** Every route, in the kernel's dump order: by network address, longer prefixes first, then metric. */
  all(): SimRoute[] {
    return this.allValues().map((v) => {
      const { devName, ...rest } = v;
      return { ...rest, dev: this.link(devName)! };
    });
  }

  /** The values of every route, in dump order (no copies). */
  allValues(): RouteValue[] {
    const own = this.heads.keyList().sort(dumpOrder);
    const out: RouteValue[] = [];
    const shared = this.shared;
    if (!shared) {
      for (const key of own) for (const id of this.ids(key)) out.push(this.pool.value(id));
      return out;
    }
    // Merge this table's few keys into the layer's, already in dump order.
    const layer = shared.layer.routeKeysInDumpOrder();
    let i = 0;
    for (let j = 0; j <= layer.length; j++) {
      const next = j < layer.length ? layer[j]! : undefined;
      while (i < own.length && (next === undefined || dumpOrder(own[i]!, next) < 0))
        for (const id of this.ids(own[i++]!)) out.push(this.pool.value(id));
      if (next === undefined) break;
      const value = shared.layer.routeAt(next, shared.self);
      if (value) out.push(value);
    }
    return out;
  }

  /** This table's own routes' values, without the layer's. */
  private ownValues(): RouteValue[] {
    const out: RouteValue[] = [];
    for (const key of this.heads.keyList()) for (const id of this.ids(key)) out.push(this.pool.value(id));
    return out;
  }

  private updateLengths(): void {
    this.lengths = [];
    for (let length = 32; length >= 0; length--) if (this.lengthCounts[length]) this.lengths.push(length);
  }
}
