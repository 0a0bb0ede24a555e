// xt_recent as the simulator keeps it: what --set files, what --rcheck and --update find within
// --seconds, --reap's one stale entry per look, the 100-address list that drops the one filed longest
// ago, and a list that goes with the last rule naming it. (What a kernel does with the same rules:
// linux/test/kernel-vs-sim.test.ts.)
import { rule } from "@podnet/netlink";
import { describe, expect, it } from "vitest";
import { SimKernel } from "../src/index.js";
import { RECENT_LIST_MAX, recentMatches, type RecentLists, type RecentMatch } from "../src/recent.js";

const match = (text: string) => rule`${text} -j RETURN`.matches![0] as RecentMatch;
const set = match("-m recent --set --name L");
const seen = (seconds: number, reap = false) =>
  match(`-m recent --rcheck --seconds ${seconds} ${reap ? "--reap" : ""} --name L`);

describe("-m recent", () => {
  it("finds a source filed within --seconds, and not after", () => {
    const lists: RecentLists = new Map();
    expect(recentMatches(lists, seen(10), 1, 0)).toBe(false);
    expect(recentMatches(lists, set, 1, 0)).toBe(true);
    expect(recentMatches(lists, seen(10), 1, 10)).toBe(true);
    expect(recentMatches(lists, seen(10), 1, 11)).toBe(false);
    expect(recentMatches(lists, match("-m recent --rcheck --name L"), 1, 1_000_000)).toBe(true);
    expect(recentMatches(lists, match("-m recent ! --rcheck --seconds 10 --name L"), 1, 11)).toBe(true);
    // --update refreshes what it finds: found at 10, it is found again 10 seconds later.
    expect(recentMatches(lists, match("-m recent --update --seconds 10 --name L"), 1, 10)).toBe(true);
    expect(recentMatches(lists, seen(10), 1, 20)).toBe(true);
  });

  it("reaps the list's oldest entry when it is stale, one per look, never the one looked at", () => {
    const lists: RecentLists = new Map();
    recentMatches(lists, set, 1, 0);
    recentMatches(lists, set, 2, 1);
    recentMatches(lists, set, 3, 50);
    expect(recentMatches(lists, seen(10, true), 3, 55)).toBe(true);
    expect([...lists.get("L")!.keys()]).toEqual([2, 3]);
    expect(recentMatches(lists, seen(10, true), 2, 56)).toBe(false);
    expect([...lists.get("L")!.keys()]).toEqual([2, 3]);
  });

  it(`keeps ${RECENT_LIST_MAX} sources a list, dropping the one filed longest ago`, () => {
    const lists: RecentLists = new Map();
    for (let src = 1; src <= RECENT_LIST_MAX; src++) recentMatches(lists, set, src, src);
    recentMatches(lists, set, 1, 200); // filed again: now the newest
    recentMatches(lists, set, 999, 201);
    const list = lists.get("L")!;
    expect([list.size, list.has(1), list.has(2), list.has(999)]).toEqual([
      RECENT_LIST_MAX,
      true,
      false,
      true,
    ]);
  });

  it("drops a list with the last rule that names it, as the kernel destroys the table", async () => {
    const k = new SimKernel({ seed: "recent" });
    await k.netns.add("a");
    const filing = rule`-m recent --set --name L -j RETURN`;
    await k.iptables.append("a", "filter", "INPUT", filing);
    await k.iptables.append("a", "filter", "OUTPUT", filing);
    const ns = k.ns("a", "test");
    recentMatches(ns.recentLists, set, 1, 0);
    await k.iptables.delete("a", "filter", "INPUT", filing);
    expect(ns.recentLists.get("L")?.size).toBe(1);
    await k.iptables.delete("a", "filter", "OUTPUT", filing);
    expect(ns.recentLists.has("L")).toBe(false);
  });
});
