// kube-proxy's chains at Kubernetes' Service envelope: 10,000 Services with 5 endpoints each on one
// node — a full sync (every chain written), then one Service changing one endpoint (only its chains
// rewritten) — with the rules touched. Figures for BENCHMARKS.md; nothing here gates a test run.
import { cbr0HostGw } from "@podnet/provider-cbr0-host-gw";
import { bench, describe } from "vitest";
import type { Service } from "../src/index.js";
import { TestCluster } from "../test/cluster.js";

const SERVICES = 10_000;
const ENDPOINTS = 5;
const pod = (i: number) => `10.0.${1 + Math.floor(i / 250)}.${(i % 250) + 2}`;
const service = (i: number, shift = 0): Service => ({
  namespace: `ns${i % 100}`,
  name: `svc${i}`,
  clusterIP: `10.96.${Math.floor(i / 250)}.${(i % 250) + 1}`,
  ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "tcp" }],
  endpoints: Array.from({ length: ENDPOINTS }, (_, e) => pod((i * ENDPOINTS + e + shift) % 60_000)),
});

const c = new TestCluster(cbr0HostGw(), { seed: "services" });
await c.router("gw", [{ segment: "lan", cidr: "10.100.0.1/24" }]);
await c.addNode("n0", "10.100.0.2/24");
let t = performance.now();
const full = await c.manager.servicesReplaced(Array.from({ length: SERVICES }, (_, i) => service(i)));
const fullMs = performance.now() - t;
const changes: { ms: number; touched: number }[] = [];
for (let k = 0; k < 7; k++) {
  t = performance.now();
  const one = await c.manager.serviceChanged(service(4_000 + k, 1));
  changes.push({ ms: performance.now() - t, touched: one.added + one.removed });
}
changes.sort((a, b) => a.ms - b.ms);
// A new Service among the 10,000 (one KUBE-SERVICES rule inserted where its name sorts), then its deletion.
t = performance.now();
const added = await c.manager.serviceChanged({ ...service(SERVICES), name: "svc4000a" });
const addedMs = performance.now() - t;
t = performance.now();
const deleted = await c.manager.serviceDeleted("ns0", "svc4000a");
const deletedMs = performance.now() - t;
const rules = (await c.k.iptables.list("n0", "nat")).reduce((sum, chain) => sum + chain.rules.length, 0);
console.log(`\n${SERVICES} Services × ${ENDPOINTS} endpoints on one node (route manager, simulated kernel)`);
console.log(`full sync: ${fullMs.toFixed(0)} ms, ${full.added} rules written (${rules} nat rules held)`);
console.log(
  `one Service changed (median of ${changes.length}): ${changes[3]!.ms.toFixed(1)} ms, ${changes[3]!.touched} rules touched`,
);

console.log(`one Service added: ${addedMs.toFixed(1)} ms, ${added.added + added.removed} rules touched`);
console.log(
  `one Service deleted: ${deletedMs.toFixed(1)} ms, ${deleted.added + deleted.removed} rules touched`,
);

describe("one Service changes among 10,000", () => {
  let k = 0;
  bench("serviceChanged", async () => {
    await c.manager.serviceChanged(service(5_000 + (k % 50), ++k));
  });
});
