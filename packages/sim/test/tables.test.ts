// The compact tables behind every namespace: a typed hash that must behave as a Map, and a route
// pool that stores a value held by many namespaces once while each dumps exactly its own routes.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseAddressArgument as ip, parseRouteDst as net } from "@podnet/netlink";
import { SimKernel } from "../src/index.js";
import { NumberMap } from "../src/number-map.js";
import { LabTopology } from "@podnet/netlink/lab";

describe("NumberMap", () => {
  it("agrees with a Map through any sequence of sets and deletes, across growth and shift-back", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.boolean(),
            // Few distinct keys, some above 2³², so probes collide and deletions shift runs back.
            fc.oneof(
              fc.integer({ min: 0, max: 40 }),
              fc.integer({ min: 0, max: 40 }).map((k) => k * 2 ** 33),
            ),
            fc.integer(),
          ),
          { maxLength: 300 },
        ),
        (ops) => {
          const map = new NumberMap();
          const reference = new Map<number, number>();
          for (const [remove, key, value] of ops) {
            if (remove) expect(map.delete(key)).toBe(reference.delete(key));
            else {
              map.set(key, value);
              reference.set(key, value);
            }
            expect(map.size).toBe(reference.size);
          }
          for (const [key, value] of reference) expect(map.get(key)).toBe(value);
          expect(map.keyList().sort((a, b) => a - b)).toEqual([...reference.keys()].sort((a, b) => a - b));
          expect(map.get(12345)).toBe(reference.get(12345));
        },
      ),
    );
  });
});

describe("routes shared between namespaces", () => {
  it("stores a route many nodes hold once, and each node still dumps exactly its own", async () => {
    const k = new SimKernel();
    const lab = new LabTopology(k);
    for (let i = 1; i <= 4; i++) await lab.host(`n${i}`, "lan", `10.100.0.${i}/24`);
    const pool = (k as unknown as { routePool: { size: number } }).routePool;
    const connected = pool.size;
    for (let i = 1; i <= 3; i++)
      await k.route.add(`n${i}`, { dst: net("10.0.9.0/24"), via: ip("10.100.0.4"), dev: "eth0" });
    expect(pool.size).toBe(connected + 1);
    await k.route.add("n1", { dst: net("10.0.8.0/24"), via: ip("10.100.0.4"), dev: "eth0", metric: 5 });
    await k.route.del("n2", { dst: net("10.0.9.0/24") });
    expect((await k.route.list("n1")).map((r) => r.dst)).toEqual([
      "10.0.8.0/24",
      "10.0.9.0/24",
      "10.100.0.0/24",
    ]);
    expect((await k.route.list("n2")).map((r) => r.dst)).toEqual(["10.100.0.0/24"]);
    expect((await k.route.list("n3")).map((r) => r.dst)).toEqual(["10.0.9.0/24", "10.100.0.0/24"]);
    expect((await k.route.list("n4")).map((r) => r.dst)).toEqual(["10.100.0.0/24"]);
    // The last holder going away frees the value.
    await k.route.del("n1", { dst: net("10.0.9.0/24") });
    await k.route.del("n3", { dst: net("10.0.9.0/24") });
    await k.route.del("n1", { dst: net("10.0.8.0/24") });
    expect(pool.size).toBe(connected);
  });
});
