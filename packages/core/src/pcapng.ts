/**
 * pcapng (the format Wireshark and dumpcap write): one Interface Description
 * Block per device, named, so that a frame seen on two wires (out of a pod's eth0, then out of the
 * bridge port it crossed) reads as one frame on two interfaces — not as a retransmission, which is
 * what the same frames read as in classic pcap, where a capture has no interfaces.
 */
import { DecodeError } from "./errors.js";
import { LINKTYPE_ETHERNET } from "./pcap.js";

const SHB = 0x0a0d0d0a;
const IDB = 1;
const EPB = 6;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const OPT_END = 0;
const IF_NAME = 2;
const SNAP_LENGTH = 262144;

export interface PcapngInterface {
  /** `if_name`: how Wireshark labels the interface (`node1/eth0`). */
  name: string;
  linkType?: number;
}

export interface PcapngRecord {
  /** Index into the interfaces. */
  interface: number;
  /** Capture time in microseconds since the Unix epoch (the format's default resolution). */
  timestampMicros: number;
  data: Uint8Array;
}

export interface PcapngFile {
  interfaces: PcapngInterface[];
  records: PcapngRecord[];
}

const pad4 = (n: number) => (n + 3) & ~3;

/** Writes one section, little-endian: the header, the interfaces, then each frame as an Enhanced Packet Block. */
export function encodePcapng({ interfaces, records }: PcapngFile): Uint8Array {
  const names = interfaces.map((i) => new TextEncoder().encode(i.name));
  const idbLength = (name: Uint8Array) => 20 + 4 + pad4(name.length) + 4;
  const size =
    28 +
    names.reduce((t, n) => t + idbLength(n), 0) +
    records.reduce((t, r) => t + 32 + pad4(r.data.length), 0);
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  let o = 0;
  const block = (type: number, length: number) => {
    view.setUint32(o, type, true);
    view.setUint32(o + 4, length, true);
    view.setUint32(o + length - 4, length, true);
  };
  block(SHB, 28);
  view.setUint32(o + 8, BYTE_ORDER_MAGIC, true);
  view.setUint16(o + 12, 1, true);
  view.setUint16(o + 14, 0, true);
  // Section length unknown (-1), as streaming writers leave it.
  view.setInt32(o + 16, -1, true);
  view.setInt32(o + 20, -1, true);
  o += 28;
  interfaces.forEach((iface, i) => {
    const name = names[i]!;
    const length = idbLength(name);
    block(IDB, length);
    view.setUint16(o + 8, iface.linkType ?? LINKTYPE_ETHERNET, true);
    view.setUint32(o + 12, SNAP_LENGTH, true);
    view.setUint16(o + 16, IF_NAME, true);
    view.setUint16(o + 18, name.length, true);
    bytes.set(name, o + 20);
    view.setUint16(o + 20 + pad4(name.length), OPT_END, true);
    o += length;
  });
  for (const r of records) {
    const length = 32 + pad4(r.data.length);
    block(EPB, length);
    view.setUint32(o + 8, r.interface, true);
    // 64-bit timestamp in microseconds, high word first.
    view.setUint32(o + 12, Math.floor(r.timestampMicros / 2 ** 32), true);
    view.setUint32(o + 16, r.timestampMicros % 2 ** 32, true);
    view.setUint32(o + 20, r.data.length, true);
    view.setUint32(o + 24, r.data.length, true);
    bytes.set(r.data, o + 28);
    o += length;
  }
  return bytes;
}

/** Reads a one-section pcapng file in either byte order: its interfaces' names and its frames. */
export function decodePcapng(bytes: Uint8Array): PcapngFile {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 28 || view.getUint32(0, true) !== SHB)
    throw new DecodeError("pcapng", 0, "not a pcapng section header");
  const little = view.getUint32(8, true) === BYTE_ORDER_MAGIC;
  if (!little && view.getUint32(8, false) !== BYTE_ORDER_MAGIC)
    throw new DecodeError("pcapng", 8, "bad byte-order magic");
  const file: PcapngFile = { interfaces: [], records: [] };
  let o = 0;
  while (o < bytes.length) {
    if (o + 12 > bytes.length) throw new DecodeError("pcapng", o, "truncated block");
    const type = view.getUint32(o, little);
    const length = view.getUint32(o + 4, little);
    if (length < 12 || o + length > bytes.length)
      throw new DecodeError("pcapng", o, `block of ${length} bytes`);
    if (type === IDB) {
      let name = "";
      for (let p = o + 16; p + 4 <= o + length - 4;) {
        const code = view.getUint16(p, little);
        const size = view.getUint16(p + 2, little);
        if (code === OPT_END) break;
        if (code === IF_NAME) name = new TextDecoder().decode(bytes.subarray(p + 4, p + 4 + size));
        p += 4 + pad4(size);
      }
      file.interfaces.push({ name, linkType: view.getUint16(o + 8, little) });
    } else if (type === EPB) {
      const captured = view.getUint32(o + 20, little);
      file.records.push({
        interface: view.getUint32(o + 8, little),
        timestampMicros: view.getUint32(o + 12, little) * 2 ** 32 + view.getUint32(o + 16, little),
        data: bytes.slice(o + 28, o + 28 + captured),
      });
    }
    o += length;
  }
  return file;
}
