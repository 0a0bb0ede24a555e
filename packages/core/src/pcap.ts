import { DecodeError } from "./errors.js";

/** LINKTYPE_ETHERNET from the tcpdump.org link-layer header type registry. */
export const LINKTYPE_ETHERNET = 1;
const PCAP_MAGIC = 0xa1b2c3d4;

export interface PcapRecord {
  /** Capture time in microseconds since the Unix epoch. */
  timestampMicros: number;
  data: Uint8Array;
  /** Length on the wire when `data` was truncated to the snap length; defaults to data.length. */
  originalLength?: number;
}

export interface PcapOptions {
  snapLength?: number;
  linkType?: number;
}

/**
 * Writes classic libpcap format (version 2.4, microsecond timestamps, little-endian), the format
 * tcpdump -w produces. Returns bytes: the caller writes the file (Node) or offers a download (browser).
 */
export function encodePcap(records: Iterable<PcapRecord>, options: PcapOptions = {}): Uint8Array {
  const snapLength = options.snapLength ?? 262144;
  const list = [...records];
  const size = 24 + list.reduce((sum, r) => sum + 16 + Math.min(r.data.length, snapLength), 0);
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, PCAP_MAGIC, true);
  view.setUint16(4, 2, true);
  view.setUint16(6, 4, true);
  view.setInt32(8, 0, true); // thiszone: timestamps are UTC
  view.setUint32(12, 0, true); // sigfigs
  view.setUint32(16, snapLength, true);
  view.setUint32(20, options.linkType ?? LINKTYPE_ETHERNET, true);
  let o = 24;
  for (const record of list) {
    const included = Math.min(record.data.length, snapLength);
    view.setUint32(o, Math.floor(record.timestampMicros / 1e6), true);
    view.setUint32(o + 4, record.timestampMicros % 1e6, true);
    view.setUint32(o + 8, included, true);
    view.setUint32(o + 12, record.originalLength ?? record.data.length, true);
    bytes.set(record.data.subarray(0, included), o + 16);
    o += 16 + included;
  }
  return bytes;
}

export interface PcapFile {
  linkType: number;
  snapLength: number;
  records: PcapRecord[];
}

/** Reads classic pcap in either byte order (microsecond resolution). Throws DecodeError. */
export function decodePcap(bytes: Uint8Array): PcapFile {
  if (bytes.length < 24) throw new DecodeError("pcap", 0, `truncated: ${bytes.length} bytes, need 24`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let little: boolean;
  if (view.getUint32(0, true) === PCAP_MAGIC) little = true;
  else if (view.getUint32(0, false) === PCAP_MAGIC) little = false;
  else throw new DecodeError("pcap", 0, `bad magic 0x${view.getUint32(0, false).toString(16)}`);
  const records: PcapRecord[] = [];
  let o = 24;
  while (o < bytes.length) {
    if (o + 16 > bytes.length) throw new DecodeError("pcap", o, "truncated record header");
    const included = view.getUint32(o + 8, little);
    if (o + 16 + included > bytes.length)
      throw new DecodeError("pcap", o, `record of ${included} bytes is truncated`);
    records.push({
      timestampMicros: view.getUint32(o, little) * 1e6 + view.getUint32(o + 4, little),
      data: bytes.slice(o + 16, o + 16 + included),
      originalLength: view.getUint32(o + 12, little),
    });
    o += 16 + included;
  }
  return { linkType: view.getUint32(20, little), snapLength: view.getUint32(16, little), records };
}
