import fc from "fast-check";
import type { NetworkProvider } from "@podnet/cni";
import { cbr0HostGw } from "@podnet/provider-cbr0-host-gw";
import { dockerBridge } from "@podnet/provider-docker-bridge";
import { overlay } from "@podnet/provider-overlay";
import { describe, expect, it } from "vitest";
import { TestCluster } from "./cluster.js";
import { parseAddressArgument as ip, parseRouteDst as net } from "@podnet/netlink";

/** Node i: 10.100.0.(i+2) with pod CIDR 10.0.i.0/24, always the same, so clusters can be compared. */
const POOL = 6;
const address = (i: number) => `10.100.0.${i + 2}/24`;
const podCidr = (i: number) => `10.0.${i}.0/24`;

async function join(c: TestCluster, i: number) {
  await c.addNode(`n${i}`, address(i), { podCidr: podCidr(i), gateway: "10.100.0.1" });
  await c.addPod(`n${i}`, `p${i}`, { listen: [80] });
}

async function fresh(provider: NetworkProvider, live: number[]) {
  const c = new TestCluster(provider);
  await c.router("gw", [{ segment: "lan", cidr: "10.100.0.1/24" }]);
  for (const i of [...live].sort((a, b) => a - b)) await join(c, i);
  return c;
}

describe("node churn", () => {
  for (const provider of [cbr0HostGw(), overlay(), dockerBridge]) {
    it(`${provider.name}: after nodes join and leave in any order, every table equals a from-scratch build, a resync finds nothing to do, and traffic keeps the provider's promise`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.integer({ min: 0, max: POOL - 1 }), { minLength: 1, maxLength: 14 }),
          async (toggles) => {
            const c = await fresh(provider, []);
            const live = new Set<number>();
            for (const i of toggles) {
              if (live.has(i)) {
                await c.removeNode(`n${i}`);
                live.delete(i);
              } else {
                await join(c, i);
                live.add(i);
              }
            }
            const scratch = await fresh(provider, [...live]);
            expect(await c.tables()).toEqual(await scratch.tables());
            const resync = await c.manager.resync();
            expect([resync.added, resync.removed, resync.changed]).toEqual([0, 0, 0]);
            for (const a of live) {
              for (const b of live) {
                if (a === b) continue;
                const trace = c.k.send({
                  from: `p${a}`,
                  to: c.pods.get(`p${b}`)!.ip,
                  protocol: "tcp",
                  port: 80,
                  expectNamespace: `p${b}`,
                });
                // Per-node subnets promise pod-to-pod across nodes; docker0's repeated range promises it cannot.
                if (provider.podAddressing === "per-node-subnet") expect(trace.outcome).toBe("reached");
                else expect(trace.outcome).not.toBe("reached");
              }
            }
          },
        ),
        { numRuns: 25 },
      );
    }, 120_000);
  }

  it("repairs a node whose tables were tampered with, on a full resync", async () => {
    const c = await fresh(cbr0HostGw(), [0, 1, 2]);
    const before = await c.tables();
    await c.k.route.del("n0", { dst: net(podCidr(1)) });
    await c.k.route.add("n0", { dst: net("10.0.9.0/24"), via: ip("10.100.0.3") });
    await c.k.route.replace("n1", { dst: net(podCidr(2)), via: ip("10.100.0.2") });
    const report = await c.manager.resync();
    expect(report.nodes.n0).toEqual({ added: 1, removed: 1, changed: 0 });
    expect(report.nodes.n1).toEqual({ added: 0, removed: 0, changed: 1 });
    expect(await c.tables()).toEqual(before);
  });
});
