import { describe, expect, it } from "vitest";
import { formatIpv4 } from "@podnet/core";
import { hostLocalPlugin } from "./host-local.js";
import { MemoryIpamStore } from "./store.js";

const params = (containerId: string, ifname = "eth0") => ({
  containerId,
  ifname,
  netns: "/x",
  args: "",
  path: [],
});

describe("host-local in memory (the browser's and the simulator's store)", () => {
  const stores = new Map<string, MemoryIpamStore>();
  const plugin = hostLocalPlugin({
    openStore: (name) => stores.get(name) ?? stores.set(name, new MemoryIpamStore()).get(name)!,
  });
  const config = {
    cniVersion: "1.0.0",
    name: "mem",
    ipam: { type: "host-local", ranges: [[{ subnet: "10.244.1.0/24" }]] },
  };

  it("gives a /24 its 253 addresses, .2 to .254, then refuses", async () => {
    const got: string[] = [];
    for (let i = 0; i < 253; i++) got.push((await plugin.add(params(`p${i}`), config)).ips![0]!.address);
    expect(got[0]).toBe("10.244.1.2/24");
    expect(got.at(-1)).toBe("10.244.1.254/24");
    expect(new Set(got).size).toBe(253);
    await expect(plugin.add(params("one-too-many"), config)).rejects.toThrow(
      "failed to allocate for range 0: no IP addresses available in range set: 10.244.1.1-10.244.1.254",
    );
  });

  it("answers STATUS by counting free addresses, not walking them: a /29's five, two ranges, a /1", async () => {
    const set = (name: string, ranges: object[]) => ({
      ...config,
      name,
      ipam: { type: "host-local", ranges: [ranges] },
    });
    // A /29 holds .2-.6 (the gateway .1 is in the range and never given).
    const small = set("st1", [{ subnet: "10.244.9.0/29" }]);
    for (let i = 0; i < 5; i++) {
      await plugin.status!(small);
      await plugin.add(params(`s${i}`), small);
    }
    await expect(plugin.status!(small)).rejects.toThrow("range set 0 has no free addresses");
    await plugin.del(params("s2"), small);
    await plugin.status!(small);
    // Two ranges, the gateway outside the second: full only when both are.
    const two = set("st2", [
      { subnet: "10.244.10.0/30" },
      { subnet: "10.244.11.0/24", rangeStart: "10.244.11.10", rangeEnd: "10.244.11.10" },
    ]);
    for (let i = 0; i < 2; i++) await plugin.add(params(`t${i}`), two);
    await expect(plugin.status!(two)).rejects.toThrow("no free addresses");
    // Two billion addresses counted at once (walked, this took seconds under the lock).
    await plugin.status!(set("st3", [{ subnet: "0.0.0.0/1" }]));
  });

  it("serialises concurrent allocations through the store's lock", async () => {
    const fresh = { ...config, name: "mem2" };
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => plugin.add(params(`c${i}`), fresh)),
    );
    expect(new Set(results.map((r) => r.ips![0]!.address)).size).toBe(100);
    expect(formatIpv4(stores.get("mem2")!.lastReserved(0)!)).toBe("10.244.1.101");
  });
});
