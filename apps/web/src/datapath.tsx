/**
 * The real datapath beside the simulated figures: what `podnet bench --backend linux` measured on a
 * kernel (iperf3, ping, TCP connect between the scenario's pods in network namespaces), per provider and
 * pod pair, as ratios to a bare veth pair measured in the same run.
 */
import { ChartGrid, FiguresTable, type ChartSpec } from "./charts.js";

/** The parts of @podnet/lab's DatapathFigures that the app shows (medians of the runs). */
interface Figures {
  tcpGbps: { median: number; spreadPercent: number };
  tcp4Gbps: { median: number };
  udpGbps: { median: number };
  udpLossPercent: { median: number };
  /** Absent through a Service: a ClusterIP does not answer ping. */
  rttMs?: { median: number };
  connectMs: { median: number };
  /** Absent when measured side by side. */
  cpuSecondsPerGbit?: number;
}

/** One provider's run of a scenario: its baseline and a row per pod pair (@podnet/lab's DatapathRow). */
export interface DatapathResult {
  scenario: string;
  provider: string;
  baseline: Figures;
  rows: {
    pair: string;
    from: string;
    to: string;
    podMtu: number;
    figures?: Figures;
    unreachable?: string;
    ratioToBaseline?: { tcp: number; tcp4: number; udp: number; rtt?: number; connect: number };
  }[];
}

export interface Datapath {
  machine?: { node?: string; platform?: string };
  runs?: number;
  seconds?: number;
  /** Side by side in blocks (`--blocks`): each run's transfers as this many short blocks, not `seconds` long. */
  blocks?: number;
  results: DatapathResult[];
  /** Written by a bench that had not finished (stopped, or failed later): how many pairs are in. */
  partial?: { measured: number; of: number };
}

const isPartial = (v: unknown): v is Datapath["partial"] =>
  typeof (v as { measured?: unknown })?.measured === "number" &&
  typeof (v as { of?: unknown }).of === "number";

const FIGURES = ["tcpGbps", "tcp4Gbps", "udpGbps", "udpLossPercent", "connectMs"] as const;

function figuresProblem(f: unknown, at: string, ping = true): string | undefined {
  const o = f as Record<string, { median?: unknown } | undefined>;
  if (!o || typeof o !== "object") return `${at}: no figures`;
  // A pair through a Service has no ping figure (a ClusterIP does not answer ping); the rest always has.
  const bad = [...FIGURES, ...(ping || o.rttMs ? (["rttMs"] as const) : [])].find(
    (k) => typeof o[k]?.median !== "number",
  );
  if (bad) return `${at}.${bad}.median: not a number`;
  const cpu = (o as { cpuSecondsPerGbit?: unknown }).cpuSecondsPerGbit;
  return cpu === undefined || typeof cpu === "number" ? undefined : `${at}.cpuSecondsPerGbit: not a number`;
}

/**
 * The datapath part of a report: a `podnet bench --backend linux` report itself, or one nested in a
 * combined report (any top-level field holding `backend: "linux"` and `results`). Undefined when there
 * is none; a string says what is wrong with it.
 */
