// `trace(…, { hooks: true })` adds a hop at every filter hook passed and must change nothing else:
// every reachability cell of every bundled scenario, under every provider and both proxies with the
// iptables policy engine, walked on twins with and without it.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { policyEngine } from "@podnet/policy";
import { getProvider, providerNames } from "@podnet/providers";
import type { Trace } from "@podnet/sim";
import { expect, it } from "vitest";
import { ClusterRuntime, loadScenario, reachabilityPlan } from "../src/index.js";

const SCENARIOS = ["two-nodes", "service", "netpol", "churn", "routed-segments", "single-pod"];

it("adds only the filter hooks' ACCEPT hops to every bundled scenario's traces", async () => {
  const differ: string[] = [];
  let compared = 0;
  let added = 0;
  const others = (t: Trace) =>
    t.hops
      .filter((h) => !(h.event === "filter" && h.detail.includes(": ACCEPT by ")))
      .map((h) => `${h.direction} ${h.ns} ${h.dev} ${h.event} ${h.detail}`);
  for (const name of SCENARIOS) {
    const file = join(__dirname, "..", "..", "..", "scenarios", `${name}.yaml`);
    const scenario = loadScenario(readFileSync(file, "utf8"), file);
    for (const provider of providerNames)
      for (const proxy of ["iptables", "nftables"] as const) {
        const build = () =>
          ClusterRuntime.build({ ...scenario, proxy }, getProvider(provider), {
            policy: policyEngine("iptables"),
          });
        const [plain, shown] = [await build(), await build()];
        for (const cell of reachabilityPlan(plain)) {
          const options = { protocol: cell.protocol };
          const without = plain.trace(cell.from, cell.to, options);
          const withHooks = shown.trace(cell.from, cell.to, { ...options, hooks: true });
          compared++;
          added += withHooks.hops.length - others(withHooks).length;
          if (
            withHooks.outcome !== without.outcome ||
            JSON.stringify(others(withHooks)) !== JSON.stringify(others(without))
          )
            differ.push(`${name} ${provider} ${proxy}: ${cell.from} → ${cell.to}`);
        }
      }
  }
  expect(compared).toBeGreaterThan(1000);
  expect(added).toBeGreaterThan(compared);
  expect(differ).toEqual([]);
}, 120_000);
