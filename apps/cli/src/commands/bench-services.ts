/** `podnet bench --services 1000,5000,10000`: kube-proxy's modes at Kubernetes' Service envelope. */
import {
  MAX_BENCH_SERVICES,
  PROXY_NAMES,
  benchServiceProxy,
  type ProxyName,
  type ServiceProxyRow,
} from "@podnet/cluster";
import type { NetworkProvider } from "@podnet/cni";
import { table } from "../format.js";
import { UsageError } from "../errors.js";
import { commaList, integerIn } from "../options.js";

/** `--services`: comma-separated Service counts, each 1 to 10,000 ("10_000" reads as 10000). */
export function parseServiceCounts(list: string): number[] {
  const count = integerIn("--services", "a Service count", 1, MAX_BENCH_SERVICES);
  const counts = commaList("--services", list, "Service count").map((c) => count(c.replace(/_/g, "")));
  // By value: "1000,1_000" names one count twice.
  const twice = counts.find((n, i) => counts.indexOf(n) !== i);
  if (twice !== undefined) throw new UsageError(`--services: ${twice} is named twice`);
  return counts;
}

/** `--proxy`'s choice, or both modes without it: the comparison is the point. */
export const serviceBenchProxies = (proxies: (ProxyName | undefined)[]): readonly ProxyName[] =>
  proxies.every((p) => p === undefined) ? PROXY_NAMES : (proxies as ProxyName[]);

export interface ServiceBenchRow extends ServiceProxyRow {
  provider: string;
}

/** The Services of the discarded warm-up round. */
const WARM_UP_SERVICES = 500;

export async function benchServices(
  counts: number[],
  providers: { name: string; provider: NetworkProvider }[],
  proxies: readonly ProxyName[],
  endpoints: number,
  onTask: (task: string) => void,
): Promise<ServiceBenchRow[]> {
  const rows: ServiceBenchRow[] = [];
  // A round nobody sees first, per proxy: the rows share one process, and the first one measured
  // paid the JIT's warm-up (100 Services: a full sync of 78 ms under the first provider, 23–47 ms
  // under the next ones).
  for (const proxy of proxies) {
    onTask(`warming up (${proxy})`);
    await benchServiceProxy(providers[0]!.provider, proxy, Math.min(WARM_UP_SERVICES, ...counts), endpoints);
  }
  for (const { name, provider } of providers)
    for (const proxy of proxies)
      for (const count of counts) {
        onTask(`${name} / ${proxy} / ${count.toLocaleString("en")} Services`);
        rows.push({ provider: name, ...(await benchServiceProxy(provider, proxy, count, endpoints)) });
      }
  return rows;
}

const n = (x: number) => x.toLocaleString("en");
const HEAD = [
  "provider",
  "proxy",
  "Services",
  "entries held",
  "full sync",
  "1 changed",
  "1 added",
  "1 deleted",
  "1st packet evals",
];
const LEGEND =
  "Times with the entries written or touched in brackets (iptables rules; nftables rules and map elements);\n" +
  "1 changed: one Service's endpoint replaced; 1 added / 1 deleted: a new Service and its deletion; medians of 7;\n" +
  "1st packet evals: the rules the node evaluated, every table and hook, for a first packet it sends\n" +
  "to the Service kube-proxy orders first / last, and its answer.";
const cells = (r: ServiceBenchRow) => [
  r.provider,
  r.proxy,
  n(r.services),
  n(r.entries),
  `${n(r.fullSyncMs)} ms (${n(r.fullSyncWritten)})`,
  `${r.changeMs} ms (${r.changeTouched})`,
  `${r.addMs} ms (${r.addTouched})`,
  `${r.deleteMs} ms (${r.deleteTouched})`,
  `${n(r.evaluationsFirst)} / ${n(r.evaluationsLast)}`,
];

export function servicesTable(rows: ServiceBenchRow[]): string {
  return `${table(HEAD, rows.map(cells))}\n${LEGEND}`;
}

export function servicesMarkdown(rows: ServiceBenchRow[], endpoints: number): string {
  return (
    `# podnet bench --services\n\nServices × ${endpoints} endpoints on one node (route manager, simulated kernel).\n${LEGEND}\n\n` +
    `| ${HEAD.join(" | ")} |\n|${HEAD.map(() => "---").join("|")}|\n` +
    rows.map((r) => `| ${cells(r).join(" | ")} |`).join("\n") +
    "\n"
  );
}
