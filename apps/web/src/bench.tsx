/**
 * A `podnet bench` report as charts and a table: the one bundled with the app (BENCHMARKS.md's generated
 * clusters) by default, or one the user loads, kept in the browser across reloads. A report of the real
 * datapath (`--backend linux`, alone or inside the same JSON) is shown beside the simulated figures.
 */
import { useState } from "react";
import type { BenchRow as FullBenchRow } from "@podnet/cluster";
import bundled from "./bench-report.json";
import { ChartGrid, FiguresTable, type ChartSpec } from "./charts.js";
import { DatapathView, findDatapath, type Datapath } from "./datapath.js";

/** The fields of `podnet bench`'s rows that the app shows. */
export type BenchRow = Pick<
  FullBenchRow,
  | "scenario"
  | "provider"
  | "nodes"
  | "pods"
  | "buildMs"
  | "reconcileMs"
  | "tracesPerSecond"
  | "warmTracesPerSecond"
  | "hopsPerTrace"
  | "peakRssMiB"
>;

interface Parts {
  /** podnet's own figures on the simulated network (`podnet bench`). */
  rows: BenchRow[];
  /** The real datapath's (`podnet bench --backend linux`). */
  datapath?: Datapath;
}

interface Report extends Parts {
  name: string;
}

const STORE = "podnet:bench-report";
const NUMBERS: (keyof BenchRow)[] = [
  "nodes",
  "pods",
  "buildMs",
  "reconcileMs",
  "tracesPerSecond",
  "hopsPerTrace",
  "peakRssMiB",
];

/**
 * A bench report's parts — the simulated rows, the real datapath, or both — or a message saying what is
 * wrong with it.
 */
export function parseReport(text: string): Parts | string {
  let report: unknown;
  try {
    report = JSON.parse(text);
  } catch (e) {
    return `not JSON: ${(e as Error).message}`;
  }
  if (typeof report !== "object" || report === null) return "not a podnet bench report";
  const datapath = findDatapath(report as Record<string, unknown>);
  if (typeof datapath === "string") return datapath;
  const rows = (report as { rows?: unknown }).rows;
  if (!datapath && (!Array.isArray(rows) || !rows.length)) return "not a podnet bench report (no rows)";
  for (const [i, r] of (Array.isArray(rows) ? rows : []).entries()) {
    const row = r as Record<string, unknown>;
    if (typeof row.scenario !== "string" || typeof row.provider !== "string")
      return `rows[${i}]: no scenario or provider`;
    const bad = NUMBERS.find((k) => typeof row[k] !== "number");
    if (bad) return `rows[${i}].${bad}: not a number`;
  }
  return { rows: Array.isArray(rows) ? (rows as BenchRow[]) : [], ...(datapath ? { datapath } : {}) };
}

// Measured with `podnet bench large --nodes N --providers P --json` on BENCHMARKS.md's generated
// clusters (scenarios/large.yaml with 100, 1,000 and 5,000 nodes), each size and provider in a process
// of its own (a row's peak RSS is its process's), on this project's 2-core machine, quiet (load 0.9).
const BUNDLED: Report = {
  name: "the bundled report: BENCHMARKS.md's generated clusters, 100 to 5,000 nodes",
  ...(parseReport(JSON.stringify(bundled)) as Parts),
};

function stored(): Report | undefined {
  try {
    const saved = localStorage.getItem(STORE);
    if (!saved) return undefined;
    const { name, text } = JSON.parse(saved) as { name: string; text: string };
    const parts = parseReport(text);
    return typeof parts === "string" ? undefined : { name, ...parts };
  } catch {
    return undefined;
  }
}

const CHARTS: ChartSpec<BenchRow>[] = [
  {
    title: "Traces per second (higher is better)",
    axis: "traces per second",
    pick: (r) => r.tracesPerSecond,
  },
  { title: "Build time (lower is better)", axis: "seconds", pick: (r) => r.buildMs / 1000 },
  { title: "Peak memory of the process (lower is better)", axis: "MiB", pick: (r) => r.peakRssMiB },
  { title: "Hops recorded per trace", axis: "hops per trace", pick: (r) => r.hopsPerTrace },
];

