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

  it("serialises concurrent allocations through the store's lock", async () => {
    const fresh = { ...config, name: "mem2" };
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => plugin.add(params(`c${i}`), fresh)),
    );
    expect(new Set(results.map((r) => r.ips![0]!.address)).size).toBe(100);
    expect(formatIpv4(stores.get("mem2")!.lastReserved(0)!)).toBe("10.244.1.101");
  });
});
