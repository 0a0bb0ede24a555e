import { getProvider } from "@podnet/providers";
import { describe, expect, it } from "vitest";
import { benchServiceProxy } from "../src/services-bench.js";

describe("benchServiceProxy", () => {
  // Seven endpoint changes are timed: with fewer Services than that, a step meets a Service changed
  // before, and each must still change it, not write what is there: the Service's chain rewritten and
  // its one endpoint's chain swapped, 8 rules under either proxy.
  it("times real changes however few Services there are", async () => {
    for (const proxy of ["iptables", "nftables"] as const)
      for (const count of [1, 3, 7]) {
        const row = await benchServiceProxy(getProvider("cbr0-host-gw"), proxy, count, 1);
        expect([proxy, count, row.changeTouched]).toEqual([proxy, count, 8]);
      }
  });
});
