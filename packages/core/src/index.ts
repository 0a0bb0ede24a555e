export { PodnetError, AddressParseError, DecodeError, EncodeError, quoteInput, printable } from "./errors.js";
export {
  type Ipv4,
  type Ipv4InterfaceAddress,
  type AddressFamily,
  isIpv4Value,
  Ipv4Prefix,
  parseIpv4,
  formatIpv4,
  isIpv4,
  prefixMask,
  parseIpv4InterfaceAddress,
  formatIpv4InterfaceAddress,
} from "./ipv4.js";
export {
  type Mac,
  BROADCAST_MAC,
  parseMac,
  formatMac,
  isMacValue,
  isMulticastMac,
  MacGenerator,
  SeededRandom,
  fnv1a32,
} from "./mac.js";
export {
  type Header,
  type HeaderKind,
  type Packet,
  type EthernetHeader,
  type ArpHeader,
  type Ipv4Header,
  type IcmpHeader,
  type UdpHeader,
  type TcpHeader,
  type VxlanHeader,
  EtherType,
  IpProtocol,
  ArpOp,
  IcmpType,
  IcmpUnreachableCode,
  TcpFlags,
  VXLAN_IANA_PORT,
  VXLAN_LINUX_PORT,
  VXLAN_OVERHEAD,
} from "./headers.js";
export {
  encodePacket,
  decodePacket,
  decodeHeader,
  headerSize,
  type DecodeOptions,
  type DecodedHeader,
} from "./codec.js";
export { internetChecksum } from "./checksum.js";
export { fragmentIpv4, fragmentPieces, ipv4HeaderLength, type FragmentPiece } from "./fragment.js";
export {
  encodePcap,
  decodePcap,
  LINKTYPE_ETHERNET,
  type PcapRecord,
  type PcapFile,
  type PcapOptions,
} from "./pcap.js";
export {
  encodePcapng,
  decodePcapng,
  type PcapngFile,
  type PcapngInterface,
  type PcapngRecord,
} from "./pcapng.js";
export { formatHeader, formatPacket, formatTcpFlags, headerJson, packetJson } from "./format.js";
