/** `podnet bench --backend linux`: the real datapath per provider, beside a bare veth baseline. */
import { randomBytes } from "node:crypto";
import type { Scenario } from "@podnet/cluster";
import type { NetworkProvider } from "@podnet/cni";
import { UsageError } from "../errors.js";
import { table } from "../format.js";
import { needRoot } from "./lab.js";

export interface DatapathReport {
  schemaVersion: 1;
  backend: "linux";
  machine: { node: string; platform: string };
  runs: number;
  seconds: number;
  results: {
    scenario: string;
    provider: string;
    baseline: import("@podnet/lab").DatapathFigures;
    rows: import("@podnet/lab").DatapathRow[];
  }[];
}

const fmt = (n: number, digits = 2) => n.toFixed(digits);
const ratio = (r: number) => `×${fmt(r)}`;

export async function benchLinux(
  scenarios: { scenario: Scenario; file: string }[],
  providers: { name: string; provider: NetworkProvider }[],
  settings: { runs: number; seconds: number },
  onStep: (task: string) => void,
): Promise<DatapathReport> {
  needRoot();
  const { benchDatapath, LabError } = await import("@podnet/lab");
  const results: DatapathReport["results"] = [];
  for (const { scenario, file } of scenarios)
    for (const { name, provider } of providers) {
      onStep(`${scenario.name} / ${name}`);
      try {
        const lab = `b${randomBytes(3).toString("hex")}`;
        const { baseline, rows } = await benchDatapath(scenario, provider, lab, {
          ...settings,
          scenarioFile: file,
        });
        results.push({
          scenario: scenario.name,
          provider: name,
          baseline,
          rows: rows.map((r) => ({ ...r, provider: name })),
        });
      } catch (error) {
        if (error instanceof LabError) throw new UsageError(error.message);
        throw error;
      }
    }
  return {
    schemaVersion: 1,
    backend: "linux",
    machine: { node: process.version, platform: process.platform },
    ...settings,
    results,
  };
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
  "spread % (TCP)",
];

function rowsOf(report: DatapathReport): string[][] {
  return report.results.flatMap((r) => [
    [
      r.scenario,
      r.provider,
      "bare veth (baseline)",
      "1500",
      fmt(r.baseline.tcpGbps.median),
      fmt(r.baseline.tcp4Gbps.median),
      `${fmt(r.baseline.udpGbps.median)} (${fmt(r.baseline.udpLossPercent.median, 1)}, ${fmt(r.baseline.udpJitterMs.median, 3)})`,
      fmt(r.baseline.rttMs.median, 3),
      fmt(r.baseline.connectMs.median, 3),
      fmt(r.baseline.cpuSecondsPerGbit, 3),
      fmt(r.baseline.tcpGbps.spreadPercent, 1),
    ],
    ...r.rows.map((row) => {
      const f = row.figures;
      const k = row.ratioToBaseline;
      if (!f || !k)
        return [
          r.scenario,
          r.provider,
          `${row.pair} (${row.from} → ${row.to})`,
          String(row.podMtu),
          `unreachable: ${row.unreachable}`,
          "",
          "",
          "",
          "",
          "",
          "",
        ];
      return [
        r.scenario,
        r.provider,
        `${row.pair} (${row.from} → ${row.to})`,
        String(row.podMtu),
        `${fmt(f.tcpGbps.median)} ${ratio(k.tcp)}`,
        `${fmt(f.tcp4Gbps.median)} ${ratio(k.tcp4)}`,
        `${fmt(f.udpGbps.median)} ${ratio(k.udp)} (${fmt(f.udpLossPercent.median, 1)}, ${fmt(f.udpJitterMs.median, 3)})`,
        `${fmt(f.rttMs.median, 3)} ${ratio(k.rtt)}`,
        `${fmt(f.connectMs.median, 3)} ${ratio(k.connect)}`,
        fmt(f.cpuSecondsPerGbit, 3),
        fmt(f.tcpGbps.spreadPercent, 1),
      ];
    }),
  ]);
}

export const datapathTable = (report: DatapathReport) => table(HEAD, rowsOf(report));

export function datapathMarkdown(report: DatapathReport): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [
    `# podnet bench --backend linux`,
    "",
    `${report.runs} runs of ${report.seconds} s each; medians, with ratios to the bare veth baseline measured in the same run.`,
    "",
    line(HEAD),
    `|${HEAD.map(() => "---").join("|")}|`,
    ...rowsOf(report).map(line),
    "",
  ].join("\n");
}
