/**
 * A netfilter hook as the kernel runs it: every base chain attached to it — iptables' built-in
 * chain of the table (nat at priority dstnat −100 / srcnat 100, filter at 0) and nftables' base
 * chains of the same type — in priority order. The first verdict other than accept decides; for nat
 * that is the first chain that chooses a translation, as nf_nat stops at the first binding. On a tie
 * iptables' chain runs first. The kernel runs the chain registered last first (nf_register_net_hook
 * puts a new hook before those of its priority; seen on 6.18 with iptables-nft), which is iptables'
 * where its rules came after the nft table (a NetworkPolicy engine after kube-proxy) and not where
 * they came before (a provider's). The order matters only when both chains refuse one packet; the
 * creation order is not kept.
 */
import type { NatTable } from "@podnet/netlink";
import type { SimNamespace } from "./namespace.js";
import { evaluateChain, type PacketView, type RuleKernel, type Verdict } from "./netfilter.js";
import { evaluateNftChain, hookSlot, programOf } from "./nft-eval.js";

export type HookName = "PREROUTING" | "INPUT" | "FORWARD" | "OUTPUT" | "POSTROUTING";

const PRIORITY: Record<NatTable, Record<HookName, number>> = {
  nat: { PREROUTING: -100, OUTPUT: -100, INPUT: 100, POSTROUTING: 100, FORWARD: 0 },
  filter: { PREROUTING: 0, OUTPUT: 0, INPUT: 0, POSTROUTING: 0, FORWARD: 0 },
};

/** Each hook's base chain slots in nftables state (`hookSlot`), nat then filter. */
const SLOT: Record<NatTable, Record<HookName, number>> = {
  nat: {
    PREROUTING: hookSlot("nat", "prerouting"),
    INPUT: hookSlot("nat", "input"),
    FORWARD: hookSlot("nat", "forward"),
    OUTPUT: hookSlot("nat", "output"),
    POSTROUTING: hookSlot("nat", "postrouting"),
  },
  filter: {
    PREROUTING: hookSlot("filter", "prerouting"),
    INPUT: hookSlot("filter", "input"),
    FORWARD: hookSlot("filter", "forward"),
    OUTPUT: hookSlot("filter", "output"),
    POSTROUTING: hookSlot("filter", "postrouting"),
  },
};

export function runHook(
  ns: SimNamespace,
  type: NatTable,
  hook: HookName,
  packet: PacketView,
  inDev: string | undefined,
  outDev: string | undefined,
  kernel: RuleKernel,
  /** An ACCEPT says why too: every chain's rules that let the packet on (`SendOptions.hooks`). */
  explain = false,
): Verdict {
  const state = ns.nftIfAny;
  const nft = state && programOf(state).slots[SLOT[type][hook]]!;
  if (!nft?.length) return evaluateChain(ns, type, hook, packet, inDev, outDev, kernel, explain);
  // Made on the namespace's first packet through a hook of nftables, kept with its state.
  const ctx = (state!.context ??= {
    random: kernel.random,
    ns: ns.name,
    isLocal: (a) => ns.isLocal(a),
    count: () => ns.ruleEvaluations++,
    clock: () => kernel.clock,
    changed: () => void kernel.epoch++,
  });
  const priority = PRIORITY[type][hook];
  let iptablesDone = false;
  let last: Verdict | undefined;
  // What each chain that accepted said, in the order they ran: kept only when explaining.
  const accepted: string[] | undefined = explain ? [] : undefined;
  for (const base of nft) {
    if (!iptablesDone && priority <= (base.chain.spec.prio ?? 0)) {
      iptablesDone = true;
      last = evaluateChain(ns, type, hook, packet, inDev, outDev, kernel, explain);
      if (last.kind !== "ACCEPT") return last;
      accepted?.push(...last.path);
    }
    last = evaluateNftChain(state!, base, packet, ctx, explain);
    if (last.kind !== "ACCEPT") return last;
    accepted?.push(...last.path);
  }
  if (!iptablesDone) {
    last = evaluateChain(ns, type, hook, packet, inDev, outDev, kernel, explain);
    if (last.kind !== "ACCEPT") return last;
    accepted?.push(...last.path);
  }
  return accepted ? { kind: "ACCEPT", path: accepted } : last!;
}
