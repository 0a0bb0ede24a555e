// One Service changing among 10,000 (5 endpoints each) on one node, per proxy (iptables, nftables):
// vitest's repeated timing of the route manager's partial sync. The whole table kube-proxy is measured
// by — full sync, change, add, delete, entries touched, first-packet rule evaluations at 1,000–10,000
// Services — is `podnet bench --services 1000,5000,10000` (BENCHMARKS.md). Nothing here gates a test run.
import { cbr0HostGw } from "@podnet/provider-cbr0-host-gw";
import { bench, describe } from "vitest";
import { PROXY_NAMES, type Service } from "../src/index.js";
import { TestCluster } from "../test/cluster.js";

const SIZE = 10_000;
const ENDPOINTS = 5;
const pod = (i: number) => `10.0.${1 + Math.floor(i / 250)}.${(i % 250) + 2}`;
const service = (i: number, shift = 0): Service => ({
  namespace: `ns${i % 100}`,
  name: `svc${i}`,
  clusterIP: `10.96.${Math.floor(i / 250)}.${(i % 250) + 1}`,
  ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "tcp" }],
  endpoints: Array.from({ length: ENDPOINTS }, (_, e) => pod((i * ENDPOINTS + e + shift) % 60_000)),
});

for (const proxy of PROXY_NAMES) {
  const c = new TestCluster(cbr0HostGw(), { seed: "services", proxy });
  await c.router("gw", [{ segment: "lan", cidr: "10.100.0.1/24" }]);
  await c.addNode("n0", "10.100.0.2/24", { gateway: "10.100.0.1" });
  await c.manager.servicesReplaced(Array.from({ length: SIZE }, (_, i) => service(i)));
  describe(`${proxy}: one Service changes among ${SIZE.toLocaleString("en")}`, () => {
    let k = 0;
    bench("serviceChanged", async () => {
      await c.manager.serviceChanged(service(SIZE / 4 + (k % 50), ++k));
    });
  });
}
