import type { RunResult } from "@podnet/cluster";
import { BarChart } from "./charts.js";

export default function CompareView({ results }: { results: RunResult[] }) {
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
