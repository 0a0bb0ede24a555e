/** `podnet bench --backend linux`: the real datapath per provider, beside a bare veth baseline. */
import { randomBytes } from "node:crypto";
import { loadavg } from "node:os";
import type { BenchRow, Scenario } from "@podnet/cluster";
import type { NetworkProvider } from "@podnet/cni";
import type { PolicyEngine } from "@podnet/policy";
import type { DatapathFigures, DatapathRow, Spread } from "@podnet/lab";
import { table } from "../format.js";
import { needRoot } from "./lab.js";

export interface DatapathSettings {
  runs: number;
  seconds: number;
  /** Seconds left out at the start of each iperf3 run (`iperf3 -O`). */
  omit: number;
  /** iperf3's client on CPU 0, its server on CPU 1. */
  pin: boolean;
  /** Each pair measured at the same time as a baseline run of its own, not after it. */
  sideBySide: boolean;
  /** Side by side: each run's transfers as this many blocks of a fixed size (0: one of `seconds`). */
  blocks: number;
}

export interface DatapathReport extends DatapathSettings {
  schemaVersion: 1;
  backend: "linux";
  machine: { node: string; platform: string };
  /** The 1-, 5- and 15-minute load averages when the bench started and when it ended. */
  loadAverage: { before: number[]; after: number[] };
  /** With `blocks`: each block's size (TCP; UDP at 1 Gbit/s offered). */
  blockMegabytes?: { tcp: number; udp: number };
  /** Wall-clock seconds for the whole bench, labs built and removed included. */
  elapsedSeconds: number;
  results: {
    scenario: string;
    provider: string;
    baseline: DatapathFigures;
    rows: DatapathRow[];
  }[];
  /** The simulated bench of the same scenarios and providers (`podnet bench`'s rows). */
  simulated: BenchRow[];
  /**
   * Present while the bench is still running: how many scenario × provider pairs of how many are
   * in. `--out` is written after each pair, so a bench stopped or failed later keeps what it measured.
   */
  partial?: { measured: number; of: number };
}

const fmt = (n: number, digits = 2) => n.toFixed(digits);
const ratio = (r: number | undefined) => (r === undefined ? "" : ` ×${fmt(r)}`);
const load = () => loadavg().map((n) => Math.round(n * 100) / 100);

export async function benchLinux(
  scenarios: { scenario: Scenario; file: string }[],
  providers: { name: string; provider: NetworkProvider }[],
  settings: DatapathSettings,
  policy: PolicyEngine,
  /** The simulated row of a scenario under a provider (named as the registry names it). */
  simulate: (scenario: Scenario, provider: string) => Promise<BenchRow>,
  onStep: (task: string) => void,
  /** The report so far, after each scenario × provider pair (marked `partial`). */
  onPair: (report: DatapathReport) => void = () => {},
): Promise<DatapathReport> {
  needRoot();
  const { benchDatapath, BLOCK_MEGABYTES } = await import("@podnet/lab");
  const started = performance.now();
  const before = load();
  const results: DatapathReport["results"] = [];
  const simulated: BenchRow[] = [];
  const total = scenarios.length * providers.length;
  for (const { scenario, file } of scenarios)
    for (const { name, provider } of providers) {
      onStep(`${scenario.name} / ${name}`);
      const lab = `b${randomBytes(3).toString("hex")}`;
      const { baseline, rows } = await benchDatapath(scenario, provider, lab, {
        ...settings,
        scenarioFile: file,
        policy,
      });
      results.push({
        scenario: scenario.name,
        provider: name,
        baseline,
        rows: rows.map((r) => ({ ...r, provider: name })),
      });
      simulated.push({ ...(await simulate(scenario, name)), provider: name });
      if (results.length < total) onPair(report({ measured: results.length, of: total }));
    }
  return report();

  function report(partial?: DatapathReport["partial"]): DatapathReport {
    return {
      schemaVersion: 1,
      backend: "linux",
      machine: { node: process.version, platform: process.platform },
      ...settings,
      ...(settings.blocks ? { blockMegabytes: { ...BLOCK_MEGABYTES } } : {}),
      loadAverage: { before, after: load() },
      elapsedSeconds: Math.round((performance.now() - started) / 1000),
      results: [...results],
      simulated: [...simulated],
      ...(partial ? { partial } : {}),
    };
  }
}

const HEAD = [
  "scenario",
  "provider",
  "pair",
  "pod MTU",
  "TCP Gbit/s",
  "TCP ×4 Gbit/s",
  "UDP Gbit/s (loss %, jitter ms)",
  "RTT ms",
  "connect ms",
  "kernel CPU s/Gbit",
  "retransmits",
  "fragments TCP/UDP",
  "spread % TCP (ratio; ratio IQR)",
];

