/**
 * Where host-local keeps its reservations. Operations are synchronous and run inside `withLock`,
 * which is exclusive across every user of the same store (a mutex in memory, flock on disk).
 */
export interface IpamStore {
  withLock<T>(fn: () => T): Promise<T>;
  /** Reserves `address` for (id, ifname); false when it is already taken. Records it as range set `rangeIndex`'s last reserved. */
  reserve(id: string, ifname: string, address: number, rangeIndex: number): boolean;
  lastReserved(rangeIndex: number): number | undefined;
  /** Releases every address of (id, ifname); falls back to entries holding the bare id (older host-local). */
  releaseById(id: string, ifname: string): void;
  getById(id: string, ifname: string): number[];
  findById(id: string, ifname: string): boolean;
  /** Every reservation, for GC and reports. */
  entries(): { address: number; id: string; ifname: string }[];
  release(address: number): void;
}

/** A store in memory: the simulator's and the browser's. */
export class MemoryIpamStore implements IpamStore {
  private readonly owners = new Map<number, { id: string; ifname: string }>();
  private readonly last = new Map<number, number>();
  private queue: Promise<unknown> = Promise.resolve();

  withLock<T>(fn: () => T): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  reserve(id: string, ifname: string, address: number, rangeIndex: number): boolean {
    if (this.owners.has(address)) return false;
    this.owners.set(address, { id: id.trim(), ifname });
    this.last.set(rangeIndex, address);
    return true;
  }

  lastReserved(rangeIndex: number): number | undefined {
    return this.last.get(rangeIndex);
  }

  releaseById(id: string, ifname: string): void {
    const mine = this.getById(id, ifname);
    for (const address of mine) this.owners.delete(address);
  }

  getById(id: string, ifname: string): number[] {
    return [...this.owners].filter(([, o]) => o.id === id.trim() && o.ifname === ifname).map(([a]) => a);
  }

  findById(id: string, ifname: string): boolean {
    return this.getById(id, ifname).length > 0;
  }

  entries(): { address: number; id: string; ifname: string }[] {
    return [...this.owners].map(([address, o]) => ({ address, ...o }));
  }

  release(address: number): void {
    this.owners.delete(address);
  }
}
