/** IPv4 fragments of an encoded frame, as a capture on the wire shows them. */
import { foldChecksum, internetChecksum, onesComplementSum, pseudoHeaderSum } from "./checksum.js";
import { EncodeError } from "./errors.js";

const UDP = 17;
const MORE_FRAGMENTS = 0x2000;

/** The length of the IPv4 header at `at` (its IHL field), in bytes. */
export function ipv4HeaderLength(frame: Uint8Array, at: number): number {
  return (frame[at]! & 0x0f) * 4;
}

/** One fragment's share of the payload: where it starts, how long it is, whether it ends the packet. */
export interface FragmentPiece {
  offset: number;
  length: number;
  last: boolean;
}

/**
 * How Linux's ip_fragment cuts a payload of `length` bytes: in pieces of `cuts[0]` bytes (the last
 * shorter), each piece cut again at `cuts[1]` (as a router does with a fragment too big for its
 * link), and so on. Every cut is a multiple of 8 (offsets are counted in 8-byte units).
 */
export function fragmentPieces(length: number, cuts: readonly number[]): FragmentPiece[] {
  let pieces: FragmentPiece[] = [{ offset: 0, length, last: true }];
  for (const cut of cuts) {
    if (cut <= 0 || cut % 8)
      throw new EncodeError("ipv4", "fragmentOffset", `a cut of ${cut} bytes is not a multiple of 8`);
    pieces = pieces.flatMap((p) =>
      Array.from({ length: Math.max(1, Math.ceil(p.length / cut)) }, (_, k) => ({
        offset: p.offset + k * cut,
        length: Math.min(cut, p.length - k * cut),
        last: p.last && (k + 1) * cut >= p.length,
      })),
    );
  }
  return pieces;
}

/**
 * The IPv4 packet at `at` in `frame`, cut as `fragmentPieces` cuts its payload. Each fragment is the bytes before the packet, its header
 * (total length, More Fragments, offset and checksum rewritten; Don't Fragment clear) and its piece.
 * `enclosing` are the offsets of IPv4 headers before `at` that carry the packet (a VXLAN outer
 * packet): each fragment is carried by its own, so their lengths and checksums, and those of a UDP
 * header right after one, are made for it, and each gets the next IP ID.
 */
export function fragmentIpv4(
  frame: Uint8Array,
  at: number,
  cuts: readonly number[],
  enclosing: readonly number[] = [],
): Uint8Array[] {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const header = ipv4HeaderLength(frame, at);
  const total = view.getUint16(at + 2);
  const field = view.getUint16(at + 6);
  if (field & (MORE_FRAGMENTS | 0x1fff))
    throw new EncodeError("ipv4", "fragmentOffset", "the packet to cut is a fragment already");
  const pieces = fragmentPieces(total - header, cuts);
  if (pieces.length === 1) return [frame];
  return pieces.map((p, index) => {
    const out = new Uint8Array(at + header + p.length);
    out.set(frame.subarray(0, at + header));
    out.set(frame.subarray(at + header + p.offset, at + header + p.offset + p.length), at + header);
    const o = new DataView(out.buffer);
    o.setUint16(at + 2, header + p.length);
    o.setUint16(at + 6, (p.last ? 0 : MORE_FRAGMENTS) | (p.offset / 8));
    o.setUint16(at + 10, 0);
    o.setUint16(at + 10, internetChecksum(out, at, at + header));
    const shrink = total - (header + p.length);
    for (const e of enclosing) {
      const eHeader = ipv4HeaderLength(out, e);
      const eTotal = o.getUint16(e + 2) - shrink;
      o.setUint16(e + 2, eTotal);
      o.setUint16(e + 4, (o.getUint16(e + 4) + index) & 0xffff);
      o.setUint16(e + 10, 0);
      o.setUint16(e + 10, internetChecksum(out, e, e + eHeader));
      if (out[e + 9] !== UDP) continue;
      const u = e + eHeader;
      const length = eTotal - eHeader;
      o.setUint16(u + 4, length);
      // A UDP checksum of zero says none (VXLAN's default); any other is made for the new datagram.
      if (o.getUint16(u + 6) === 0) continue;
      o.setUint16(u + 6, 0);
      const pseudo = pseudoHeaderSum(o.getUint32(e + 12), o.getUint32(e + 16), UDP, length);
      const sum = foldChecksum(onesComplementSum(out, u, u + length, pseudo));
      o.setUint16(u + 6, sum === 0 ? 0xffff : sum);
    }
    return out;
  });
}
