/**
 * The packet walk: one exchange through the simulated kernel, its IP input and forwarding, local
 * delivery and the answers (echo replies, SYN-ACKs, RSTs, ICMP errors), and the entry points; the
 * sender's side (what its socket takes) is walk-sender.ts.
 */
import {
  IcmpType,
  IcmpUnreachableCode,
  IpProtocol,
  TcpFlags,
  formatIpv4,
  parseIpv4,
  type Header,
  type IcmpHeader,
  type Ipv4Header,
} from "@podnet/core";
import type { FlowRecording } from "./flow-cache.js";
import type { SimKernel } from "./kernel.js";
import type { SimLink } from "./link.js";
import { isLoopback, type SimNamespace } from "./namespace.js";
import type { Trace, TraceSummary } from "./trace.js";
import {
  answerSyn,
  advertisedMss,
  skbWith,
  ipCopy,
  zeros,
  sizeText,
  quoteBytes,
  endpoint,
  type Skb,
} from "./skb.js";
import { WalkTrace, routeText } from "./walk-trace.js";
import type { SendOptions } from "./walk-core.js";
import { SenderWalk } from "./walk-sender.js";

export type { SendOptions };

/** The walk's last layer: what arrives at a namespace's IP stack, and what answers it. */
class PacketWalk extends SenderWalk {
  protected ipInput(ns: SimNamespace, inDev: SimLink, input: Skb): void {
    // A frame that came up through a bridge with br_netfilter has passed PREROUTING at the port.
    const pre = input.ct ? input : this.natPrerouting(ns, input, inDev);
    if (!pre) return;
    let skb = pre;
    // ip_route_input: 0.0.0.0 is no host's address, as a source or a destination. (The rest of
    // 0.0.0.0/8 is routed like any address since Linux 5.3: a router forwards 0.0.0.1.)
    if (inDev.kind !== "loopback" && (skb.ip.dst === 0 || input.ip.src === 0)) {
      const which = skb.ip.dst === 0 ? "destination" : "source";
      return this.drop(ns, `martian ${which} 0.0.0.0 on ${inDev.name}: no host's address`, skb, inDev);
    }
    // ip_route_input: 127/8 arriving on another device than lo is a martian unless route_localnet
    // is on (the destination as PREROUTING left it, the source as it arrived).
    if (inDev.kind !== "loopback" && !ns.routesLocalnet(inDev)) {
      const which = isLoopback(skb.ip.dst) ? "destination" : isLoopback(input.ip.src) ? "source" : undefined;
      if (which)
        return this.drop(
          ns,
          `martian ${which} ${formatIpv4(which === "destination" ? skb.ip.dst : input.ip.src)} on ${inDev.name}: 127/8 is routed over lo only (route_localnet is 0)`,
          skb,
          inDev,
        );
    }
    if (inDev.kind !== "loopback" && ns.localAddresses.has(skb.ip.src)) {
      // fib_validate_source: a packet from the outside claiming one of our own addresses is a martian.
      return this.drop(
        ns,
        `martian source ${formatIpv4(skb.ip.src)} on ${inDev.name}: that address is ${ns.name}'s own`,
        skb,
        inDev,
      );
    }
    // The local table: an address of this namespace, else one of its broadcast addresses.
    const local = ns.isLocal(skb.ip.dst);
    const broadcast = !local && this.toBroadcast(ns, skb);
    if (local || broadcast) {
      if (ns.hasRules("filter") && !this.filter(ns, "INPUT", skb, inDev, undefined)) return;
      const taken = this.natInput(ns, skb);
      if (!taken) return;
      return broadcast ? this.broadcastDeliver(ns, inDev, taken) : this.localDeliver(ns, inDev, taken);
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
    if (ns === this.origin && this.direction === "reply" && this.strayAnswer(ns, inDev, skb)) return;
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
    if (socket)
      return this.udpTaken(ns, inDev, skb, socket.owner, endpoint(ip.dst, l4.dstPort), socket.address);
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

  /**
   * A datagram a socket took. A listener answers a request with its name, as the kernel backend's
   * listeners do (and a DNS server answers a query): the probe counts as reached only when that
   * answer reaches the sender's socket, so a way back that fails (no route, an answer never
   * un-NATed) fails it, as on the kernel. A datagram to a broadcast address is answered too, from
   * the address the route back chooses: a sender's socket connected to the broadcast address does
   * not take that answer.
   */
  private udpTaken(ns: SimNamespace, inDev: SimLink, skb: Skb, owner: string, to: string, bound = 0): void {
    const request = this.direction === "request";
    this.record(
      ns,
      "deliver",
      `udp to ${to} taken by ${owner}${request ? ", which answers" : ""}`,
      skb,
      inDev,
    );
    if (!request) return;
    this.arrived(ns, skb, "reached", `delivered to ${owner} on ${to} (${ns.name})`, owner);
    if (skb.l4.kind !== "udp") return;
    const l4: Header = { kind: "udp", srcPort: skb.l4.dstPort, dstPort: skb.l4.srcPort };
    this.reply(ns, skb, l4, new TextEncoder().encode(`${owner}\n`), this.answerSource(ns, skb, bound));
  }

  /**
   * The source of a UDP answer. A socket bound to 0.0.0.0 answering with sendto() gets the address
   * the route back chooses, not necessarily the one the datagram came to: a pod sending to its node's
   * eth0 address hears back from docker0's, and its connected socket does not take that.
   */
  private answerSource(ns: SimNamespace, request: Skb, bound: number): number {
    if (bound !== 0 || ns.isLocal(request.ip.src)) return request.ip.dst;
    const route = ns.routes.lookup(request.ip.src);
    return route ? ns.sourceFor(route, route.gateway ?? request.ip.src) : request.ip.dst;
  }

  /**
   * A packet to one of this namespace's broadcast addresses (a router never forwards it): taken by
   * a UDP socket bound to the port, and otherwise dropped without an answer — the kernel ignores an
   * echo request to a broadcast (net.ipv4.icmp_echo_ignore_broadcasts = 1), never answers a SYN to
   * one (tcp_v4_conn_request), and sends no ICMP error about one.
   */
  private broadcastDeliver(ns: SimNamespace, inDev: SimLink, skb: Skb): void {
    const { ip, l4 } = skb;
    const to = formatIpv4(ip.dst);
    if (l4.kind === "udp") {
      const socket = ns.sockets.find((s) => s.protocol === "udp" && s.port === l4.dstPort && s.address === 0);
      if (socket)
        return this.udpTaken(ns, inDev, skb, socket.owner, `broadcast ${endpoint(ip.dst, l4.dstPort)}`);
    }
    const why =
      l4.kind === "icmp"
        ? `echo request to broadcast ${to}: ignored by the kernel of ${ns.name} (icmp_echo_ignore_broadcasts = 1)`
        : l4.kind === "tcp"
          ? `tcp to broadcast ${endpoint(ip.dst, l4.dstPort)}: TCP never answers a segment to a broadcast address`
          : l4.kind === "udp"
            ? `udp to broadcast ${endpoint(ip.dst, l4.dstPort)}: no socket in ${ns.name}, and no ICMP error about a broadcast`
            : `packet to broadcast ${to}: nobody takes it in ${ns.name}`;
    this.drop(ns, why, skb, inDev);
  }

  protected reply(
    ns: SimNamespace,
    request: Skb,
    l4: Header,
    payload: Uint8Array,
    src: number = request.ip.dst,
  ): void {
    this.direction = "reply";
    const ip = ipCopy(request.ip);
    ip.id = 0;
    ip.ttl = 64;
    // TCP sets DF (path MTU discovery); the kernel's ICMP socket answering an echo never does.
    ip.dontFragment = l4.kind === "tcp";
    ip.src = src;
    ip.dst = request.ip.src;
    this.ipOutput(ns, { ip, l4, payload, mark: 0 });
  }

  /** RFC 792/1122: an ICMP error quotes the offending IP header and 8 bytes, and is never sent about an ICMP error. */
  protected icmpError(
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
    // __icmp_send's source: the address the offending packet was sent to when it was one of ours,
    // else the one the route back prefers (decided before the error is recorded, as the kernel does).
    const ours = ns.isLocal(offending.ip.dst);
    const back = ours ? undefined : ns.routes.lookup(offending.ip.src);
    const src = ours ? offending.ip.dst : back ? ns.sourceFor(back, back.gateway ?? offending.ip.src) : 0;
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
        src,
        dst: offending.ip.src,
      },
      l4,
      payload: quoteBytes(offending),
      mark: 0,
      quoted: { ...offending, ct: undefined },
    };
    // icmp_glue_bits attaches the offending packet's entry to the error (nf_ct_attach), RELATED the
    // other way, confirmed or not: an error about a packet this namespace translated and then refused
    // (a REJECT or a TTL in FORWARD, before POSTROUTING confirms a first packet) is translated back.
    const ct = offending.ct;
    if (ct)
      skb.ct = {
        entry: ct.entry,
        direction: ct.direction === "original" ? "reply" : "original",
        isNew: false,
        related: true,
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
}

/** Walks an exchange, hop by hop. */
export function walk(kernel: SimKernel, options: SendOptions, srcPort: number): Trace {
  const w = walked(kernel, options, srcPort, undefined, true);
  return w.conclude(new WalkTrace(w.replyReceived, w.hops!));
}

/** Walks an exchange for its summary, recorded for the flow cache when `rec` is given. */
export function walkSummary(
  kernel: SimKernel,
  options: SendOptions,
  srcPort: number,
  rec?: FlowRecording,
): TraceSummary {
  return walked(kernel, options, srcPort, rec, false).summary();
}

function walked(
  kernel: SimKernel,
  options: SendOptions,
  srcPort: number,
  rec: FlowRecording | undefined,
  keepHops: boolean,
): PacketWalk {
  const w = new PacketWalk(
    kernel,
    kernel.ns(options.from, `send from ${options.from}`),
    options,
    rec,
    keepHops,
  );
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
