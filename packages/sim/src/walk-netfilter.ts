/** The walk's netfilter hooks: the filter table's chains, and NAT with conntrack. */
import { IcmpType, IcmpUnreachableCode, IpProtocol, TcpFlags, formatIpv4, type Header } from "@podnet/core";
import type { SimLink } from "./link.js";
import { conntrackTimeout, type ConntrackEntry, type SimNamespace } from "./namespace.js";
import type { Verdict } from "./netfilter.js";
import { runHook } from "./hooks.js";
import {
  skbWith,
  zeros,
  tupleOf,
  dstPortOf,
  invert,
  relatedTuple,
  natDst,
  natSrc,
  withDst,
  withSrc,
  endpoint,
  type Skb,
} from "./skb.js";
import { WalkCore } from "./walk-core.js";

export abstract class NetfilterWalk extends WalkCore {
  protected filter(
    ns: SimNamespace,
    chain: "INPUT" | "FORWARD" | "OUTPUT",
    skb: Skb,
    inDev: SimLink | undefined,
    outDev: SimLink | undefined,
  ): boolean {
    const explain = this.options.hooks === true && this.hops !== undefined;
    const verdict = runHook(ns, "filter", chain, skb, inDev?.name, outDev?.name, this.kernel, explain);
    // FORWARD runs after the routing decision (ip_forward, once the TTL is decreased): the packet is
    // headed for the output device, where the walk's "forward" hop already placed it.
    const at = chain === "FORWARD" ? (outDev ?? inDev) : (inDev ?? outDev);
    if (verdict.kind === "ACCEPT") {
      if (explain)
        this.record(ns, "filter", `filter ${chain}: ACCEPT by ${verdict.path.join(" → ")}`, skb, at);
      return true;
    }
    const rule = verdict.path[verdict.path.length - 1] ?? `policy of ${chain}`;
    this.record(ns, "filter", `filter ${chain}: ${rule}`, skb, at);
    if (verdict.kind === "REJECT" && chain === "INPUT" && this.toBroadcast(ns, skb)) {
      // The kernel answers nothing routed to a broadcast address: no RST (nf_send_reset), no ICMP error.
      this.drop(
        ns,
        `rejected by filter ${chain} (${verdict.rejectWith}), without an answer: ${formatIpv4(skb.ip.dst)} is a broadcast address of ${ns.name}`,
        skb,
        inDev,
      );
    } else if (verdict.kind === "REJECT") {
      this.drop(ns, `rejected by filter ${chain} (${verdict.rejectWith})`, skb, at);
      if (verdict.rejectWith === "tcp-reset" && skb.l4.kind === "tcp") {
        this.arrived(ns, skb, "refused", `connection refused: RST from the firewall of ${ns.name}`);
        // nf_send_reset attaches the packet's conntrack entry to the reset: a DNAT chosen for the
        // packet (not yet confirmed, the filter table comes first) is undone on the way back, so the
        // sender sees the reset come from where it sent.
        const ct = skb.ct;
        const sentTo =
          ct?.direction === "original" && ct.entry.dnatBy !== undefined ? ct.entry.original : undefined;
        this.reply(
          ns,
          skb,
          {
            kind: "tcp",
            srcPort: sentTo?.dstPort ?? skb.l4.dstPort,
            dstPort: skb.l4.srcPort,
            seq: 0,
            ack: (skb.l4.seq + 1) >>> 0,
            flags: TcpFlags.RST | TcpFlags.ACK,
            window: 0,
            urgent: 0,
          },
          zeros(0),
          sentTo?.dst,
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
    } else this.drop(ns, `dropped by filter ${chain}: ${rule}`, skb, at);
    return false;
  }

  /** Whether `skb` arrived for one of `ns`'s broadcast addresses (its local table's broadcast routes). */
  protected toBroadcast(ns: SimNamespace, skb: Skb): boolean {
    return skb.ip.dst === 0xffffffff || ns.subnetBroadcast(skb.ip.dst) !== undefined;
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
    // An ICMP error made here comes with its entry attached (icmpError): conntrack looks nothing up.
    const attached = related && input.ct?.related ? input.ct : undefined;
    const found = attached ?? ns.conntrack.get((tuple ?? related)!, now);
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
    const verdict = runHook(ns, "nat", chain, skb, inDev?.name, undefined, this.kernel);
    // An nftables nat chain may drop (iptables refuses DROP in its nat table): the hook's verdict.
    if (verdict.kind === "DROP") {
      this.drop(
        ns,
        `dropped by nat ${chain}: ${verdict.path[verdict.path.length - 1] ?? `policy of ${chain}`}`,
        skb,
        inDev,
      );
      return undefined;
    }
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

  protected natPrerouting(ns: SimNamespace, skb: Skb, inDev: SimLink): Skb | undefined {
    return this.natDestination(ns, skb, "PREROUTING", inDev);
  }

  protected natOutput(ns: SimNamespace, skb: Skb): Skb | undefined {
    return this.natDestination(ns, skb, "OUTPUT", undefined);
  }

  /** The source half of NAT (POSTROUTING, or INPUT for local delivery), then conntrack confirms the flow. */
  private natSource(ns: SimNamespace, input: Skb, outDev: SimLink | undefined): Skb {
    const ct = input.ct;
    if (!ct) return input;
    let skb = skbWith(input);
    skb.ct = undefined;
    // Confirmed and translated on its way out (POSTROUTING of lo): nothing more at INPUT.
    if (ct.looped) return skb;
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
      const verdict: Verdict = runHook(ns, "nat", "POSTROUTING", skb, undefined, outDev.name, this.kernel);
      if (verdict.kind === "SNAT" || verdict.kind === "MASQUERADE") {
        if (this.rec) this.rec.replayable = false;
        const address =
          verdict.kind === "SNAT" ? verdict.address : (outDev.addresses[0]?.address ?? skb.ip.src);
        const randomFully = verdict.kind === "MASQUERADE" && verdict.randomFully;
        const port =
          verdict.kind === "SNAT"
            ? verdict.port
            : randomFully
              ? this.randomPort(ns, entry, address)
              : undefined;
        const moved = withSrc(skb, address, port);
        const translated = tupleOf(moved)!;
        // --random-fully draws an ICMP identifier too, which podnet does not: no claim of a no-op then.
        const modelled = !randomFully || port !== undefined;
        if (modelled && address === input.ip.src && translated.srcPort === entry.original.srcPort) {
          // The tuple it would make is the one it has: nf_nat_setup_info leaves the flow untranslated
          // (no SNAT status on the entry), so the walk says the rule matched and changed nothing.
          this.record(
            ns,
            "nat",
            `nat POSTROUTING: ${verdict.kind} by ${verdict.path.join(" → ")} leaves source ${formatIpv4(address)} as it is`,
            skb,
            outDev,
          );
        } else {
          skb = moved;
          entry.snatBy = verdict.path.join(" → ");
          entry.reply = { ...entry.reply, dst: address, dstPort: translated.srcPort };
          this.record(
            ns,
            "nat",
            `nat POSTROUTING: ${verdict.kind} source ${
              translated.srcPort === entry.original.srcPort || dstPortOf(skb) === undefined
                ? `${formatIpv4(input.ip.src)} → ${formatIpv4(address)}`
                : `${endpoint(input.ip.src, entry.original.srcPort)} → ${endpoint(address, translated.srcPort)}${randomFully ? " (a port drawn at random: --random-fully)" : ""}`
            } by ${verdict.path.join(" → ")}`,
            skb,
            outDev,
          );
        }
      }
    }
    const now = this.kernel.clock;
    this.rec?.confirmed.push({ ns, entry });
    ns.conntrack.confirm(entry, now);
    return skb;
  }

  /**
   * The source port MASQUERADE --random-fully gives a TCP or UDP flow, as nf_nat_l4proto_unique_tuple
   * draws it: in the original port's class (1-511, 600-1023, or 1024-65535), from a random offset, the
   * first whose reply tuple no tracked flow holds. (kube-proxy's rule sees only TCP and UDP: an ICMP
   * identifier keeps its value here.)
   */
  private randomPort(ns: SimNamespace, entry: ConntrackEntry, address: number): number | undefined {
    const { protocol, srcPort } = entry.original;
    if (protocol !== IpProtocol.TCP && protocol !== IpProtocol.UDP) return undefined;
    const [min, size] = srcPort >= 1024 ? [1024, 64512] : srcPort < 512 ? [1, 511] : [600, 424];
    const offset = this.kernel.natRandom.nextUint32() & 0xffff;
    const now = this.kernel.clock;
    const { src, srcPort: serverPort } = entry.reply;
    for (let i = 0; i < size; i++) {
      const port = min + ((offset + i) % size);
      if (!ns.conntrack.get({ protocol, src, srcPort: serverPort, dst: address, dstPort: port }, now))
        return port;
    }
    return undefined;
  }

  protected natPostrouting(ns: SimNamespace, skb: Skb, outDev: SimLink): Skb | undefined {
    return this.natSource(ns, skb, outDev);
  }

  protected natInput(ns: SimNamespace, skb: Skb): Skb | undefined {
    return this.natSource(ns, skb, undefined);
  }

  protected abstract icmpError(
    ns: SimNamespace,
    offending: Skb,
    type: number,
    code: number,
    why: string,
    mtu?: number,
  ): void;
  /** Answers `request` from `src` (its destination unless given). */
  protected abstract reply(
    ns: SimNamespace,
    request: Skb,
    l4: Header,
    payload: Uint8Array,
    src?: number,
  ): void;
}
