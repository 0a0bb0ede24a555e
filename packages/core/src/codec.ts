import { foldChecksum, internetChecksum, onesComplementSum, pseudoHeaderSum } from "./checksum.js";
import { DecodeError, EncodeError } from "./errors.js";
import {
  EtherType,
  IcmpType,
  IcmpUnreachableCode,
  IpProtocol,
  VXLAN_IANA_PORT,
  VXLAN_LINUX_PORT,
  type ArpHeader,
  type EthernetHeader,
  type Header,
  type HeaderKind,
  type IcmpHeader,
  type Ipv4Header,
  type Packet,
  type TcpHeader,
  type UdpHeader,
  type VxlanHeader,
} from "./headers.js";

const MAC_HIGH = 2 ** 32;

function checkField(layer: string, field: string, value: number, bits: number): void {
  if (!Number.isInteger(value) || value < 0 || value >= 2 ** bits) {
    throw new EncodeError(layer, field, `${value} does not fit in ${bits} bits`);
  }
}

/** IPv4 and TCP options: whole 32-bit words, at most 40 bytes (the header length field's limit). */
function checkOptions(layer: string, options: Uint8Array | undefined): number {
  const length = options?.length ?? 0;
  if (length % 4 !== 0 || length > 40)
    throw new EncodeError(layer, "options", `${length} bytes is not a multiple of 4 up to 40`);
  return length;
}

function writeMac(view: DataView, offset: number, mac: number): void {
  view.setUint16(offset, Math.floor(mac / MAC_HIGH));
  view.setUint32(offset + 2, mac % MAC_HIGH);
}

function readMac(view: DataView, offset: number): number {
  return view.getUint16(offset) * MAC_HIGH + view.getUint32(offset + 2);
}

/** Wire size of one header. */
export function headerSize(header: Header): number {
  switch (header.kind) {
    case "ethernet":
      return 14;
    case "arp":
      return 28;
    case "ipv4":
      return 20 + (header.options?.length ?? 0);
    case "icmp":
    case "udp":
    case "vxlan":
      return 8;
    case "tcp":
      return 20 + (header.options?.length ?? 0);
  }
}

function icmpRest(h: IcmpHeader): number {
  if (h.type === IcmpType.ECHO_REQUEST || h.type === IcmpType.ECHO_REPLY) {
    return (((h.identifier ?? 0) << 16) | (h.sequence ?? 0)) >>> 0;
  }
  if (h.type === IcmpType.DEST_UNREACHABLE && h.code === IcmpUnreachableCode.FRAGMENTATION_NEEDED) {
    return h.nextHopMtu ?? 0;
  }
  return h.rest ?? 0;
}

function writeHeader(view: DataView, bytes: Uint8Array, o: number, h: Header): void {
  switch (h.kind) {
    case "ethernet":
      checkField("ethernet", "etherType", h.etherType, 16);
      writeMac(view, o, h.dst);
      writeMac(view, o + 6, h.src);
      view.setUint16(o + 12, h.etherType);
      return;
    case "arp":
      view.setUint16(o, 1); // hardware type Ethernet
      view.setUint16(o + 2, EtherType.IPV4);
      view.setUint8(o + 4, 6);
      view.setUint8(o + 5, 4);
      checkField("arp", "op", h.op, 16);
      view.setUint16(o + 6, h.op);
      writeMac(view, o + 8, h.senderMac);
      view.setUint32(o + 14, h.senderIp);
      writeMac(view, o + 18, h.targetMac);
      view.setUint32(o + 24, h.targetIp);
      return;
    case "ipv4": {
      const optionsLength = checkOptions("ipv4", h.options);
      checkField("ipv4", "tos", h.tos, 8);
      checkField("ipv4", "id", h.id, 16);
      checkField("ipv4", "fragmentOffset", h.fragmentOffset, 13);
      checkField("ipv4", "ttl", h.ttl, 8);
      checkField("ipv4", "protocol", h.protocol, 8);
      view.setUint8(o, 0x40 | ((20 + optionsLength) >> 2));
      view.setUint8(o + 1, h.tos);
      view.setUint16(o + 4, h.id);
      view.setUint16(
        o + 6,
        (h.dontFragment ? 0x4000 : 0) | (h.moreFragments ? 0x2000 : 0) | h.fragmentOffset,
      );
      view.setUint8(o + 8, h.ttl);
      view.setUint8(o + 9, h.protocol);
      view.setUint32(o + 12, h.src);
      view.setUint32(o + 16, h.dst);
      if (h.options) bytes.set(h.options, o + 20);
      return;
    }
    case "icmp":
      checkField("icmp", "type", h.type, 8);
      checkField("icmp", "code", h.code, 8);
      view.setUint8(o, h.type);
      view.setUint8(o + 1, h.code);
      view.setUint32(o + 4, icmpRest(h));
      return;
    case "udp":
      checkField("udp", "srcPort", h.srcPort, 16);
      checkField("udp", "dstPort", h.dstPort, 16);
      view.setUint16(o, h.srcPort);
      view.setUint16(o + 2, h.dstPort);
      return;
    case "tcp": {
      const optionsLength = checkOptions("tcp", h.options);
      checkField("tcp", "srcPort", h.srcPort, 16);
      checkField("tcp", "dstPort", h.dstPort, 16);
      checkField("tcp", "seq", h.seq, 32);
      checkField("tcp", "ack", h.ack, 32);
      checkField("tcp", "flags", h.flags, 8);
      checkField("tcp", "window", h.window, 16);
      checkField("tcp", "urgent", h.urgent, 16);
      view.setUint16(o, h.srcPort);
      view.setUint16(o + 2, h.dstPort);
      view.setUint32(o + 4, h.seq);
      view.setUint32(o + 8, h.ack);
      view.setUint8(o + 12, ((20 + optionsLength) >> 2) << 4);
      view.setUint8(o + 13, h.flags);
      view.setUint16(o + 14, h.window);
      view.setUint16(o + 18, h.urgent);
      if (h.options) bytes.set(h.options, o + 20);
      return;
    }
    case "vxlan":
      checkField("vxlan", "vni", h.vni, 24);
      view.setUint8(o, 0x08); // I flag: the VNI is valid
      view.setUint32(o + 4, h.vni << 8);
      return;
  }
}

