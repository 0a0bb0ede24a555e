import { formatIpv4 } from "@podnet/core";
import { formatRangeSet, rangeContains, rangeSetContains, type IpRange, type RangeSet } from "./range.js";
import type { IpamStore } from "./store.js";

export interface Allocation {
  address: number;
  range: IpRange;
}

/**
 * host-local's IPAllocator over one range set: round-robin from the last reserved address + 1,
 * walking to rangeEnd, then the next range, wrapping, skipping the gateway; a freed address is
 * not handed out again until the walk comes round to it.
 */
export class RangeSetAllocator {
  constructor(
    readonly rangeSet: RangeSet,
    readonly store: IpamStore,
    readonly rangeIndex: number,
  ) {}

  private rangeFor(address: number): IpRange {
    const r = this.rangeSet.find((x) => rangeContains(x, address));
    if (!r) throw new Error(`${formatIpv4(address)} not in range set ${formatRangeSet(this.rangeSet)}`);
    return r;
  }

  get(id: string, ifname: string, requested?: number): Promise<Allocation> {
    return this.store.withLock(() => {
      if (requested !== undefined) {
        const r = this.rangeFor(requested);
        if (requested === r.gateway)
          throw new Error(`requested ip ${formatIpv4(requested)} is subnet's gateway`);
        if (!this.store.reserve(id, ifname, requested, this.rangeIndex)) {
          throw new Error(
            `requested IP address ${formatIpv4(requested)} is not available in range set ${formatRangeSet(this.rangeSet)}`,
          );
        }
        return { address: requested, range: r };
      }
      // The spec forbids a second ADD for the same (container, ifname) without a DEL in between.
      for (const held of this.store.getById(id, ifname)) {
        if (rangeSetContains(this.rangeSet, held))
          throw new Error(
            `${formatIpv4(held)} has been allocated to ${id}, duplicate allocation is not allowed`,
          );
      }
      for (const candidate of this.candidates()) {
        if (this.store.reserve(id, ifname, candidate.address, this.rangeIndex)) return candidate;
      }
      throw new Error(`no IP addresses available in range set: ${formatRangeSet(this.rangeSet)}`);
    });
  }

  release(id: string, ifname: string): Promise<void> {
    return this.store.withLock(() => this.store.releaseById(id, ifname));
  }

  /** Free addresses left in the set (for STATUS and reports), counted without reserving. */
  free(): number {
    // Counted, not walked: a /1 has two billion addresses, and STATUS holds the lock meanwhile. A
    // set's ranges do not overlap (the config check refuses that), so each reservation is in one.
    let count = 0;
    for (const r of this.rangeSet) {
      count += r.rangeEnd - r.rangeStart + 1;
      if (r.gateway >= r.rangeStart && r.gateway <= r.rangeEnd) count--;
    }
    for (const address of new Set(this.store.entries().map((e) => e.address)))
      if (this.rangeSet.some((r) => rangeContains(r, address) && address !== r.gateway)) count--;
    return count;
  }

  /** host-local's RangeIter: every address of the set once, starting after the last reserved one. */
  private *candidates(): Generator<Allocation> {
    const set = this.rangeSet;
    const last = this.store.lastReserved(this.rangeIndex);
    let index = 0;
    let current: number;
    if (last !== undefined && rangeSetContains(set, last)) {
      index = set.findIndex((r) => rangeContains(r, last));
      current = last;
    } else {
      current = set[0]!.rangeStart - 1; // so the first step lands on rangeStart
    }
    let start: number | undefined;
    for (;;) {
      const r = set[index]!;
      if (current === r.rangeEnd) {
        index = (index + 1) % set.length;
        current = set[index]!.rangeStart;
      } else current++;
      if (start === undefined) start = current;
      else if (current === start) return; // back where the walk began: the set is full
      const range = set[index]!;
      if (current !== range.gateway) yield { address: current, range };
    }
  }
}
