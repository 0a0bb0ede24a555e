import { Ipv4Prefix } from "@podnet/core";
import type { IptablesRule, NatTable } from "@podnet/netlink";
import { BUILTIN_CHAINS } from "@podnet/netlink";
import type { SimLink } from "./link.js";
import type { LayerView } from "./layer.js";
import { NeighbourTable } from "./number-map.js";
import { RouteTable, type RoutePool, type SimRoute } from "./route-table.js";
import { NftState } from "./nftables.js";

const LOOPBACK = Ipv4Prefix.parse("127.0.0.0/8");

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
 * (nf_conntrack_icmp_timeout) and unreplied UDP (udp_timeout), and for TCP TIME_WAIT — a trace's
 * process closes its connection when it exits.
 */
export function conntrackTimeout(protocol: number): number {
  return protocol === 6 ? 120 : 30;
}

export function tupleKey(t: ConnTuple): string {
  return `${t.protocol}|${t.src}|${t.srcPort}|${t.dst}|${t.dstPort}`;
}

/** One direction of a tracked connection: the entry, and which of its tuples this is. */
export interface ConntrackSlot {
  entry: ConntrackEntry;
  direction: "original" | "reply";
}

type Keyed = { tuple: ConnTuple; slot: ConntrackSlot };

const sameTuple = (a: ConnTuple, b: ConnTuple) =>
  a.src === b.src &&
  a.dst === b.dst &&
  a.srcPort === b.srcPort &&
  a.dstPort === b.dstPort &&
  a.protocol === b.protocol;

/**
 * 30 bits mixed from a tuple (a hash, not a key: the tuple beside each slot settles a collision).
 * Small integers are V8's cheapest Map keys; a 53-bit number was a boxed double per lookup.
 */
const mix = (t: ConnTuple) =>
  (Math.imul(
    t.src ^ Math.imul(t.dst, 0x9e3779b1) ^ Math.imul(t.srcPort ^ (t.dstPort << 16), 0x85ebca6b) ^ t.protocol,
    0xc2b2ae35,
  ) >>>
    2) &
  0x3fffffff;

/**
 * The conntrack table, by tuple. Keyed by a number mixed from the tuple, with the tuple kept beside
 * each slot to settle a collision: a string key per lookup (five numbers formatted) was a measured
 * share of every hop through a node with rules. Entries past their time are not found, and are
 * swept out when the table has doubled since the last sweep: a long run of traces holds only the
 * entries of the last half minute or two, as a kernel does, not every trace's.
 */
export class ConntrackTable {
  private readonly slots = new Map<number, Keyed | Keyed[]>();
  private count = 0;
  private sweepAt = 1024;

  get size(): number {
    return this.count;
  }

  get(tuple: ConnTuple, now: number): ConntrackSlot | undefined {
    const found = this.slots.get(mix(tuple));
    if (found === undefined) return undefined;
    const slot = Array.isArray(found)
      ? found.find((k) => sameTuple(k.tuple, tuple))?.slot
      : sameTuple(found.tuple, tuple)
        ? found.slot
        : undefined;
    return slot && slot.entry.expires > now ? slot : undefined;
  }

  /** Removes the entries timed out at `now`. */
  sweep(now: number): void {
    for (const [key, found] of this.slots) {
      if (!Array.isArray(found)) {
        if (found.slot.entry.expires <= now) {
          this.slots.delete(key);
          this.count--;
        }
        continue;
      }
      const live = found.filter((k) => k.slot.entry.expires > now);
      this.count -= found.length - live.length;
      if (!live.length) this.slots.delete(key);
      else if (live.length !== found.length) this.slots.set(key, live.length === 1 ? live[0]! : live);
    }
    this.sweepAt = Math.max(1024, this.count * 2);
  }

  set(tuple: ConnTuple, slot: ConntrackSlot, now: number): void {
    if (this.count >= this.sweepAt) this.sweep(now);
    const key = mix(tuple);
    // Tuples are never edited (an entry's reply tuple is replaced, not changed): kept as given.
    const keyed: Keyed = { tuple, slot };
    const found = this.slots.get(key);
    if (found === undefined) {
      this.slots.set(key, keyed);
      this.count++;
      return;
    }
    const list = Array.isArray(found) ? found : [found];
    const at = list.findIndex((k) => sameTuple(k.tuple, tuple));
    if (at >= 0) list[at] = keyed;
    else {
      list.push(keyed);
      this.count++;
    }
    this.slots.set(key, list.length === 1 ? list[0]! : list);
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
  private tracked?: ConntrackTable;
  readonly sockets: SimSocket[] = [];
  /** Local IPv4 addresses → the link holding them (the kernel's local table). */
  readonly localAddresses = new Map<number, SimLink>();
  forwarding = false;
  private learnedMtu?: Map<number, number>;
  /**
   * net.bridge.bridge-nf-call-iptables: bridged IPv4 frames traverse this namespace's iptables. 1 in
   * a new namespace, as the kernel starts it once br_netfilter is loaded (Docker and kubelet load it).
   */
  bridgeNfCallIptables = true;
  /** The layer this namespace is a shared member of (layers.ts): its tables read through to it. */
  layer?: LayerView;

  constructor(
    readonly name: string,
    pool: RoutePool,
  ) {
    this.routes = new RouteTable(pool, (device) => this.links.get(device));
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

  /** nftables' base chains of a type at a hook, creating nothing. */
  nftChainsAt(type: NatTable, hook: Parameters<NftState["chainsAt"]>[1]): ReturnType<NftState["chainsAt"]> {
    return this.nftState ? this.nftState.chainsAt(type, hook) : [];
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
    this.iptablesState!.rules[table] += delta * rules.length;
    for (const r of rules)
      if (r.target.kind === "jump") jumps.set(r.target.chain, (jumps.get(r.target.chain) ?? 0) + delta);
  }

  /** True when some chain of the table (or an nftables base chain of its type) can change a packet. */
  hasRules(table: NatTable): boolean {
    // Asked at every hook of every hop: a count, not a walk over the table's chains.
    return (this.iptablesState?.rules[table] ?? 0) > 0 || this.nftState?.hasBaseChains(table) === true;
  }

  /** An address of this namespace, or loopback's 127/8 while lo is up. */
  isLocal(address: number): boolean {
    if (this.localAddresses.has(address)) return true;
    return LOOPBACK.contains(address) && (this.links.get("lo")?.adminUp ?? false);
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
