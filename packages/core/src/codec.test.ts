import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeHeader, decodePacket, encodePacket } from "./codec.js";
import { internetChecksum } from "./checksum.js";
import { DecodeError, EncodeError } from "./errors.js";
import { EtherType, IcmpType, IpProtocol, type Header, type HeaderKind, type Packet } from "./headers.js";

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const mac = fc.integer({ min: 0, max: 2 ** 48 - 1 });
const options = fc
  .integer({ min: 1, max: 10 })
  .chain((words) => fc.uint8Array({ minLength: words * 4, maxLength: words * 4 }));
const payload = fc.uint8Array({ maxLength: 64 });

const icmp: fc.Arbitrary<Header> = fc.oneof(
  fc.record({
    kind: fc.constant("icmp" as const),
    type: fc.constantFrom(IcmpType.ECHO_REQUEST, IcmpType.ECHO_REPLY),
    code: u8,
    identifier: u16,
    sequence: u16,
  }),
  fc.record({
    kind: fc.constant("icmp" as const),
    type: fc.constant(IcmpType.DEST_UNREACHABLE),
    code: fc.constant(4),
    nextHopMtu: u16,
  }),
  fc.record({
    kind: fc.constant("icmp" as const),
    type: fc.constantFrom(3, 5, 11, 12, 13),
    code: fc.integer({ min: 0, max: 3 }),
    rest: u32,
  }),
);
const udpPlain = fc.record({
  kind: fc.constant("udp" as const),
  srcPort: u16,
  dstPort: u16.filter((p) => p !== 4789 && p !== 8472),
});
const tcp = fc.record(
  {
    kind: fc.constant("tcp" as const),
    srcPort: u16,
    dstPort: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    urgent: u16,
    options,
  },
  { requiredKeys: ["kind", "srcPort", "dstPort", "seq", "ack", "flags", "window", "urgent"] },
);
const ipv4 = (protocol: fc.Arbitrary<number>) =>
  fc.record(
    {
      kind: fc.constant("ipv4" as const),
      tos: u8,
      id: u16,
      dontFragment: fc.boolean(),
      moreFragments: fc.constant(false),
      fragmentOffset: fc.constant(0),
      ttl: u8,
      protocol,
      src: u32,
      dst: u32,
      options,
    },
    {
      requiredKeys: [
        "kind",
        "tos",
        "id",
        "dontFragment",
        "moreFragments",
        "fragmentOffset",
        "ttl",
        "protocol",
        "src",
        "dst",
      ],
    },
  );
const ethernet = (etherType: number) =>
  fc.record({
    kind: fc.constant("ethernet" as const),
    dst: mac,
    src: mac,
    etherType: fc.constant(etherType),
  });

/** An Ethernet frame carrying ARP, or IPv4 with ICMP, UDP, TCP or an unknown protocol. */
const frame: fc.Arbitrary<Header[]> = fc.oneof(
  fc.tuple(
    ethernet(EtherType.ARP),
    fc.record({
      kind: fc.constant("arp" as const),
      op: fc.constantFrom(1, 2),
      senderMac: mac,
      senderIp: u32,
      targetMac: mac,
      targetIp: u32,
    }),
  ),
  fc.tuple(ethernet(EtherType.IPV4), ipv4(fc.constant(IpProtocol.ICMP)), icmp),
  fc.tuple(ethernet(EtherType.IPV4), ipv4(fc.constant(IpProtocol.UDP)), udpPlain),
  fc.tuple(ethernet(EtherType.IPV4), ipv4(fc.constant(IpProtocol.TCP)), tcp),
  fc.tuple(ethernet(EtherType.IPV4), ipv4(fc.constantFrom(2, 47, 50, 132))),
) as fc.Arbitrary<Header[]>;

const vxlanFrame: fc.Arbitrary<Header[]> = fc
  .tuple(
    ethernet(EtherType.IPV4),
    ipv4(fc.constant(IpProtocol.UDP)),
    fc.record({ kind: fc.constant("udp" as const), srcPort: u16, dstPort: fc.constantFrom(4789, 8472) }),
    fc.record({ kind: fc.constant("vxlan" as const), vni: fc.integer({ min: 0, max: 2 ** 24 - 1 }) }),
    frame,
  )
  .map(([eth, ip, udp, vxlan, inner]) => [eth, ip, udp, vxlan, ...inner] as Header[]);

const packet: fc.Arbitrary<Packet> = fc.record({ headers: fc.oneof(frame, vxlanFrame), payload });

/** Drops the fields decode fills in from the wire (lengths, checksums) so stacks can be compared. */
function withoutComputedFields(headers: Header[]): Header[] {
  return headers.map((h) => {
    const copy = { ...h } as Record<string, unknown>;
    delete copy.checksum;
    delete copy.totalLength;
    if (h.kind === "udp") delete copy.length;
    return copy as unknown as Header;
  });
}

