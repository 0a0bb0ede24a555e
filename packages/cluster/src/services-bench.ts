/**
 * kube-proxy measured as its own scalability work measures it (`podnet bench --services`): one node,
 * N Services with E endpoints each, under a proxy — a full sync, one Service changing one endpoint
 * (a partial sync, median of 7), one Service added and deleted, each with the entries it touched
 * (iptables rules, or nftables rules and map elements), and the rule evaluations the first packet
 * of a connection to a ClusterIP costs at the node's nat hook (to the Service kube-proxy's name order
 * puts first, and the one it puts last).
 */
import type { NetworkProvider } from "@podnet/cni";
import {
  NFT_TABLE,
  compareServiceKeys,
  nftEntryCount,
  serviceKey,
  type ProxyName,
  type Service,
} from "@podnet/route-manager";
import { SimBackend } from "./backend.js";
import { ClusterRuntime } from "./runtime.js";
import { ScenarioSchema } from "./schema.js";

export interface ServiceProxyRow {
  proxy: ProxyName;
  services: number;
  endpoints: number;
  /** Rules in kube-proxy's nat chains (iptables), or rules plus map elements in its table (nftables). */
  entries: number;
  fullSyncMs: number;
  fullSyncWritten: number;
  /** One Service's endpoint replaced: the median of 7 changes. */
  changeMs: number;
  changeTouched: number;
  /** A new Service added, then deleted again: the medians of 7 of each. */
  addMs: number;
  addTouched: number;
  deleteMs: number;
  deleteTouched: number;
  /** Rule evaluations for a first packet to the Service sorted first, and to the one sorted last. */
  evaluationsFirst: number;
  evaluationsLast: number;
}

/** Kubernetes' envelope: 10,000 Services; the endpoints' addresses cycle through 60,000 pods. */
export const MAX_BENCH_SERVICES = 10_000;
const NODE = "node1";

const pod = (i: number) => `10.0.${1 + Math.floor(i / 250)}.${(i % 250) + 2}`;
const service = (i: number, endpoints: number, shift = 0): Service => ({
  namespace: `ns${i % 100}`,
  name: `svc${i}`,
  clusterIP: `10.96.${Math.floor(i / 250)}.${(i % 250) + 1}`,
  ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "tcp" }],
  endpoints: Array.from({ length: endpoints }, (_, e) => pod((i * endpoints + e + shift) % 60_000)),
});

const SCENARIO = ScenarioSchema.parse({
  name: "services-at-scale",
  cluster: { serviceCidr: "10.96.0.0/16" },
  // A gateway gives the node a default route: a ClusterIP is routed before nat OUTPUT sees it.
  underlay: {
    segments: [{ name: "lan", subnet: "10.100.0.0/24", gateway: "10.100.0.1" }],
    routers: [{ name: "gw", interfaces: [{ segment: "lan", address: "10.100.0.1" }] }],
  },
  nodes: [{ name: NODE, segment: "lan", address: "10.100.0.2" }],
});

export async function benchServiceProxy(
  provider: NetworkProvider,
  proxy: ProxyName,
  count: number,
  endpoints = 5,
): Promise<ServiceProxyRow> {
  if (!Number.isInteger(count) || count < 1 || count > MAX_BENCH_SERVICES)
    throw new RangeError(`Services: expected 1 to ${MAX_BENCH_SERVICES}, got ${count}`);
  const backend = new SimBackend("services");
  const runtime = await ClusterRuntime.build({ ...SCENARIO, proxy }, provider, { backend });
  const k = backend.netlink;
  const m = runtime.manager;
  const touched = (r: { added: number; removed: number }) => r.added + r.removed;
  const timed = async <T>(f: () => Promise<T>): Promise<[number, T]> => {
    const t = performance.now();
    const r = await f();
    return [performance.now() - t, r];
  };

  const [fullSyncMs, full] = await timed(() =>
    m.servicesReplaced(Array.from({ length: count }, (_, i) => service(i, endpoints))),
  );
  const mid = Math.floor(count / 2);
  // One step's time and the entries it touched; the middle of seven steps by time.
  const step = async (f: () => Promise<{ added: number; removed: number }>): Promise<[number, number]> => {
    const [ms, r] = await timed(f);
    return [ms, touched(r)];
  };
  const middle = (steps: [number, number][]) => steps.sort((a, b) => a[0] - b[0])[steps.length >> 1]!;
  const changes: [number, number][] = [];
  // Each step shifts one Service's endpoints once more than it has been: with fewer than seven
  // Services a step meets one changed before, and the same shift again would change nothing.
  const shifts = new Map<number, number>();
  for (let j = 0; j < 7; j++) {
    const i = (mid + j) % count;
    const shift = (shifts.get(i) ?? 0) + 1;
    shifts.set(i, shift);
    changes.push(await step(() => m.serviceChanged(service(i, endpoints, shift))));
  }
  // A Service added and deleted again, seven times: one timing was as likely as not to hold a
  // collection of the full sync's garbage (10–16 ms against a median of 1.4 ms at 10,000).
  const adds: [number, number][] = [];
  const deletes: [number, number][] = [];
  for (let j = 0; j < 7; j++) {
    adds.push(await step(() => m.serviceChanged({ ...service(count, endpoints), name: `svc${mid}a` })));
    deletes.push(await step(() => m.serviceDeleted(`ns${count % 100}`, `svc${mid}a`)));
  }
  const [changeMs, changeTouched] = middle(changes);
  const [addMs, addTouched] = middle(adds);
  const [deleteMs, deleteTouched] = middle(deletes);

  const ns = runtime.ns(NODE);
  const entries =
    proxy === "iptables"
      ? (await k.iptables.list(ns, "nat")).reduce((sum, chain) => sum + chain.rules.length, 0)
      : nftEntryCount(await k.nft.list(ns, "ip", NFT_TABLE));
  const evaluations = (s: Service) => {
    const before = k.namespaces.get(ns)!.ruleEvaluations;
    const trace = k.send({ from: ns, to: s.clusterIP, protocol: "tcp", port: 80 });
    if (!trace.hops.some((h) => h.event === "nat" && h.detail.includes("DNAT")))
      throw new Error(`bench: the first packet to ${s.clusterIP} was not DNATed (${trace.outcome})`);
    return k.namespaces.get(ns)!.ruleEvaluations - before;
  };
  // The Services kube-proxy's order (by namespace/name) puts first and last: iptables' KUBE-SERVICES
  // reaches the last one after every other Service's rule.
  const all = Array.from({ length: count }, (_, i) => service(i, endpoints));
  all.sort((a, b) => compareServiceKeys(serviceKey(a), serviceKey(b)));
  return {
    proxy,
    services: count,
    endpoints,
    entries,
    fullSyncMs: Math.round(fullSyncMs),
    fullSyncWritten: touched(full),
    changeMs: round1(changeMs),
    changeTouched,
    addMs: round1(addMs),
    addTouched,
    deleteMs: round1(deleteMs),
    deleteTouched,
    evaluationsFirst: evaluations(all[0]!),
    evaluationsLast: evaluations(all.at(-1)!),
  };
}

const round1 = (ms: number) => Math.round(ms * 10) / 10;
