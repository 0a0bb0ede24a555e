/**
 * NetworkPolicy beside the map: the allowed-connection truth tables (`podnet policy check`), one per
 * protocol and port. A cell is a connection: click it to trace it and walk it with its verdict.
 */
import { useMemo } from "react";
import { isAllowed } from "@podnet/policy";
import { truthTables } from "./policy.js";
import type { PolicyTable } from "./protocol.js";

/** Past this many sources or targets a table no longer reads; the map's lines do the job then. */
const TABLE_LIMIT = 40;

export function PolicyPanel({
  table,
  from,
  onPick,
}: {
  table: PolicyTable;
  from?: string;
  onPick: (from: string, to: string, protocol: "tcp" | "udp") => void;
}) {
  const groups = useMemo(() => truthTables(table), [table]);
  const total = table.sources.length * table.targets.length;
  const open = table.allowed.reduce((n, a) => n + a, 0);
  const large = table.sources.length > TABLE_LIMIT || table.targets.length > TABLE_LIMIT;
  return (
    <details className="policy-panel" open data-testid="policy-panel">
      <summary>
        NetworkPolicy: {open} of {total} connections allowed
      </summary>
      <p className="hint">
        {from
          ? "The map draws, from the chosen source, whom it may reach. "
          : "Click a pod on the map to see whom it may reach. "}
        {large ? "" : "Click a cell to trace that connection."}
      </p>
      {large ? (
        <p className="hint">
          {table.sources.length} sources and {table.targets.length} ports are too many to tabulate here:{" "}
          <code>podnet policy check</code> prints them all.
        </p>
      ) : (
        groups.map((g) => (
          <table key={`${g.protocol}/${g.port}`} className="truth" aria-label={`${g.protocol}/${g.port}`}>
            <caption>
              {g.protocol}/{g.port}
            </caption>
            <thead>
              <tr>
                <th scope="col">from \ to</th>
                {g.columns.map((t) => (
                  <th key={t} scope="col" title={table.targets[t]!.label}>
                    {table.targets[t]!.name}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {table.sources.map((s, si) => (
                <tr key={s.name} className={from?.split("/")[0] === s.name ? "chosen" : undefined}>
                  <th scope="row" title={s.label}>
                    {s.name}
                  </th>
                  {g.columns.map((t) => {
                    const target = table.targets[t]!;
                    const allowed = isAllowed(table, si, t);
                    const words = `${s.label} to ${target.label} ${g.protocol}/${g.port}: ${allowed ? "allowed" : "denied"}`;
                    return (
                      <td key={t}>
                        <button
                          type="button"
                          className={allowed ? "allowed" : "denied"}
                          title={`${words}; click to trace it`}
                          aria-label={words}
                          onClick={() => onPick(s.name, `${target.name}:${g.port}`, g.protocol)}
                        >
                          {allowed ? "✓" : "✕"}
                        </button>
                      </td>
                    );
                  })}
                </tr>
              ))}
            </tbody>
          </table>
        ))
      )}
    </details>
  );
}
