/**
 * A walk's state and its records: the sender's options, the hops, what the exchange came to (the
 * result, the first drop, the answer), and the steps that stop a forwarding loop. Each layer of the
 * walk extends this: netfilter (walk-netfilter.ts), devices and neighbours (walk-devices.ts), IP
 * output (walk-ip-output.ts), IP input and the answers (walk.ts).
 */
import type { Offer } from "./draws.js";
import { formatIpv4 } from "@podnet/core";
import type { FlowRecording } from "./flow-cache.js";
import type { SimKernel } from "./kernel.js";
import type { SimLink } from "./link.js";
import type { SimNamespace } from "./namespace.js";
import type { Trace, TraceEvent, TraceSummary } from "./trace.js";
import {
  mssOption,
  advertisedMss,
  ipCopy,
  skbWith,
  packetOf,
  withSrc,
  type Skb,
  type PacketSource,
} from "./skb.js";
import type { HopRecord, Detail } from "./walk-trace.js";

/** 127.0.0.1. */
const HOST_LOOPBACK = 0x7f000001;

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
  /**
   * `send` only: the endpoint (address, and port when the rules give one) the first Service draw of
   * the walk picks where its rules offer it, instead of at random (a trace through a chosen
   * endpoint). `SimKernel.random.seen` says afterwards where a draw met it and what was offered.
   */
  endpoint?: Offer;
  /**
   * `send` only: a hop at every filter hook the packet passes (INPUT, FORWARD, OUTPUT in a namespace
   * with rules), saying which rules let it on or that the chain's policy did; without it only a
   * hook that drops, rejects or translates is a hop.
   */
  hooks?: boolean;
}

export class StopWalk extends Error {}

export const MAX_STEPS = 4000;

/**
 * One exchange walked through the simulated kernel: the request, then the answer the destination
 * gives (echo reply, SYN-ACK, RST, ICMP error), hop by hop.
 */
export abstract class WalkCore {
  /**
   * The hop records, kept only when a trace will show them: a summary (a bench, a reachability
   * matrix, a probe) reads the count and the answer, and an object per hop was a sixth of what a
   * random trace allocated.
   */
  readonly hops: HopRecord[] | undefined;
  /** Hops recorded, kept or not. */
  hopCount = 0;
  /** Hops other than transmits and receives: how a flooded copy tells whether a host took it. */
  protected events = 0;
  direction: "request" | "reply" = "request";
  private steps = 0;
  protected result?: { outcome: Trace["outcome"]; reason: string; deliveredTo?: Trace["deliveredTo"] };
  private firstDrop?: string;
  protected icmpReason?: string;
  replyReceived = false;
  /** Depth of flood copies being walked: a host ignoring a copy not addressed to it records nothing. */
  protected flooding = 0;
  /** The sender's path MTU discovery, as ping -M names it: DF set always, never, or on what fits. */
  protected readonly pmtudisc: "do" | "want" | "dont";
  /** TCP: the bytes written once connected, the SYN as sent, and the SYN-ACK that answered it. */
  protected readonly dataBytes: number;
  protected syn?: Skb;
  /** The first packet as the sender sent it: a TCP or UDP answer must come from where it went. */
  protected sent?: Skb;
  protected synAck?: Skb;
  protected dataPhase = false;
  protected dataDelivered = false;
  private dataDrop?: string;
  protected segmentSize = 0;
  /** The answer as it was delivered to the sender (the last reply hop there), for a summary. */
  private answer?: PacketSource;

  constructor(
    protected readonly kernel: SimKernel,
    protected readonly origin: SimNamespace,
    protected readonly options: SendOptions,
    /** Set when the walk is recorded for the flow cache (flow-cache.ts). */
    protected readonly rec?: FlowRecording,
    keepHops = true,
  ) {
    this.hops = keepHops ? [] : undefined;
    this.pmtudisc = options.dontFragment === undefined ? "want" : options.dontFragment ? "do" : "dont";
    this.dataBytes = options.protocol === "tcp" ? (options.size ?? 0) : 0;
  }

  /** The sender's own packet, which its socket's path MTU discovery setting governs. */
  protected isSendersRequest(ns: SimNamespace): boolean {
    return ns === this.origin && this.direction === "request" && !this.result;
  }

  // ---- recording --------------------------------------------------------------------------

  protected record(
    ns: SimNamespace,
    event: TraceEvent,
    detail: Detail,
    source: PacketSource,
    dev?: SimLink,
    wire?: "in" | "out",
  ): void {
    this.hopCount++;
    if (event !== "transmit" && event !== "receive") this.events++;
    this.hops?.push({ direction: this.direction, ns: ns.name, event, detail, source, dev: dev?.name, wire });
    if (event === "deliver" && this.direction === "reply" && ns === this.origin) this.answer = source;
  }

  /** The walk changed what later walks read (ARP, FDB, path MTU): the flow cache's walks are stale. */
  protected learned(): void {
    this.kernel.epoch++;
  }

  protected step(): void {
    if (++this.steps > MAX_STEPS) {
      this.firstDrop ??= `the walk stopped after ${MAX_STEPS} steps (a forwarding or bridging loop)`;
      throw new StopWalk();
    }
  }

  protected drop(ns: SimNamespace, reason: string, packet: PacketSource, dev?: SimLink): void {
    this.record(ns, "drop", reason, packet, dev);
    if (this.direction === "request" && !this.result) this.firstDrop ??= `${reason} (at ${ns.name})`;
    else if (this.dataPhase && this.direction === "request") this.dataDrop ??= `${reason} (at ${ns.name})`;
    else if (this.direction === "reply")
      this.firstDrop ??= `the answer was dropped: ${reason} (at ${ns.name})`;
  }

  /** The sending process gets an error back (no route, no ARP answer, message too long). */
  protected localError(ns: SimNamespace, reason: string, packet: PacketSource): void {
    if (this.direction === "request" && !this.result) {
      this.record(ns, "drop", reason, packet);
      this.result = { outcome: "unreachable", reason: `${reason} (at ${ns.name})` };
    } else this.drop(ns, reason, packet);
  }

  // ---- the exchange -----------------------------------------------------------------------

  run(first: Skb): void {
    try {
      let input = first;
      // ip_route_output: 0.0.0.0 means this host. With no source bound, the kernel sends the packet
      // to 127.0.0.1 from 127.0.0.1 (ping prints "PING 0.0.0.0 (127.0.0.1)").
      if (input.ip.dst === 0) {
        const ip = ipCopy(input.ip);
        ip.dst = ip.src || HOST_LOOPBACK;
        ip.src ||= HOST_LOOPBACK;
        input = skbWith(input, ip);
      }
      // The socket's source address is chosen as connect() would, so the first hop shows it.
      const route = this.origin.isLocal(input.ip.dst) ? undefined : this.origin.routes.lookup(input.ip.dst);
      let skb = route ? withSrc(input, this.origin.sourceFor(route, route.gateway ?? input.ip.dst)) : input;
      if (skb.l4.kind === "tcp") {
        // The SYN carries no data, only the MSS this side can take over its route.
        const mtu = (route?.dev ?? this.origin.links.get("lo")!).mtu;
        skb = skbWith(skb, skb.ip, { ...skb.l4, options: mssOption(advertisedMss(mtu)) });
        this.syn = skb;
      }
      this.sent = skb;
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
      if (reachedSomething && !this.replyReceived) {
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
      hopCount: this.hopCount,
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
  protected arrived(
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

  protected abstract ipOutput(ns: SimNamespace, input: Skb): void;
  protected abstract sendData(): void;
}