describe("packet codec", () => {
  it("round-trips every header and nested VXLAN encapsulation through wire bytes", () => {
    fc.assert(
      fc.property(packet, (p) => {
        const bytes = encodePacket(p);
        const decoded = decodePacket(bytes);
        expect(withoutComputedFields(decoded.headers)).toEqual(p.headers);
        expect(decoded.payload).toEqual(p.payload);
        // Re-encoding the decoded value (which now carries checksums and lengths) is byte-exact.
        expect(encodePacket(decoded)).toEqual(bytes);
      }),
      { numRuns: 2000 },
    );
  });

  it("writes IPv4 header checksums that verify and lengths that cover the encapsulated frame", () => {
    fc.assert(
      fc.property(packet, (p) => {
        const bytes = encodePacket(p);
        const decoded = decodePacket(bytes);
        let offset = 0;
        for (const h of decoded.headers) {
          if (h.kind === "ipv4") {
            const headerLength = 20 + (h.options?.length ?? 0);
            expect(internetChecksum(bytes, offset, offset + headerLength)).toBe(0);
            expect(h.totalLength).toBe(bytes.length - offset);
          }
          if (h.kind === "udp") expect(h.length).toBe(bytes.length - offset);
          offset +=
            h.kind === "ipv4" || h.kind === "tcp"
              ? 20 + (h.options?.length ?? 0)
              : h.kind === "ethernet"
                ? 14
                : h.kind === "arp"
                  ? 28
                  : 8;
        }
      }),
      { numRuns: 500 },
    );
  });

  it("computes the ICMP checksum over the whole message (RFC 792 example echo)", () => {
    const bytes = encodePacket({
      headers: [{ kind: "icmp", type: IcmpType.ECHO_REQUEST, code: 0, identifier: 1, sequence: 1 }],
      payload: new Uint8Array([0x61, 0x62, 0x63, 0x64]),
    });
    // 0x0800 + 0x0001 + 0x0001 + 0x6162 + 0x6364 = 0xCCC8, and ~0xCCC8 = 0x3337.
    expect(Array.from(bytes.subarray(2, 4))).toEqual([0x33, 0x37]);
    expect(internetChecksum(bytes)).toBe(0);
  });

  it("refuses to encode fields that do not fit", () => {
    expect(() =>
      encodePacket({ headers: [{ kind: "vxlan", vni: 2 ** 24 }], payload: new Uint8Array() }),
    ).toThrow(EncodeError);
    expect(() =>
      encodePacket({ headers: [{ kind: "udp", srcPort: 70000, dstPort: 1 }], payload: new Uint8Array() }),
    ).toThrow("udp.srcPort: 70000 does not fit in 16 bits");
  });

  it("treats UDP to a VXLAN port without the I flag as plain payload", () => {
    const bytes = encodePacket({
      headers: [
        { kind: "ethernet", dst: 1, src: 2, etherType: EtherType.IPV4 },
        {
          kind: "ipv4",
          tos: 0,
          id: 0,
          dontFragment: false,
          moreFragments: false,
          fragmentOffset: 0,
          ttl: 64,
          protocol: 17,
          src: 1,
          dst: 2,
        },
        { kind: "udp", srcPort: 1, dstPort: 4789 },
      ],
      payload: new Uint8Array(8),
    });
    const decoded = decodePacket(bytes);
    expect(decoded.headers.map((h) => h.kind)).toEqual(["ethernet", "ipv4", "udp"]);
    expect(decoded.payload.length).toBe(8);
  });
});

describe("decoding untrusted bytes", () => {
  const kinds: HeaderKind[] = ["ethernet", "arp", "ipv4", "icmp", "udp", "tcp", "vxlan"];

  function onlyDecodeErrors(run: () => unknown): boolean {
    try {
      run();
      return true;
    } catch (error) {
      if (error instanceof DecodeError) return true;
      throw error;
    }
  }

  it("gives a value or a DecodeError for random bytes, for every decoder", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 128 }), fc.nat(140), (bytes, offset) => {
        expect(onlyDecodeErrors(() => decodePacket(bytes))).toBe(true);
        for (const kind of kinds) {
          expect(onlyDecodeErrors(() => decodeHeader(kind, bytes, Math.min(offset, bytes.length)))).toBe(
            true,
          );
        }
      }),
      { numRuns: 5000 },
    );
  });

  it("gives a value or a DecodeError for valid packets with corrupted or truncated bytes", () => {
    fc.assert(
      fc.property(packet, fc.array(fc.tuple(fc.nat(), u8), { maxLength: 8 }), fc.nat(), (p, flips, cut) => {
        const bytes = encodePacket(p);
        for (const [at, value] of flips) bytes[at % bytes.length] = value;
        expect(onlyDecodeErrors(() => decodePacket(bytes))).toBe(true);
        expect(onlyDecodeErrors(() => decodePacket(bytes.subarray(0, cut % (bytes.length + 1))))).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it("names the layer and offset of a truncated header", () => {
    const bytes = encodePacket({
      headers: [
        { kind: "ethernet", dst: 1, src: 2, etherType: EtherType.IPV4 },
        {
          kind: "ipv4",
          tos: 0,
          id: 0,
          dontFragment: true,
          moreFragments: false,
          fragmentOffset: 0,
          ttl: 64,
          protocol: 6,
          src: 1,
          dst: 2,
        },
        { kind: "tcp", srcPort: 1, dstPort: 80, seq: 0, ack: 0, flags: 2, window: 0, urgent: 0 },
      ],
      payload: new Uint8Array(),
    });
    expect(() => decodePacket(bytes.subarray(0, 40))).toThrow(
      "ipv4 at byte 14: total length 40 exceeds the 26 bytes available",
    );
    expect(() => decodePacket(bytes.subarray(0, 10))).toThrow(
      "ethernet at byte 0: truncated: 10 bytes, need 14",
    );
  });
});
