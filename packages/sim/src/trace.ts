import {
  encodePacket,
  encodePcap,
  encodePcapng,
  fragmentIpv4,
  ipv4HeaderLength,
  packetJson,
  type Packet,
} from "@podnet/core";

export type TraceEvent =
  | "send"
  | "route"
  | "arp-request"
  | "arp-reply"
  | "transmit"
  | "receive"
  | "bridge"
  | "nat"
  | "filter"
  | "forward"
  | "encap"
  | "decap"
  | "fragment"
  | "icmp-error"
  | "deliver"
  | "drop";

export interface TraceHop {
  /** Which leg of the exchange the hop belongs to. */
  direction: "request" | "reply";
  ns: string;
  /** The device the event happened at. */
  dev?: string;
  event: TraceEvent;
  /** What was decided and why, in the words of ip/iptables/bridge. */
  detail: string;
  /** The packet (a full frame where one exists) as it was at this hop. */
  packet: Packet;
  /** Set when the frame crossed `dev` on the wire: what tcpdump -i dev would have captured. */
  wire?: "in" | "out";
  /**
   * Set when the packet crossed as fragments: the payload sizes its IP packet was cut at, in order
   * (`outer`), and under VXLAN those of the packet inside, each of whose fragments was encapsulated
   * on its own (`inner`). `packet` is the whole packet; `wireFrames` gives the fragments.
   */
  fragmentation?: { outer?: readonly number[]; inner?: readonly number[] };
}

export type TraceOutcome =
  /** Echo reply, SYN-ACK, or a UDP datagram taken by a listener. */
  | "reached"
  /** The destination host answered "nobody here": RST or ICMP port unreachable. It was reachable. */
  | "refused"
  /** Reached an address, but not the namespace the sender meant (a duplicate address). */
  | "wrong-destination"
  /** An ICMP error or a local error said it cannot get there. */
  | "unreachable"
  /** Silently lost (filtered, no forwarding, no reply). */
  | "dropped";

/** What a trace concludes, without its hops: all a probe, a bench or a reachability matrix reads. */
export interface TraceSummary {
  outcome: TraceOutcome;
  /** A sentence: what happened and why. */
  reason: string;
  /** Where the request was taken, if anywhere. */
  deliveredTo?: { ns: string; address: string; port?: number; owner?: string };
  /** Whether the answer made it back to the sender. */
  replyReceived: boolean;
  /** TCP with a size: the bytes written once connected, as the segments the MSS and path MTU allowed. */
  data?: { bytes: number; segments: number; largest: number };
  /** How many hops the walk recorded. */
  hopCount: number;
  /**
   * The answer as it reached the sender, if one did (the last reply hop delivered in the sending
   * namespace): its TTL, and for an ICMP answer its type and code — what ping and a socket report.
   */
  answer?: { ttl: number; icmp?: { type: number; code: number } };
}

export interface Trace extends Omit<TraceSummary, "hopCount" | "answer"> {
  /** The hop records: made (texts and packet snapshots) on first read. */
  hops: TraceHop[];
  /** How many hops, without making them (the simulator's traces carry it). */
  hopCount?: number;
}

/**
 * The frames a hop put on the wire, as tcpdump would capture them: the packet, or its fragments
 * (each no longer than the link allowed) where it crossed fragmented.
 */
export function wireFrames(hop: TraceHop): Uint8Array[] {
  const frame = encodePacket(hop.packet);
  const f = hop.fragmentation;
  if (!f) return [frame];
  // Ethernet, then the outer IPv4 header; under VXLAN the inner packet's follows the outer IPv4
  // header, UDP (8), VXLAN (8) and the inner Ethernet header (14).
  const outerAt = 14;
  let frames = [frame];
  if (f.inner) {
    const innerAt = outerAt + ipv4HeaderLength(frame, outerAt) + 8 + 8 + 14;
    frames = fragmentIpv4(frame, innerAt, f.inner, [outerAt]);
  }
  if (f.outer) frames = frames.flatMap((one) => fragmentIpv4(one, outerAt, f.outer!, []));
  return frames;
}

/**
 * What tcpdump would have written during the trace — on one device (`at`), as a pcap file; or every
 * frame sent out of any device, in order, as a pcapng file with an interface per device.
 * Timestamps are one microsecond per hop from `startMicros`.
 */
export function tracePcap(trace: Trace, at?: { ns: string; dev: string }, startMicros = 0): Uint8Array {
  const ethernet = (hop: TraceHop) => hop.packet.headers[0]?.kind === "ethernet";
  if (at)
    return encodePcap(
      trace.hops.flatMap((hop, i) =>
        ethernet(hop) && hop.wire && hop.ns === at.ns && hop.dev === at.dev
          ? wireFrames(hop).map((data) => ({ timestampMicros: startMicros + i, data }))
          : [],
      ),
    );
  // Every wire: pcapng, an interface per device a frame left by (`node1/eth0`), so that one frame
  // crossing a bridge reads as the same frame on two interfaces, not as a retransmission.
  const interfaces = new Map<string, number>();
  const records = trace.hops.flatMap((hop, i) => {
    if (!ethernet(hop) || hop.wire !== "out") return [];
    const name = `${hop.ns}/${hop.dev}`;
    if (!interfaces.has(name)) interfaces.set(name, interfaces.size);
    const iface = interfaces.get(name)!;
    return wireFrames(hop).map((data) => ({ interface: iface, timestampMicros: startMicros + i, data }));
  });
  return encodePcapng({ interfaces: [...interfaces.keys()].map((name) => ({ name })), records });
}

/** The devices a trace crossed, as [namespace, device] pairs, in first-seen order. */
export function traceDevices(trace: Trace): [string, string][] {
  const seen = new Map<string, [string, string]>();
  for (const hop of trace.hops) if (hop.wire && hop.dev) seen.set(`${hop.ns}/${hop.dev}`, [hop.ns, hop.dev]);
  return [...seen.values()];
}

/** A trace for JSON: each hop's packet with its addresses in their text forms (`packetJson`). */
export function traceJson(trace: Trace): Omit<Trace, "hops"> & {
  hops: (Omit<TraceHop, "packet"> & { packet: ReturnType<typeof packetJson> })[];
} {
  const { hops, ...rest } = trace;
  return { ...rest, hops: hops.map((hop) => ({ ...hop, packet: packetJson(hop.packet) })) };
}
