import {
  ArpOp,
  BROADCAST_MAC,
  EtherType,
  IcmpType,
  IcmpUnreachableCode,
  IpProtocol,
  Ipv4Prefix,
  TcpFlags,
  encodePacket,
  formatIpv4,
  formatMac,
  isMulticastMac,
  parseIpv4,
  type ArpHeader,
  type EthernetHeader,
  type Header,
  type IcmpHeader,
  type Ipv4Header,
  type Packet,
  type TcpHeader,
  type VxlanHeader,
} from "@podnet/core";
import { outerSourcePort, type FlowRecording } from "./flow-cache.js";
import type { SimKernel } from "./kernel.js";
import type { ArpIndex, SimLink } from "./link.js";
import { conntrackTimeout, type ConnTuple, type ConntrackEntry, type SimNamespace } from "./namespace.js";
import type { Verdict } from "./netfilter.js";
import { runHook } from "./hooks.js";
import type { SimRoute } from "./route-table.js";
import type { Trace, TraceEvent, TraceHop, TraceSummary } from "./trace.js";

export interface SendOptions {
  /** The sending namespace (a pod's, a node's). */
  from: string;
  /** The process sending, for the trace (a container's name). */
  owner?: string;
  to: string;
  protocol?: "icmp" | "tcp" | "udp";
  /** Destination port for TCP and UDP. */
  port?: number;
  srcPort?: number;
  /**
   * Bytes of payload after the ICMP/TCP/UDP header, as ping -s counts them (the IP packet is 28 bytes
   * more for ICMP and UDP). Default: 56 for ICMP (ping's), 0 for TCP, 32 for UDP.
   */
  size?: number;
  ttl?: number;
  /**
   * Path MTU discovery as ping -M sets it: true is `-M do` (DF always; too big for the route fails
   * with "message too long"), false is `-M dont` (never DF; routers fragment), unset is ping's
   * default `-M want` (DF on what fits the route, a bigger packet fragmented by the sender).
   */
  dontFragment?: boolean;
  /** The namespace the sender means to reach; arriving elsewhere is reported as a wrong destination. */
  expectNamespace?: string;
}

/** The TCP header that answers a SYN: SYN-ACK from a listener (with its MSS), RST-ACK from a closed port. */
function answerSyn(syn: TcpHeader, flags: number, seq: number, window: number, mss?: number): TcpHeader {
  const tcp: TcpHeader = {
    kind: "tcp",
    srcPort: syn.dstPort,
    dstPort: syn.srcPort,
    seq,
    ack: (syn.seq + 1) >>> 0,
    flags,
    window,
    urgent: 0,
  };
  if (mss !== undefined) tcp.options = mssOption(mss);
  return tcp;
}

/** TCP's MSS option (kind 2, length 4), as a SYN and a SYN-ACK carry it. */
function mssOption(mss: number): Uint8Array {
  return Uint8Array.of(2, 4, mss >> 8, mss & 0xff);
}

/** The MSS a TCP header offers, if it carries the option. */
function mssOf(tcp: TcpHeader): number | undefined {
  const o = tcp.options;
  if (!o) return undefined;
  for (let i = 0; i + 1 < o.length;) {
    if (o[i] === 0) return undefined;
    if (o[i] === 1) {
      i++;
      continue;
    }
    if (o[i] === 2 && o[i + 1] === 4) return (o[i + 2]! << 8) | o[i + 3]!;
    i += Math.max(o[i + 1]!, 2);
  }
  return undefined;
}

/** The MSS the kernel offers over a device: its MTU less the IPv4 and TCP headers (ipv4_default_advmss). */
const advertisedMss = (mtu: number) => Math.min(mtu - 40, 65495);

interface Frame {
  eth: EthernetHeader;
  arp?: ArpHeader;
  skb?: Skb;
}

/** A packet inside the walk: header objects are never mutated, only replaced. */
interface Skb {
  ip: Ipv4Header;
  l4: Header;
  payload: Uint8Array;
  vxlan?: VxlanHeader;
  inner?: Frame;
  mark: number;
  ct?: { entry: ConntrackEntry; direction: "original" | "reply"; isNew: boolean; related?: boolean };
  /** ICMP errors: the offending packet as the error quotes it (its IP header and first 8 bytes). */
  quoted?: Skb;
  /**
   * Set once the packet is fragmented: it travels as `count` fragments, none longer than `largest`
   * bytes, and is walked as one (every fragment takes the same path) until reassembled at the destination.
   */
  fragments?: { count: number; largest: number };
}

/**
 * Copies with one shape. `{ ...skb, ip: { ...skb.ip, ttl } }` was the largest self time of the walk:
 * skbs and headers whose optional fields come and go make V8's object spread take its generic path
 * on every hop. Every skb and IPv4 header the walk makes comes from these two.
 */
function skbWith(s: Skb, ip: Ipv4Header = s.ip, l4: Header = s.l4): Skb {
  return {
    ip,
    l4,
    payload: s.payload,
    vxlan: s.vxlan,
    inner: s.inner,
    mark: s.mark,
    ct: s.ct,
    quoted: s.quoted,
    fragments: s.fragments,
  };
}

function ipCopy(h: Ipv4Header): Ipv4Header {
  const out: Ipv4Header = {
    kind: "ipv4",
    tos: h.tos,
    id: h.id,
    dontFragment: h.dontFragment,
    moreFragments: h.moreFragments,
    fragmentOffset: h.fragmentOffset,
    ttl: h.ttl,
    protocol: h.protocol,
    src: h.src,
    dst: h.dst,
  };
  if (h.options) out.options = h.options;
  return out;
}

class StopWalk extends Error {}

const MAX_STEPS = 4000;
const LOOPBACK = Ipv4Prefix.parse("127.0.0.0/8");
const ZERO_MAC = 0;
const zeroPayloads = new Map<number, Uint8Array>();

function zeros(size: number): Uint8Array {
  let bytes = zeroPayloads.get(size);
  if (!bytes) zeroPayloads.set(size, (bytes = new Uint8Array(size)));
  return bytes;
}

function l4Size(h: Header): number {
  return h.kind === "tcp" ? 20 + (h.options?.length ?? 0) : 8;
}

export function ipLength(skb: Skb): number {
  const body = skb.vxlan ? 8 + frameLength(skb.inner!) : skb.payload.length;
  return 20 + (skb.ip.options?.length ?? 0) + l4Size(skb.l4) + body;
}

/** The longest IP packet that crosses a link for this skb: a fragment's, or the whole packet. */
function largestPiece(skb: Skb): number {
  if (skb.fragments) return skb.fragments.largest;
  if (!skb.vxlan) return ipLength(skb);
  const inner = skb.inner!;
  // Each inner fragment is encapsulated on its own: outer IP + UDP + VXLAN + inner Ethernet.
  return 20 + 8 + 8 + 14 + (inner.arp ? 28 : largestPiece(inner.skb!));
}

/**
 * The same packet as fragments no longer than `mtu`: the payload after the IP header is cut at
 * multiples of 8 bytes; a fragment that is cut again splits into as many pieces as it needs.
 */
function fragment(skb: Skb, mtu: number): Skb {
  const header = 20 + (skb.ip.options?.length ?? 0);
  const payload = ipLength(skb) - header;
  const piece = (mtu - header) & ~7;
  const before = skb.fragments ? skb.fragments.largest - header : payload;
  const whole = Math.floor(payload / before);
  const rest = payload - whole * before;
  const count = whole * Math.ceil(before / piece) + (rest ? Math.ceil(rest / piece) : 0);
  const out = skbWith(skb);
  out.fragments = { count, largest: header + Math.min(piece, before) };
  return out;
}

/** A packet's size as the trace names it: the IP packet, and the payload `--size` gives. */
function sizeText(skb: Skb): string {
  const size = ipLength(skb);
  return skb.vxlan
    ? `${size}-byte IP packet (VXLAN)`
    : `${size}-byte IP packet (${skb.payload.length}-byte payload)`;
}

function frameLength(f: Frame): number {
  return 14 + (f.arp ? 28 : ipLength(f.skb!));
}

function skbHeaders(skb: Skb): Header[] {
  return skb.vxlan ? [skb.ip, skb.l4, skb.vxlan, ...frameHeaders(skb.inner!)] : [skb.ip, skb.l4];
}

function frameHeaders(f: Frame): Header[] {
  return [f.eth, ...(f.arp ? [f.arp] : skbHeaders(f.skb!))];
}

function innermostPayload(skb: Skb): Uint8Array {
  return skb.vxlan ? (skb.inner!.skb ? innermostPayload(skb.inner!.skb) : new Uint8Array()) : skb.payload;
}

function framePacket(f: Frame): Packet {
  return { headers: frameHeaders(f), payload: f.skb ? innermostPayload(f.skb) : new Uint8Array() };
}

