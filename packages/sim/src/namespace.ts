import { Ipv4Prefix } from "@podnet/core";
import type { IptablesRule, NatTable } from "@podnet/netlink";
import { BUILTIN_CHAINS } from "@podnet/netlink";
import type { SimLink } from "./link.js";
import type { LayerView } from "./layer.js";
import { NeighbourTable } from "./number-map.js";
import { RouteTable, type RoutePool, type SimRoute } from "./route-table.js";
import { NftState } from "./nftables.js";
import { programOf } from "./nft-eval.js";
import type { CompiledIptables } from "./netfilter.js";
import { recentNames, type RecentLists } from "./recent.js";

export const LOOPBACK = Ipv4Prefix.parse("127.0.0.0/8");

/** An address in 127/8, which the kernel routes only over lo unless route_localnet is on. */
export const isLoopback = (address: number): boolean => address >>> 24 === 127;

/** How long the kernel keeps a learned path MTU (net.ipv4.route.mtu_expires, seconds). */
export const PMTU_EXPIRES = 600;

export interface SimSocket {
  protocol: "tcp" | "udp";
  /** 0 is the wildcard 0.0.0.0. */
  address: number;
  port: number;
  /** The process (container) holding it. */
  owner: string;
}

/** One direction's 5-tuple; ICMP echo uses its identifier as both ports. */
export interface ConnTuple {
  protocol: number;
  src: number;
  srcPort: number;
  dst: number;
  dstPort: number;
}

export interface ConntrackEntry {
  original: ConnTuple;
  /** What replies look like: the inverse of the original after NAT. */
  reply: ConnTuple;
  /** Rule text that chose the translation, for traces. */
  dnatBy?: string;
  snatBy?: string;
  /** The kernel clock's second at which the entry times out (refreshed by every packet it sees). */
  expires: number;
}

/**
 * How long an entry lives after its last packet, in seconds: the kernel's defaults for ICMP
 * (nf_conntrack_icmp_timeout) and unreplied UDP (udp_timeout), for TCP TIME_WAIT — a trace's process
 * closes its connection when it exits — and for a TCP connection a RST closed (tcp_timeout_close).
 */
export function conntrackTimeout(protocol: number, reset = false): number {
  return protocol === 6 ? (reset ? 10 : 120) : 30;
}

const PINNED = Symbol("pinned");

/**
 * An entry a flow-cache replay made (flow-cache.ts). A replayed overlay probe files six entries, and
 * their objects (an entry and two tuples each, about 1 KB a probe) were most of what it allocated: at
 * 5,000 nodes every young-generation collection costs about 3 ms whatever it frees, a quarter of a
 * warm pair's time. So once one has timed out and a sweep has dropped it, it is reused by the next
 * replay — unless a walk found it or a listing returned it (it is pinned then): a walk's packets and
 * records may hold on to what they found. Nothing else keeps an entry but its table.
 */
export class ReplayedEntry implements ConntrackEntry {
  /** Keyed by a symbol: an entry reads (JSON, a test's equality) as any other entry does. */
  [PINNED] = false;
  constructor(
    readonly original: ConnTuple,
    readonly reply: ConnTuple,
    public expires: number,
  ) {}
}

/** Marks a replayed entry as never to be reused: a walk found it, or a caller listed it. */
function pin(entry: ConntrackEntry): void {
  if (entry instanceof ReplayedEntry) entry[PINNED] = true;
}

/** Replayed entries timed out and swept, for the next replays (a few thousand at most). */
const spareEntries: ReplayedEntry[] = [];
const SPARE_MAX = 4096;

/** An entry for a replay to fill in: a spare one, or a new one. */
export function replayedEntry(): ReplayedEntry {
  const spare = spareEntries.pop();
  if (spare) {
    spare[PINNED] = false;
    return spare;
  }
  return new ReplayedEntry(
    { protocol: 0, src: 0, srcPort: 0, dst: 0, dstPort: 0 },
    { protocol: 0, src: 0, srcPort: 0, dst: 0, dstPort: 0 },
    0,
  );
}

/** One direction of a tracked connection: the entry, and which of its tuples this is. */
export interface ConntrackSlot {
  entry: ConntrackEntry;
  direction: "original" | "reply";
}

export const sameTuple = (a: ConnTuple, b: ConnTuple) =>
  a.src === b.src &&
  a.dst === b.dst &&
  a.srcPort === b.srcPort &&
  a.dstPort === b.dstPort &&
  a.protocol === b.protocol;

