/**
 * The packets of a walk: skbs and frames (header objects never mutated, only replaced), their sizes
 * and fragments, TCP's MSS option, conntrack tuples, and the address and port rewrites NAT makes.
 */
import {
  IcmpType,
  encodePacket,
  formatIpv4,
  type ArpHeader,
  type EthernetHeader,
  type Header,
  type Ipv4Header,
  type Packet,
  type TcpHeader,
  type VxlanHeader,
  fragmentPieces,
} from "@podnet/core";
import type { ConnTuple, ConntrackEntry } from "./namespace.js";

/** The TCP header that answers a SYN: SYN-ACK from a listener (with its MSS), RST-ACK from a closed port. */
export function answerSyn(
  syn: TcpHeader,
  flags: number,
  seq: number,
  window: number,
  mss?: number,
): TcpHeader {
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
export function mssOption(mss: number): Uint8Array {
  return Uint8Array.of(2, 4, mss >> 8, mss & 0xff);
}

/** The MSS a TCP header offers, if it carries the option. */
export function mssOf(tcp: TcpHeader): number | undefined {
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
export const advertisedMss = (mtu: number) => Math.min(mtu - 40, 65495);

export interface Frame {
  eth: EthernetHeader;
  arp?: ArpHeader;
  skb?: Skb;
}

/** A packet inside the walk: header objects are never mutated, only replaced. */
export interface Skb {
  ip: Ipv4Header;
  l4: Header;
  payload: Uint8Array;
  vxlan?: VxlanHeader;
  inner?: Frame;
  mark: number;
  ct?: {
    entry: ConntrackEntry;
    direction: "original" | "reply";
    isNew: boolean;
    related?: boolean;
    /**
     * Sent to a local address and looped back through lo, its flow confirmed on the way out: the
     * packet keeps its conntrack state (a first packet is still NEW at INPUT) and is translated no
     * further (nf_conntrack_in leaves a looped packet's entry as it is).
     */
    looped?: boolean;
  };
  /** ICMP errors: the offending packet as the error quotes it (its IP header and first 8 bytes). */
  quoted?: Skb;
  /**
   * Set once the packet is fragmented: it travels as `count` fragments, none longer than `largest`
   * bytes, and is walked as one (every fragment takes the same path) until reassembled at the destination.
   */
  fragments?: {
    count: number;
    largest: number;
    /**
     * The payload sizes it was cut at, in order (each a multiple of 8): every fragment of one cut is
     * cut again at the next, as a router does with fragments too big for its link. What a capture of
     * the fragments is made from (`TraceHop.fragmentation`).
     */
    cuts: readonly number[];
  };
}

/**
 * Copies with one shape. `{ ...skb, ip: { ...skb.ip, ttl } }` was the largest self time of the walk:
 * skbs and headers whose optional fields come and go make V8's object spread take its generic path
 * on every hop. Every skb and IPv4 header the walk makes comes from these two.
 */
export function skbWith(s: Skb, ip: Ipv4Header = s.ip, l4: Header = s.l4): Skb {
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

export function ipCopy(h: Ipv4Header): Ipv4Header {
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

export const zeroPayloads = new Map<number, Uint8Array>();

export function zeros(size: number): Uint8Array {
  let bytes = zeroPayloads.get(size);
  if (!bytes) zeroPayloads.set(size, (bytes = new Uint8Array(size)));
  return bytes;
}

export function l4Size(h: Header): number {
  return h.kind === "tcp" ? 20 + (h.options?.length ?? 0) : 8;
}

export function ipLength(skb: Skb): number {
  const body = skb.vxlan ? 8 + frameLength(skb.inner!) : skb.payload.length;
  return 20 + (skb.ip.options?.length ?? 0) + l4Size(skb.l4) + body;
}

/** The longest IP packet that crosses a link for this skb: a fragment's, or the whole packet. */
export function largestPiece(skb: Skb): number {
  if (skb.fragments) return skb.fragments.largest;
  if (!skb.vxlan) return ipLength(skb);
  const inner = skb.inner!;
  // Each inner fragment is encapsulated on its own: outer IP + UDP + VXLAN + inner Ethernet.
  return 20 + 8 + 8 + 14 + (inner.arp ? 28 : largestPiece(inner.skb!));
}

/**
 * The same packet as fragments no longer than `mtu`: the payload after the IP header is cut at
 * multiples of 8 bytes, and a fragment that is cut again splits into as many pieces as it needs
 * (`fragmentPieces`, which a capture's fragments are made by too). Under VXLAN each fragment of the
 * packet inside was encapsulated on its own, and each such packet is cut: the count is of every
 * piece that crosses.
 */
export function fragment(skb: Skb, mtu: number): Skb {
  const header = 20 + (skb.ip.options?.length ?? 0);
  const cuts = [...(skb.fragments?.cuts ?? []), (mtu - header) & ~7];
  let count = 0;
  let largest = 0;
  for (const payload of carriedPayloads(skb, header))
    for (const piece of fragmentPieces(payload, cuts)) {
      count++;
      largest = Math.max(largest, piece.length);
    }
  const out = skbWith(skb);
  out.fragments = { count, largest: header + largest, cuts };
  return out;
}

/**
 * The IP payloads an skb crosses as before it is cut: its own, or under VXLAN one for each fragment
 * of the packet inside (outer UDP, VXLAN and inner Ethernet headers, then that fragment).
 */
function carriedPayloads(skb: Skb, header: number): number[] {
  const inner = skb.vxlan ? skb.inner?.skb : undefined;
  if (!inner?.fragments) return [ipLength(skb) - header];
  const innerHeader = 20 + (inner.ip.options?.length ?? 0);
  return fragmentPieces(ipLength(inner) - innerHeader, inner.fragments.cuts).map(
    (p) => 8 + 8 + 14 + innerHeader + p.length,
  );
}

/** A packet's size as the trace names it: the IP packet, and the payload `--size` gives. */
export function sizeText(skb: Skb): string {
  const size = ipLength(skb);
  return skb.vxlan
    ? `${size}-byte IP packet (VXLAN)`
    : `${size}-byte IP packet (${skb.payload.length}-byte payload)`;
}

export function frameLength(f: Frame): number {
  return 14 + (f.arp ? 28 : ipLength(f.skb!));
}

export function skbHeaders(skb: Skb): Header[] {
  return skb.vxlan ? [skb.ip, skb.l4, skb.vxlan, ...frameHeaders(skb.inner!)] : [skb.ip, skb.l4];
}

export function frameHeaders(f: Frame): Header[] {
  return [f.eth, ...(f.arp ? [f.arp] : skbHeaders(f.skb!))];
}

export function innermostPayload(skb: Skb): Uint8Array {
  return skb.vxlan ? (skb.inner!.skb ? innermostPayload(skb.inner!.skb) : new Uint8Array()) : skb.payload;
}

export function framePacket(f: Frame): Packet {
  return { headers: frameHeaders(f), payload: f.skb ? innermostPayload(f.skb) : new Uint8Array() };
}

export function skbPacket(skb: Skb): Packet {
  return { headers: skbHeaders(skb), payload: innermostPayload(skb) };
}

/** What a hop shows of the packet: the skb or frame itself (never mutated), made a Packet when read. */
export type PacketSource = Skb | Frame | Packet;
export const packetOf = (source: PacketSource): Packet =>
  "headers" in source ? source : "eth" in source ? framePacket(source) : skbPacket(source);

export function tupleOf(skb: Skb): ConnTuple | undefined {
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
export const dstPortOf = (skb: Skb) =>
  skb.l4.kind === "tcp" || skb.l4.kind === "udp" ? skb.l4.dstPort : undefined;

export const invert = (t: ConnTuple): ConnTuple => ({
  protocol: t.protocol,
  src: t.dst,
  srcPort: t.dstPort,
  dst: t.src,
  dstPort: t.srcPort,
});

/** RFC 792/1122: an ICMP error quotes the offending IP header and the first 8 bytes after it. */
export function quoteBytes(offending: Skb): Uint8Array {
  return encodePacket(skbPacket(offending)).subarray(0, 20 + (offending.ip.options?.length ?? 0) + 8);
}

/**
 * The conntrack key of the flow an ICMP error is about (conntrack's RELATED): the quoted packet
 * went the other way, so the error belongs to the inverse of the quoted packet's tuple.
 */
export function relatedTuple(skb: Skb): ConnTuple | undefined {
  if (!skb.quoted || skb.l4.kind !== "icmp") return undefined;
  if (skb.l4.type !== IcmpType.DEST_UNREACHABLE && skb.l4.type !== IcmpType.TIME_EXCEEDED) return undefined;
  const inner = tupleOf(skb.quoted);
  return inner && invert(inner);
}

/**
 * Destination NAT of a packet, and of the quoted packet inside an ICMP error: nf_nat translates the
 * error's outer destination and, mirrored, the inner packet's source, so the sender recognises it.
 */
export function natDst(skb: Skb, address: number, port?: number): Skb {
  const out = withDst(skb, address, port);
  if (!skb.quoted) return out;
  out.quoted = withSrc(skb.quoted, address, port);
  out.payload = quoteBytes(out.quoted);
  return out;
}

/** Source NAT of a packet, and of the quoted packet's destination inside an ICMP error. */
export function natSrc(skb: Skb, address: number, port?: number): Skb {
  const out = withSrc(skb, address, port);
  if (!skb.quoted) return out;
  out.quoted = withDst(skb.quoted, address, port);
  out.payload = quoteBytes(out.quoted);
  return out;
}

export function withDst(skb: Skb, address: number, port?: number): Skb {
  const l4 =
    port !== undefined && (skb.l4.kind === "tcp" || skb.l4.kind === "udp")
      ? { ...skb.l4, dstPort: port }
      : skb.l4;
  const ip = ipCopy(skb.ip);
  ip.dst = address;
  return skbWith(skb, ip, l4);
}

export function withSrc(skb: Skb, address: number, port?: number): Skb {
  const l4 =
    port !== undefined && (skb.l4.kind === "tcp" || skb.l4.kind === "udp")
      ? { ...skb.l4, srcPort: port }
      : skb.l4;
  const ip = ipCopy(skb.ip);
  ip.src = address;
  return skbWith(skb, ip, l4);
}

export const endpoint = (address: number, port?: number) =>
  port === undefined ? formatIpv4(address) : `${formatIpv4(address)}:${port}`;