function skbPacket(skb: Skb): Packet {
  return { headers: skbHeaders(skb), payload: innermostPayload(skb) };
}

/** What a hop shows of the packet: the skb or frame itself (never mutated), made a Packet when read. */
type PacketSource = Skb | Frame | Packet;
const packetOf = (source: PacketSource): Packet =>
  "headers" in source ? source : "eth" in source ? framePacket(source) : skbPacket(source);

/**
 * A hop as the walk records it: references, not text or packets. Formatting a packet snapshot for
 * every hop was a measured share of a trace that nobody reads when only the outcome is wanted (a
 * bench, a reachability matrix); `Trace.hops` makes them on first read.
 */
interface HopRecord {
  direction: "request" | "reply";
  ns: string;
  event: TraceEvent;
  /** The sentence, or what makes it: a function of values captured when the hop happened. */
  detail: Detail;
  source: PacketSource;
  dev: string | undefined;
  wire: "in" | "out" | undefined;
}

/**
 * A hop's sentence made when read. Only values that cannot change afterwards may be captured —
 * numbers, names, skbs, frames, routes (route values are replaced, never edited) — never a device's
 * MAC or a bridge's port set, which later commands change.
 */
type Detail = string | (() => string);

function hopOf(r: HopRecord): TraceHop {
  const hop: TraceHop = {
    direction: r.direction,
    ns: r.ns,
    event: r.event,
    detail: typeof r.detail === "string" ? r.detail : r.detail(),
    packet: packetOf(r.source),
  };
  if (r.dev !== undefined) hop.dev = r.dev;
  if (r.wire !== undefined) hop.wire = r.wire;
  return hop;
}

/**
 * A trace whose `hops` are an own enumerable accessor (JSON, spreads and structured clones read it),
 * made from the walk's records on first read and kept; the records are private, so two traces are
 * equal by what they show. One descriptor for every trace: per-trace closures, or a WeakMap entry
 * per trace, cost more than the snapshots they save (measured).
 */
class WalkTrace {
  outcome: Trace["outcome"] = "dropped";
  reason = "";
  declare hops: TraceHop[];
  declare deliveredTo?: Trace["deliveredTo"];
  declare data?: Trace["data"];
  #records: HopRecord[] | undefined;

  constructor(
    public replyReceived: boolean,
    records: HopRecord[],
    public hopCount = records.length,
  ) {
    this.#records = records;
    Object.defineProperty(this, "hops", WalkTrace.HOPS);
  }