/**
 * 30 bits mixed from a tuple (a hash, not a key: the slot's own tuple settles a collision), a small
 * integer: a 53-bit number was a boxed double per lookup.
 */
export function tupleHash(t: ConnTuple): number {
  return hashTuple(t.protocol, t.src, t.srcPort, t.dst, t.dstPort);
}

/** tupleHash of a tuple given as its numbers (a replay makes no tuple object to look one up). */
export function hashTuple(
  protocol: number,
  src: number,
  srcPort: number,
  dst: number,
  dstPort: number,
): number {
  let h = Math.imul(
    src ^ Math.imul(dst, 0x9e3779b1) ^ Math.imul(srcPort ^ (dstPort << 16), 0x85ebca6b) ^ protocol,
    0xc2b2ae35,
  );
  // A product's low bits depend only on its operands' low bits: fold the high ones down, since the
  // table's index is the low bits (flows of one address pair would otherwise crowd one run of slots).
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 13;
  return h & 0x3fffffff;
}

/**
 * The conntrack table, by tuple: an open-addressing hash table of entries (hashes in an Int32Array,
 * linear probing), each entry held twice, once per direction, the direction's tuple settling a
 * collision. Written here rather than on a Map because it is the walk's busiest table: a Map with
 * numeric keys, entries coming and going by the thousand, reallocated its store and left garbage on
 * every sweep — most of a replayed probe's time (flow-cache.ts). Entries past their time are not
 * found, and are swept out when the table has doubled since the last sweep: a long run of traces
 * holds only the entries of the last half minute or two, as a kernel does, not every trace's. Slots
 * are emptied only by a sweep, which rebuilds the table, so probing never meets a deleted slot.
 */
export class ConntrackTable {
  private hashes = new Int32Array(64);
  private held: (ConntrackEntry | undefined)[] = new Array<ConntrackEntry | undefined>(64);
  /** 1 where the slot holds its entry's reply direction. */
  private replies = new Uint8Array(64);
  /** The entries confirmed since the last sweep and those it kept, densely: what a sweep reads. */
  private order: ConntrackEntry[] = [];
  private count = 0;
  private sweepAt = 1024;

  get size(): number {
    return this.count;
  }

  private tupleAt(i: number): ConnTuple {
    const entry = this.held[i]!;
    return this.replies[i] ? entry.reply : entry.original;
  }

