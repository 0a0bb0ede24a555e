// The cost of one node joining a cluster of N nodes, per provider: entries the route manager
// writes, and the time the reconcile takes. It must grow with N, not N². Existing nodes are set up
// and bulk-loaded (their mutual entries are not the measured work); the measured join is a real one.
import { cbr0HostGw } from "@podnet/provider-cbr0-host-gw";
import { dockerBridge } from "@podnet/provider-docker-bridge";
import { overlay } from "@podnet/provider-overlay";
import type { NetworkProvider } from "@podnet/cni";
import { bench, describe } from "vitest";
import { TestCluster } from "../test/cluster.js";

const SIZES = [1250, 2500, 5000];
const cluster = { clusterCidr: "10.0.0.0/8", nodeMaskSize: 24, serviceCidr: "172.30.0.0/16" };
const nodeAddress = (i: number) =>
  `10.${101 + Math.floor(i / 60000)}.${Math.floor((i % 60000) / 250)}.${(i % 250) + 2}/8`;

interface Row {
  provider: string;
  nodes: number;
  written: number;
  ms: number;
}
const rows: Row[] = [];
const clusters = new Map<string, TestCluster>();
const medians: string[] = [];

for (const provider of [cbr0HostGw(), overlay(), dockerBridge] as NetworkProvider[]) {
  const c = new TestCluster(provider, { cluster, seed: "bench" });
  let built = 0;
  for (const size of SIZES) {
    for (; built < size; built++) await c.addNode(`n${built}`, nodeAddress(built), { adopt: true });
    await c.loadAdopted();
    const joined = (await c.addNode("joiner", nodeAddress(size)))!;
    rows.push({
      provider: provider.name,
      nodes: size,
      written: joined.added + joined.changed,
      ms: joined.durationMs,
    });
    await c.removeNode("joiner");
  }
  // Warm joins at the largest size: the first join above also pays for compiling the code paths.
  const warm: number[] = [];
  for (let k = 0; k < 9; k++) {
    warm.push((await c.addNode("joiner", nodeAddress(SIZES.at(-1)!)))!.durationMs);
    await c.removeNode("joiner");
  }
  medians.push(`${provider.name}: ${warm.sort((a, b) => a - b)[4]!.toFixed(1)} ms`);
  clusters.set(provider.name, c);
}
console.log("\none node joining a cluster of N nodes (route manager, simulated kernel)");
console.log("provider        N      entries written   reconcile ms   µs per existing node");
for (const r of rows)
  console.log(
    `${r.provider.padEnd(14)} ${String(r.nodes).padStart(5)}   ${String(r.written).padStart(15)}   ${r.ms.toFixed(1).padStart(12)}   ${((r.ms * 1000) / r.nodes).toFixed(1).padStart(20)}`,
  );

console.log(`median of 9 warm joins at N = ${SIZES.at(-1)}: ${medians.join(", ")}`);

describe("a node joins and leaves a 5,000-node cluster", () => {
  for (const [name, c] of clusters) {
    bench(
      name,
      async () => {
        await c.addNode("joiner", nodeAddress(5000));
        await c.removeNode("joiner");
      },
      { iterations: 5, time: 0 },
    );
  }
});