  private static readonly HOPS: PropertyDescriptor = {
    enumerable: true,
    configurable: true,
    get(this: WalkTrace) {
      return this.keep((this.#records ?? []).map(hopOf));
    },
    set(this: WalkTrace, hops: TraceHop[]) {
      this.keep(hops);
    },
  };

  /** `hops` becomes a plain data property holding these, and the records go. */
  private keep(hops: TraceHop[]): TraceHop[] {
    this.#records = undefined;
    Object.defineProperty(this, "hops", {
      value: hops,
      enumerable: true,
      configurable: true,
      writable: true,
    });
    return hops;
  }
}

function tupleOf(skb: Skb): ConnTuple | undefined {
  const { ip, l4 } = skb;
  if (l4.kind === "tcp" || l4.kind === "udp")
    return { protocol: ip.protocol, src: ip.src, srcPort: l4.srcPort, dst: ip.dst, dstPort: l4.dstPort };
  if (l4.kind === "icmp" && (l4.type === IcmpType.ECHO_REQUEST || l4.type === IcmpType.ECHO_REPLY)) {
    return {
      protocol: ip.protocol,
      src: ip.src,
      srcPort: l4.identifier ?? 0,
      dst: ip.dst,
      dstPort: l4.identifier ?? 0,
    };
  }
  return undefined;
}

/** The destination port of TCP and UDP; ICMP's identifier is tracked like a port but is not one. */
const dstPortOf = (skb: Skb) => (skb.l4.kind === "tcp" || skb.l4.kind === "udp" ? skb.l4.dstPort : undefined);

const invert = (t: ConnTuple): ConnTuple => ({
  protocol: t.protocol,
  src: t.dst,
  srcPort: t.dstPort,
  dst: t.src,
  dstPort: t.srcPort,
});

/** RFC 792/1122: an ICMP error quotes the offending IP header and the first 8 bytes after it. */
function quoteBytes(offending: Skb): Uint8Array {
  return encodePacket(skbPacket(offending)).subarray(0, 20 + (offending.ip.options?.length ?? 0) + 8);
}

/**
 * The conntrack key of the flow an ICMP error is about (conntrack's RELATED): the quoted packet
 * went the other way, so the error belongs to the inverse of the quoted packet's tuple.
 */
function relatedTuple(skb: Skb): ConnTuple | undefined {
  if (!skb.quoted || skb.l4.kind !== "icmp") return undefined;
  if (skb.l4.type !== IcmpType.DEST_UNREACHABLE && skb.l4.type !== IcmpType.TIME_EXCEEDED) return undefined;
  const inner = tupleOf(skb.quoted);
  return inner && invert(inner);
}

/**
 * Destination NAT of a packet, and of the quoted packet inside an ICMP error: nf_nat translates the
 * error's outer destination and, mirrored, the inner packet's source, so the sender recognises it.
 */
function natDst(skb: Skb, address: number, port?: number): Skb {
  const out = withDst(skb, address, port);
  if (!skb.quoted) return out;
  out.quoted = withSrc(skb.quoted, address, port);
  out.payload = quoteBytes(out.quoted);
  return out;
}

/** Source NAT of a packet, and of the quoted packet's destination inside an ICMP error. */
function natSrc(skb: Skb, address: number, port?: number): Skb {
  const out = withSrc(skb, address, port);
  if (!skb.quoted) return out;
  out.quoted = withDst(skb.quoted, address, port);
  out.payload = quoteBytes(out.quoted);
  return out;
}

function withDst(skb: Skb, address: number, port?: number): Skb {
  const l4 =
    port !== undefined && (skb.l4.kind === "tcp" || skb.l4.kind === "udp")
      ? { ...skb.l4, dstPort: port }
      : skb.l4;
  const ip = ipCopy(skb.ip);
  ip.dst = address;
  return skbWith(skb, ip, l4);
}

function withSrc(skb: Skb, address: number, port?: number): Skb {
  const l4 =
    port !== undefined && (skb.l4.kind === "tcp" || skb.l4.kind === "udp")
      ? { ...skb.l4, srcPort: port }
      : skb.l4;
  const ip = ipCopy(skb.ip);
  ip.src = address;
  return skbWith(skb, ip, l4);
}

/**
 * Port names for a flood decision (all ports but `except`, with carrier when asked); a 5,000-port
 * segment is summarised, not listed. The count comes from the bridge's port index (`carriers`, kept
 * per topology version): walking 5,000 ports to count them was a tenth of a random trace at 5,000 nodes.
 */
function portList(ports: Set<SimLink>, carriers: number, except: SimLink | undefined, carrierOnly: boolean) {
  let count = carrierOnly ? carriers : ports.size;
  if (except && ports.has(except) && (!carrierOnly || except.carrier)) count--;
  const names: string[] = [];
  for (const p of ports) {
    if (names.length === 6) break;
    if (p !== except && (!carrierOnly || p.carrier)) names.push(p.name);
  }
  if (count === 0) return "no other port";
  if (count <= 6) return names.join(", ");
  return `${count} ports (${names.slice(0, 3).join(", ")}, …)`;
}

const endpoint = (address: number, port?: number) =>
  port === undefined ? formatIpv4(address) : `${formatIpv4(address)}:${port}`;

function routeText(r: SimRoute): string {
  const dst = r.dst.length === 0 ? "default" : r.dst.toString();
  return `${dst}${r.gateway !== undefined ? ` via ${formatIpv4(r.gateway)}` : ""} dev ${r.dev.name}${r.onlink ? " onlink" : ""}${r.metric ? ` metric ${r.metric}` : ""}`;
}

/**
 * One exchange walked through the simulated kernel: the request, then the answer the destination
 * gives (echo reply, SYN-ACK, RST, ICMP error), hop by hop.
 */
class PacketWalk {
  readonly hops: HopRecord[] = [];
  direction: "request" | "reply" = "request";
  private steps = 0;
  private result?: { outcome: Trace["outcome"]; reason: string; deliveredTo?: Trace["deliveredTo"] };
  private firstDrop?: string;
  private icmpReason?: string;
  replyReceived = false;
  private expectsReply = true;
  /** Depth of flood copies being walked: a host ignoring a copy not addressed to it records nothing. */
  private flooding = 0;
  /** The sender's path MTU discovery, as ping -M names it: DF set always, never, or on what fits. */
  private readonly pmtudisc: "do" | "want" | "dont";
  /** TCP: the bytes written once connected, the SYN as sent, and the SYN-ACK that answered it. */
  private readonly dataBytes: number;
  private syn?: Skb;
  private synAck?: Skb;
  private dataPhase = false;
  private dataDelivered = false;
  private dataDrop?: string;
  private segmentSize = 0;
  /** The answer as it was delivered to the sender (the last reply hop there), for a summary. */
  private answer?: PacketSource;

  constructor(
    private readonly kernel: SimKernel,
    private readonly origin: SimNamespace,
    private readonly options: SendOptions,
    /** Set when the walk is recorded for the flow cache (flow-cache.ts). */
    private readonly rec?: FlowRecording,
  ) {
    this.pmtudisc = options.dontFragment === undefined ? "want" : options.dontFragment ? "do" : "dont";
    this.dataBytes = options.protocol === "tcp" ? (options.size ?? 0) : 0;
  }

  /** The sender's own packet, which its socket's path MTU discovery setting governs. */
  private isSendersRequest(ns: SimNamespace): boolean {
    return ns === this.origin && this.direction === "request" && !this.result;
  }

  // ---- recording --------------------------------------------------------------------------

  private record(
    ns: SimNamespace,
    event: TraceEvent,
    detail: Detail,
    source: PacketSource,
    dev?: SimLink,
    wire?: "in" | "out",
  ): void {
    this.hops.push({ direction: this.direction, ns: ns.name, event, detail, source, dev: dev?.name, wire });
    if (event === "deliver" && this.direction === "reply" && ns === this.origin) this.answer = source;
  }

  /** The walk changed what later walks read (ARP, FDB, path MTU): the flow cache's walks are stale. */
  private learned(): void {
    this.kernel.epoch++;
  }

  private step(): void {
    if (++this.steps > MAX_STEPS) {
      this.firstDrop ??= `the walk stopped after ${MAX_STEPS} steps (a forwarding or bridging loop)`;
      throw new StopWalk();
    }
  }

  private drop(ns: SimNamespace, reason: string, packet: PacketSource, dev?: SimLink): void {
    this.record(ns, "drop", reason, packet, dev);
    if (this.direction === "request" && !this.result) this.firstDrop ??= `${reason} (at ${ns.name})`;
    else if (this.dataPhase && this.direction === "request") this.dataDrop ??= `${reason} (at ${ns.name})`;
    else if (this.direction === "reply")
      this.firstDrop ??= `the answer was dropped: ${reason} (at ${ns.name})`;
  }

  /** The sending process gets an error back (no route, no ARP answer, message too long). */
  private localError(ns: SimNamespace, reason: string, packet: PacketSource): void {
    if (this.direction === "request" && !this.result) {
      this.record(ns, "drop", reason, packet);
      this.result = { outcome: "unreachable", reason: `${reason} (at ${ns.name})` };
    } else this.drop(ns, reason, packet);
  }

  // ---- the exchange -----------------------------------------------------------------------

  run(input: Skb): void {
    try {
      // The socket's source address is chosen as connect() would, so the first hop shows it.
      const route = this.origin.isLocal(input.ip.dst) ? undefined : this.origin.routes.lookup(input.ip.dst);
      let skb = route ? withSrc(input, this.origin.sourceFor(route, route.gateway ?? input.ip.dst)) : input;
      if (skb.l4.kind === "tcp") {
        // The SYN carries no data, only the MSS this side can take over its route.
        const mtu = (route?.dev ?? this.origin.links.get("lo")!).mtu;
        skb = skbWith(skb, skb.ip, { ...skb.l4, options: mssOption(advertisedMss(mtu)) });
        this.syn = skb;
      }
      this.record(
        this.origin,
        "send",
        `${this.options.owner ?? "a process"} in ${this.origin.name} sends to ${this.options.to}`,
        skb,
      );
      this.ipOutput(this.origin, skb);
      if (this.synAck && this.dataBytes > 0) this.sendData();
    } catch (error) {
      if (!(error instanceof StopWalk)) throw error;
    }
  }

  /** What the walk came to, written into a trace or a summary (in the order a trace lists it). */
  conclude<T extends Omit<TraceSummary, "hopCount">>(trace: T): T {
    if (this.result) {
      trace.outcome = this.result.outcome;
      trace.reason = this.result.reason;
      if (this.result.deliveredTo) trace.deliveredTo = this.result.deliveredTo;
      const reachedSomething =
        this.result.outcome === "reached" ||
        this.result.outcome === "refused" ||
        this.result.outcome === "wrong-destination";
      if (this.synAck && this.dataBytes > 0) {
        if (this.dataDelivered) {
          const segments = Math.ceil(this.dataBytes / this.segmentSize);
          const largest = Math.min(this.segmentSize, this.dataBytes);
          trace.data = { bytes: this.dataBytes, segments, largest };
          trace.reason += `; ${this.dataBytes} bytes sent as ${segments} segment${segments > 1 ? "s" : ""} of at most ${largest} bytes`;
        } else {
          trace.outcome = "dropped";
          trace.reason += `, but the data never arrived: ${this.dataDrop ?? "no segment was taken"}`;
        }
      }
      if (reachedSomething && this.expectsReply && !this.replyReceived) {
        trace.outcome = "dropped";
        trace.reason = `${this.result.reason}, but ${this.firstDrop ?? "the answer never came back"}`;
      }
    } else {
      trace.reason = this.icmpReason ?? this.firstDrop ?? "no answer";
    }
    return trace;
  }

  /** The conclusion without hop records, with the answer as the sender got it. */
  summary(): TraceSummary {
    const s = this.conclude<TraceSummary>({
      outcome: "dropped",
      reason: "",
      replyReceived: this.replyReceived,
      hopCount: this.hops.length,
    });
    if (this.answer) {
      const { headers } = packetOf(this.answer);
      const ip = headers.find((h) => h.kind === "ipv4");
      const icmp = headers.find((h) => h.kind === "icmp");
      if (ip) s.answer = icmp ? { ttl: ip.ttl, icmp: { type: icmp.type, code: icmp.code } } : { ttl: ip.ttl };
    }
    return s;
  }

  /** The destination took the request. */
  private arrived(
    ns: SimNamespace,
    skb: Skb,
    outcome: "reached" | "refused",
    reason: string,
    owner?: string,
  ): void {
    if (this.direction !== "request" || this.result) return;
    const port = skb.l4.kind === "tcp" || skb.l4.kind === "udp" ? skb.l4.dstPort : undefined;
    const deliveredTo: Trace["deliveredTo"] = { ns: ns.name, address: formatIpv4(skb.ip.dst) };
    if (port !== undefined) deliveredTo.port = port;
    if (owner) deliveredTo.owner = owner;
    const expected = this.options.expectNamespace;
    if (expected !== undefined && expected !== ns.name) {
      this.result = {
        outcome: "wrong-destination",
        reason: `reached ${ns.name}, which also holds ${formatIpv4(skb.ip.dst)}, not ${expected}`,
        deliveredTo,
      };
    } else this.result = { outcome, reason, deliveredTo };
    this.direction = "reply";
  }

  // ---- IP output --------------------------------------------------------------------------

  /** A packet a process or the kernel of `ns` originates. */
  private ipOutput(ns: SimNamespace, input: Skb): void {
    let skb = input;
    const lo = ns.links.get("lo")!;
    let route = ns.isLocal(skb.ip.dst) ? undefined : ns.routes.lookup(skb.ip.dst);
    if (!route && !ns.isLocal(skb.ip.dst)) {
      return this.localError(
        ns,
        `connect: Network is unreachable (no route to ${formatIpv4(skb.ip.dst)})`,
        skb,
      );
    }
    if (skb.ip.src === 0)
      skb = withSrc(skb, route ? ns.sourceFor(route, route.gateway ?? skb.ip.dst) : skb.ip.dst);
    const out = this.natOutput(ns, skb);
    if (!out) return;
    skb = out;
    if (ns.hasRules("filter") && !this.filter(ns, "OUTPUT", skb, undefined, route?.dev)) return;
    if (ns.isLocal(skb.ip.dst)) {
      const dst = skb.ip.dst;
      this.record(ns, "route", () => `${formatIpv4(dst)} is local: via lo`, skb, lo);
      const confirmed = this.natPostrouting(ns, skb, lo);
      if (!confirmed) return;
      return this.ipInput(ns, lo, confirmed);
    }
    route = ns.routes.lookup(skb.ip.dst);
    if (!route)
      return this.localError(
        ns,
        `connect: Network is unreachable (no route to ${formatIpv4(skb.ip.dst)})`,
        skb,
      );
    const dst = skb.ip.dst;
    const chosen = route;
    this.record(ns, "route", () => `route to ${formatIpv4(dst)}: ${routeText(chosen)}`, skb, route.dev);
    this.finishOutput(ns, route, skb, true);
  }

  private finishOutput(ns: SimNamespace, route: SimRoute, input: Skb, local: boolean): void {
    let skb = input;
    const dev = route.dev;
    if (!dev.carrier) {
      if (local) return this.localError(ns, `connect: Network is down (${dev.name} has no carrier)`, skb);
      return this.drop(ns, `${dev.name} is down or has no carrier`, skb, dev);
    }
    const size = largestPiece(skb);
    // Local packets honour the path MTU learned for their destination (the kernel's route exception).
    const mtu = local ? ns.mtuTo(dev, skb.ip.dst) : dev.mtu;
    if (size > mtu) {
      // ping's default (-M want) sets DF only on what fits the route; a bigger packet is fragmented here.
      if (skb.ip.dontFragment && local && this.pmtudisc === "want" && this.isSendersRequest(ns)) {
        const ip = ipCopy(skb.ip);
        ip.dontFragment = false;
        skb = skbWith(skb, ip);
      }
      if (skb.ip.dontFragment) {
        if (local)
          return this.localError(
            ns,
            `message too long, mtu=${mtu}: ${sizeText(skb)} with DF over ${dev.name}${mtu < dev.mtu ? ` (path MTU to ${formatIpv4(skb.ip.dst)} learned from ICMP fragmentation needed)` : ""}`,
            skb,
          );
        this.drop(
          ns,
          `${sizeText(skb)} with DF does not fit ${dev.name} (mtu ${dev.mtu}): fragmentation needed`,
          skb,
          dev,
        );
        return this.icmpError(
          ns,
          skb,
          IcmpType.DEST_UNREACHABLE,
          IcmpUnreachableCode.FRAGMENTATION_NEEDED,
          `fragmentation needed: mtu ${dev.mtu} at ${ns.name} ${dev.name}`,
          dev.mtu,
        );
      }
      skb = fragment(skb, mtu);
      this.record(
        ns,
        "fragment",
        `${sizeText(skb)} over mtu ${mtu}: sent as ${skb.fragments!.count} fragments of at most ${skb.fragments!.largest} bytes (DF not set)`,
        skb,
        dev,
      );
    }
    const post = this.natPostrouting(ns, skb, dev);
    if (!post) return;
    skb = post;
    const nextHop = route.gateway ?? skb.ip.dst;
    const mac = this.resolve(ns, dev, nextHop, skb);
    if (mac === undefined) {
      const reason = `no ARP reply for ${formatIpv4(nextHop)} on ${dev.name}: host unreachable`;
      if (local) return this.localError(ns, `connect: No route to host (${reason})`, skb);
      this.drop(ns, reason, skb, dev);
      return this.icmpError(
        ns,
        skb,
        IcmpType.DEST_UNREACHABLE,
        IcmpUnreachableCode.HOST,
        `host unreachable: ${reason} at ${ns.name}`,
      );
    }
    this.transmit(dev, { eth: { kind: "ethernet", src: dev.mac, dst: mac, etherType: EtherType.IPV4 }, skb });
  }

  /** The neighbour table, then ARP on the wire, as the kernel resolves a next hop. */
  private resolve(ns: SimNamespace, dev: SimLink, nextHop: number, skb: Skb): number | undefined {
    if (dev.kind === "loopback") return ZERO_MAC;
    const key = ns.neighbourKey(dev, nextHop);
    const known = ns.neighbours.mac(key);
    if (known !== undefined) return known;
    const sender =
      dev.addresses.find((a) => a.prefix.contains(nextHop))?.address ??
      dev.addresses[0]?.address ??
      skb.ip.src;
    const request: Frame = {
      eth: { kind: "ethernet", src: dev.mac, dst: BROADCAST_MAC, etherType: EtherType.ARP },
      arp: {
        kind: "arp",
        op: ArpOp.REQUEST,
        senderMac: dev.mac,
        senderIp: sender,
        targetMac: 0,
        targetIp: nextHop,
      },
    };
    this.record(
      ns,
      "arp-request",
      () => `who-has ${formatIpv4(nextHop)} tell ${formatIpv4(sender)} on ${dev.name}`,
      request,
      dev,
    );
    this.transmit(dev, request);
    return ns.neighbours.mac(key);
  }

  // ---- devices ----------------------------------------------------------------------------

  private transmit(dev: SimLink, frame: Frame): void {
    this.step();
    const ns = dev.ns;
    this.record(ns, "transmit", `out ${dev.name}`, frame, dev, "out");
    switch (dev.kind) {
      case "loopback":
        return this.receive(dev, frame);
      case "veth":
        if (!dev.peer || !dev.carrier) return this.drop(ns, `${dev.name}: peer is down`, frame, dev);
        return this.receive(dev.peer, frame);
      case "bridge":
        return this.bridgeForward(dev, frame, undefined);
      case "vxlan":
        return this.vxlanTransmit(dev, frame);
      case "dummy":
        return this.drop(ns, `${dev.name} is a dummy device: it discards what it is given`, frame, dev);
    }
  }

  private receive(dev: SimLink, frame: Frame): void {
    this.step();
    if (dev.kind !== "loopback") this.record(dev.ns, "receive", `in ${dev.name}`, frame, dev, "in");
    if (!dev.adminUp) return this.drop(dev.ns, `${dev.name} is down`, frame, dev);
    if (dev.master) return this.bridgeInput(dev.master, dev, frame);
    this.ipReceive(dev, frame);
  }

  private bridgeInput(bridge: SimLink, port: SimLink, input: Frame): void {
    const ns = bridge.ns;
    if (!bridge.adminUp) return this.drop(ns, `bridge ${bridge.name} is down`, input, bridge);
    const { src, dst } = input.eth;
    const fdb = bridge.fdb!;
    if (!isMulticastMac(src)) {
      const known = fdb.get(src);
      // Learned entries have no age here: one already pointing at this port stays as it is.
      if (!known || (known.learned && known.port !== port)) {
        fdb.set(src, { port, learned: true });
        this.learned();
      }
    }
    let toSelf = dst === bridge.mac || bridge.portMacs!.has(dst);
    let frame = input;
    if (ns.bridgeNfCallIptables && input.skb) {
      // br_netfilter: every IPv4 frame entering a port meets PREROUTING, whoever it is addressed to.
      const pre = this.natPrerouting(ns, input.skb, bridge);
      if (!pre) return;
      frame = { ...input, skb: pre };
      if (pre.ip.dst !== input.skb.ip.dst) {
        const bridged = this.bridgedDnat(bridge, frame);
        if (bridged === null) return;
        if (bridged) {
          frame = bridged;
          toSelf = false;
        } else toSelf = true; // translated to somewhere routed: up to the IP stack, as the bridge's own
      }
    }
    if (toSelf) {
      const own = frame.eth.dst;
      this.record(
        ns,
        "bridge",
        () => `${bridge.name}: ${formatMac(own)} is the bridge's own address: up to ${ns.name}'s IP stack`,
        frame,
        bridge,
      );
      return this.ipReceive(
        bridge,
        frame.eth.dst === bridge.mac ? frame : { ...frame, eth: { ...frame.eth, dst: bridge.mac } },
      );
    }
    const to = frame.eth.dst;
    if (isMulticastMac(to)) {
      const forwarded = this.bridgeNetfilter(bridge, frame);
      if (!forwarded) return;
      frame = forwarded;
      this.record(
        ns,
        "bridge",
        `${bridge.name}: broadcast from ${port.name}: flood to ${portList(bridge.ports!, this.arpIndex(bridge).carriers, port, false)} and up to the bridge`,
        frame,
        bridge,
      );
      for (const p of this.floodPorts(bridge, frame, port)) if (p.carrier) this.floodCopy(p, frame);
      return this.ipReceive(bridge, frame);
    }
    const entry = fdb.get(to);
    if (entry) {
      if (entry.port === port && !port.hairpin) {
        return this.drop(
          ns,
          `${bridge.name}: ${formatMac(to)} is behind ${port.name}, where the frame came from, and hairpin is off`,
          frame,
          bridge,
        );
      }
      this.record(
        ns,
        "bridge",
        () =>
          `${bridge.name}: fdb ${formatMac(to)} → port ${entry.port.name}${entry.port === port ? " (hairpin)" : ""}`,
        frame,
        bridge,
      );
      if (!entry.port.carrier) return this.drop(ns, `${entry.port.name} has no carrier`, frame, entry.port);
      const forwarded = this.bridgeNetfilter(bridge, frame);
      return forwarded && this.transmit(entry.port, forwarded);
    }
    const forwarded = this.bridgeNetfilter(bridge, frame);
    if (!forwarded) return;
    this.record(
      ns,
      "bridge",
      `${bridge.name}: ${formatMac(to)} unknown: flood to ${portList(bridge.ports!, this.arpIndex(bridge).carriers, port, true)}`,
      forwarded,
      bridge,
    );
    for (const p of bridge.ports!) if (p !== port && p.carrier) this.floodCopy(p, forwarded);
  }

  /**
   * The ports a flooded frame must be walked through. For an ARP request, the bridge's ARP index
   * names the few that can answer or react (the target's host, and ports that are not plain
   * hosts); copies to the rest would be received and ignored, as the kernel does, with no trace
   * kept. Everything else goes to every port but the one it came from.
   */
  private floodPorts(bridge: SimLink, frame: Frame, from: SimLink | undefined): Iterable<SimLink> {
    if (frame.arp?.op !== ArpOp.REQUEST) return [...bridge.ports!].filter((p) => p !== from);
    const index = this.arpIndex(bridge);
    const targets = index.byAddress.get(frame.arp.targetIp);
    const ports = targets ? [...targets, ...index.others] : index.others;
    return ports.length > 1
      ? ports.filter((p) => p !== from).sort((a, b) => index.order.get(a)! - index.order.get(b)!)
      : ports.filter((p) => p !== from);
  }

  private arpIndex(bridge: SimLink): ArpIndex {
    const version = this.kernel.topologyVersion;
    if (bridge.arpIndex?.version === version) return bridge.arpIndex;
    const index: ArpIndex = { version, byAddress: new Map(), others: [], order: new Map(), carriers: 0 };
    for (const port of bridge.ports!) {
      index.order.set(port, index.order.size);
      if (port.carrier) index.carriers++;
      const peer = port.peer;
      if (port.kind !== "veth" || !peer || peer.master || peer.kind !== "veth") {
        index.others.push(port);
        continue;
      }
      for (const address of peer.ns.localAddresses.keys()) {
        if (LOOPBACK.contains(address)) continue;
        const list = index.byAddress.get(address);
        if (list) list.push(port);
        else index.byAddress.set(address, [port]);
      }
    }
    bridge.arpIndex = index;
    return index;
  }

  /**
   * Sends a flooded copy out of one port. The copy is walked (whoever answers must emerge from the
   * model), but when no host takes it — only transmits and receives happened — its records are
   * dropped: a 1,000-port segment would otherwise add two thousand hops to every first contact,
   * and the bridge's flood hop already names the ports.
   */
  private floodCopy(port: SimLink, frame: Frame): void {
    const mark = this.hops.length;
    this.flooding++;
    try {
      this.transmit(port, frame);
    } finally {
      this.flooding--;
    }
    let kept = false;
    for (let i = mark; i < this.hops.length && !kept; i++)
      kept = this.hops[i]!.event !== "transmit" && this.hops[i]!.event !== "receive";
    if (!kept) this.hops.length = mark;
  }

  /** Frames the bridge's own IP stack sends out of the bridge device. */
  private bridgeForward(bridge: SimLink, frame: Frame, _from: SimLink | undefined): void {
    const ns = bridge.ns;
    const dst = frame.eth.dst;
    const entry = isMulticastMac(dst) ? undefined : bridge.fdb!.get(dst);
    if (entry) {
      this.record(
        ns,
        "bridge",
        () => `${bridge.name}: fdb ${formatMac(dst)} → port ${entry.port.name}`,
        frame,
        bridge,
      );
      if (!entry.port.carrier) return this.drop(ns, `${entry.port.name} has no carrier`, frame, entry.port);
      return this.transmit(entry.port, frame);
    }
    const why = isMulticastMac(dst) ? "broadcast" : `${formatMac(dst)} unknown`;
    this.record(
      ns,
      "bridge",
      `${bridge.name}: ${why}: flood to ${portList(bridge.ports!, this.arpIndex(bridge).carriers, undefined, true)}`,
      frame,
      bridge,
    );
    for (const p of this.floodPorts(bridge, frame, undefined)) if (p.carrier) this.floodCopy(p, frame);
  }

  /**
   * br_netfilter: a bridged IPv4 frame (PREROUTING already passed at the port) meets FORWARD and
   * POSTROUTING once the bridge has chosen where it goes.
   */
  private bridgeNetfilter(bridge: SimLink, frame: Frame): Frame | undefined {
    const ns = bridge.ns;
    const skb = frame.skb;
    if (!ns.bridgeNfCallIptables || !skb) return frame;
    if (ns.hasRules("filter") && !this.filter(ns, "FORWARD", skb, bridge, bridge)) return undefined;
    const post = this.natPostrouting(ns, skb, bridge);
    return post ? { ...frame, skb: post } : undefined;
  }

  /**
   * br_netfilter after a DNAT at the port (br_nf_pre_routing_finish): when the new destination is
   * reached through this same bridge, the frame is not routed but bridged to that host's MAC — so a
   * pod whose Service picked itself gets its frame back through its own port, which needs hairpin
   * mode. Returns the re-addressed frame, undefined when the destination is routed elsewhere (up
   * to the IP stack), or null when the neighbour cannot be resolved.
   */
  private bridgedDnat(bridge: SimLink, frame: Frame): Frame | undefined | null {
    const ns = bridge.ns;
    const skb = frame.skb!;
    if (ns.isLocal(skb.ip.dst)) return undefined;
    const route = ns.routes.lookup(skb.ip.dst);
    if (route?.dev !== bridge) return undefined;
    const nextHop = route.gateway ?? skb.ip.dst;
    const mac = this.resolve(ns, bridge, nextHop, skb);
    if (mac === undefined) {
      this.drop(
        ns,
        `no ARP reply for ${formatIpv4(nextHop)} on ${bridge.name}: host unreachable`,
        skb,
        bridge,
      );
      return null;
    }
    const bridged: Frame = { ...frame, eth: { ...frame.eth, dst: mac } };
    this.record(
      ns,
      "bridge",
      `${bridge.name}: translated to ${formatIpv4(skb.ip.dst)}, which is behind this bridge: bridged to ${formatMac(mac)}, not routed (br_netfilter)`,
      bridged,
      bridge,
    );
    return bridged;
  }

  private vxlanTransmit(dev: SimLink, frame: Frame): void {
    const ns = dev.ns;
    const vx = dev.vxlan!;
    const remotes = vx.fdb.get(frame.eth.dst) ?? vx.fdb.get(ZERO_MAC) ?? [];
    if (remotes.length === 0) {
      return this.drop(
        ns,
        `${dev.name}: no FDB entry for ${formatMac(frame.eth.dst)} and no default destination`,
        frame,
        dev,
      );
    }
    const inner = frame.skb ? tupleOf(frame.skb) : undefined;
    // One flow keeps one outer port; a replayed flow's port is hashed from its own inner flow.
    const srcPort = outerSourcePort(inner, frame.eth.src);
    if (inner) this.rec?.encaps.push({ inner, port: srcPort });
    for (const remote of remotes) {
      const skb: Skb = {
        ip: {
          kind: "ipv4",
          tos: 0,
          id: 0,
          dontFragment: false,
          moreFragments: false,
          fragmentOffset: 0,
          ttl: 64,
          protocol: IpProtocol.UDP,
          src: vx.local ?? 0,
          dst: remote,
        },
        l4: { kind: "udp", srcPort, dstPort: vx.dstport },
        payload: zeros(0),
        vxlan: { kind: "vxlan", vni: vx.vni },
        inner: frame,
        mark: 0,
      };
      this.record(
        ns,
        "encap",
        () =>
          `${dev.name}: VXLAN vni ${vx.vni} to ${formatIpv4(remote)}:${vx.dstport} (fdb ${formatMac(frame.eth.dst)}), +50 bytes`,
        skb,
        dev,
      );
      this.ipOutput(ns, skb);
    }
  }

  private ipReceive(dev: SimLink, frame: Frame): void {
    const ns = dev.ns;
    const dst = frame.eth.dst;
    if (dev.kind !== "loopback" && dst !== dev.mac && !isMulticastMac(dst)) {
      if (!this.flooding)
        this.record(
          ns,
          "drop",
          `${dev.name}: frame for ${formatMac(dst)} is not addressed to ${formatMac(dev.mac)}`,
          frame,
          dev,
        );
      return;
    }
    if (frame.arp) return this.arpInput(dev, frame.arp);
    if (frame.skb) this.ipInput(ns, dev, frame.skb);
  }

  private arpInput(dev: SimLink, arp: ArpHeader): void {
    const ns = dev.ns;
    const learn = () => {
      const key = ns.neighbourKey(dev, arp.senderIp);
      if (!ns.neighbours.permanent(key)) {
        ns.neighbours.set(key, arp.senderMac, false);
        this.learned();
      }
    };
    if (arp.op === ArpOp.REQUEST) {
      // arp_ignore=0: answer for any local address, whichever device holds it.
      if (!ns.localAddresses.has(arp.targetIp) || LOOPBACK.contains(arp.targetIp)) return;
      learn();
      const reply: Frame = {
        eth: { kind: "ethernet", src: dev.mac, dst: arp.senderMac, etherType: EtherType.ARP },
        arp: {
          kind: "arp",
          op: ArpOp.REPLY,
          senderMac: dev.mac,
          senderIp: arp.targetIp,
          targetMac: arp.senderMac,
          targetIp: arp.senderIp,
        },
      };
      this.record(
        ns,
        "arp-reply",
        () => `${formatIpv4(arp.targetIp)} is-at ${formatMac(reply.arp!.senderMac)} (${ns.name} ${dev.name})`,
        reply,
        dev,
      );
      return this.transmit(dev, reply);
    }
    if (ns.localAddresses.has(arp.targetIp)) {
      learn();
      this.record(
        ns,
        "arp-reply",
        () => `learned ${formatIpv4(arp.senderIp)} is-at ${formatMac(arp.senderMac)} on ${dev.name}`,
        { headers: [arp], payload: zeros(0) },
        dev,
      );
    }
  }

  // ---- IP input and forwarding ------------------------------------------------------------

  private ipInput(ns: SimNamespace, inDev: SimLink, input: Skb): void {
    // A frame that came up through a bridge with br_netfilter has passed PREROUTING at the port.
    const pre = input.ct ? input : this.natPrerouting(ns, input, inDev);
    if (!pre) return;
    let skb = pre;
    if (inDev.kind !== "loopback" && ns.localAddresses.has(skb.ip.src)) {
      // fib_validate_source: a packet from the outside claiming one of our own addresses is a martian.
      return this.drop(
        ns,
        `martian source ${formatIpv4(skb.ip.src)} on ${inDev.name}: that address is ${ns.name}'s own`,
        skb,
        inDev,
      );
    }
    if (ns.isLocal(skb.ip.dst) || skb.ip.dst === 0xffffffff) {
      if (ns.hasRules("filter") && !this.filter(ns, "INPUT", skb, inDev, undefined)) return;
      const taken = this.natInput(ns, skb);
      if (!taken) return;
      return this.localDeliver(ns, inDev, taken);
    }
    if (!ns.forwarding) {
      return this.drop(
        ns,
        `${formatIpv4(skb.ip.dst)} is not a local address and ip_forward is 0 here: not forwarded`,
        skb,
        inDev,
      );
    }
    const route = ns.routes.lookup(skb.ip.dst);
    if (!route) {
      this.drop(ns, `no route to ${formatIpv4(skb.ip.dst)}`, skb, inDev);
      return this.icmpError(
        ns,
        skb,
        IcmpType.DEST_UNREACHABLE,
        IcmpUnreachableCode.NET,
        `network unreachable: ${ns.name} has no route to ${formatIpv4(skb.ip.dst)}`,
      );
    }
    if (skb.ip.ttl <= 1) {
      this.drop(ns, `TTL ${skb.ip.ttl} expires here`, skb, inDev);
      return this.icmpError(ns, skb, IcmpType.TIME_EXCEEDED, 0, `time exceeded: TTL ran out at ${ns.name}`);
    }
    const decremented = ipCopy(skb.ip);
    decremented.ttl--;
    skb = skbWith(skb, decremented);
    const ttl = skb.ip.ttl;
    this.record(ns, "forward", () => `forward: ${routeText(route)}, ttl ${ttl + 1}→${ttl}`, skb, route.dev);
    if (ns.hasRules("filter") && !this.filter(ns, "FORWARD", skb, inDev, route.dev)) return;
    this.finishOutput(ns, route, skb, false);
  }

  private localDeliver(ns: SimNamespace, inDev: SimLink, input: Skb): void {
    let skb = input;
    if (skb.fragments) {
      this.record(
        ns,
        "fragment",
        `${ns.name} reassembles ${skb.fragments.count} fragments into one ${sizeText(skb)}`,
        skb,
        inDev,
      );
      skb = skbWith(skb);
      skb.fragments = undefined;
    }
    const { ip, l4 } = skb;
    if (l4.kind === "udp" && this.vxlanDecap(ns, skb)) return;
    if (ns === this.origin && this.isAnswer(skb)) return this.answerReceived(ns, skb);
    const here = `${ns.name} ${inDev.name}`;
    if (l4.kind === "icmp") {
      if (l4.type !== IcmpType.ECHO_REQUEST)
        return this.record(ns, "drop", `icmp type ${l4.type} for nobody waiting in ${ns.name}`, skb, inDev);
      this.record(
        ns,
        "deliver",
        () => `echo request for ${formatIpv4(ip.dst)} answered by the kernel of ${ns.name}`,
        skb,
        inDev,
      );
      this.arrived(ns, skb, "reached", `echo reply from ${formatIpv4(ip.dst)} (${ns.name})`);
      return this.reply(
        ns,
        skb,
        {
          kind: "icmp",
          type: IcmpType.ECHO_REPLY,
          code: 0,
          identifier: l4.identifier ?? 0,
          sequence: l4.sequence ?? 0,
        },
        skb.payload,
      );
    }
    if (l4.kind !== "tcp" && l4.kind !== "udp") return;
    const protocol = l4.kind;
    const socket = ns.sockets.find(
      (s) => s.protocol === protocol && s.port === l4.dstPort && (s.address === 0 || s.address === ip.dst),
    );
    if (protocol === "tcp") {
      if (this.dataPhase && socket && !(l4.flags & TcpFlags.SYN) && l4.flags & TcpFlags.ACK) {
        this.dataDelivered = true;
        return this.record(
          ns,
          "deliver",
          `${skb.payload.length}-byte segment to ${endpoint(ip.dst, l4.dstPort)} taken by ${socket.owner}`,
          skb,
          inDev,
        );
      }
      if (!(l4.flags & TcpFlags.SYN) || l4.flags & TcpFlags.ACK)
        return this.record(ns, "drop", `tcp segment without a connection at ${here}`, skb, inDev);
      if (socket) {
        this.record(
          ns,
          "deliver",
          `SYN to ${endpoint(ip.dst, l4.dstPort)}: ${socket.owner} is listening; answers SYN-ACK`,
          skb,
          inDev,
        );
        this.arrived(
          ns,
          skb,
          "reached",
          `connected: SYN-ACK from ${endpoint(ip.dst, l4.dstPort)} (${socket.owner} in ${ns.name})`,
          socket.owner,
        );
        const back = ns.outputDevice(ip.src);
        const mss = back && advertisedMss(back.mtu);
        return this.reply(ns, skb, answerSyn(l4, TcpFlags.SYN | TcpFlags.ACK, 0x1000, 65160, mss), zeros(0));
      }
      this.record(
        ns,
        "deliver",
        `SYN to ${endpoint(ip.dst, l4.dstPort)}: nothing listens on tcp port ${l4.dstPort} in ${ns.name}; answers RST`,
        skb,
        inDev,
      );
      this.arrived(
        ns,
        skb,
        "refused",
        `connection refused: RST from ${endpoint(ip.dst, l4.dstPort)} (${ns.name}: no listener)`,
      );
      return this.reply(ns, skb, answerSyn(l4, TcpFlags.RST | TcpFlags.ACK, 0, 0), zeros(0));
    }
    if (socket) {
      this.record(
        ns,
        "deliver",
        `udp to ${endpoint(ip.dst, l4.dstPort)} taken by ${socket.owner}`,
        skb,
        inDev,
      );
      this.expectsReply = false;
      this.replyReceived = false;
      return this.arrived(
        ns,
        skb,
        "reached",
        `delivered to ${socket.owner} on ${endpoint(ip.dst, l4.dstPort)} (${ns.name})`,
        socket.owner,
      );
    }
    this.record(
      ns,
      "deliver",
      `udp to ${endpoint(ip.dst, l4.dstPort)}: no socket in ${ns.name}; answers ICMP port unreachable`,
      skb,
      inDev,
    );
    this.arrived(
      ns,
      skb,
      "refused",
      `ICMP port unreachable from ${formatIpv4(ip.dst)} (${ns.name}: no listener on udp ${l4.dstPort})`,
    );
    this.icmpError(ns, skb, IcmpType.DEST_UNREACHABLE, IcmpUnreachableCode.PORT, "");
  }

  /** What the sender was waiting for: an echo reply, SYN-ACK or RST, or an ICMP error. */
  private isAnswer(skb: Skb): boolean {
    const l4 = skb.l4;
    if (l4.kind === "icmp") return l4.type !== IcmpType.ECHO_REQUEST;
    if (l4.kind === "tcp")
      return (
        (l4.flags & (TcpFlags.SYN | TcpFlags.ACK)) === (TcpFlags.SYN | TcpFlags.ACK) ||
        (l4.flags & TcpFlags.RST) !== 0
      );
    return false;
  }

  private answerReceived(ns: SimNamespace, skb: Skb): void {
    const l4 = skb.l4;
    this.replyReceived = true;
    if (l4.kind === "tcp" && l4.flags & TcpFlags.SYN) this.synAck = skb;
    if (l4.kind === "icmp" && l4.type !== IcmpType.ECHO_REPLY) {
      this.learnPathMtu(ns, skb);
      const what =
        l4.type === IcmpType.TIME_EXCEEDED
          ? "time exceeded"
          : l4.code === IcmpUnreachableCode.FRAGMENTATION_NEEDED
            ? `fragmentation needed (mtu ${l4.nextHopMtu})`
            : l4.code === IcmpUnreachableCode.PORT
              ? "port unreachable"
              : l4.code === IcmpUnreachableCode.HOST
                ? "host unreachable"
                : "network unreachable";
      this.record(ns, "deliver", `ICMP ${what} from ${formatIpv4(skb.ip.src)} reaches the sender`, skb);
      if (!this.result)
        this.result = {
          outcome: "unreachable",
          reason: this.icmpReason ?? `ICMP ${what} from ${formatIpv4(skb.ip.src)}`,
        };
      return;
    }
    this.record(
      ns,
      "deliver",
      () => `the answer from ${formatIpv4(skb.ip.src)} reaches the sender in ${ns.name}`,
      skb,
    );
  }

  /**
   * The data written once connected: segments no larger than the peer's MSS and the path MTU less
   * 40 bytes, DF set. The first full segment is walked; when "fragmentation needed" comes back, the
   * sender has learned a smaller path MTU and sends it again smaller, as TCP retransmits.
   */
  private sendData(): void {
    const syn = this.syn!;
    const synAck = this.synAck!.l4 as TcpHeader;
    const origin = this.origin;
    const dst = syn.ip.dst;
    const peerMss = mssOf(synAck) ?? 536;
    this.dataPhase = true;
    for (let attempt = 0; attempt < 4 && !this.dataDelivered; attempt++) {
      const dev = origin.outputDevice(dst)!;
      const learned = origin.learnedPathMtu(dst);
      const pathMss = advertisedMss(origin.mtuTo(dev, dst));
      this.segmentSize = Math.min(peerMss, pathMss);
      const bytes = Math.min(this.segmentSize, this.dataBytes);
      this.direction = "request";
      const data: Skb = {
        ip: { ...syn.ip, dontFragment: true },
        l4: {
          ...(syn.l4 as TcpHeader),
          seq: 2,
          ack: (synAck.seq + 1) >>> 0,
          flags: TcpFlags.ACK | TcpFlags.PSH,
        },
        payload: zeros(bytes),
        mark: 0,
      };
      delete (data.l4 as TcpHeader).options;
      this.record(
        origin,
        "send",
        `${this.options.owner ?? "a process"} writes ${this.dataBytes} bytes: segments of at most ${this.segmentSize} bytes (the peer's MSS ${peerMss}, the path's ${pathMss}); the first is walked`,
        data,
      );
      this.ipOutput(origin, data);
      if (origin.learnedPathMtu(dst) === learned) break;
    }
  }

  /**
   * "Fragmentation needed" about a packet this namespace sent: the kernel remembers the smaller path
   * MTU for the quoted destination, and later packets there are sized (or refused) by it.
   */
  private learnPathMtu(ns: SimNamespace, skb: Skb): void {
    const l4 = skb.l4;
    if (l4.kind !== "icmp" || l4.type !== IcmpType.DEST_UNREACHABLE) return;
    if (l4.code !== IcmpUnreachableCode.FRAGMENTATION_NEEDED || !skb.quoted || !l4.nextHopMtu) return;
    const dst = skb.quoted.ip.dst;
    const known = ns.learnedPathMtu(dst);
    if (known === undefined || l4.nextHopMtu < known) {
      ns.learnPathMtu(dst, l4.nextHopMtu);
      this.learned();
    }
  }

  private reply(ns: SimNamespace, request: Skb, l4: Header, payload: Uint8Array): void {
    this.direction = "reply";
    const ip = ipCopy(request.ip);
    ip.id = 0;
    ip.ttl = 64;
    // TCP sets DF (path MTU discovery); the kernel's ICMP socket answering an echo never does.
    ip.dontFragment = l4.kind === "tcp";
    ip.src = request.ip.dst;
    ip.dst = request.ip.src;
    this.ipOutput(ns, { ip, l4, payload, mark: 0 });
  }

  /** RFC 792/1122: an ICMP error quotes the offending IP header and 8 bytes, and is never sent about an ICMP error. */
  private icmpError(
    ns: SimNamespace,
    offending: Skb,
    type: number,
    code: number,
    reason: string,
    mtu?: number,
  ): void {
    if (
      offending.l4.kind === "icmp" &&
      offending.l4.type !== IcmpType.ECHO_REQUEST &&
      offending.l4.type !== IcmpType.ECHO_REPLY
    )
      return;
    if (reason && this.direction === "request" && !this.result) this.icmpReason ??= reason;
    const l4: IcmpHeader = { kind: "icmp", type, code };
    if (mtu !== undefined) l4.nextHopMtu = mtu;
    else if (type !== IcmpType.ECHO_REPLY) l4.rest = 0;
    const skb: Skb = {
      ip: {
        kind: "ipv4",
        tos: 0xc0,
        id: 0,
        dontFragment: false,
        moreFragments: false,
        fragmentOffset: 0,
        ttl: 64,
        protocol: IpProtocol.ICMP,
        src: 0,
        dst: offending.ip.src,
      },
      l4,
      payload: quoteBytes(offending),
      mark: 0,
      quoted: { ...offending, ct: undefined },
    };
    this.record(
      ns,
      "icmp-error",
      `${ns.name} sends ICMP ${type === IcmpType.TIME_EXCEEDED ? "time exceeded" : "destination unreachable"} (code ${code}) to ${formatIpv4(offending.ip.src)}`,
      skb,
    );
    const saved = this.direction;
    this.direction = "reply";
    this.ipOutput(ns, skb);
    this.direction = saved === "request" && this.result ? "reply" : saved;
  }

  private vxlanDecap(ns: SimNamespace, skb: Skb): boolean {
    if (!skb.vxlan || !skb.inner || skb.l4.kind !== "udp") return false;
    const port = skb.l4.dstPort;
    const vni = skb.vxlan.vni;
    const dev = [...ns.links.values()].find(
      (l) => l.vxlan && l.adminUp && l.vxlan.dstport === port && l.vxlan.vni === vni,
    );
    if (!dev) return false;
    const inner = skb.inner;
    if (dev.vxlan!.learning) {
      const known = dev.vxlan!.fdb.get(inner.eth.src);
      if (known?.length !== 1 || known[0] !== skb.ip.src) {
        dev.vxlan!.fdb.set(inner.eth.src, [skb.ip.src]);
        this.learned();
      }
    }
    this.record(
      ns,
      "decap",
      () =>
        `${dev.name}: VXLAN vni ${vni} from ${formatIpv4(skb.ip.src)}: inner frame received on ${dev.name}`,
      inner,
      dev,
    );
    this.receive(dev, inner);
    return true;
  }

  // ---- netfilter hooks --------------------------------------------------------------------

  private filter(
    ns: SimNamespace,
    chain: "INPUT" | "FORWARD" | "OUTPUT",
    skb: Skb,
    inDev: SimLink | undefined,
    outDev: SimLink | undefined,
  ): boolean {
    const verdict = runHook(ns, "filter", chain, skb, inDev?.name, outDev?.name, this.kernel.random);
    if (verdict.kind === "ACCEPT") return true;
    const rule = verdict.path[verdict.path.length - 1] ?? `policy of ${chain}`;
    this.record(ns, "filter", `filter ${chain}: ${rule}`, skb, inDev ?? outDev);
    if (verdict.kind === "REJECT") {
      this.drop(ns, `rejected by filter ${chain} (${verdict.rejectWith})`, skb, inDev ?? outDev);
      if (verdict.rejectWith === "tcp-reset" && skb.l4.kind === "tcp") {
        this.arrived(ns, skb, "refused", `connection refused: RST from the firewall of ${ns.name}`);
        this.reply(
          ns,
          skb,
          {
            kind: "tcp",
            srcPort: skb.l4.dstPort,
            dstPort: skb.l4.srcPort,
            seq: 0,
            ack: (skb.l4.seq + 1) >>> 0,
            flags: TcpFlags.RST | TcpFlags.ACK,
            window: 0,
            urgent: 0,
          },
          zeros(0),
        );
      } else {
        const code =
          verdict.rejectWith === "icmp-host-unreachable"
            ? IcmpUnreachableCode.HOST
            : verdict.rejectWith === "icmp-net-unreachable"
              ? IcmpUnreachableCode.NET
              : IcmpUnreachableCode.PORT;
        this.icmpError(ns, skb, IcmpType.DEST_UNREACHABLE, code, `rejected by ${ns.name}: ${rule}`);
      }
    } else this.drop(ns, `dropped by filter ${chain}: ${rule}`, skb, inDev ?? outDev);
    return false;
  }

  /** Conntrack lookup plus the destination half of NAT (PREROUTING for arriving packets, OUTPUT for local ones). */
  private natDestination(
    ns: SimNamespace,
    input: Skb,
    chain: "PREROUTING" | "OUTPUT",
    inDev: SimLink | undefined,
  ): Skb | undefined {
    // Filter rules may match conntrack states (a policy engine's ESTABLISHED,RELATED): track then too.
    if (!ns.hasRules("nat") && !ns.hasRules("filter")) {
      const tracked = ns.conntrackSize !== 0;
      this.rec?.tracking.push({ ns, tracked });
      if (!tracked) return input;
    }
    const tuple = tupleOf(input);
    const related = tuple ? undefined : relatedTuple(input);
    if (!tuple && !related) return input;
    const now = this.kernel.clock;
    const found = ns.conntrack.get((tuple ?? related)!, now);
    const rec = this.rec;
    if (found) {
      const { entry, direction } = found;
      if (rec && !rec.own.has(entry)) rec.replayable = false;
      if (tuple) {
        const reset = input.l4.kind === "tcp" && (input.l4.flags & TcpFlags.RST) !== 0;
        entry.expires = now + conntrackTimeout(entry.original.protocol, reset);
      }
      let skb = skbWith(input);
      skb.ct = { entry, direction, isNew: false, related: !tuple };
      // Established flows skip the nat table: the translation chosen for the first packet applies.
      if (direction === "original" && entry.dnatBy) skb = natDst(skb, entry.reply.src, entry.reply.srcPort);
      if (direction === "reply" && entry.snatBy)
        skb = natDst(skb, entry.original.src, entry.original.srcPort);
      if (skb.ip.dst !== input.ip.dst || skb.l4 !== input.l4) {
        this.record(
          ns,
          "nat",
          `conntrack (${direction}${tuple ? "" : ", related ICMP error: the quoted packet too"}): destination ${endpoint(input.ip.dst, dstPortOf(input))} → ${endpoint(skb.ip.dst, dstPortOf(skb))}`,
          skb,
          inDev,
        );
      }
      return skb;
    }
    rec?.misses.push({ ns, tuple: (tuple ?? related)! });
    // An ICMP error about no tracked flow is not tracked (INVALID passes the nat table untouched).
    if (!tuple) return input;
    const entry: ConntrackEntry = {
      original: tuple,
      reply: invert(tuple),
      expires: now + conntrackTimeout(tuple.protocol),
    };
    rec?.own.add(entry);
    let skb = skbWith(input);
    skb.ct = { entry, direction: "original", isNew: true };
    if (!ns.hasRules("nat")) return skb;
    const verdict = runHook(ns, "nat", chain, skb, inDev?.name, undefined, this.kernel.random);
    if (verdict.kind === "DNAT") {
      if (rec) rec.replayable = false;
      skb = withDst(skb, verdict.address, verdict.port);
      entry.dnatBy = verdict.path.join(" → ");
      entry.reply = invert({ ...tuple, dst: verdict.address, dstPort: verdict.port ?? tuple.dstPort });
      this.record(
        ns,
        "nat",
        `nat ${chain}: DNAT ${endpoint(input.ip.dst, dstPortOf(input))} → ${endpoint(skb.ip.dst, dstPortOf(skb))} by ${verdict.path.join(" → ")}`,
        skb,
        inDev,
      );
    }
    return skb;
  }

  private natPrerouting(ns: SimNamespace, skb: Skb, inDev: SimLink): Skb | undefined {
    return this.natDestination(ns, skb, "PREROUTING", inDev);
  }

  private natOutput(ns: SimNamespace, skb: Skb): Skb | undefined {
    return this.natDestination(ns, skb, "OUTPUT", undefined);
  }

  /** The source half of NAT (POSTROUTING, or INPUT for local delivery), then conntrack confirms the flow. */
  private natSource(ns: SimNamespace, input: Skb, outDev: SimLink | undefined): Skb {
    const ct = input.ct;
    if (!ct) return input;
    let skb = skbWith(input);
    skb.ct = undefined;
    const { entry } = ct;
    if (!ct.isNew) {
      if (ct.direction === "original" && entry.snatBy)
        skb = natSrc(skb, entry.reply.dst, entry.reply.dstPort);
      if (ct.direction === "reply" && entry.dnatBy)
        skb = natSrc(skb, entry.original.dst, entry.original.dstPort);
      if (skb.ip.src !== input.ip.src) {
        this.record(
          ns,
          "nat",
          `conntrack (${ct.direction}${ct.related ? ", related ICMP error: the quoted packet too" : ""}): source ${formatIpv4(input.ip.src)} → ${formatIpv4(skb.ip.src)}${ct.direction === "reply" ? " (un-DNAT)" : ""}`,
          skb,
          outDev,
        );
      }
      return skb;
    }
    if (outDev && ns.hasRules("nat")) {
      const verdict: Verdict = runHook(
        ns,
        "nat",
        "POSTROUTING",
        skb,
        undefined,
        outDev.name,
        this.kernel.random,
      );
      if (verdict.kind === "SNAT" || verdict.kind === "MASQUERADE") {
        if (this.rec) this.rec.replayable = false;
        const address =
          verdict.kind === "SNAT" ? verdict.address : (outDev.addresses[0]?.address ?? skb.ip.src);
        const port = verdict.kind === "SNAT" ? verdict.port : undefined;
        skb = withSrc(skb, address, port);
        const translated = tupleOf(skb)!;
        entry.snatBy = verdict.path.join(" → ");
        entry.reply = { ...entry.reply, dst: address, dstPort: translated.srcPort };
        this.record(
          ns,
          "nat",
          `nat POSTROUTING: ${verdict.kind} source ${formatIpv4(input.ip.src)} → ${formatIpv4(address)} by ${verdict.path.join(" → ")}`,
          skb,
          outDev,
        );
      }
    }
    const now = this.kernel.clock;
    this.rec?.confirmed.push({ ns, entry });
    ns.conntrack.confirm(entry, now);
    return skb;
  }

  private natPostrouting(ns: SimNamespace, skb: Skb, outDev: SimLink): Skb | undefined {
    return this.natSource(ns, skb, outDev);
  }

  private natInput(ns: SimNamespace, skb: Skb): Skb | undefined {
    return this.natSource(ns, skb, undefined);
  }
}

/** Walks an exchange, hop by hop. */
export function walk(kernel: SimKernel, options: SendOptions, srcPort: number): Trace {
  const w = walked(kernel, options, srcPort);
  return w.conclude(new WalkTrace(w.replyReceived, w.hops));
}

/** Walks an exchange for its summary, recorded for the flow cache when `rec` is given. */
export function walkSummary(
  kernel: SimKernel,
  options: SendOptions,
  srcPort: number,
  rec?: FlowRecording,
): TraceSummary {
  return walked(kernel, options, srcPort, rec).summary();
}

function walked(kernel: SimKernel, options: SendOptions, srcPort: number, rec?: FlowRecording): PacketWalk {
  const w = new PacketWalk(kernel, kernel.ns(options.from, `send from ${options.from}`), options, rec);
  w.run(firstPacket(options, srcPort));
  return w;
}

/** The first packet of the exchange, as the sending socket makes it. */
function firstPacket(options: SendOptions, srcPort: number): Skb {
  const protocol = options.protocol ?? "icmp";
  const ip: Ipv4Header = {
    kind: "ipv4",
    tos: 0,
    id: 0,
    dontFragment: options.dontFragment ?? true,
    moreFragments: false,
    fragmentOffset: 0,
    ttl: options.ttl ?? 64,
    protocol: protocol === "icmp" ? IpProtocol.ICMP : protocol === "tcp" ? IpProtocol.TCP : IpProtocol.UDP,
    src: 0,
    dst: parseIpv4(options.to),
  };
  const port = options.port ?? 80;
  const l4: Header =
    protocol === "icmp"
      ? { kind: "icmp", type: IcmpType.ECHO_REQUEST, code: 0, identifier: srcPort & 0xffff, sequence: 1 }
      : protocol === "tcp"
        ? {
            kind: "tcp",
            srcPort,
            dstPort: port,
            seq: 1,
            ack: 0,
            flags: TcpFlags.SYN,
            window: 64240,
            urgent: 0,
          }
        : { kind: "udp", srcPort, dstPort: port };
  // TCP's size is the data written once connected (sendData); the SYN itself carries none.
  const size = protocol === "tcp" ? 0 : (options.size ?? (protocol === "icmp" ? 56 : 32));
  return { ip, l4, payload: zeros(size), mark: 0 };
}
