/**
 * A `podnet bench` report as charts and a table: the one bundled with the app (BENCHMARKS.md's generated
 * clusters) by default, or one the user loads, kept in the browser across reloads.
 */
import { useState } from "react";
import type { BenchRow as FullBenchRow } from "@podnet/cluster";
import bundled from "./bench-report.json";
import { BarChart } from "./charts.js";

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
  | "hopsPerTrace"
  | "peakRssMiB"
>;

interface Report {
  name: string;
  rows: BenchRow[];
}

const STORE = "podnet:bench-report";
// Measured with `podnet bench` on BENCHMARKS.md's generated clusters (scenarios/large.yaml with 100, 400
// and 1,000 nodes) under three providers, on this project's 2-core machine while other work shared it.
const BUNDLED: Report = {
  name: "the bundled report: BENCHMARKS.md's generated clusters, 100 to 1,000 nodes",
  rows: bundled.rows,
};

const NUMBERS: (keyof BenchRow)[] = [
  "nodes",
  "pods",
  "buildMs",
  "reconcileMs",
  "tracesPerSecond",
  "hopsPerTrace",
  "peakRssMiB",
];

/** The rows of a bench report, or a message saying what is wrong with it. */
export function parseReport(text: string): BenchRow[] | string {
  let report: unknown;
  try {
    report = JSON.parse(text);
  } catch (e) {
    return `not JSON: ${(e as Error).message}`;
  }
  const rows = (report as { rows?: unknown }).rows;
  if (!Array.isArray(rows) || !rows.length) return "not a podnet bench report (no rows)";
  for (const [i, r] of rows.entries()) {
    const row = r as Record<string, unknown>;
    if (typeof row.scenario !== "string" || typeof row.provider !== "string")
      return `rows[${i}]: no scenario or provider`;
    const bad = NUMBERS.find((k) => typeof row[k] !== "number");
    if (bad) return `rows[${i}].${bad}: not a number`;
  }
  return rows as BenchRow[];
}

function stored(): Report | undefined {
  try {
    const saved = localStorage.getItem(STORE);
    if (!saved) return undefined;
    const { name, text } = JSON.parse(saved) as { name: string; text: string };
    const rows = parseReport(text);
    return typeof rows === "string" ? undefined : { name, rows };
  } catch {
    return undefined;
  }
}

const CHARTS: { title: string; axis: string; pick: (r: BenchRow) => number }[] = [
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
  const load = async (file: File) => {
    const text = await file.text();
    const rows = parseReport(text);
    if (typeof rows === "string") return setError(`${file.name}: ${rows}`);
    setError(undefined);
    setReport({ name: file.name, rows });
    try {
      localStorage.setItem(STORE, JSON.stringify({ name: file.name, text }));
    } catch {
      // too large to keep: shown until the page is left
    }
  };
  const scenarios = [...new Set(report.rows.map((r) => r.scenario))];
  const providers = [...new Set(report.rows.map((r) => r.provider))];
  const labels = scenarios.map((s) => {
    const r = report.rows.find((x) => x.scenario === s)!;
    return `${r.nodes.toLocaleString("en")} nodes, ${r.pods.toLocaleString("en")} pods`;
  });
  const series = (pick: (r: BenchRow) => number) =>
    providers.map((p) => ({
      label: p,
      values: scenarios.map((s) => {
        const r = report.rows.find((x) => x.scenario === s && x.provider === p);
        return r ? pick(r) : null;
      }),
    }));
  return (
    <section className="bench" aria-label="benchmark report">
      <h2>podnet itself: build time, traces per second, memory</h2>
      <p className="explain">
        Showing <strong data-testid="bench-source">{report.name}</strong>. Generated clusters of 30 pods a
        node on one flat segment; build covers the underlay, nodes, pods and every route-manager event; traces
        are random pod pairs for one second. Make your own with{" "}
        <code>podnet bench scenario.yaml --out report.json</code>.
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
      <div className="charts">
        {CHARTS.map((c) => (
          <BarChart
            key={c.title}
            title={c.title}
            axis={c.axis}
            category="cluster"
            labels={labels}
            series={series(c.pick)}
          />
        ))}
      </div>
      <div className="table-wrap">
        <table className="bench-table">
          <thead>
            <tr>
              <th scope="col">cluster</th>
              <th scope="col">provider</th>
              <th scope="col">build</th>
              <th scope="col">of which reconcile</th>
              <th scope="col">traces/s</th>
              <th scope="col">hops/trace</th>
              <th scope="col">peak RSS</th>
            </tr>
          </thead>
          <tbody>
            {report.rows.map((r, i) => (
              <tr key={i}>
                <td>
                  {r.nodes.toLocaleString("en")} × {Math.round(r.pods / Math.max(1, r.nodes))}
                </td>
                <td>{r.provider}</td>
                <td>{(r.buildMs / 1000).toFixed(2)} s</td>
                <td>{(r.reconcileMs / 1000).toFixed(2)} s</td>
                <td>{Math.round(r.tracesPerSecond).toLocaleString("en")}</td>
                <td>{Math.round(r.hopsPerTrace)}</td>
                <td>{Math.round(r.peakRssMiB).toLocaleString("en")} MiB</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
