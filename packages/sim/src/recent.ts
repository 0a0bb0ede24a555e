/**
 * xt_recent's lists (`-m recent`), as kube-proxy's session affinity uses them: per namespace, by
 * name, the source addresses filed and when each was last filed, in that order (the kernel's LRU
 * list), at most 100 a list (ip_list_tot): filing a new address in a full list drops the one filed
 * longest ago. A list lives while a rule names it; the kernel's clock here is the simulator's, one
 * second a send.
 */
import type { IptablesMatch } from "@podnet/netlink";

/** xt_recent's default ip_list_tot. */
export const RECENT_LIST_MAX = 100;

export type RecentMatch = Extract<IptablesMatch, { kind: "recent" }>;

/** A namespace's lists: name → source address → the second it was last filed. */
export type RecentLists = Map<string, Map<number, number>>;

/** Whether `m` matches a packet from `src` at second `now`, filing it as `m` says. */
export function recentMatches(lists: RecentLists, m: RecentMatch, src: number, now: number): boolean {
  let list = lists.get(m.name);
  if (!list) lists.set(m.name, (list = new Map()));
  if (m.mode === "set") {
    file(list, src, now);
    return !m.negated;
  }
  const seen = list.get(src);
  if (seen === undefined) return m.negated === true;
  let found = true;
  if (m.seconds !== undefined) {
    const since = now - m.seconds;
    // --reap: the list's oldest entry goes if it is stale (one per look, as recent_entry_reap).
    if (m.reap) {
      const [oldest, at] = list.entries().next().value!;
      if (oldest !== src && at < since) list.delete(oldest);
    }
    found = seen >= since;
  }
  if (found && m.mode === "update") file(list, src, now);
  return found !== (m.negated === true);
}

function file(list: Map<number, number>, src: number, now: number): void {
  if (list.has(src)) list.delete(src);
  else if (list.size >= RECENT_LIST_MAX) list.delete(list.keys().next().value!);
  list.set(src, now);
}

/** The list names a rule's recent matches use. */
export function recentNames(matches: readonly IptablesMatch[] | undefined): string[] {
  const names: string[] = [];
  for (const m of matches ?? []) if (m.kind === "recent") names.push(m.name);
  return names;
}
