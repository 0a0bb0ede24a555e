import { describe, expect, it } from "vitest";
import { BROADCAST_MAC, MacGenerator, formatMac, isMulticastMac, parseMac } from "./mac.js";

describe("MAC addresses", () => {
  it("parses and formats colon notation", () => {
    expect(formatMac(parseMac("96:fe:d6:d5:45:cf"))).toBe("96:fe:d6:d5:45:cf");
    expect(formatMac(BROADCAST_MAC)).toBe("ff:ff:ff:ff:ff:ff");
    expect(() => parseMac("96:fe:d6:d5:45")).toThrow(
      "96:fe:d6:d5:45: expected 6 colon-separated octets, got 5",
    );
    expect(() => parseMac("96:fe:d6:d5:45:zz")).toThrow('octet "zz" is not two hex digits');
  });

  it("generates reproducible, locally administered unicast MACs from a seed", () => {
    const a = new MacGenerator("node-1");
    const b = new MacGenerator("node-1");
    const macs = Array.from({ length: 1000 }, () => a.next());
    expect(macs).toEqual(Array.from({ length: 1000 }, () => b.next()));
    for (const mac of macs) {
      const first = parseInt(formatMac(mac).slice(0, 2), 16);
      expect(first & 0x02).toBe(0x02); // U/L: locally administered
      expect(first & 0x01).toBe(0); // I/G: unicast
      expect(isMulticastMac(mac)).toBe(false);
    }
    expect(new Set(macs).size).toBe(1000);
    expect(new MacGenerator("node-2").next()).not.toBe(macs[0]);
    expect(isMulticastMac(BROADCAST_MAC)).toBe(true);
  });
});