/**
 * Encodes a packet to wire bytes. Lengths and checksums left undefined are computed, innermost
 * first, so an outer UDP checksum covers the inner headers' final bytes.
 */
export function encodePacket(packet: Packet): Uint8Array {
  const { headers, payload } = packet;
  const offsets: number[] = [];
  let total = 0;
  for (const h of headers) {
    offsets.push(total);
    total += headerSize(h);
  }
  const bodyStart = total;
  total += payload.length;
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  headers.forEach((h, i) => writeHeader(view, bytes, offsets[i]!, h));
  bytes.set(payload, bodyStart);

  // Lengths first (they are covered by checksums), outermost to innermost is fine for them.
  const enclosingIp: (Ipv4Header | undefined)[] = [];
  let ip: Ipv4Header | undefined;
  headers.forEach((h, i) => {
    enclosingIp.push(ip);
    const o = offsets[i]!;
    if (h.kind === "ipv4") {
      ip = h;
      const length = h.totalLength ?? total - o;
      checkField("ipv4", "totalLength", length, 16);
      view.setUint16(o + 2, length);
    } else if (h.kind === "udp") {
      const length = h.length ?? total - o;
      checkField("udp", "length", length, 16);
      view.setUint16(o + 4, length);
    }
  });
  for (let i = headers.length - 1; i >= 0; i--) {
    const h = headers[i]!;
    const o = offsets[i]!;
    if (h.kind === "ipv4") {
      view.setUint16(o + 10, h.checksum ?? internetChecksum(bytes, o, o + headerSize(h)));
    } else if (h.kind === "icmp") {
      view.setUint16(o + 2, h.checksum ?? internetChecksum(bytes, o, total));
    } else if (h.kind === "udp" || h.kind === "tcp") {
      let checksum = h.checksum;
      if (checksum === undefined) {
        const outer = enclosingIp[i];
        const length = total - o;
        const protocol = h.kind === "udp" ? IpProtocol.UDP : IpProtocol.TCP;
        const pseudo = outer ? pseudoHeaderSum(outer.src, outer.dst, protocol, length) : 0;
        checksum = foldChecksum(onesComplementSum(bytes, o, total, pseudo));
        // RFC 768: a computed UDP checksum of zero is sent as all ones; zero means "none".
        if (h.kind === "udp" && checksum === 0) checksum = 0xffff;
      }
      view.setUint16(o + (h.kind === "udp" ? 6 : 16), checksum);
    }
  }
  return bytes;
}

export interface DecodeOptions {
  /** UDP destination ports whose payload is decoded as VXLAN. Default: 4789 and 8472. */
  vxlanPorts?: readonly number[];
}

export interface DecodedHeader<H extends Header = Header> {
  header: H;
  /** Offset of the first byte after the header. */
  end: number;
  /** Where this header's payload ends (IPv4 total length, UDP length); the buffer end otherwise. */
  payloadEnd: number;
}

