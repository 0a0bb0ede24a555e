/**
 * The walk's devices: veth pairs, bridges (their FDB, floods and br_netfilter), VXLAN
 * encapsulation, and the neighbours a next hop resolves to by ARP.
 */
import {
  ArpOp,
  BROADCAST_MAC,
  EtherType,
  IcmpType,
  IcmpUnreachableCode,
  IpProtocol,
  formatIpv4,
  formatMac,
  isMulticastMac,
  type ArpHeader,
} from "@podnet/core";
import { outerSourcePort } from "./flow-cache.js";
import { ArpHost, type ArpIndex, type SimLink } from "./link.js";
import { isLoopback, type SimNamespace } from "./namespace.js";
import { zeros, tupleOf, type Frame, type Skb } from "./skb.js";
import { NetfilterWalk } from "./walk-netfilter.js";
import { ON_WIRE } from "./walk-trace.js";

const ZERO_MAC = 0;

/** How many ports a flood's sentence names before it only counts them. */
const NAMED = 6;

/**
 * A port behind which a host answers ARP for its own addresses, and nothing else: the far end of a
 * veth pair that no bridge holds. Any other port (a VXLAN device, an uplink, a bridge's veth to
 * another bridge) may react to a request in other ways, so it is always walked.
 */
function plainHost(port: SimLink): boolean {
  const peer = port.peer;
  return port.kind === "veth" && peer !== undefined && !peer.master && peer.kind === "veth";
}

/**
 * The ports of a flood decision (all ports but `except`, with carrier when asked) as the hop's
 * sentence says them, made when read from `count` and the first ports in order (taken when the
 * frame went: later changes replace these lists rather than edit them); a 5,000-port segment is
 * summarised, not listed. Made at once, the names were a twentieth of what a random trace allocated.
 */
function portList(count: number, first: readonly SimLink[], except: SimLink | undefined): () => string {
  return () => {
    const names = first.filter((p) => p !== except).map((p) => p.name);
    if (count === 0) return "no other port";
    if (count <= NAMED) return names.slice(0, NAMED).join(", ");
    return `${count} ports (${names.slice(0, 3).join(", ")}, …)`;
  };
}