  /** Where `tuple`'s slot is, or the empty place it would take. */
  private place(tuple: ConnTuple, hash: number): number {
    const mask = this.hashes.length - 1;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      if (this.held[i] === undefined || (this.hashes[i] === hash && sameTuple(this.tupleAt(i), tuple)))
        return i;
    }
  }

  /** The live entry `tuple` belongs to, and which of its directions it is. */
  get(tuple: ConnTuple, now: number): ConntrackSlot | undefined {
    const at = this.place(tuple, tupleHash(tuple));
    const entry = this.held[at];
    if (entry === undefined || entry.expires <= now) return undefined;
    pin(entry);
    return { entry, direction: this.replies[at] ? "reply" : "original" };
  }

  /**
   * Whether a live entry holds this tuple (given as its numbers and their hashTuple), in either
   * direction: `get` making no object (a replayed probe checks several that must find nothing).
   */
  holds(
    hash: number,
    protocol: number,
    src: number,
    srcPort: number,
    dst: number,
    dstPort: number,
    now: number,
  ): boolean {
    const mask = this.hashes.length - 1;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const entry = this.held[i];
      if (entry === undefined) return false;
      if (this.hashes[i] !== hash) continue;
      const t = this.replies[i] ? entry.reply : entry.original;
      if (
        t.src === src &&
        t.dst === dst &&
        t.srcPort === srcPort &&
        t.dstPort === dstPort &&
        t.protocol === protocol
      )
        return entry.expires > now;
    }
  }

  /** Removes the entries timed out at `now`. */
  sweep(now: number): void {
    // An entry replaced by an equal tuple's had expired (a live one would have been found instead):
    // reading the entries in order of confirming, a later one is never overwritten by an earlier.
    const kept: ConntrackEntry[] = [];
    for (const entry of this.order)
      if (entry.expires > now) kept.push(entry);
      else if (entry instanceof ReplayedEntry && !entry[PINNED] && spareEntries.length < SPARE_MAX)
        spareEntries.push(entry);
    this.order = kept;
    this.sweepAt = Math.max(1024, this.order.length * 4);
    // Room for every slot until the next sweep: no growing in between.
    this.refill(this.sweepAt);
  }

  /**
   * The table again, with room for `room` slots at most half full, from the entries in order of
   * confirming: a later one takes an equal tuple's slot, as when it was confirmed.
   */
  private refill(room: number): void {
    let capacity = 64;
    while (capacity < room * 2) capacity *= 2;
    if (capacity === this.hashes.length) {
      // The same size again (a steady flow of probes): cleared in place, since a new typed array
      // per sweep was a tenth of a replayed overlay probe (allocation, and the GC it brings on).
      this.held.fill(undefined);
    } else {
      this.hashes = new Int32Array(capacity);
      this.held = new Array<ConntrackEntry | undefined>(capacity);
      this.replies = new Uint8Array(capacity);
    }
    this.count = 0;
    for (const entry of this.order) {
      this.put(entry, 0);
      this.put(entry, 1);
    }
  }

  private put(
    entry: ConntrackEntry,
    reply: number,
    hash = tupleHash(reply ? entry.reply : entry.original),
  ): void {
    const tuple = reply ? entry.reply : entry.original;
    const at = this.place(tuple, hash);
    if (this.held[at] === undefined) this.count++;
    this.hashes[at] = hash;
    this.held[at] = entry;
    this.replies[at] = reply;
  }

  /**
   * Forgets the entries alive at `now` that `forget` picks (`conntrack -D`), rebuilding the table
   * without them; how many it forgot.
   */
  delete(forget: (entry: ConntrackEntry) => boolean, now: number): number {
    let deleted = 0;
    const kept: ConntrackEntry[] = [];
    for (const entry of this.order) {
      if (entry.expires > now && forget(entry)) deleted++;
      else kept.push(entry);
    }
    if (deleted) {
      this.order = kept;
      this.refill(this.sweepAt);
    }
    return deleted;
  }

  /** The entries alive at `now`, each once, as `conntrack -L` lists them (in no particular order). */
  list(now: number): ConntrackEntry[] {
    const out: ConntrackEntry[] = [];
    for (let i = 0; i < this.held.length; i++) {
      const entry = this.held[i];
      if (!entry || this.replies[i] || entry.expires <= now) continue;
      // What is listed is the caller's: not to be reused.
      pin(entry);
      out.push(entry);
    }
    return out;
  }

  /**
   * Holds a confirmed entry under both its tuples (replacing the entries of equal tuples). Its
   * tuples are final: an entry's reply tuple is replaced by NAT before it is confirmed, never after.
   */
  confirm(entry: ConntrackEntry, now: number, originalHash = tupleHash(entry.original)): void {
    // Also when the entries replaced (timed out, their tuples confirmed again) pile up in `order`:
    // a warm pair re-using its ports keeps the slot count still while `order` grows.
    if (this.count + 2 > this.sweepAt || this.order.length >= this.sweepAt) this.sweep(now);
    if ((this.count + 2) * 2 > this.hashes.length) this.refill(this.count + 2);
    this.order.push(entry);
    this.put(entry, 0, originalHash);
    this.put(entry, 1);
  }
}

/** A namespace's iptables: chains per table, and how many rules jump to each (the kernel's refcount). */
interface IptablesState {
  tables: Record<NatTable, Map<string, IptablesRule[]>>;
  jumps: Record<NatTable, Map<string, number>>;
  /** Rules per table, kept by `countRules` (every rule entering or leaving passes it). */
  rules: Record<NatTable, number>;
}

const NO_RULES: IptablesRule[] = [];

/**
 * One network namespace. What most namespaces never use (iptables, nftables, conntrack, learned path
 * MTUs) is created on first write: 150,000 pod namespaces hold none of it, and every object a pod
 * keeps is copied by each young-generation GC it survives (a 5,000-node build spent a third of its
 * CPU there).
 */
