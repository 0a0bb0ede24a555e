import { Ipv4Prefix, prefixMask } from "@podnet/core";
import type { SimLink } from "./link.js";

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

/**
 * The main routing table. Lookup is longest-prefix match by one hash probe per prefix length in
 * use (a handful: /32, /24, /16, /0 in practice), not a scan over routes, because a node in a
 * 5,000-node host-gw cluster holds 5,000 routes and every hop of every trace does a lookup.
 */
export class RouteTable {
  /** byLength[len] maps a network address to its routes, lowest metric first. */
  private readonly byLength: (Map<number, SimRoute[]> | undefined)[] = new Array(33);
  /** Prefix lengths that hold routes, longest first. */
  private lengths: number[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Routes with exactly this destination, lowest metric first. */
  exact(dst: Ipv4Prefix): readonly SimRoute[] {
    return this.byLength[dst.length]?.get(dst.network) ?? [];
  }

  insert(route: SimRoute): void {
    let bucket = this.byLength[route.dst.length];
    if (!bucket) {
      bucket = this.byLength[route.dst.length] = new Map();
      this.lengths = [...this.lengths, route.dst.length].sort((a, b) => b - a);
    }
    const list = bucket.get(route.dst.network);
    if (!list) bucket.set(route.dst.network, [route]);
    else {
      const at = list.findIndex((r) => r.metric > route.metric);
      list.splice(at < 0 ? list.length : at, 0, route);
    }
    this.count++;
  }

  remove(route: SimRoute): boolean {
    const bucket = this.byLength[route.dst.length];
    const list = bucket?.get(route.dst.network);
    const at = list?.indexOf(route) ?? -1;
    if (!bucket || !list || at < 0) return false;
    list.splice(at, 1);
    this.count--;
    if (list.length === 0) {
      bucket.delete(route.dst.network);
      if (bucket.size === 0) {
        this.byLength[route.dst.length] = undefined;
        this.lengths = this.lengths.filter((l) => l !== route.dst.length);
      }
    }
    return true;
  }

  removeWhere(predicate: (route: SimRoute) => boolean): SimRoute[] {
    const gone = this.all().filter(predicate);
    for (const route of gone) this.remove(route);
    return gone;
  }

  /** Longest-prefix match; among equal prefixes the lowest metric wins. */
  lookup(address: number): SimRoute | undefined {
    for (const length of this.lengths) {
      const list = this.byLength[length]!.get((address & prefixMask(length)) >>> 0);
      if (list) return list[0];
    }
    return undefined;
  }

  /** Every route, in the kernel's dump order: by network address, longer prefixes first, then metric. */
  all(): SimRoute[] {
    const out: SimRoute[] = [];
    for (const bucket of this.byLength) if (bucket) for (const list of bucket.values()) out.push(...list);
    return out.sort(
      (a, b) => a.dst.network - b.dst.network || b.dst.length - a.dst.length || a.metric - b.metric,
    );
  }
}