export function findDatapath(report: Record<string, unknown>): Datapath | string | undefined {
  const isLinux = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && (v as { backend?: unknown }).backend === "linux";
  const [path, found] = isLinux(report)
    ? ["", report]
    : (Object.entries(report)
        .filter(([, v]) => isLinux(v))
        .map(([k, v]) => [`${k}.`, v as Record<string, unknown>] as const)[0] ?? []);
  if (!found) return undefined;
  const results = found.results;
  if (!Array.isArray(results) || !results.length) return `${path}results: none`;
  for (const [i, r] of results.entries()) {
    const at = `${path}results[${i}]`;
    const res = r as Partial<DatapathResult>;
    if (typeof res.scenario !== "string" || typeof res.provider !== "string")
      return `${at}: no scenario or provider`;
    const baseline = figuresProblem(res.baseline, `${at}.baseline`);
    if (baseline) return baseline;
    if (!Array.isArray(res.rows)) return `${at}.rows: not a list`;
    for (const [j, row] of res.rows.entries()) {
      if (typeof row.pair !== "string" || typeof row.podMtu !== "number")
        return `${at}.rows[${j}]: no pair or podMtu`;
      if (row.figures === undefined) {
        if (typeof row.unreachable !== "string") return `${at}.rows[${j}]: neither figures nor unreachable`;
        continue;
      }
      const problem = figuresProblem(row.figures, `${at}.rows[${j}].figures`, false);
      if (problem) return problem;
      if (typeof row.ratioToBaseline?.tcp !== "number") return `${at}.rows[${j}].ratioToBaseline: missing`;
    }
  }
  return {
    ...(typeof found.machine === "object" ? { machine: found.machine as Datapath["machine"] } : {}),
    ...(typeof found.runs === "number" ? { runs: found.runs } : {}),
    ...(typeof found.seconds === "number" ? { seconds: found.seconds } : {}),
    ...(typeof found.blocks === "number" && found.blocks > 0 ? { blocks: found.blocks } : {}),
    results: results as DatapathResult[],
    ...(isPartial(found.partial) ? { partial: found.partial } : {}),
  };
}

type Row = DatapathResult["rows"][number];

const CHARTS: ChartSpec<Row>[] = [
  {
    title: "TCP throughput, one stream (higher is better)",
    axis: "× bare veth",
    pick: (r) => r.ratioToBaseline?.tcp,
  },
  { title: "UDP throughput (higher is better)", axis: "× bare veth", pick: (r) => r.ratioToBaseline?.udp },
  {
    title: "Round-trip time, ping (lower is better)",
    axis: "× bare veth",
    pick: (r) => r.ratioToBaseline?.rtt,
  },
  {
    title: "Kernel CPU per gigabit moved (lower is better)",
    axis: "CPU seconds per Gbit",
    pick: (r) => r.figures?.cpuSecondsPerGbit,
  },
];

const COLUMNS = [
  "scenario",
  "provider",
  "pair",
  "pod MTU",
  "TCP Gbit/s",
  "TCP ×4 Gbit/s",
  "UDP Gbit/s (loss)",
  "RTT ms",
  "connect ms",
  "CPU s/Gbit",
];

const num = (n: number, digits = 2) => n.toFixed(digits);
/** CPU per gigabit, or a dash: measured side by side, the machine's CPU served two transfers at once. */
const cpuCell = (n: number | undefined) => (n === undefined ? "–" : num(n, 3));
const times = (r: number | undefined) => (r === undefined ? "" : ` ×${num(r)}`);