function need(layer: string, bytes: Uint8Array, offset: number, size: number, limit = bytes.length): void {
  if (offset + size > limit) {
    throw new DecodeError(layer, offset, `truncated: ${Math.max(0, limit - offset)} bytes, need ${size}`);
  }
}

function decodeEthernet(
  view: DataView,
  bytes: Uint8Array,
  o: number,
  limit: number,
): DecodedHeader<EthernetHeader> {
  need("ethernet", bytes, o, 14, limit);
  return {
    header: {
      kind: "ethernet",
      dst: readMac(view, o),
      src: readMac(view, o + 6),
      etherType: view.getUint16(o + 12),
    },
    end: o + 14,
    payloadEnd: limit,
  };
}

function decodeArp(view: DataView, bytes: Uint8Array, o: number, limit: number): DecodedHeader<ArpHeader> {
  need("arp", bytes, o, 28, limit);
  const htype = view.getUint16(o);
  const ptype = view.getUint16(o + 2);
  if (htype !== 1 || ptype !== EtherType.IPV4 || view.getUint8(o + 4) !== 6 || view.getUint8(o + 5) !== 4) {
    throw new DecodeError(
      "arp",
      o,
      `unsupported hardware/protocol ${htype}/0x${ptype.toString(16)} (want Ethernet/IPv4)`,
    );
  }
  return {
    header: {
      kind: "arp",
      op: view.getUint16(o + 6),
      senderMac: readMac(view, o + 8),
      senderIp: view.getUint32(o + 14),
      targetMac: readMac(view, o + 18),
      targetIp: view.getUint32(o + 24),
    },
    end: o + 28,
    payloadEnd: limit,
  };
}

function decodeIpv4(view: DataView, bytes: Uint8Array, o: number, limit: number): DecodedHeader<Ipv4Header> {
  need("ipv4", bytes, o, 20, limit);
  const versionIhl = view.getUint8(o);
  if (versionIhl >> 4 !== 4) throw new DecodeError("ipv4", o, `version ${versionIhl >> 4}, expected 4`);
  const headerLength = (versionIhl & 0x0f) * 4;
  if (headerLength < 20) throw new DecodeError("ipv4", o, `header length ${headerLength} is below 20`);
  need("ipv4", bytes, o, headerLength, limit);
  const totalLength = view.getUint16(o + 2);
  if (totalLength < headerLength) {
    throw new DecodeError(
      "ipv4",
      o,
      `total length ${totalLength} is below the header length ${headerLength}`,
    );
  }
  if (o + totalLength > limit) {
    throw new DecodeError("ipv4", o, `total length ${totalLength} exceeds the ${limit - o} bytes available`);
  }
  const flags = view.getUint16(o + 6);
  const header: Ipv4Header = {
    kind: "ipv4",
    tos: view.getUint8(o + 1),
    id: view.getUint16(o + 4),
    dontFragment: (flags & 0x4000) !== 0,
    moreFragments: (flags & 0x2000) !== 0,
    fragmentOffset: flags & 0x1fff,
    ttl: view.getUint8(o + 8),
    protocol: view.getUint8(o + 9),
    src: view.getUint32(o + 12),
    dst: view.getUint32(o + 16),
    totalLength,
    checksum: view.getUint16(o + 10),
  };
  if (headerLength > 20) header.options = bytes.slice(o + 20, o + headerLength);
  return { header, end: o + headerLength, payloadEnd: o + totalLength };
}

function decodeIcmp(view: DataView, bytes: Uint8Array, o: number, limit: number): DecodedHeader<IcmpHeader> {
  need("icmp", bytes, o, 8, limit);
  const type = view.getUint8(o);
  const code = view.getUint8(o + 1);
  const rest = view.getUint32(o + 4);
  const header: IcmpHeader = { kind: "icmp", type, code, checksum: view.getUint16(o + 2) };
  if (type === IcmpType.ECHO_REQUEST || type === IcmpType.ECHO_REPLY) {
    header.identifier = rest >>> 16;
    header.sequence = rest & 0xffff;
  } else if (type === IcmpType.DEST_UNREACHABLE && code === IcmpUnreachableCode.FRAGMENTATION_NEEDED) {
    header.nextHopMtu = rest & 0xffff;
    if (rest >>> 16) header.rest = rest;
  } else {
    header.rest = rest;
  }
  return { header, end: o + 8, payloadEnd: limit };
}

