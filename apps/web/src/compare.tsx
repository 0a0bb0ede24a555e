/**
 * The scenario under every provider: per kind of pair, a labelled source × destination matrix for each
 * provider side by side with every failure's reason written out, then the path and control-plane
 * figures as charts with titled axes.
 */
import type { ReachabilityCell, RunResult } from "@podnet/cluster";
import { BarChart } from "./charts.js";

const unique = (xs: string[]) => [...new Set(xs)];

function Matrix({
  result,
  cells,
  sources,
  targets,
}: {
  result: RunResult;
  cells: ReachabilityCell[];
  sources: string[];
  targets: string[];
}) {
  const at = new Map(cells.map((c) => [`${c.from}\u0000${c.to}`, c]));
  const reached = cells.filter((c) => c.reached).length;
  return (
    <table className="heatmap" data-provider={result.provider} data-kind={cells[0]?.kind}>
      <caption>
        {result.provider}: {reached}/{cells.length} reached
      </caption>
      <thead>
        <tr>
          <th scope="col" className="corner">
            from ↓ to →
          </th>
          {targets.map((t) => (
            <th key={t} scope="col">
              {t}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {sources.map((s) => (
          <tr key={s}>
            <th scope="row">{s}</th>
            {targets.map((t) => {
              const c = at.get(`${s}\u0000${t}`);
              if (!c)
                return (
                  <td key={t} className="cell none" aria-label={`${s} to ${t}: not probed`}>
                    ·
                  </td>
                );
              return (
                <td
                  key={t}
                  className={`cell ${c.reached ? "ok" : "fail"}`}
                  title={`${c.from} → ${c.to} (${c.protocol}): ${c.reason}`}
                  aria-label={`${c.from} to ${c.to}: ${c.reached ? "reached" : c.reason}`}
                >
                  {c.reached ? "✓" : "✕"}
                </td>
              );
            })}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The figure for each provider, or "not reached" where the measured pair did not connect (as the CLI says). */
function Figures({ labels, values, unit }: { labels: string[]; values: (number | null)[]; unit: string }) {
  return (
    <ul className="figures">
      {labels.map((l, i) => (
        <li key={l}>
          <strong>{l}</strong>:{" "}
          {values[i] === null ? "not reached" : `${Number(values[i]!.toFixed(2))} ${unit}`}
        </li>
      ))}
    </ul>
  );
}

export default function CompareView({ results }: { results: RunResult[] }) {
  const kinds = unique(results.flatMap((r) => r.reachability.map((c) => c.kind)));
  const labels = results.map((r) => r.provider);
  const perNode = (r: RunResult, n: number) => n / Math.max(1, Object.keys(r.controlPlane.perNode).length);
  const pair = results.find((r) => r.path)?.path;
  const overhead = results.map((r) => (r.path?.reached ? (r.path.wire.at(-1)?.overheadPercent ?? 0) : null));
  const mtu = results.map((r) => r.path?.podMtu ?? null);
  const hops = results.map((r) => (r.path?.reached ? r.path.routedHops : null));
  const known = (xs: (number | null)[]) => xs.filter((x): x is number => x !== null);
  return (
    <section className="compare" aria-label="provider comparison">
      <h2>Who reaches whom</h2>
      <p className="explain">
        Every probe of the scenario under each provider: rows are sources, columns destinations; ✓ reached, ✕
        not (hover for the kernel's reason, listed below each kind too). Pods, nodes and outside hosts are
        pinged, Services probed on their first port, as <code>podnet compare</code> does: a NetworkPolicy that
        allows a TCP port does not allow a ping.
        {results[0] && results[0].policy !== "none" && (
          <>
            {" "}
            The scenario's NetworkPolicies are enforced by the {results[0].policy} engine beside every
            provider, as on the map (<code>podnet compare --policy {results[0].policy}</code>).
          </>
        )}
      </p>
      {kinds.map((kind) => {
        const cells = results.flatMap((r) => r.reachability.filter((c) => c.kind === kind));
        // One order for both axes (by first appearance anywhere), so a pod's row and column line up.
        const order = unique(cells.flatMap((c) => [c.from, c.to]));
        const [from, to] = [new Set(cells.map((c) => c.from)), new Set(cells.map((c) => c.to))];
        const sources = order.filter((x) => from.has(x));
        const targets = order.filter((x) => to.has(x));
        const failures = results.flatMap((r) =>
          r.reachability
            .filter((c) => c.kind === kind && !c.reached)
            .map((c) => ({ provider: r.provider, c })),
        );
        return (
          <section key={kind} className="kind" aria-label={kind}>
            <h3>
              {kind}:{" "}
              {unique(cells.map((c) => c.protocol))
                .map((p) => (p === "icmp" ? "ping (ICMP)" : `${p.toUpperCase()} to the first port`))
                .join(", ")}
            </h3>
            <div className="matrices">
              {results.map((r) => (
                <Matrix
                  key={r.provider}
                  result={r}
                  cells={r.reachability.filter((c) => c.kind === kind)}
                  sources={sources}
                  targets={targets}
                />
              ))}
            </div>
            {failures.length > 0 && (
              <ul className="failures">
                {failures.map(({ provider, c }, i) => (
                  <li key={i}>
                    <strong>{provider}</strong>: {c.from} → {c.to}: {c.reason}
                  </li>
                ))}
              </ul>
            )}
          </section>
        );
      })}
      <h2>The path and the tables</h2>
      {pair && (
        <p className="explain">
          Path figures are for one cross-node pod pair, {pair.from} → {pair.to}.
        </p>
      )}
      <div className="charts">
        {[
          {
            title: "Encapsulation overhead for a 1,400-byte packet",
            axis: "overhead (% of the packet)",
            label: "overhead",
            unit: "%",
            values: overhead,
          },
          {
            title: "Pod MTU",
            axis: "MTU (bytes)",
            label: "pod MTU",
            unit: "bytes",
            values: mtu,
            // From just below the smallest: 1450 against 1500 is the difference that matters.
            min: Math.max(0, Math.floor((Math.min(...known(mtu), 1500) - 100) / 50) * 50),
          },
          {
            title: "Routed hops, cross-node pod pair",
            axis: "routers on the path (hops)",
            label: "routed hops",
            unit: "hops",
            values: hops,
          },
        ].map((c) => (
          <figure key={c.title}>
            <BarChart
              title={c.title}
              axis={c.axis}
              labels={labels}
              {...(c.min !== undefined ? { min: c.min } : {})}
              series={[{ label: c.label, values: c.values }]}
            />
            <Figures labels={labels} values={c.values} unit={c.unit} />
          </figure>
        ))}
        <figure>
          <BarChart
            title="Entries per node"
            axis="entries per node (average)"
            labels={labels}
            series={[
              { label: "routes", values: results.map((r) => perNode(r, r.controlPlane.total.routes)) },
              {
                label: "neighbours + FDB",
                values: results.map((r) =>
                  perNode(r, r.controlPlane.total.neighbours + r.controlPlane.total.fdb),
                ),
              },
              { label: "NAT rules", values: results.map((r) => perNode(r, r.controlPlane.total.natRules)) },
            ]}
          />
        </figure>
      </div>
    </section>
  );
}
