/**
 * Policy engines: the pluggable part that enforces NetworkPolicy on a node, composed with any
 * network provider. `none` enforces nothing; `iptables` writes the chains of chains.ts through
 * the host API, so it runs unchanged on the simulator and on real namespaces.
 */
import type { IptablesRule, Netlink } from "@podnet/netlink";
import { POD_CHAIN_PREFIX, POLICY_CHAIN, checkRuleLimits, nodeChains } from "./chains.js";
import type { CompiledPolicies } from "./compile.js";

/** The part of the host API a policy engine writes through. */
export type PolicyHost = Pick<Netlink, "iptables" | "sysctl">;

export interface PolicyApplyReport {
  /** Chains written (created or rewritten) and removed. */
  written: number;
  removed: number;
  rules: number;
}

export interface PolicyEngine {
  readonly name: string;
  readonly description: string;
  /** Brings node `node` (host namespace `ns`) to enforce `compiled` for the pods on it. */
  apply(host: PolicyHost, ns: string, node: string, compiled: CompiledPolicies): Promise<PolicyApplyReport>;
  /** Refuses `compiled` on these nodes before any is written, when it is more than the engine writes. */
  check?(compiled: CompiledPolicies, nodes: Iterable<string>): void;
}

const JUMP: IptablesRule = { target: { kind: "jump", chain: POLICY_CHAIN } };

export const noPolicyEngine: PolicyEngine = {
  name: "none",
  description: "no enforcement: every connection the network carries is allowed",
  apply: async () => ({ written: 0, removed: 0, rules: 0 }),
};

export const iptablesPolicyEngine: PolicyEngine = {
  name: "iptables",
  description:
    "iptables filter chains per pod: conntrack for established flows, per-direction chains, default deny for isolated pods",
  check(compiled, nodes) {
    checkRuleLimits(compiled, nodes);
  },
  async apply(host, ns, node, compiled) {
    const desired = nodeChains(compiled, node);
    const existing = new Map((await host.iptables.list(ns, "filter")).map((c) => [c.name, c]));
    // Bridged pod-to-pod traffic on one node meets FORWARD only with br_netfilter.
    await host.sysctl.set(ns, "net.bridge.bridge-nf-call-iptables", "1");
    const report: PolicyApplyReport = { written: 0, removed: 0, rules: 0 };
    // Every chain exists before any rule jumps to it.
    for (const name of desired.keys())
      if (!existing.has(name)) await host.iptables.newChain(ns, "filter", name);
    for (const [name, rules] of desired) {
      if (existing.has(name)) await host.iptables.flush(ns, "filter", name);
      for (const rule of rules) await host.iptables.append(ns, "filter", name, rule);
      report.written++;
      report.rules += rules.length;
    }
    const forward = existing.get("FORWARD")?.rules ?? [];
    if (!forward.some((r) => r.target.kind === "jump" && r.target.chain === POLICY_CHAIN))
      await host.iptables.insert(ns, "filter", "FORWARD", JUMP, 1);
    for (const name of existing.keys())
      if (name.startsWith(POD_CHAIN_PREFIX) && !desired.has(name)) {
        await host.iptables.flush(ns, "filter", name);
        report.removed++;
      }
    // Flushed before deleted: no chain still jumps to a removed one.
    for (const name of existing.keys())
      if (name.startsWith(POD_CHAIN_PREFIX) && !desired.has(name))
        await host.iptables.deleteChain(ns, "filter", name);
    return report;
  },
};

export const POLICY_ENGINES: readonly PolicyEngine[] = [noPolicyEngine, iptablesPolicyEngine];

export function policyEngine(name: string): PolicyEngine | undefined {
  return POLICY_ENGINES.find((e) => e.name === name);
}