function decodeUdp(view: DataView, bytes: Uint8Array, o: number, limit: number): DecodedHeader<UdpHeader> {
  need("udp", bytes, o, 8, limit);
  const length = view.getUint16(o + 4);
  if (length < 8) throw new DecodeError("udp", o, `length ${length} is below 8`);
  if (o + length > limit)
    throw new DecodeError("udp", o, `length ${length} exceeds the ${limit - o} bytes available`);
  return {
    header: {
      kind: "udp",
      srcPort: view.getUint16(o),
      dstPort: view.getUint16(o + 2),
      length,
      checksum: view.getUint16(o + 6),
    },
    end: o + 8,
    payloadEnd: o + length,
  };
}

function decodeTcp(view: DataView, bytes: Uint8Array, o: number, limit: number): DecodedHeader<TcpHeader> {
  need("tcp", bytes, o, 20, limit);
  const headerLength = (view.getUint8(o + 12) >> 4) * 4;
  if (headerLength < 20) throw new DecodeError("tcp", o, `data offset ${headerLength} is below 20`);
  need("tcp", bytes, o, headerLength, limit);
  const header: TcpHeader = {
    kind: "tcp",
    srcPort: view.getUint16(o),
    dstPort: view.getUint16(o + 2),
    seq: view.getUint32(o + 4),
    ack: view.getUint32(o + 8),
    flags: view.getUint8(o + 13),
    window: view.getUint16(o + 14),
    checksum: view.getUint16(o + 16),
    urgent: view.getUint16(o + 18),
  };
  if (headerLength > 20) header.options = bytes.slice(o + 20, o + headerLength);
  return { header, end: o + headerLength, payloadEnd: limit };
}

function decodeVxlan(
  view: DataView,
  bytes: Uint8Array,
  o: number,
  limit: number,
): DecodedHeader<VxlanHeader> {
  need("vxlan", bytes, o, 8, limit);
  if ((view.getUint8(o) & 0x08) === 0)
    throw new DecodeError("vxlan", o, "I flag clear: no valid VNI (RFC 7348)");
  return { header: { kind: "vxlan", vni: view.getUint32(o + 4) >>> 8 }, end: o + 8, payloadEnd: limit };
}

const decoders = {
  ethernet: decodeEthernet,
  arp: decodeArp,
  ipv4: decodeIpv4,
  icmp: decodeIcmp,
  udp: decodeUdp,
  tcp: decodeTcp,
  vxlan: decodeVxlan,
} as const;

/** Decodes one header of the given kind at `offset`. Throws only DecodeError. */
export function decodeHeader<K extends HeaderKind>(
  kind: K,
  bytes: Uint8Array,
  offset = 0,
  limit = bytes.length,
): DecodedHeader<Extract<Header, { kind: K }>> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return decoders[kind](view, bytes, offset, limit) as DecodedHeader<Extract<Header, { kind: K }>>;
}

function nextKind(
  header: Header,
  vxlanPorts: readonly number[],
  remaining: number,
  peek: number,
): HeaderKind | null {
  switch (header.kind) {
    case "ethernet":
      return header.etherType === EtherType.IPV4 ? "ipv4" : header.etherType === EtherType.ARP ? "arp" : null;
    case "ipv4":
      // A fragment carries no (complete) transport header: its bytes stay payload.
      if (header.fragmentOffset !== 0 || header.moreFragments) return null;
      return header.protocol === IpProtocol.ICMP
        ? "icmp"
        : header.protocol === IpProtocol.TCP
          ? "tcp"
          : header.protocol === IpProtocol.UDP
            ? "udp"
            : null;
    case "udp":
      // Port 4789/8472 alone does not make VXLAN: without the I flag the bytes are plain UDP payload.
      return vxlanPorts.includes(header.dstPort) && remaining >= 8 && (peek & 0x08) !== 0 ? "vxlan" : null;
    case "vxlan":
      return "ethernet";
    default:
      return null;
  }
}

/**
 * Decodes an Ethernet frame into a header stack, following VXLAN into the inner frame. Bytes past
 * the IPv4 total length (Ethernet padding) are dropped. Throws only DecodeError.
 */
export function decodePacket(bytes: Uint8Array, options: DecodeOptions = {}): Packet {
  const vxlanPorts = options.vxlanPorts ?? [VXLAN_IANA_PORT, VXLAN_LINUX_PORT];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headers: Header[] = [];
  let kind: HeaderKind | null = "ethernet";
  let offset = 0;
  let limit = bytes.length;
  while (kind) {
    const decoded: DecodedHeader = decoders[kind](view, bytes, offset, limit);
    headers.push(decoded.header);
    offset = decoded.end;
    limit = Math.min(limit, decoded.payloadEnd);
    kind = nextKind(decoded.header, vxlanPorts, limit - offset, offset < limit ? bytes[offset]! : 0);
  }
  return { headers, payload: bytes.slice(offset, limit) };
}
