/**
 * A netfilter hook as the kernel runs it: every base chain attached to it — iptables' built-in
 * chain of the table (nat at priority dstnat −100 / srcnat 100, filter at 0) and nftables' base
 * chains of the same type — in priority order. The first verdict other than accept decides; for nat
 * that is the first chain that chooses a translation, as nf_nat stops at the first binding. On a tie
 * iptables' chain runs first: its table registered with the hook before any nft table was loaded.
 */
import type { NatTable, NftHook } from "@podnet/netlink";
import type { SeededRandom } from "@podnet/core";
import type { SimKernel } from "./kernel.js";
import type { SimNamespace } from "./namespace.js";
import { evaluateChain, type PacketView, type Verdict } from "./netfilter.js";
import { evaluateNftChain, memo, type NftContext } from "./nftables.js";

export type HookName = "PREROUTING" | "INPUT" | "FORWARD" | "OUTPUT" | "POSTROUTING";

const PRIORITY: Record<NatTable, Record<HookName, number>> = {
  nat: { PREROUTING: -100, OUTPUT: -100, INPUT: 100, POSTROUTING: 100, FORWARD: 0 },
  filter: { PREROUTING: 0, OUTPUT: 0, INPUT: 0, POSTROUTING: 0, FORWARD: 0 },
};

const HOOK: Record<HookName, NftHook> = {
  PREROUTING: "prerouting",
  INPUT: "input",
  FORWARD: "forward",
  OUTPUT: "output",
  POSTROUTING: "postrouting",
};

/** One evaluation context per namespace, made on its first packet through an nftables hook. */
const contexts = new WeakMap<SimNamespace, NftContext>();
const contextOf = (ns: SimNamespace, random: SeededRandom): NftContext =>
  memo(contexts, ns, () => ({ random, isLocal: (a) => ns.isLocal(a), count: () => ns.ruleEvaluations++ }));

export function runHook(
  ns: SimNamespace,
  type: NatTable,
  hook: HookName,
  packet: PacketView,
  inDev: string | undefined,
  outDev: string | undefined,
  kernel: Pick<SimKernel, "random" | "chainIndexFrom">,
): Verdict {
  const nft = ns.nftChainsAt(type, HOOK[hook]);
  if (!nft.length) return evaluateChain(ns, type, hook, packet, inDev, outDev, kernel);
  const ctx = contextOf(ns, kernel.random);
  let done = false;
  let last: Verdict = { kind: "ACCEPT", path: [] };
  const iptables = () => {
    done = true;
    return evaluateChain(ns, type, hook, packet, inDev, outDev, kernel);
  };
  for (const { table, chain } of nft) {
    if (!done && PRIORITY[type][hook] <= (chain.spec.prio ?? 0)) {
      last = iptables();
      if (last.kind !== "ACCEPT") return last;
    }
    last = evaluateNftChain(ns.nft, table.name, chain.spec.name, packet, ctx);
    if (last.kind !== "ACCEPT") return last;
  }
  return done ? last : iptables();
}