/** The cells after the pair's name and MTU: median, ratio to the baseline, counters, spreads. */
function cells(f: DatapathFigures, row?: DatapathRow): string[] {
  const k = row?.ratioToBaseline;
  const udpNote = f.udpRetries ? `; ${f.udpRetries} run(s) retried: ${f.udpFirstError}` : "";
  return [
    `${fmt(f.tcpGbps.median)}${ratio(k?.tcp)}`,
    `${fmt(f.tcp4Gbps.median)}${ratio(k?.tcp4)}`,
    `${fmt(f.udpGbps.median)}${ratio(k?.udp)} (${fmt(f.udpLossPercent.median, 1)}, ${fmt(f.udpJitterMs.median, 3)}${udpNote})`,
    f.rttMs ? `${fmt(f.rttMs.median, 3)}${ratio(k?.rtt)}` : "- (no ICMP)",
    `${fmt(f.connectMs.median, 3)}${ratio(k?.connect)}`,
    f.cpuSecondsPerGbit === undefined ? "- (side by side)" : fmt(f.cpuSecondsPerGbit, 3),
    String(f.tcpRetransmits.median),
    `${f.tcpFragments.median}/${f.udpFragments.median}`,
    `${fmt(f.tcpGbps.spreadPercent, 1)}${row?.ratioSpreads ? ` (${fmt(row.ratioSpreads.tcp.spreadPercent, 1)}; ${fmt(row.ratioSpreads.tcp.iqrPercent, 1)})` : ""}`,
  ];
}

const pairName = (row: DatapathRow) =>
  `${row.pair} (${row.from} → ${row.service ? `${row.service.clusterIP} → ${row.to}` : row.to})`;

function rowsOf(report: DatapathReport): string[][] {
  return report.results.flatMap((r) => [
    [r.scenario, r.provider, "bare veth (baseline)", "1500", ...cells(r.baseline)],
    ...r.rows.map((row) => [
      r.scenario,
      r.provider,
      pairName(row),
      row.wrongMtu ? `${row.podMtu} (provider: ${row.wrongMtu.providerMtu})` : String(row.podMtu),
      ...(row.figures
        ? cells(row.figures, row)
        : [`unreachable: ${row.unreachable}`, ...HEAD.slice(5).map(() => "")]),
    ]),
  ]);
}

const spreadOf = (s: Spread) => s.spreadPercent;

/** How long each run's transfers were. */
function runsOf(report: DatapathReport): string {
  const size = report.blockMegabytes;
  const runs = report.runs === 1 ? "1 run" : `${report.runs} runs`;
  if (report.blocks && size)
    return `${runs}, each transfer in ${report.blocks} blocks (TCP ${size.tcp} MB, each flow's ends on a CPU of their own; UDP ${size.udp} MB at 1 Gbit/s offered)`;
  return `${runs} of ${report.seconds} s each${report.omit ? ` (${report.omit} s omitted first)` : ""}${report.pin ? ", iperf3 pinned to CPUs 0 and 1" : ""}`;
}

/** The largest spreads over every row with figures: raw TCP, and TCP as a ratio to the baseline. */
export function worstSpreads(report: DatapathReport): { tcp: number; tcpRatio: number; tcpRatioIqr: number } {
  const rows = report.results.flatMap((r) => r.rows.filter((row) => row.figures));
  return {
    tcp: Math.max(0, ...rows.map((row) => spreadOf(row.figures!.tcpGbps))),
    tcpRatio: Math.max(0, ...rows.map((row) => spreadOf(row.ratioSpreads!.tcp))),
    tcpRatioIqr: Math.max(0, ...rows.map((row) => row.ratioSpreads!.tcp.iqrPercent)),
  };
}

export const datapathTable = (report: DatapathReport) => table(HEAD, rowsOf(report));

export function datapathMarkdown(report: DatapathReport, simulated: string): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  const worst = worstSpreads(report);
  return [
    `# podnet bench --backend linux`,
    "",
    ...(report.partial
      ? [
          `**Partial**: ${report.partial.measured} of ${report.partial.of} scenario × provider pairs measured when this was written; the bench did not finish.`,
          "",
        ]
      : []),
    `${runsOf(report)}; medians, with ratios to the bare veth baseline measured in the same runs, ${report.sideBySide ? "side by side (each pair at the same time as a baseline run of its own)" : "interleaved"}. ` +
      `Load average ${report.loadAverage.before.join(", ")} before, ${report.loadAverage.after.join(", ")} after; ${report.elapsedSeconds} s in all. ` +
      `Largest TCP spread (max − min over the median) ${worst.tcp} %, of the TCP ratio ${worst.tcpRatio} %; largest interquartile range of the TCP ratio ${worst.tcpRatioIqr} %.`,
    "",
    line(HEAD),
    `|${HEAD.map(() => "---").join("|")}|`,
    ...rowsOf(report).map(line),
    "",
    "## The same scenarios in the simulator",
    "",
    simulated,
  ].join("\n");
}
