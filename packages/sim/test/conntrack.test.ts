// The conntrack table itself: what one entry's two directions find, and that a flow whose tuples
// come back after timing out (a warm pair cycling through its ports) keeps the table's memory flat.
import { describe, expect, it } from "vitest";
import { ConntrackTable, replayedEntry, type ConnTuple } from "../src/namespace.js";

const tuple = (srcPort: number): ConnTuple => ({
  protocol: 6,
  src: 0x0a000102,
  srcPort,
  dst: 0x0a000202,
  dstPort: 80,
});
const inverse = (t: ConnTuple): ConnTuple => ({
  ...t,
  src: t.dst,
  srcPort: t.dstPort,
  dst: t.src,
  dstPort: t.srcPort,
});

describe("the conntrack table", () => {
  it("finds an entry by either direction until it times out", () => {
    const table = new ConntrackTable();
    const original = tuple(40000);
    table.confirm({ original, reply: inverse(original), expires: 30 }, 0);
    expect(table.get(tuple(40000), 29)?.direction).toBe("original");
    expect(table.get(inverse(tuple(40000)), 29)?.direction).toBe("reply");
    expect(table.get(tuple(40001), 29)).toBeUndefined();
    expect(table.get(tuple(40000), 30)).toBeUndefined();
    expect(table.size).toBe(2);
  });

  it("forgets the live entries a delete picks, by either direction, and keeps the others", () => {
    const table = new ConntrackTable();
    const udp = (srcPort: number, dstPort: number): ConnTuple => ({
      ...tuple(srcPort),
      protocol: 17,
      dstPort,
    });
    for (const [original, expires] of [
      [udp(40000, 53), 30],
      [udp(40001, 53), 30],
      [udp(40002, 53), 5], // timed out by the delete's time: not counted
      [udp(40003, 54), 30],
      [tuple(40004), 30],
    ] as const)
      table.confirm({ original, reply: inverse(original), expires }, 0);
    const deleted = table.delete((e) => e.original.protocol === 17 && e.original.dstPort === 53, 10);
    expect(deleted).toBe(2);
    expect(table.get(udp(40000, 53), 10)).toBeUndefined();
    expect(table.get(inverse(udp(40001, 53)), 10)).toBeUndefined();
    expect(table.get(udp(40003, 54), 10)?.direction).toBe("original");
    expect(table.get(inverse(tuple(40004)), 10)?.direction).toBe("reply");
    expect(table.list(10)).toHaveLength(2);
    expect(table.delete(() => true, 10)).toBe(2);
    expect(table.list(10)).toEqual([]);
  });

  it("does not pile up the entries that timed-out tuples replaced", () => {
    const table = new ConntrackTable();
    // Ten ports, each confirmed again every ten seconds, each entry living one: 100,000 entries made.
    for (let now = 0; now < 100_000; now++) {
      const original = tuple(40000 + (now % 10));
      table.confirm({ original, reply: inverse(original), expires: now + 1 }, now);
    }
    expect(table.size).toBe(20);
    expect(table.list(99_999)).toHaveLength(1);
    // What a sweep reads is bounded by its threshold, not by every entry ever confirmed.
    expect((table as unknown as { order: unknown[] }).order.length).toBeLessThanOrEqual(1024);
  });

  it("reuses a replay's entry once it timed out and was swept, never one a walk found or a caller listed", () => {
    const table = new ConntrackTable();
    const replayed = (port: number, now: number) => {
      const entry = replayedEntry();
      Object.assign(entry.original, tuple(port));
      Object.assign(entry.reply, inverse(tuple(port)));
      entry.expires = now + 30;
      table.confirm(entry, now);
      return entry;
    };
    const found = replayed(40000, 0);
    const listed = replayed(40001, 0);
    expect(table.list(1)).toContain(listed);
    const plain = replayed(40002, 1);
    expect(table.get(tuple(40000), 1)!.entry).toBe(found);
    const seen = new Set([found, listed, plain]);
    // Enough later entries for sweeps to drop the three: only `plain` comes back.
    const made = new Set<object>();
    for (let now = 100; now < 2100; now++) made.add(replayed(30000 + now, now));
    expect(made.has(plain)).toBe(true);
    expect(made.has(found)).toBe(false);
    expect(made.has(listed)).toBe(false);
    // Spares are reused: fewer objects than entries confirmed.
    expect(made.size).toBeLessThan(2000);
    // What the walk and the caller hold is as it was.
    expect(found.original).toEqual(tuple(40000));
    expect(listed.original).toEqual(tuple(40001));
    expect(seen.size).toBe(3);
  });
});
