// kube-proxy at Kubernetes' Service envelope, per proxy (iptables, nftables): 1,000, 5,000 and
// 10,000 Services with 5 endpoints each on one node — a full sync, one Service changing one endpoint
// (a partial sync), one Service added and deleted, with the entries each touches (rules, map
// elements), and the rule evaluations a first packet to a Service costs at the node's nat hook.
// Figures for BENCHMARKS.md; nothing here gates a test run.
import { cbr0HostGw } from "@podnet/provider-cbr0-host-gw";
import { bench, describe } from "vitest";
import { NFT_TABLE, PROXY_NAMES, nftEntryCount, type ProxyName, type Service } from "../src/index.js";
import { TestCluster } from "../test/cluster.js";

const SIZES = [1_000, 5_000, 10_000];
const ENDPOINTS = 5;
const pod = (i: number) => `10.0.${1 + Math.floor(i / 250)}.${(i % 250) + 2}`;
const service = (i: number, shift = 0): Service => ({
  namespace: `ns${i % 100}`,
  name: `svc${i}`,
  clusterIP: `10.96.${Math.floor(i / 250)}.${(i % 250) + 1}`,
  ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "tcp" }],
  endpoints: Array.from({ length: ENDPOINTS }, (_, e) => pod((i * ENDPOINTS + e + shift) % 60_000)),
});

/** Rules in kube-proxy's iptables chains, or rules plus map elements in its nftables table. */
async function entries(c: TestCluster, proxy: ProxyName): Promise<number> {
  if (proxy === "iptables")
    return (await c.k.iptables.list("n0", "nat")).reduce((sum, chain) => sum + chain.rules.length, 0);
  return nftEntryCount(await c.k.nft.list("n0", "ip", NFT_TABLE));
}

/** Rule evaluations at n0's nat OUTPUT for a first packet to a Service's ClusterIP. */
function evaluations(c: TestCluster, s: Service): number {
  const ns = c.k.namespaces.get("n0")!;
  const before = ns.ruleEvaluations;
  c.k.send({ from: "n0", to: s.clusterIP, protocol: "tcp", port: 80 });
  return ns.ruleEvaluations - before;
}

const rows: string[] = [];
const clusters = new Map<ProxyName, { c: TestCluster; size: number }>();
for (const proxy of PROXY_NAMES) {
  for (const size of SIZES) {
    const c = new TestCluster(cbr0HostGw(), { seed: "services", proxy });
    await c.router("gw", [{ segment: "lan", cidr: "10.100.0.1/24" }]);
    await c.addNode("n0", "10.100.0.2/24", { gateway: "10.100.0.1" });
    let t = performance.now();
    const full = await c.manager.servicesReplaced(Array.from({ length: size }, (_, i) => service(i)));
    const fullMs = performance.now() - t;
    const changes: { ms: number; touched: number }[] = [];
    for (let k = 0; k < 7; k++) {
      t = performance.now();
      const one = await c.manager.serviceChanged(service(size / 2 + k, 1));
      changes.push({ ms: performance.now() - t, touched: one.added + one.removed });
    }
    changes.sort((a, b) => a.ms - b.ms);
    t = performance.now();
    const added = await c.manager.serviceChanged({ ...service(size), name: `svc${size / 2}a` });
    const addedMs = performance.now() - t;
    t = performance.now();
    const deleted = await c.manager.serviceDeleted("ns0", `svc${size / 2}a`);
    const deletedMs = performance.now() - t;
    // The Services that kube-proxy's name order puts first and last (svc0, svc999…): iptables'
    // KUBE-SERVICES reaches the last one after every other Service's rule.
    const first = evaluations(c, service(0));
    const last = evaluations(c, service(size - 1));
    rows.push(
      `| ${proxy} | ${size.toLocaleString("en")} | ${(await entries(c, proxy)).toLocaleString("en")} | ` +
        `${fullMs.toFixed(0)} ms (${full.added.toLocaleString("en")}) | ${changes[3]!.ms.toFixed(1)} ms (${changes[3]!.touched}) | ` +
        `${addedMs.toFixed(1)} ms (${added.added + added.removed}) | ${deletedMs.toFixed(1)} ms (${deleted.added + deleted.removed}) | ${first} / ${last} |`,
    );
    clusters.set(proxy, { c, size });
  }
}
console.log(`\nServices × ${ENDPOINTS} endpoints on one node (route manager, simulated kernel)`);
console.log(
  "| proxy | Services | entries held | full sync (written) | one Service changed, median of 7 (touched) | one added (touched) | one deleted (touched) | first-packet rule evaluations, first / last Service |",
);
console.log("| --- | --: | --: | --: | --: | --: | --: | --: |");
for (const row of rows) console.log(row);

for (const [proxy, { c, size }] of clusters) {
  describe(`${proxy}: one Service changes among ${size.toLocaleString("en")}`, () => {
    let k = 0;
    bench("serviceChanged", async () => {
      await c.manager.serviceChanged(service(size / 4 + (k % 50), ++k));
    });
  });
}