export function DatapathView({ datapath }: { datapath: Datapath }) {
  const { results, machine } = datapath;
  const scenarios = new Set(results.map((r) => r.scenario));
  // Categories: the pod pairs (named by scenario too when the report has several).
  const label = (r: DatapathResult, row: Row) =>
    scenarios.size > 1 ? `${r.scenario}: ${row.pair}` : row.pair;
  const labels = [...new Set(results.flatMap((r) => r.rows.map((row) => label(r, row))))];
  const providers = [...new Set(results.map((r) => r.provider))];
  const series = (pick: (r: Row) => number | undefined) =>
    providers.map((p) => ({
      label: p,
      values: labels.map((l) => {
        for (const r of results)
          if (r.provider === p)
            for (const row of r.rows)
              if (label(r, row) === l)
                // null marks a pair that did not connect ("unreachable" on the chart); NaN, a figure
                // this pair does not have (no ping through a ClusterIP), is left blank.
                return row.figures ? (pick(row) ?? Number.NaN) : null;
        // A pair this provider is not measured on (the wrong-MTU pair exists only where the pod MTU
        // is below the underlay's): blank, not "unreachable".
        return Number.NaN;
      }),
    }));
  // A figure no pair has (CPU per gigabit, measured side by side) gets no empty chart.
  const charts = CHARTS.filter((c) =>
    results.some((r) => r.rows.some((row) => row.figures && c.pick(row) !== undefined)),
  );
  return (
    <section className="datapath" aria-label="real datapath">
      <h2>The real datapath: measured on a kernel, not simulated</h2>
      <p className="explain" data-testid="datapath-source">
        <strong className="measured">Measured on this machine's kernel</strong> — the machine that ran{" "}
        <code>podnet bench --backend linux</code>
        {machine?.platform ? ` (${machine.platform}, Node ${machine.node ?? "?"})` : ""}
        {datapath.runs ? `, median of ${datapath.runs} run${datapath.runs === 1 ? "" : "s"}` : ""}
        {datapath.blocks
          ? `, each transfer in ${datapath.blocks} blocks`
          : datapath.seconds
            ? ` of ${datapath.seconds} s`
            : ""}
        : the scenario's pods in network namespaces wired by each provider, iperf3, ping and TCP connect
        between pod pairs. Each figure is divided by a bare veth pair measured in the same run, so 1.00 is “as
        fast as two namespaces on one cable”.
      </p>
      {datapath.partial ? (
        <p className="explain partial" data-testid="datapath-partial">
          <strong>Partial:</strong> {datapath.partial.measured} of {datapath.partial.of} scenario × provider
          pairs were measured when this report was written; the bench did not finish.
        </p>
      ) : null}
      <ChartGrid charts={charts} category="pod pair" labels={labels} series={series} />
      <FiguresTable className="bench-table datapath-table" columns={COLUMNS}>
        {results.flatMap((r) => [
          <tr key={`${r.scenario}/${r.provider}`} className="baseline">
            <td>{r.scenario}</td>
            <td>{r.provider}</td>
            <td>bare veth (baseline)</td>
            <td>1500</td>
            <td>{num(r.baseline.tcpGbps.median)}</td>
            <td>{num(r.baseline.tcp4Gbps.median)}</td>
            <td>
              {num(r.baseline.udpGbps.median)} ({num(r.baseline.udpLossPercent.median, 1)} %)
            </td>
            <td>{r.baseline.rttMs ? num(r.baseline.rttMs.median, 3) : "—"}</td>
            <td>{num(r.baseline.connectMs.median, 3)}</td>
            <td>{cpuCell(r.baseline.cpuSecondsPerGbit)}</td>
          </tr>,
          ...r.rows.map((row) => {
            const f = row.figures;
            const k = row.ratioToBaseline;
            return (
              <tr key={`${r.scenario}/${r.provider}/${row.pair}`}>
                <td>{r.scenario}</td>
                <td>{r.provider}</td>
                <td>
                  {row.pair} ({row.from} → {row.to})
                </td>
                <td>{row.podMtu}</td>
                {f ? (
                  <>
                    <td>
                      {num(f.tcpGbps.median)}
                      {times(k?.tcp)}
                    </td>
                    <td>
                      {num(f.tcp4Gbps.median)}
                      {times(k?.tcp4)}
                    </td>
                    <td>
                      {num(f.udpGbps.median)}
                      {times(k?.udp)} ({num(f.udpLossPercent.median, 1)} %)
                    </td>
                    <td>
                      {f.rttMs ? num(f.rttMs.median, 3) : "— (no ping to a ClusterIP)"}
                      {times(k?.rtt)}
                    </td>
                    <td>
                      {num(f.connectMs.median, 3)}
                      {times(k?.connect)}
                    </td>
                    <td>{cpuCell(f.cpuSecondsPerGbit)}</td>
                  </>
                ) : (
                  <td colSpan={6} className="unreachable">
                    unreachable: {row.unreachable}
                  </td>
                )}
              </tr>
            );
          }),
        ])}
      </FiguresTable>
    </section>
  );
}
