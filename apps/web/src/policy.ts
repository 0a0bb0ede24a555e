/**
 * The policy matrix read for the page: how far one source may reach each peer (every port, some,
 * none), and the matrix as Cyclonus-style truth tables, one per protocol and port.
 */
import { isAllowed } from "@podnet/policy";
import type { PolicyTable } from "./protocol.js";

/** "allowed": every port the peer listens on; "partial": some of them; "denied": none. */
export type Reach = "allowed" | "partial" | "denied";

export interface PeerReach {
  reach: Reach;
  /** tcp/80 and the like, split by verdict: the tooltip of the map's line. */
  open: string[];
  closed: string[];
}

/** The source a trace picker value names: a pod's container (pod/container) counts as its pod. */
export function policySource(table: PolicyTable, from: string | undefined): number {
  if (!from) return -1;
  const name = from.split("/")[0];
  return table.sources.findIndex((s) => s.name === name);
}

/** From one source (an index of `table.sources`), every peer that listens on a port, by map name. */
export function reachFrom(table: PolicyTable, source: number): Map<string, PeerReach> {
  const out = new Map<string, PeerReach>();
  table.targets.forEach((t, i) => {
    if (t.name === table.sources[source]!.name) return; // a pod to itself crosses no enforcing hop
    const peer = out.get(t.name) ?? { reach: "denied", open: [], closed: [] };
    (isAllowed(table, source, i) ? peer.open : peer.closed).push(`${t.protocol}/${t.port}`);
    peer.reach = !peer.closed.length ? "allowed" : peer.open.length ? "partial" : "denied";
    out.set(t.name, peer);
  });
  return out;
}

export interface TruthTable {
  protocol: "tcp" | "udp";
  port: number;
  /** Indices of `table.targets` listening on this protocol and port. */
  columns: number[];
}

/** The targets grouped by protocol and port, as `podnet policy check` prints them. */
export function truthTables(table: PolicyTable): TruthTable[] {
  const groups = new Map<string, TruthTable>();
  table.targets.forEach((t, i) => {
    const key = `${t.protocol}/${t.port}`;
    const group = groups.get(key) ?? { protocol: t.protocol, port: t.port, columns: [] };
    group.columns.push(i);
    groups.set(key, group);
  });
  return [...groups.values()].sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol));
}