export default function BenchView() {
  const [report, setReport] = useState<Report>(() => stored() ?? BUNDLED);
  const [error, setError] = useState<string>();
  // A loaded file replaces the parts it carries; a datapath-only report joins the simulated figures.
  const load = async (file: File) => {
    const parts = parseReport(await file.text());
    if (typeof parts === "string") return setError(`${file.name}: ${parts}`);
    setError(undefined);
    const rows = parts.rows.length ? parts.rows : report.rows;
    const datapath = parts.datapath ?? (parts.rows.length ? undefined : report.datapath);
    const joined = rows !== parts.rows || (datapath && datapath !== parts.datapath);
    const next: Report = {
      name: joined ? `${report.name} + ${file.name}` : file.name,
      rows,
      ...(datapath ? { datapath } : {}),
    };
    setReport(next);
    try {
      const text = JSON.stringify({
        rows,
        ...(datapath ? { datapath: { backend: "linux", ...datapath } } : {}),
      });
      localStorage.setItem(STORE, JSON.stringify({ name: next.name, text }));
    } catch {
      // too large to keep: shown until the page is left
    }
  };
  return (
    <section className="bench" aria-label="benchmark report">
      <p className="explain">
        Showing <strong data-testid="bench-source">{report.name}</strong>. Make your own with{" "}
        <code>podnet bench scenario.yaml --out report.json</code> (podnet on the simulated network) and, as
        root, <code>podnet bench scenario.yaml --backend linux --out datapath.json</code> (the real datapath);
        load either or both.
      </p>
      <div className="bench-load">
        <label>
          Load a report:{" "}
          <input
            type="file"
            name="bench-report"
            accept="application/json,.json"
            onChange={(e) => e.target.files?.[0] && void load(e.target.files[0])}
          />
        </label>
        {report !== BUNDLED && (
          <button
            type="button"
            onClick={() => {
              localStorage.removeItem(STORE);
              setReport(BUNDLED);
            }}
          >
            show the bundled report
          </button>
        )}
      </div>
      {error && <p role="alert">{error}</p>}
      {report.rows.length > 0 && <Simulated rows={report.rows} bundled={report === BUNDLED} />}
      {report.datapath ? (
        <DatapathView datapath={report.datapath} />
      ) : (
        <p className="explain" data-testid="no-datapath">
          This report has no real-datapath figures: <code>podnet bench --backend linux</code> measures them on
          a kernel, and they are shown here beside the simulated ones when loaded.
        </p>
      )}
    </section>
  );
}

/** podnet's own figures on the simulated network, per cluster size and provider. */
function Simulated({ rows, bundled }: { rows: BenchRow[]; bundled: boolean }) {
  const scenarios = [...new Set(rows.map((r) => r.scenario))];
  const providers = [...new Set(rows.map((r) => r.provider))];
  const labels = scenarios.map((s) => {
    const r = rows.find((x) => x.scenario === s)!;
    return `${r.nodes.toLocaleString("en")} nodes, ${r.pods.toLocaleString("en")} pods`;
  });
  const series = (pick: (r: BenchRow) => number | undefined) =>
    providers.map((p) => ({
      label: p,
      values: scenarios.map((s) => {
        const r = rows.find((x) => x.scenario === s && x.provider === p);
        return r ? (pick(r) ?? null) : null;
      }),
    }));
  return (
    <>
      <h2>podnet itself, on the simulated network: build time, traces per second, memory</h2>
      {bundled && (
        <p className="explain">
          Generated clusters of 30 pods a node on one flat segment; build covers the underlay, nodes, pods and
          every route-manager event; traces are random pod pairs for one second, warm pairs one pair probed
          again and again (answered by the simulator's flow cache).
        </p>
      )}
      <ChartGrid charts={CHARTS} category="cluster" labels={labels} series={series} />
      <FiguresTable
        className="bench-table"
        columns={[
          "cluster",
          "provider",
          "build",
          "of which reconcile",
          "traces/s",
          "warm pair/s",
          "hops/trace",
          "peak RSS",
        ]}
      >
        {rows.map((r, i) => (
          <tr key={i}>
            <td>
              {r.scenario}: {r.nodes.toLocaleString("en")} nodes, {r.pods.toLocaleString("en")} pods
            </td>
            <td>{r.provider}</td>
            <td>{(r.buildMs / 1000).toFixed(2)} s</td>
            <td>{(r.reconcileMs / 1000).toFixed(2)} s</td>
            <td>{Math.round(r.tracesPerSecond).toLocaleString("en")}</td>
            <td>
              {typeof r.warmTracesPerSecond === "number"
                ? Math.round(r.warmTracesPerSecond).toLocaleString("en")
                : "–"}
            </td>
            <td>{Math.round(r.hopsPerTrace)}</td>
            <td>{Math.round(r.peakRssMiB).toLocaleString("en")} MiB</td>
          </tr>
        ))}
      </FiguresTable>
    </>
  );
}
