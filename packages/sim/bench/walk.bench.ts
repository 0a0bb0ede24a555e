// Figures for the README: traces per second and nanoseconds per hop, for the notes' two-node
// host-gw trace, and for the same trace when node1 holds 5,000 routes (a 5,000-node cluster).
import { bench, describe } from "vitest";
import { Lab } from "../test/lab.js";
import { parseAddressArgument as ip, parseRouteDst as net } from "@podnet/netlink";

async function twoNodes(extraRoutes: number): Promise<Lab> {
  const lab = new Lab("bench");
  await lab.host("node1", "lan", "10.100.0.2/16");
  await lab.host("node2", "lan", "10.100.0.3/16");
  await lab.bridge("node1", "cbr0", "10.0.1.1/24");
  await lab.bridge("node2", "cbr0", "10.0.2.1/24");
  await lab.pod("node1", "pod1", "cbr0", "10.0.1.2/24", "10.0.1.1");
  await lab.pod("node2", "pod2", "cbr0", "10.0.2.2/24", "10.0.2.1");
  await lab.k.route.add("node1", { dst: net("10.0.2.0/24"), via: ip("10.100.0.3") });
  await lab.k.route.add("node2", { dst: net("10.0.1.0/24"), via: ip("10.100.0.2") });
  // Routes to the pod subnets of 5,000 other nodes (10.1.0.0/24 ... 10.20.135.0/24), via other underlay hosts.
  for (let i = 0; i < extraRoutes; i++) {
    const subnet = 256 + i;
    await lab.k.route.add("node1", {
      dst: net(`10.${subnet >> 8}.${subnet & 255}.0/24`),
      via: ip(`10.100.${Math.floor(i / 250) + 1}.${(i % 250) + 1}`),
    });
  }
  lab.k.send({ from: "pod1", to: "10.0.2.2" }); // warm the neighbour tables: later traces are steady-state
  return lab;
}

const small = await twoNodes(0);
const large = await twoNodes(5000);
const hops = (lab: Lab) => lab.k.send({ from: "pod1", to: "10.0.2.2" }).hopCount;
console.log(
  `hops per trace: two nodes ${hops(small)}; with 5,000 routes on node1 ${hops(large)} (node1 routes: ${(await large.k.route.list("node1")).length})`,
);

describe("packet walk", () => {
  bench("pod1 → pod2 ping across two host-gw nodes (request + reply)", () => {
    small.k.send({ from: "pod1", to: "10.0.2.2" });
  });
  bench("the same, every hop read (its sentence and packet made)", () => {
    void small.k.send({ from: "pod1", to: "10.0.2.2" }).hops;
  });
  bench("the same, node1 holding 5,000 routes", () => {
    large.k.send({ from: "pod1", to: "10.0.2.2" });
  });
  const table = large.k.namespaces.get("node1")!.routes;
  const targets = Array.from({ length: 1000 }, (_, i) => (0x0a000000 + i * 7919 * 256 + 5) >>> 0);
  bench("1,000 longest-prefix-match lookups in node1's 5,000-route table", () => {
    for (const address of targets) table.lookup(address);
  });
});
