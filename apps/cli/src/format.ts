/** Human output: tables and colour (off for NO_COLOR, and for a stream that is not a terminal). */
import { stripVTControlCharacters } from "node:util";
import Table from "cli-table3";
import { createColors } from "picocolors";
import { formatHeader, type Header } from "@podnet/core";
import type { Trace, TraceHop } from "@podnet/sim";

/** Colour for one stream: its own terminal decides (FORCE_COLOR and NO_COLOR aside). */
function colorsFor(stream: NodeJS.WriteStream) {
  const env = process.env;
  return createColors(
    !env.NO_COLOR && (Boolean(env.FORCE_COLOR) || (Boolean(stream.isTTY) && env.TERM !== "dumb")),
  );
}

/** Colour for what goes to stdout. */
export const color = colorsFor(process.stdout);
/** Colour for messages on stderr, which may be a terminal while stdout is a pipe, or the reverse. */
export const errorColor = colorsFor(process.stderr);
const pc = color;

/** The longest piece of a cell, colour codes aside, split at `at`: its lines, or its words. */
const longest = (text: string, at: RegExp) =>
  Math.max(
    ...stripVTControlCharacters(text)
      .split(at)
      .map((piece) => piece.length),
  );

/**
 * Column widths that fit a terminal of `columns`: the widest column that can wrap gives way first,
 * never below its longest word (cli-table3 would cut a word short with "…"). Undefined when the table fits as it is, or stdout is not a terminal
 * (a pipe or a file gets whole lines, for grep).
 */
function fitted(cells: string[][], columns: number | undefined): number[] | undefined {
  if (!columns || !cells.length) return undefined;
  // Each width includes the cell's padding (one space a side).
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => longest(r[i] ?? "", /\n/))) + 2);
  const floors = cells[0]!.map((_, i) => Math.max(...cells.map((r) => longest(r[i] ?? "", /\s+/))) + 2);
  // The borders: one character between columns and one at each end.
  let excess = widths.reduce((a, b) => a + b, 0) + widths.length + 1 - columns;
  if (excess <= 0) return undefined;
  for (; excess > 0; excess--) {
    let widest = -1;
    for (let i = 0; i < widths.length; i++)
      if (widths[i]! > floors[i]! && (widest < 0 || widths[i]! > widths[widest]!)) widest = i;
    if (widest < 0) break;
    widths[widest]!--;
  }
  return widths;
}

export function table(head: string[], rows: (string | number)[][]): string {
  const heads = head.map((h) => pc.bold(h));
  const cells = rows.map((row) => row.map(String));
  const colWidths = fitted([heads, ...cells], process.stdout.isTTY ? process.stdout.columns : undefined);
  const t = new Table({
    head: heads,
    style: { head: [], border: [] },
    ...(colWidths ? { colWidths, wordWrap: true } : {}),
  });
  for (const row of cells) t.push(row);
  return t.toString();
}

/**
 * A table of at most `limit` rows, then a line saying how many more there are: a 5,000-node
 * cluster's 150,000 pods are no table to read (nor one cli-table3 can build), and `--json` has them all.
 */
export function limitedTable(head: string[], rows: (string | number)[][], limit: number): string {
  if (rows.length <= limit) return table(head, rows);
  const more = `… ${(rows.length - limit).toLocaleString("en-US")} more (--json lists all)`;
  return `${table(head, rows.slice(0, limit))}\n${pc.dim(more)}`;
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

/** Prints a command's answer: JSON for machines, or the human rendering. */
export function print(json: boolean, data: unknown, human: () => string): void {
  process.stdout.write(json ? JSON.stringify(data, null, 2) + "\n" : human() + "\n");
}
