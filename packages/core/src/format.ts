import { formatIpv4 } from "./ipv4.js";
import { formatMac } from "./mac.js";
import { ArpOp, IcmpType, IpProtocol, TcpFlags, type Header, type Packet } from "./headers.js";

const PROTOCOL_NAMES: Record<number, string> = {
  [IpProtocol.ICMP]: "icmp",
  [IpProtocol.TCP]: "tcp",
  [IpProtocol.UDP]: "udp",
};
const ICMP_NAMES: Record<number, string> = {
  [IcmpType.ECHO_REPLY]: "echo-reply",
  [IcmpType.ECHO_REQUEST]: "echo-request",
  [IcmpType.DEST_UNREACHABLE]: "dest-unreachable",
  [IcmpType.TIME_EXCEEDED]: "time-exceeded",
};
const UNREACHABLE_NAMES = ["net", "host", "protocol", "port", "frag-needed"];

export function formatTcpFlags(flags: number): string {
  const names = Object.entries(TcpFlags)
    .filter(([, bit]) => (flags & bit) !== 0)
    .map(([name]) => name);
  return names.length ? names.join(",") : "none";
}

/** One header as a short line in tcpdump's spirit: "ipv4 10.0.1.2 > 10.0.2.2 ttl 64 icmp". */
export function formatHeader(h: Header): string {
  switch (h.kind) {
    case "ethernet":
      return `ethernet ${formatMac(h.src)} > ${formatMac(h.dst)} type 0x${h.etherType.toString(16).padStart(4, "0")}`;
    case "arp":
      return h.op === ArpOp.REQUEST
        ? `arp who-has ${formatIpv4(h.targetIp)} tell ${formatIpv4(h.senderIp)}`
        : `arp reply ${formatIpv4(h.senderIp)} is-at ${formatMac(h.senderMac)}`;
    case "ipv4":
      return (
        `ipv4 ${formatIpv4(h.src)} > ${formatIpv4(h.dst)} ttl ${h.ttl} ` +
        `${PROTOCOL_NAMES[h.protocol] ?? `proto ${h.protocol}`}${h.dontFragment ? " DF" : ""}` +
        (h.totalLength !== undefined ? ` len ${h.totalLength}` : "")
      );
    case "icmp": {
      let text = `icmp ${ICMP_NAMES[h.type] ?? `type ${h.type}`}`;
      if (h.type === IcmpType.DEST_UNREACHABLE) text += ` ${UNREACHABLE_NAMES[h.code] ?? `code ${h.code}`}`;
      else if (h.code !== 0) text += ` code ${h.code}`;
      if (h.identifier !== undefined) text += ` id ${h.identifier} seq ${h.sequence ?? 0}`;
      if (h.nextHopMtu !== undefined) text += ` mtu ${h.nextHopMtu}`;
      return text;
    }
    case "udp":
      return `udp ${h.srcPort} > ${h.dstPort}`;
    case "tcp":
      // tcpdump's fields: the acknowledgement only where the ACK flag makes it meaningful.
      return `tcp ${h.srcPort} > ${h.dstPort} [${formatTcpFlags(h.flags)}] seq ${h.seq}${
        h.flags & TcpFlags.ACK ? ` ack ${h.ack}` : ""
      }`;
    case "vxlan":
      return `vxlan vni ${h.vni}`;
  }
}

export function formatPacket(packet: Packet): string {
  return (
    packet.headers.map(formatHeader).join(" | ") +
    (packet.payload.length ? ` | ${packet.payload.length} bytes` : "")
  );
}

/** Bytes as lowercase hex, two digits each ("" for none), as tshark's JSON shows raw data. */
// Not Buffer: this package runs in the web app's worker too.
function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += (b < 16 ? "0" : "") + b.toString(16);
  return out;
}

/**
 * A header for JSON: addresses in their text forms (the values are numbers in memory, which JSON
 * would print as 167772419), raw options as hex. Every other field as it is.
 */
export function headerJson(h: Header): Record<string, unknown> {
  switch (h.kind) {
    case "ethernet":
      return { ...h, dst: formatMac(h.dst), src: formatMac(h.src) };
    case "arp":
      return {
        ...h,
        senderMac: formatMac(h.senderMac),
        senderIp: formatIpv4(h.senderIp),
        targetMac: formatMac(h.targetMac),
        targetIp: formatIpv4(h.targetIp),
      };
    case "ipv4":
      return {
        ...h,
        src: formatIpv4(h.src),
        dst: formatIpv4(h.dst),
        ...(h.options ? { options: hex(h.options) } : {}),
      };
    case "tcp":
      return { ...h, ...(h.options ? { options: hex(h.options) } : {}) };
    default:
      return { ...h };
  }
}

/** A packet for JSON (`headerJson`), its payload as hex with its length. */
export function packetJson(p: Packet): {
  headers: Record<string, unknown>[];
  payloadLength: number;
  payload: string;
} {
  return { headers: p.headers.map(headerJson), payloadLength: p.payload.length, payload: hex(p.payload) };
}