export class SimNamespace {
  readonly links = new Map<string, SimLink>();
  readonly routes: RouteTable;
  /** Neighbours keyed by link index × 2^32 + IPv4 address. */
  readonly neighbours = new NeighbourTable();
  private iptablesState?: IptablesState;
  private nftState?: NftState;
  /** Rules evaluated by packets walking this namespace's hooks (iptables and nftables): what a lookup costs. */
  ruleEvaluations = 0;
  /** Moves whenever a rule enters or leaves any chain (`countRules`): compiled chains are made again. */
  iptablesVersion = 0;
  /** netfilter.ts's compiled tables for the rules as they are (shared with namespaces holding the same). */
  compiledIptables?: CompiledIptables;
  private tracked?: ConntrackTable;
  /** xt_recent's lists and how many rules name each. */
  private recent?: { lists: RecentLists; refs: Map<string, number> };
  readonly sockets: SimSocket[] = [];
  /** Local IPv4 addresses → the link holding them (the kernel's local table). */
  readonly localAddresses = new Map<number, SimLink>();
  /**
   * Moved by the kernel whenever an address of this namespace comes or goes or one of its devices
   * goes up or down: what `subnetBroadcast`'s list is made from.
   */
  addressGeneration = 0;
  /** The subnet broadcast addresses while `generation` holds, with the address and link of each. */
  private broadcasts?: {
    generation: number;
    addresses: Uint32Array;
    owners: { link: SimLink; address: number }[];
  };
  forwarding = false;
  private learnedMtu?: Map<number, number>;
  /**
   * net.bridge.bridge-nf-call-iptables: bridged IPv4 frames traverse this namespace's iptables. 1 in
   * a new namespace, as the kernel starts it once br_netfilter is loaded (Docker and kubelet load it).
   */
  bridgeNfCallIptables = true;
  /**
   * net.ipv4.conf.all.route_localnet: whether a packet to or from 127/8 may be routed over a device
   * other than lo. Off, the kernel drops it as a martian (in) or refuses its route (out).
   */
  routeLocalnet = false;
  /**
   * Devices whose own route_localnet is on (net.ipv4.conf.DEV.route_localnet; the portmap plugin sets
   * its bridge's). Rare, so a set here rather than a field on every link; the kernel ORs it with
   * `all` (IN_DEV_ROUTE_LOCALNET).
   */
  localnetDevices?: Set<SimLink>;
  /** The layer this namespace is a shared member of (layers.ts): its tables read through to it. */
  layer?: LayerView;

  constructor(
    readonly name: string,
    pool: RoutePool,
  ) {
    this.routes = new RouteTable(pool, (device) => this.links.get(device));
  }

  /** Whether 127/8 may be routed over `dev`: route_localnet on for all devices or for this one. */
  routesLocalnet(dev: SimLink): boolean {
    return this.routeLocalnet || (this.localnetDevices?.has(dev) ?? false);
  }

  /** iptables chains per table, the built-in ones from the start (created on first use). */
  get tables(): Record<NatTable, Map<string, IptablesRule[]>> {
    return (this.iptablesState ??= {
      tables: {
        nat: new Map(BUILTIN_CHAINS.nat.map((c) => [c, []])),
        filter: new Map(BUILTIN_CHAINS.filter.map((c) => [c, []])),
      },
      jumps: { nat: new Map(), filter: new Map() },
      rules: { nat: 0, filter: 0 },
    }).tables;
  }

  /** How many rules jump to each chain, per table: the kernel's reference count, which `-X` checks. */
  get jumps(): Record<NatTable, Map<string, number>> {
    void this.tables;
    return this.iptablesState!.jumps;
  }

  /** A chain's rules for a packet to walk (none: an empty list), creating nothing. */
  rulesOf(table: NatTable, chain: string): readonly IptablesRule[] {
    return this.iptablesState?.tables[table].get(chain) ?? NO_RULES;
  }

  /** nftables: tables, chains, maps and rules (nftables.ts). */
  get nft(): NftState {
    return (this.nftState ??= new NftState());
  }

  /** nftables' state if it holds anything (`nft` makes it), for the hooks. */
  get nftIfAny(): NftState | undefined {
    return this.nftState;
  }

  /** Both directions of every tracked connection point at its entry. */
  get conntrack(): ConntrackTable {
    return (this.tracked ??= new ConntrackTable());
  }

  /** How many connection directions are tracked, creating nothing. */
  get conntrackSize(): number {
    return this.tracked?.size ?? 0;
  }

  /**
   * Path MTUs learned from ICMP "fragmentation needed", by destination address (the kernel's route
   * exceptions, `ip route get` shows them). They do not expire here (the kernel keeps one ten
   * minutes): an entry stays until flushed.
   */
  learnedPathMtu(dst: number): number | undefined {
    return this.learnedMtu?.get(dst);
  }

  learnPathMtu(dst: number, mtu: number): void {
    (this.learnedMtu ??= new Map()).set(dst, mtu);
  }

  /** Counts the rules, and their jumps, entering (+1) or leaving (−1) the table. */
  countRules(table: NatTable, rules: readonly IptablesRule[], delta: 1 | -1): void {
    const jumps = this.jumps[table];
    this.iptablesVersion++;
    this.iptablesState!.rules[table] += delta * rules.length;
    for (const r of rules) {
      if (r.target.kind === "jump") jumps.set(r.target.chain, (jumps.get(r.target.chain) ?? 0) + delta);
      for (const name of recentNames(r.matches)) this.referRecent(name, delta);
    }
  }

