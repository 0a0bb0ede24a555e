import { useState } from "react";
import { BarChart } from "./charts.js";

interface BenchRow {
  scenario: string;
  provider: string;
  buildMs: number;
  tracesPerSecond: number;
  peakRssMiB: number;
}

export default function BenchView() {
  const [rows, setRows] = useState<BenchRow[]>();
  const [error, setError] = useState<string>();
  const load = async (file: File) => {
    try {
      const report = JSON.parse(await file.text()) as { rows?: BenchRow[] };
      if (!Array.isArray(report.rows)) throw new Error("not a podnet bench report (no rows)");
      setRows(report.rows);
      setError(undefined);
    } catch (e) {
      setError(`${file.name}: ${(e as Error).message}`);
    }
  };
  const labels = rows?.map((r) => `${r.scenario} / ${r.provider}`) ?? [];
  return (
    <section className="bench" aria-label="benchmark report">
      <label>
        Load a <code>podnet bench --out report.json</code> file:{" "}
        <input
          type="file"
          accept="application/json,.json"
          onChange={(e) => e.target.files?.[0] && load(e.target.files[0])}
        />
      </label>
      {error && <p role="alert">{error}</p>}
      {rows && (
        <div className="charts">
          <BarChart
            title="Traces per second"
            labels={labels}
            series={[{ label: "traces/s", values: rows.map((r) => r.tracesPerSecond) }]}
          />
          <BarChart
            title="Build time (ms)"
            labels={labels}
            series={[{ label: "ms", values: rows.map((r) => r.buildMs) }]}
          />
          <BarChart
            title="Peak memory (MiB)"
            labels={labels}
            series={[{ label: "MiB", values: rows.map((r) => r.peakRssMiB) }]}
          />
        </div>
      )}
    </section>
  );
}
