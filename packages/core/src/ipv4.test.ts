import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AddressParseError } from "./errors.js";
import { Ipv4Prefix, formatIpv4, parseIpv4, parseIpv4InterfaceAddress } from "./ipv4.js";

describe("IPv4 addresses", () => {
  it("parses dotted quads to unsigned 32-bit numbers and back", () => {
    expect(parseIpv4("10.100.0.2")).toBe(0x0a640002);
    expect(parseIpv4("255.255.255.255")).toBe(0xffffffff);
    expect(formatIpv4(0xac110001)).toBe("172.17.0.1");
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), (n) => parseIpv4(formatIpv4(n)) === n));
  });

  it("rejects bad input with a typed error that names the input", () => {
    expect(() => Ipv4Prefix.parse("10.0.300.0/24")).toThrow(
      new AddressParseError("10.0.300.0/24", "octet 300 out of range"),
    );
    expect(() => Ipv4Prefix.parse("10.0.300.0/24")).toThrow("10.0.300.0/24: octet 300 out of range");
    expect(() => parseIpv4("10.0.0")).toThrow("10.0.0: expected 4 octets, got 3");
    expect(() => parseIpv4("10.a.0.1")).toThrow('10.a.0.1: octet "a" is not a decimal number');
    expect(() => parseIpv4("10.01.0.1")).toThrow("10.01.0.1: octet 01 has a leading zero");
    expect(() => parseIpv4("")).toThrow(AddressParseError);
    // Whatever the text, the quick reading and the careful one agree: the same number or the same refusal.
    const careful = (text: string) => {
      const parts = text.split(".");
      const ok =
        parts.length === 4 &&
        parts.every((p) => /^[0-9]+$/.test(p) && !(p.length > 1 && p[0] === "0") && Number(p) <= 255);
      return ok ? parts.reduce((v, p) => v * 256 + Number(p), 0) : undefined;
    };
    const octets = fc.oneof(
      fc.integer({ min: 0, max: 300 }).map(String),
      fc.constantFrom("", "0", "00", "01", "007", "1000", "a", " 1"),
    );
    const dotted = fc.oneof(
      fc.array(octets, { minLength: 2, maxLength: 5 }).map((parts) => parts.join(".")),
      fc.stringMatching(/^[0-9.a]{0,16}$/),
    );
    fc.assert(
      fc.property(dotted, (text) => {
        let got: number | undefined;
        try {
          got = parseIpv4(text);
        } catch (error) {
          expect(error).toBeInstanceOf(AddressParseError);
        }
        expect(got).toBe(careful(text));
      }),
      { numRuns: 5000 },
    );
    expect(() => Ipv4Prefix.parse("10.0.0.0")).toThrow("10.0.0.0: missing prefix length");
    expect(() => Ipv4Prefix.parse("10.0.0.0/33")).toThrow(
      "10.0.0.0/33: prefix length 33 out of range (0-32)",
    );
    expect(() => Ipv4Prefix.parse("10.0.0.5/16")).toThrow(
      "10.0.0.5/16: host bits set; for a mask of length 16 the network address is 10.0.0.0",
    );
  });
});

describe("IPv4 prefixes", () => {
  const cluster = Ipv4Prefix.parse("10.0.0.0/16");

  it("knows its network, broadcast, size and n-th host", () => {
    const node = Ipv4Prefix.parse("10.0.1.0/24");
    expect(formatIpv4(node.broadcast)).toBe("10.0.1.255");
    expect(node.size).toBe(256);
    expect(formatIpv4(node.host(1))).toBe("10.0.1.1");
    expect(() => node.host(256)).toThrow(RangeError);
    expect(Ipv4Prefix.parse("0.0.0.0/0").size).toBe(2 ** 32);
    expect(Ipv4Prefix.parse("0.0.0.0/0").contains(parseIpv4("8.8.8.8"))).toBe(true);
    expect(formatIpv4(Ipv4Prefix.parse("10.1.2.3/32").broadcast)).toBe("10.1.2.3");
  });

  it("tests containment and overlap", () => {
    expect(cluster.contains(parseIpv4("10.0.2.7"))).toBe(true);
    expect(cluster.contains(parseIpv4("10.1.0.0"))).toBe(false);
    expect(cluster.containsPrefix(Ipv4Prefix.parse("10.0.2.0/24"))).toBe(true);
    expect(cluster.overlaps(Ipv4Prefix.parse("10.0.0.0/8"))).toBe(true);
    expect(cluster.overlaps(Ipv4Prefix.parse("10.96.0.0/12"))).toBe(false);
  });

  it("splits into subnets the way a node CIDR allocator walks them", () => {
    expect(cluster.subnetCount(24)).toBe(256);
    expect(cluster.subnet(2, 24).toString()).toBe("10.0.2.0/24");
    expect([...Ipv4Prefix.parse("10.0.0.0/22").subnets(24)].map(String)).toEqual([
      "10.0.0.0/24",
      "10.0.1.0/24",
      "10.0.2.0/24",
      "10.0.3.0/24",
    ]);
    expect(() => cluster.subnet(0, 8)).toThrow("10.0.0.0/16: cannot split into /8");
    expect([...Ipv4Prefix.parse("10.0.0.4/30").addresses()].map(formatIpv4)).toEqual([
      "10.0.0.4",
      "10.0.0.5",
      "10.0.0.6",
      "10.0.0.7",
    ]);
  });

  it("agrees with mask arithmetic for random prefixes", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 32 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (net, len, ip) => {
          const prefix = new Ipv4Prefix(net, len);
          const expected = len === 0 || ip >>> (32 - len) === net >>> (32 - len);
          return prefix.contains(ip) === expected && Ipv4Prefix.parse(prefix.toString()).equals(prefix);
        },
      ),
    );
  });

  it("parses interface addresses, which keep their host bits", () => {
    const ifaddr = parseIpv4InterfaceAddress("10.244.1.1/24");
    expect(formatIpv4(ifaddr.address)).toBe("10.244.1.1");
    expect(ifaddr.prefix.toString()).toBe("10.244.1.0/24");
  });
});
