import type { NodeTables, RunResult, ScenarioIssue } from "@podnet/cluster";
import { useState } from "react";
import { BarChart } from "./charts.js";

export function ScenarioEditor({
  text,
  file,
  issues,
  onChange,
  onApply,
}: {
  text: string;
  file: string;
  issues: ScenarioIssue[];
  onChange: (t: string) => void;
  onApply: () => void;
}) {
  const lines = text.split("\n");
  const byLine = new Map<number, string[]>();
  for (const i of issues) {
    const path = i.path.map((p, n) => (typeof p === "number" ? `[${p}]` : n ? `.${p}` : p)).join("");
    byLine.set(i.line ?? 1, [
      ...(byLine.get(i.line ?? 1) ?? []),
      `${file}: ${path}${path ? ": " : ""}${i.message}`,
    ]);
  }
  return (
    <section className="editor" aria-label="scenario editor">
      <label htmlFor="yaml">Scenario YAML</label>
      <textarea
        id="yaml"
        value={text}
        spellCheck={false}
        onChange={(e) => onChange(e.target.value)}
        rows={14}
      />
      <label className="upload">
        or upload a file:{" "}
        <input
          type="file"
          accept=".yaml,.yml,.json,application/json,text/yaml"
          onChange={async (e) => e.target.files?.[0] && onChange(await e.target.files[0].text())}
        />
      </label>
      <button type="button" onClick={onApply}>
        Validate and build
      </button>
      {issues.length > 0 && (
        <ol className="annotated" aria-label="validation errors">
          {lines.map((line, i) =>
            byLine.has(i + 1) ? (
              <li key={i} value={i + 1}>
                <code>{line}</code>
                {byLine.get(i + 1)!.map((m) => (
                  <div key={m} className="inline-error" role="alert">
                    {m}
                  </div>
                ))}
              </li>
            ) : null,
          )}
        </ol>
      )}
    </section>
  );
}

export function NodeInspector({ node, tables }: { node: string; tables: NodeTables }) {
  return (
    <section className="inspector" aria-label={`tables of ${node}`}>
      <h3>{node}: ip route</h3>
      <pre>
        {tables.routes
          .map(
            (r) =>
              `${r.dst}${r.gateway ? ` via ${r.gateway}` : ""} dev ${r.dev}${r.protocol ? ` proto ${r.protocol}` : ""}${r.scope ? ` scope ${r.scope}` : ""}${r.prefsrc ? ` src ${r.prefsrc}` : ""}${r.flags.length ? ` ${r.flags.join(" ")}` : ""}`,
          )
          .join("\n") || "(empty)"}
      </pre>
      <h3>ip neigh (permanent)</h3>
      <pre>
        {tables.neighbours
          .map((n) => `${n.dst} dev ${n.dev} lladdr ${n.lladdr} ${n.state.join(" ")}`)
          .join("\n") || "(none)"}
      </pre>
      <h3>bridge fdb</h3>
      <pre>
        {tables.fdb
          .map(
            (f) => `${f.mac} dev ${f.ifname}${f.dst ? ` dst ${f.dst}` : ""} ${f.flags.join(" ")} ${f.state}`,
          )
          .join("\n") || "(none)"}
      </pre>
      <h3>iptables-save -t nat</h3>
      <pre>{tables.nat}</pre>
    </section>
  );
}

export function CompareView({ results }: { results: RunResult[] }) {
  const kinds = [...new Set(results.flatMap((r) => r.reachability.map((c) => c.kind)))];
  const labels = results.map((r) => r.provider);
  return (
    <section className="compare" aria-label="provider comparison">
      <div className="heatmaps">
        {results.map((r) => (
          <table key={r.provider} className="heatmap" data-provider={r.provider}>
            <caption>
              {r.provider}: {r.summary.reached}/{r.summary.total} reachable
            </caption>
            <tbody>
              {kinds.map((k) => (
                <tr key={k}>
                  <th scope="row">{k}</th>
                  <td>
                    {r.reachability
                      .filter((c) => c.kind === k)
                      .map((c, i) => (
                        <span
                          key={i}
                          className={`cell ${c.reached ? "ok" : "fail"}`}
                          title={`${c.from} → ${c.to}: ${c.reason}`}
                          aria-label={`${c.from} to ${c.to}: ${c.reached ? "reached" : c.reason}`}
                        />
                      ))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ))}
      </div>
      <div className="charts">
        <BarChart
          title="Encapsulation overhead at 1,400 B (%)"
          labels={labels}
          series={[
            { label: "overhead %", values: results.map((r) => r.path?.wire.at(-1)?.overheadPercent ?? 0) },
          ]}
        />
        <BarChart
          title="Pod MTU"
          labels={labels}
          series={[{ label: "MTU", values: results.map((r) => r.path?.podMtu ?? 0) }]}
        />
        <BarChart
          title="Routed hops (cross-node pod pair)"
          labels={labels}
          series={[{ label: "hops", values: results.map((r) => (r.path?.reached ? r.path.routedHops : 0)) }]}
        />
        <BarChart
          title="Entries per node"
          labels={labels}
          series={[
            {
              label: "routes",
              values: results.map(
                (r) => r.controlPlane.total.routes / Math.max(1, Object.keys(r.controlPlane.perNode).length),
              ),
            },
            {
              label: "neighbours + FDB",
              values: results.map(
                (r) =>
                  (r.controlPlane.total.neighbours + r.controlPlane.total.fdb) /
                  Math.max(1, Object.keys(r.controlPlane.perNode).length),
              ),
            },
            {
              label: "NAT rules",
              values: results.map(
                (r) =>
                  r.controlPlane.total.natRules / Math.max(1, Object.keys(r.controlPlane.perNode).length),
              ),
            },
          ]}
        />
      </div>
    </section>
  );
}

interface BenchRow {
  scenario: string;
  provider: string;
  buildMs: number;
  tracesPerSecond: number;
  peakRssMiB: number;
}

export function BenchView() {
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
