// NetworkPolicy enforced by the iptables engine on the simulator: the upstream e2e suite's truth
// tables, under providers that route (cbr0-host-gw) and that encapsulate (overlay).
import { iptablesPolicyEngine } from "@podnet/policy";
import { UPSTREAM_CASES } from "@podnet/policy/upstream";
import { getProvider } from "@podnet/providers";
import { describe, expect, it } from "vitest";
import { ClusterRuntime, checkUpstreamCase, upstreamScenario } from "../src/index.js";

for (const provider of ["overlay", "cbr0-host-gw"])
  describe(`the upstream NetworkPolicy cases on the simulator, ${provider} + iptables`, async () => {
    const runtime = await ClusterRuntime.build(upstreamScenario(), getProvider(provider), {
      policy: iptablesPolicyEngine,
    });
    for (const c of UPSTREAM_CASES)
      it(c.name, async () => {
        expect(await checkUpstreamCase(runtime, c)).toEqual([]);
      });
  });
