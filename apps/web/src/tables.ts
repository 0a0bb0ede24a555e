/**
 * A namespace's tables as the lines `ip route`, `ip neigh`, `bridge fdb` and `iptables-save` print, and
 * the lines that changed between two moments (the churn timeline's differences).
 */
import type { NodeTables } from "@podnet/cluster";
import { formatNftKey, formatNftRule, formatNftVerdict, type NftObject } from "@podnet/netlink";

type Route = NodeTables["routes"][number];
type Neighbour = NodeTables["neighbours"][number];
type Fdb = NodeTables["fdb"][number];

export const routeLine = (r: Route): string =>
  `${r.dst}${r.gateway ? ` via ${r.gateway}` : ""} dev ${r.dev}${r.protocol ? ` proto ${r.protocol}` : ""}${r.scope ? ` scope ${r.scope}` : ""}${r.prefsrc ? ` src ${r.prefsrc}` : ""}${r.flags.length ? ` ${r.flags.join(" ")}` : ""}`;

export const neighbourLine = (n: Neighbour): string =>
  `${n.dst} dev ${n.dev} lladdr ${n.lladdr} ${n.state.join(" ")}`;

export const fdbLine = (f: Fdb): string =>
  `${f.mac} dev ${f.ifname}${f.dst ? ` dst ${f.dst}` : ""} ${f.flags.join(" ")} ${f.state}`;

/**
 * kube-proxy's nftables table as `nft list table ip kube-proxy` prints it: its sets and maps with
 * their elements, then its chains (a base chain with its type, hook and priority) with their rules.
 */
/** A set's or map's key type as nft prints it: "ipv4_addr . inet_proto . inet_service". */
const keyType = (type: string | readonly string[]) => (typeof type === "string" ? type : type.join(" . "));

export function nftText(objects: readonly NftObject[]): string {
  const out: string[] = [];
  const table = objects.find((o) => "table" in o);
  if (!table || !("table" in table)) return "";
  out.push(`table ${table.table.family} ${table.table.name} {`);
  for (const o of objects)
    if ("set" in o) {
      out.push(`\tset ${o.set.name} {`, `\t\ttype ${keyType(o.set.type)}`);
      const elements = o.set.elem ?? [];
      if (elements.length) out.push(`\t\telements = { ${elements.map(formatNftKey).join(", ")} }`);
      out.push("\t}");
    } else if ("map" in o) {
      out.push(`\tmap ${o.map.name} {`, `\t\ttype ${keyType(o.map.type)} : verdict`);
      const elements = o.map.elem ?? [];
      if (elements.length)
        out.push(
          "\t\telements = {",
          ...elements.map(([k, v]) => `\t\t\t${formatNftKey(k)} : ${formatNftVerdict(v)},`),
          "\t\t}",
        );
      out.push("\t}");
    }
  for (const o of objects) {
    if (!("chain" in o)) continue;
    const c = o.chain;
    out.push(`\tchain ${c.name} {`);
    if (c.hook)
      out.push(`\t\ttype ${c.type} hook ${c.hook} priority ${c.prio ?? 0}; policy ${c.policy ?? "accept"};`);
    for (const r of objects)
      if ("rule" in r && r.rule.chain === c.name) out.push(`\t\t${formatNftRule(r.rule)}`);
    out.push("\t}");
  }
  out.push("}");
  return out.join("\n");
}

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
    ...t.filter
      .split("\n")
      .filter((l) => l.startsWith("-A "))
      .map((l) => `filter ${l}`),
    ...(t.nft
      ? nftText(t.nft)
          .split("\n")
          .map((l) => `nft ${l.trim()}`)
      : []),
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