export abstract class DeviceWalk extends NetfilterWalk {
  /** The neighbour table, then ARP on the wire, as the kernel resolves a next hop. */
  protected resolve(ns: SimNamespace, dev: SimLink, nextHop: number, skb: Skb): number | undefined {
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

  protected transmit(dev: SimLink, frame: Frame): void {
    this.step();
    const ns = dev.ns;
    this.record(ns, "transmit", ON_WIRE, frame, dev, "out");
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

  protected receive(dev: SimLink, frame: Frame): void {
    this.step();
    if (dev.kind !== "loopback") this.record(dev.ns, "receive", ON_WIRE, frame, dev, "in");
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
      const ports = this.floodList(bridge, port, false);
      this.record(
        ns,
        "bridge",
        () => `${bridge.name}: broadcast from ${port.name}: flood to ${ports()} and up to the bridge`,
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
    const ports = this.floodList(bridge, port, true);
    this.record(
      ns,
      "bridge",
      () => `${bridge.name}: ${formatMac(to)} unknown: flood to ${ports()}`,
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
    const target = frame.arp.targetIp;
    if (!index.large) {
      // A small bridge (a node's cbr0 or docker0) is looked at port by port, in its index's arrays:
      // asking each host's namespace instead cost a few cache misses per port, and at 5,000 nodes
      // that look was a tenth of a random trace.
      const local = !isLoopback(target);
      const ports: SimLink[] = [];
      for (let i = 0; i < index.ports.length; i++) {
        const p = index.ports[i]!;
        if (p === from) continue;
        const host = index.hosts[i]!;
        if (
          host === ArpHost.OTHER ||
          (local && (host === target || (host === ArpHost.SEVERAL && p.peer!.ns.localAddresses.has(target))))
        )
          ports.push(p);
      }
      return ports;
    }
    const { byAddress, others, order } = index.large;
    const targets = byAddress.get(target);
    const ports = targets ? [...targets, ...others] : others;
    return ports.length > 1
      ? ports.filter((p) => p !== from).sort((a, b) => order.get(a)! - order.get(b)!)
      : ports.filter((p) => p !== from);
  }

  /** `portList` for a flood out of `bridge`, from its index. */
  private floodList(bridge: SimLink, except: SimLink | undefined, carrierOnly: boolean): () => string {
    const index = this.arpIndex(bridge);
    let count = carrierOnly ? index.carriers : index.ports.length;
    const member = except && (index.large ? index.large.order.has(except) : index.ports.includes(except));
    if (member && (!carrierOnly || except.carrier)) count--;
    return portList(count, carrierOnly ? index.first.withCarrier : index.first.all, except);
  }

  /**
   * The bridge's ports, who is behind each and how many have carrier, made once per topology
   * version: a flood through a node's bridge reads arrays of its own, not each host's namespace.
   * Bridges of `arpIndexFrom` ports or more also get maps by address (`ArpIndex.large`); under
   * random pairs at 5,000 nodes maps for every node's bridge were an eighth of the first second
   * and most of what its collections copied, so small ones keep to two arrays.
   */
  private arpIndex(bridge: SimLink): ArpIndex {
    const version = this.kernel.topologyVersion;
    if (bridge.arpIndex?.version === version) return bridge.arpIndex;
    const large =
      bridge.ports!.size >= this.kernel.arpIndexFrom
        ? {
            byAddress: new Map<number, SimLink[]>(),
            others: [] as SimLink[],
            order: new Map<SimLink, number>(),
          }
        : undefined;
    const index: ArpIndex = {
      version,
      ports: [...bridge.ports!],
      hosts: [],
      ...(large ? { large } : {}),
      carriers: 0,
      first: { all: [], withCarrier: [] },
    };
    for (const port of index.ports) {
      // One more than a sentence names: the port a flood came from is left out of it.
      if (index.first.all.length <= NAMED) index.first.all.push(port);
      if (port.carrier) {
        index.carriers++;
        if (index.first.withCarrier.length <= NAMED) index.first.withCarrier.push(port);
      }
      large?.order.set(port, large.order.size);
      if (!plainHost(port)) {
        index.hosts.push(ArpHost.OTHER);
        large?.others.push(port);
        continue;
      }
      let host: number = ArpHost.NONE;
      for (const address of port.peer!.ns.localAddresses.keys()) {
        if (isLoopback(address)) continue;
        host = host === ArpHost.NONE ? address : ArpHost.SEVERAL;
        if (!large) continue;
        const list = large.byAddress.get(address);
        if (list) list.push(port);
        else large.byAddress.set(address, [port]);
      }
      index.hosts.push(host);
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
    const mark = this.hopCount;
    const events = this.events;
    this.flooding++;
    try {
      this.transmit(port, frame);
    } finally {
      this.flooding--;
    }
    if (this.events === events) {
      this.hopCount = mark;
      if (this.hops) this.hops.length = mark;
    }
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
    const ports = this.floodList(bridge, undefined, true);
    this.record(
      ns,
      "bridge",
      () =>
        `${bridge.name}: ${isMulticastMac(dst) ? "broadcast" : `${formatMac(dst)} unknown`}: flood to ${ports()}`,
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
      // The frame waited in the neighbour's queue (br_nf_pre_routing_finish_bridge → neigh->output);
      // its failure reports a link failure as for a routed packet (arp_error_report →
      // ipv4_link_failure): host unreachable to the sender, un-DNATed by the entry it carries.
      const reason = `no ARP reply for ${formatIpv4(nextHop)} on ${bridge.name}: host unreachable`;
      this.drop(ns, reason, skb, bridge);
      this.icmpError(
        ns,
        skb,
        IcmpType.DEST_UNREACHABLE,
        IcmpUnreachableCode.HOST,
        `host unreachable: ${reason} at ${ns.name}`,
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
      if (!ns.localAddresses.has(arp.targetIp) || isLoopback(arp.targetIp)) return;
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

  protected abstract ipInput(ns: SimNamespace, inDev: SimLink, input: Skb): void;
}
