import { describe, expect, it } from "vitest";
import { internetChecksum } from "./checksum.js";
import { decodePacket, encodePacket } from "./codec.js";
import { EncodeError } from "./errors.js";
import { fragmentIpv4 } from "./fragment.js";
import { EtherType, IpProtocol, type Header, type Ipv4Header } from "./headers.js";
import { parseIpv4 } from "./ipv4.js";
import { parseMac } from "./mac.js";

const ipv4 = (src: string, dst: string, protocol: number, id = 7): Ipv4Header => ({
  kind: "ipv4",
  tos: 0,
  id,
  dontFragment: false,
  moreFragments: false,
  fragmentOffset: 0,
  ttl: 64,
  protocol,
  src: parseIpv4(src),
  dst: parseIpv4(dst),
});
const eth: Header = {
  kind: "ethernet",
  dst: parseMac("02:00:00:00:00:02"),
  src: parseMac("02:00:00:00:00:01"),
  etherType: EtherType.IPV4,
};
const data = Uint8Array.from({ length: 100 }, (_, i) => i);
/** A UDP datagram of 108 bytes (8 of header) in an IPv4 packet in an Ethernet frame. */
const frame = () =>
  encodePacket({
    headers: [eth, ipv4("10.0.1.2", "10.0.2.2", IpProtocol.UDP), { kind: "udp", srcPort: 5000, dstPort: 53 }],
    payload: data,
  });

describe("fragmentIpv4", () => {
  it("cuts as Linux does, each piece again at the next cut; the pieces make the payload again", () => {
    const whole = frame();
    const pieces = fragmentIpv4(whole, 14, [48, 24]);
    const ips = pieces.map((p) => decodePacket(p).headers[1] as Ipv4Header);
    // 108 bytes at 48: 48, 48, 12; each 48 at 24: 24, 24. Offsets in 8-byte units, MF on all but the last.
    expect(ips.map((h) => [h.totalLength, h.fragmentOffset, h.moreFragments, h.dontFragment, h.id])).toEqual([
      [44, 0, true, false, 7],
      [44, 3, true, false, 7],
      [44, 6, true, false, 7],
      [44, 9, true, false, 7],
      [32, 12, false, false, 7],
    ]);
    for (const p of pieces) expect(internetChecksum(p, 14, 34)).toBe(0);
    const joined = new Uint8Array(108);
    for (const [i, p] of pieces.entries()) joined.set(p.subarray(34), ips[i]!.fragmentOffset * 8);
    expect(joined).toEqual(whole.subarray(34));
  });

  it("gives each fragment its own carrier: lengths, IDs and checksums of the enclosing packet and its UDP", () => {
    const inner = frame();
    const outer = encodePacket({
      headers: [
        eth,
        ipv4("192.168.1.2", "192.168.2.2", IpProtocol.UDP, 100),
        { kind: "udp", srcPort: 40000, dstPort: 8472 },
      ],
      payload: inner,
    });
    // The inner IPv4 header sits after the outer Ethernet (14), IPv4 (20) and UDP (8), and 14 more.
    const pieces = fragmentIpv4(outer, 14 + 20 + 8 + 14, [64], [14]);
    expect(pieces.length).toBe(2);
    for (const [i, p] of pieces.entries()) {
      const view = new DataView(p.buffer);
      const innerLength = view.getUint16(56 + 2);
      expect(view.getUint16(14 + 2)).toBe(20 + 8 + 14 + innerLength); // outer total length
      expect(view.getUint16(14 + 4)).toBe(100 + i); // outer ID: one packet each
      expect(view.getUint16(34 + 4)).toBe(8 + 14 + innerLength); // outer UDP length
      expect(internetChecksum(p, 14, 34)).toBe(0);
      // The outer UDP checksum is good for the new datagram (pseudo-header included).
      const again = decodePacket(p);
      expect(
        encodePacket({
          ...again,
          headers: again.headers.map((h) => (h.kind === "udp" ? { ...h, checksum: undefined } : h)),
        }),
      ).toEqual(p);
    }
  });

  it("leaves a packet that fits whole, and refuses a cut that is not a multiple of 8 or a fragment to cut", () => {
    const whole = frame();
    expect(fragmentIpv4(whole, 14, [200])).toEqual([whole]);
    expect(() => fragmentIpv4(whole, 14, [50])).toThrow(EncodeError);
    const piece = fragmentIpv4(whole, 14, [48])[1]!;
    expect(() => fragmentIpv4(piece, 14, [24])).toThrow(/a fragment already/);
  });
});