  /** xt_recent's lists (recent.ts), made on first use. */
  get recentLists(): RecentLists {
    return (this.recent ??= { lists: new Map(), refs: new Map() }).lists;
  }

  /** A rule naming a recent list came (+1) or went (−1): the kernel drops a list no rule names. */
  private referRecent(name: string, delta: 1 | -1): void {
    const recent = (this.recent ??= { lists: new Map(), refs: new Map() });
    const refs = (recent.refs.get(name) ?? 0) + delta;
    if (refs > 0) recent.refs.set(name, refs);
    else {
      recent.refs.delete(name);
      recent.lists.delete(name);
    }
  }

  /** How many rules the table's chains hold. */
  ruleCount(table: NatTable): number {
    return this.iptablesState?.rules[table] ?? 0;
  }

  /** True when some chain of the table (or an nftables base chain of its type) can change a packet. */
  hasRules(table: NatTable): boolean {
    // Asked at every hook of every hop: a count, not a walk over the table's chains.
    return (
      this.ruleCount(table) > 0 ||
      (this.nftState !== undefined && (programOf(this.nftState).types & (table === "nat" ? 1 : 2)) !== 0)
    );
  }

  /**
   * An address of this namespace, or loopback's 127/8 while lo is up — but for 127.255.255.255, whose
   * broadcast route (a /32) comes before `local 127.0.0.0/8` in the local table.
   */
  isLocal(address: number): boolean {
    if (this.localAddresses.has(address)) return true;
    return isLoopback(address) && address !== 0x7fffffff && (this.links.get("lo")?.adminUp ?? false);
  }

  /**
   * The address whose subnet broadcast `address` is, on a device that is up: the kernel's local table
   * holds `broadcast <last address>` for each address of a prefix shorter than /31 while its device
   * is up (fib_add_ifaddr). 255.255.255.255 is broadcast everywhere and is not asked here.
   */
  subnetBroadcast(address: number): { link: SimLink; address: number } | undefined {
    // A subnet broadcast ends in at least two set bits: three destinations in four are ruled out
    // before a look at the namespace's addresses (asked at every IP input).
    if ((address & 3) !== 3) return undefined;
    // The rest scan a short typed array, made again only when the addresses or devices change: the
    // walk over the address map, each link and each prefix cost a learned random trace 12 % (a few
    // cache misses a hop at 5,000 nodes; BENCHMARKS.md, "Broadcast and loopback checks").
    let list = this.broadcasts;
    if (list?.generation !== this.addressGeneration) list = this.broadcasts = this.broadcastList();
    const at = list.addresses.indexOf(address);
    return at < 0 ? undefined : list.owners[at];
  }

  /** The kernel's broadcast routes of this namespace's subnets, in the address map's order. */
  private broadcastList(): NonNullable<SimNamespace["broadcasts"]> {
    const found: number[] = [];
    const owners: { link: SimLink; address: number }[] = [];
    for (const [own, link] of this.localAddresses) {
      if (!link.adminUp) continue;
      for (const a of link.addresses)
        if (a.address === own && a.prefix.length < 31) {
          found.push(a.prefix.broadcast);
          owners.push({ link, address: own });
        }
    }
    return { generation: this.addressGeneration, addresses: Uint32Array.from(found), owners };
  }

  /** The device a packet to `address` leaves by: lo for a local address, else the route's (if any). */
  outputDevice(address: number): SimLink | undefined {
    return this.isLocal(address) ? this.links.get("lo") : this.routes.lookup(address)?.dev;
  }

  /** The MTU for a packet this namespace sends over `dev` to `dst`: the device's, or a smaller learned path MTU. */
  mtuTo(dev: SimLink, dst: number): number {
    const learned = this.learnedMtu?.get(dst);
    return learned !== undefined && learned < dev.mtu ? learned : dev.mtu;
  }

  /** The source address the kernel picks for a packet leaving by `route` toward `toward`. */
  sourceFor(route: SimRoute, toward: number): number {
    if (route.prefsrc !== undefined) return route.prefsrc;
    const onDev = route.dev.addresses;
    const match = onDev.find((a) => a.prefix.contains(toward)) ?? onDev[0];
    if (match) return match.address;
    for (const [address, link] of this.localAddresses) if (link.kind !== "loopback") return address;
    return 0;
  }

  neighbourKey(link: SimLink, address: number): number {
    return link.index * 4294967296 + address;
  }
}
