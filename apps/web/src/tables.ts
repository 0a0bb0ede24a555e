/**
 * A namespace's tables as the lines `ip route`, `ip neigh`, `bridge fdb` and `iptables-save` print, and
 * the lines that changed between two moments (the churn timeline's differences).
 */
import type { NodeTables } from "@podnet/cluster";

type Route = NodeTables["routes"][number];
type Neighbour = NodeTables["neighbours"][number];
type Fdb = NodeTables["fdb"][number];

export const routeLine = (r: Route): string =>
  `${r.dst}${r.gateway ? ` via ${r.gateway}` : ""} dev ${r.dev}${r.protocol ? ` proto ${r.protocol}` : ""}${r.scope ? ` scope ${r.scope}` : ""}${r.prefsrc ? ` src ${r.prefsrc}` : ""}${r.flags.length ? ` ${r.flags.join(" ")}` : ""}`;

export const neighbourLine = (n: Neighbour): string =>
  `${n.dst} dev ${n.dev} lladdr ${n.lladdr} ${n.state.join(" ")}`;

export const fdbLine = (f: Fdb): string =>
  `${f.mac} dev ${f.ifname}${f.dst ? ` dst ${f.dst}` : ""} ${f.flags.join(" ")} ${f.state}`;

/** Every entry of a namespace's tables as one line, prefixed by the table it is in. */
export function tableLines(t: NodeTables): string[] {
  return [
    ...t.routes.map((r) => `route ${routeLine(r)}`),
    ...t.neighbours.map((n) => `neigh ${neighbourLine(n)}`),
    ...t.fdb.map((f) => `fdb ${fdbLine(f)}`),
    ...t.nat
      .split("\n")
      .filter((l) => l.startsWith("-A "))
      .map((l) => `nat ${l}`),
  ];
}

export interface TableChange {
  node: string;
  added: string[];
  removed: string[];
}

/** Per namespace, the entries that appeared and disappeared; a namespace that came or went counts whole. */
export function tableChanges(
  before: Record<string, string[]>,
  after: Record<string, string[]>,
): TableChange[] {
  const changes: TableChange[] = [];
  for (const node of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const was = new Set(before[node] ?? []);
    const now = new Set(after[node] ?? []);
    const added = [...now].filter((l) => !was.has(l));
    const removed = [...was].filter((l) => !now.has(l));
    if (added.length || removed.length) changes.push({ node, added, removed });
  }
  return changes;
}
