/**
 * The sender's side of an exchange: what its socket takes as the answer (an echo reply, a SYN-ACK or
 * RST, a datagram, an ICMP error) and from whom, what it refuses, the path MTU it learns, and the data
 * it writes once connected.
 */
import { IcmpType, IcmpUnreachableCode, TcpFlags, formatIpv4, type TcpHeader } from "@podnet/core";
import type { SimLink } from "./link.js";
import type { SimNamespace } from "./namespace.js";
import { advertisedMss, endpoint, mssOf, zeros, type Skb } from "./skb.js";
import { IpOutputWalk } from "./walk-ip-output.js";

export abstract class SenderWalk extends IpOutputWalk {
  /**
   * A TCP or UDP answer reaching the sender that is not from where it sent (an answer that was not
   * un-NATed, say): the sender's socket is connected to that address and port and does not take it.
   * With no other socket there the kernel answers a datagram with port unreachable and a SYN-ACK
   * with a reset, and drops a reset.
   */
  protected strayAnswer(ns: SimNamespace, inDev: SimLink, skb: Skb): boolean {
    const sent = this.sent;
    const l4 = skb.l4;
    if (
      (l4.kind !== "udp" && l4.kind !== "tcp") ||
      sent?.l4.kind !== l4.kind ||
      l4.dstPort !== sent.l4.srcPort
    )
      return false;
    if (l4.kind === "tcp" && !(l4.flags & (TcpFlags.SYN | TcpFlags.RST))) return false;
    const what = l4.kind === "udp" ? "udp" : l4.flags & TcpFlags.RST ? "tcp RST" : "tcp SYN-ACK";
    this.drop(
      ns,
      `${what} from ${endpoint(skb.ip.src, l4.srcPort)}: the sender's socket is connected to ${endpoint(sent.ip.dst, sent.l4.dstPort)} and does not take it`,
      skb,
      inDev,
    );
    if (l4.kind === "udp") this.icmpError(ns, skb, IcmpType.DEST_UNREACHABLE, IcmpUnreachableCode.PORT, "");
    else if (!(l4.flags & TcpFlags.RST))
      this.reply(
        ns,
        skb,
        {
          kind: "tcp",
          srcPort: l4.dstPort,
          dstPort: l4.srcPort,
          seq: l4.ack,
          ack: 0,
          flags: TcpFlags.RST,
          window: 0,
          urgent: 0,
        },
        zeros(0),
      );
    return true;
  }

  /** Whether a TCP or UDP segment comes back from where the sender sent, to the port it sent from. */
  private fromWhereSent(skb: Skb): boolean {
    const sent = this.sent;
    const l4 = skb.l4;
    return (
      (l4.kind === "udp" || l4.kind === "tcp") &&
      sent?.l4.kind === l4.kind &&
      skb.ip.src === sent.ip.dst &&
      l4.srcPort === sent.l4.dstPort &&
      l4.dstPort === sent.l4.srcPort
    );
  }

  /** What the sender was waiting for: an echo reply, SYN-ACK or RST, or an ICMP error. */
  protected isAnswer(skb: Skb): boolean {
    const l4 = skb.l4;
    if (l4.kind === "icmp") return l4.type !== IcmpType.ECHO_REQUEST;
    if (l4.kind === "udp") return this.direction === "reply" && this.fromWhereSent(skb);
    if (l4.kind === "tcp")
      return (
        ((l4.flags & (TcpFlags.SYN | TcpFlags.ACK)) === (TcpFlags.SYN | TcpFlags.ACK) ||
          (l4.flags & TcpFlags.RST) !== 0) &&
        this.fromWhereSent(skb)
      );
    return false;
  }

  protected answerReceived(ns: SimNamespace, skb: Skb): void {
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
  protected sendData(): void {
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
}
