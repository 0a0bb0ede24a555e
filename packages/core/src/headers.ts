import type { Ipv4 } from "./ipv4.js";
import type { Mac } from "./mac.js";

export const EtherType = { IPV4: 0x0800, ARP: 0x0806 } as const;
export const IpProtocol = { ICMP: 1, TCP: 6, UDP: 17 } as const;
export const ArpOp = { REQUEST: 1, REPLY: 2 } as const;
export const IcmpType = { ECHO_REPLY: 0, DEST_UNREACHABLE: 3, ECHO_REQUEST: 8, TIME_EXCEEDED: 11 } as const;
/** Codes of ICMP destination unreachable (RFC 792, RFC 1122). */
export const IcmpUnreachableCode = {
  NET: 0,
  HOST: 1,
  PROTOCOL: 2,
  PORT: 3,
  FRAGMENTATION_NEEDED: 4,
  ADMIN_PROHIBITED: 13,
} as const;
export const TcpFlags = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;
/** IANA's VXLAN port, and the Linux kernel's default, which flannel uses. */
export const VXLAN_IANA_PORT = 4789;
export const VXLAN_LINUX_PORT = 8472;
/** Outer Ethernet (14) + IPv4 (20) + UDP (8) + VXLAN (8): why flannel sets the VXLAN MTU to underlay − 50. */
export const VXLAN_OVERHEAD = 50;

export interface EthernetHeader {
  kind: "ethernet";
  dst: Mac;
  src: Mac;
  etherType: number;
}

/** ARP for IPv4 over Ethernet (htype 1, ptype 0x0800): the only kind the kernel model speaks. */
export interface ArpHeader {
  kind: "arp";
  op: number;
  senderMac: Mac;
  senderIp: Ipv4;
  targetMac: Mac;
  targetIp: Ipv4;
}

export interface Ipv4Header {
  kind: "ipv4";
  tos: number;
  id: number;
  dontFragment: boolean;
  moreFragments: boolean;
  /** In 8-byte units, as on the wire. */
  fragmentOffset: number;
  ttl: number;
  protocol: number;
  src: Ipv4;
  dst: Ipv4;
  /** Raw options, a multiple of 4 bytes. */
  options?: Uint8Array;
  /** Computed on encode when absent; filled in by decode. */
  totalLength?: number;
  checksum?: number;
}

/**
 * ICMP. The 4-byte rest-of-header is shown by meaning: `identifier`/`sequence` for echo,
 * `nextHopMtu` for fragmentation-needed (RFC 1191), `rest` (raw) for any other type.
 */
export interface IcmpHeader {
  kind: "icmp";
  type: number;
  code: number;
  identifier?: number;
  sequence?: number;
  nextHopMtu?: number;
  rest?: number;
  checksum?: number;
}

export interface UdpHeader {
  kind: "udp";
  srcPort: number;
  dstPort: number;
  length?: number;
  /** 0 on the wire means "no checksum" (RFC 768). */
  checksum?: number;
}

export interface TcpHeader {
  kind: "tcp";
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** Bitmask of TcpFlags. */
  flags: number;
  window: number;
  urgent: number;
  options?: Uint8Array;
  checksum?: number;
}

/** RFC 7348: flags (I = 0x08 for a valid VNI), 24 reserved bits, 24-bit VNI, 8 reserved bits. */
export interface VxlanHeader {
  kind: "vxlan";
  vni: number;
}

export type Header =
  EthernetHeader | ArpHeader | Ipv4Header | IcmpHeader | UdpHeader | TcpHeader | VxlanHeader;
export type HeaderKind = Header["kind"];

/**
 * A packet is a stack of headers, outermost first, then the payload. An encapsulated frame is one
 * value: [ethernet, ipv4, udp, vxlan, ethernet, ipv4, icmp] + payload.
 */
export interface Packet {
  headers: Header[];
  payload: Uint8Array;
}
