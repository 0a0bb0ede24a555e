import { encodePacket, encodePcap, packetJson, type Packet } from "@podnet/core";

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
 * What tcpdump would have written on one device during the trace: every frame that crossed it, in
 * order, as a pcap file. Timestamps are one microsecond per hop from `startMicros`.
 */
export function tracePcap(trace: Trace, ns: string, dev: string, startMicros = 0): Uint8Array {
  const records = trace.hops.flatMap((hop, i) =>
    hop.wire && hop.ns === ns && hop.dev === dev && hop.packet.headers[0]?.kind === "ethernet"
      ? [{ timestampMicros: startMicros + i, data: encodePacket(hop.packet) }]
      : [],
  );
  return encodePcap(records);
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
