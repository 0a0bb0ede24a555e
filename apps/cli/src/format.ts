/** Human output: tables and colour (off for NO_COLOR and when stdout is not a terminal). */
import Table from "cli-table3";
import pc from "picocolors";
import { formatHeader, type Header } from "@podnet/core";
import type { Trace, TraceHop } from "@podnet/sim";

export const color = pc;

export function table(head: string[], rows: (string | number)[][]): string {
  const t = new Table({ head: head.map((h) => pc.bold(h)), style: { head: [], border: [] } });
  for (const row of rows) t.push(row.map(String));
  return t.toString();
}

export function outcomeText(outcome: Trace["outcome"]): string {
  const paint = outcome === "reached" ? pc.green : outcome === "refused" ? pc.yellow : pc.red;
  return paint(outcome);
}

/** The headers that differ from the previous hop's (same position, same kind), for "what changed here". */
function changed(prev: Header[] | undefined, headers: Header[]): Set<number> {
  const out = new Set<number>();
  headers.forEach((h, i) => {
    const before = prev?.[i];
    if (!before || before.kind !== h.kind || formatHeader(before) !== formatHeader(h)) out.add(i);
  });
  return out;
}

/** A readable hop-by-hop trace; each hop shows its packet, with the headers that changed marked. */
export function formatTrace(trace: Trace, options: { verbose?: boolean } = {}): string {
  const lines: string[] = [];
  let prev: Header[] | undefined;
  let n = 0;
  for (const hop of trace.hops) {
    const quiet = !options.verbose && (hop.event === "transmit" || hop.event === "receive");
    const headers = hop.packet.headers.filter((h) => h.kind !== "ethernet" || hop.wire);
    if (quiet) {
      prev = headers;
      continue;
    }
    n++;
    const where = `${hop.ns}${hop.dev ? ` ${hop.dev}` : ""}`;
    const arrow = hop.direction === "reply" ? pc.dim("←") : "→";
    lines.push(
      `${String(n).padStart(3)} ${arrow} ${pc.cyan(where.padEnd(22))} ${eventText(hop)} ${hop.detail}`,
    );
    const marks = changed(prev, headers);
    if (marks.size)
      lines.push(
        `      ${headers.map((h, i) => (marks.has(i) ? pc.yellow(formatHeader(h)) : pc.dim(formatHeader(h)))).join(pc.dim(" | "))}`,
      );
    prev = headers;
  }
  lines.push("", `${outcomeText(trace.outcome)}: ${trace.reason}`);
  return lines.join("\n");
}

function eventText(hop: TraceHop): string {
  const e = hop.event.padEnd(11);
  return hop.event === "drop"
    ? pc.red(e)
    : hop.event === "deliver"
      ? pc.green(e)
      : hop.event === "nat" || hop.event === "encap" || hop.event === "decap"
        ? pc.magenta(e)
        : pc.dim(e);
}
