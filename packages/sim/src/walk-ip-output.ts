/** The walk's IP output: a locally made packet's route, path MTU, fragments and next hop. */
import { EtherType, IcmpType, IcmpUnreachableCode, formatIpv4 } from "@podnet/core";
import { isLoopback, type SimNamespace } from "./namespace.js";
import type { SimRoute } from "./route-table.js";
import { skbWith, ipCopy, largestPiece, fragment, sizeText, withSrc, type Skb } from "./skb.js";
import { routeText } from "./walk-trace.js";
import { DeviceWalk } from "./walk-devices.js";

export abstract class IpOutputWalk extends DeviceWalk {
  /** A packet a process or the kernel of `ns` originates. */
  protected ipOutput(ns: SimNamespace, input: Skb): void {
    let skb = input;
    const lo = ns.links.get("lo")!;
    let route = ns.isLocal(skb.ip.dst) ? undefined : ns.routes.lookup(skb.ip.dst);
    // The local table's broadcast routes: a socket without SO_BROADCAST (ping without -b, any TCP
    // socket) may not send to one, and is told so at connect() or sendto().
    if (
      this.isSendersRequest(ns) &&
      !ns.isLocal(skb.ip.dst) &&
      ((skb.ip.dst === 0xffffffff && route) || ns.subnetBroadcast(skb.ip.dst))
    )
      return this.localError(ns, broadcastRefusal(skb), skb);
    if (route && this.isSendersRequest(ns) && isMulticast(skb.ip.dst) && !ns.isLocal(skb.ip.dst))
      return this.toGroup(ns, route, skb);
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
      const ct = skb.ct;
      const confirmed = this.natPostrouting(ns, skb, lo);
      if (!confirmed) return;
      // Back in through lo with the state it left with: filter INPUT sees a first packet as NEW.
      if (!ct) return this.ipInput(ns, lo, confirmed);
      const back = skbWith(confirmed);
      back.ct = { entry: ct.entry, direction: ct.direction, isNew: ct.isNew, looped: true };
      if (ct.related) back.ct.related = true;
      return this.ipInput(ns, lo, back);
    }
    route = ns.routes.lookup(skb.ip.dst);
    if (!route)
      return this.localError(
        ns,
        `connect: Network is unreachable (no route to ${formatIpv4(skb.ip.dst)})`,
        skb,
      );
    // A loopback source rerouted off lo by a DNAT: the kernel refuses the route unless route_localnet
    // is on (__mkroute_output) and netfilter drops the packet — a UDP sender is told (EINVAL), TCP
    // and ping only wait.
    if (isLoopback(skb.ip.src) && route.dev.kind !== "loopback" && !ns.routesLocalnet(route.dev)) {
      const why = `${formatIpv4(skb.ip.src)} → ${formatIpv4(skb.ip.dst)} would leave lo by ${route.dev.name}: 127/8 is routed over lo only (route_localnet is 0)`;
      if (skb.l4.kind === "udp") return this.localError(ns, `sendto: Invalid argument (${why})`, skb);
      return this.drop(ns, why, skb, route.dev);
    }
    const dst = skb.ip.dst;
    const chosen = route;
    this.record(ns, "route", () => `route to ${formatIpv4(dst)}: ${routeText(chosen)}`, skb, route.dev);
    this.finishOutput(ns, route, skb, true);
  }

  /**
   * A packet to a multicast group (224.0.0.0/4). TCP never connects to one (ENETUNREACH). Ping and a
   * UDP socket send it on the route's device to the link, with the socket's multicast TTL of 1: no
   * router forwards it (and none routes multicast here), a host ignores an echo request to a group
   * (icmp_echo_ignore_broadcasts), and where a listener takes a datagram its answer comes from its own
   * address, which the socket that sent to the group does not take. Nothing comes back.
   */
  private toGroup(ns: SimNamespace, route: SimRoute, skb: Skb): void {
    const group = formatIpv4(skb.ip.dst);
    if (skb.l4.kind === "tcp")
      return this.localError(
        ns,
        `connect: Network is unreachable (${group} is a multicast group: TCP never connects to one)`,
        skb,
      );
    const dev = route.dev;
    this.record(ns, "route", () => `multicast ${group} dev ${dev.name}`, skb, dev);
    this.drop(
      ns,
      skb.l4.kind === "icmp"
        ? `echo request to multicast group ${group}, sent on ${dev.name} with TTL 1: no router forwards it, and every host ignores an echo request to a group (icmp_echo_ignore_broadcasts = 1)`
        : `datagram to multicast group ${group}, sent on ${dev.name} with TTL 1: no router forwards it, and an answer would come from a listener's own address, which a socket that sent to the group does not take`,
      skb,
      dev,
    );
  }

  protected finishOutput(ns: SimNamespace, route: SimRoute, input: Skb, local: boolean): void {
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
      // An encapsulation (VXLAN's outer packet) is lost and nothing tells whoever sent what it
      // carried. A UDP sender's sendto() returned long ago, and the host unreachable the kernel then
      // reports is a soft error a UDP socket is not told of (without IP_RECVERR): the datagram is lost.
      if (local && skb.inner)
        return this.drop(
          ns,
          `${reason}; the encapsulated packet is lost, and nothing tells its sender`,
          skb,
          dev,
        );
      if (local && skb.l4.kind === "udp")
        return this.drop(ns, `${reason}; the datagram is lost, and a UDP socket is not told`, skb, dev);
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
}

/** 224.0.0.0/4. */
const isMulticast = (address: number) => address >>> 28 === 0xe;

/** What a socket without SO_BROADCAST is told when its destination is a broadcast address. */
function broadcastRefusal(skb: Skb): string {
  const to = formatIpv4(skb.ip.dst);
  if (skb.l4.kind === "icmp")
    return `ping: Do you want to ping broadcast? Then -b. If not, check your local firewall rules (${to} is a broadcast address here)`;
  if (skb.l4.kind === "tcp")
    return `connect: Network is unreachable (${to} is a broadcast address here: TCP never connects to one)`;
  return `sendto: Permission denied (${to} is a broadcast address here: sending needs SO_BROADCAST)`;
}
