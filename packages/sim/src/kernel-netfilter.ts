/**
 * The simulated kernel's iptables tables (`iptables -t nat|filter`) and nftables tables (`nft`), with
 * iptables-nft's refusals, and its tracked flows as `conntrack -D` forgets them.
 */
import {
  BUILTIN_CHAINS,
  conntrackDeleteArguments,
  type ConntrackFilter,
  KernelMessage,
  formatIptablesRule,
  formatIptablesSave,
  saveOrder,
  NftMessage,
  formatNftCommand,
  type ChainDump,
  type IptablesRule,
  type NatTable,
  type NftCommand,
  type NftFamily,
  type NftObject,
} from "@podnet/netlink";
import type { SimKernel } from "./kernel.js";
import { fail, type Command } from "./kernel-args.js";

// ---- iptables ---------------------------------------------------------------------------

export const iptablesApi = (k: SimKernel) => ({
  newChain: async (nsName: string, table: NatTable, chain: string) => {
    const command = `iptables -t ${table} -N ${chain}`;
    const chains = k.ns(nsName, command).tables[table];
    if (chains.has(chain)) fail("EEXIST", KernelMessage.iptablesChainExists, command);
    chains.set(chain, []);
  },
  flush: async (nsName: string, table: NatTable, chain: string) => {
    const command = `iptables -t ${table} -F ${chain}`;
    const rules = chainRules(k, nsName, table, chain, command);
    k.ns(nsName, command).countRules(table, rules, -1);
    rules.length = 0;
  },
  deleteChain: async (nsName: string, table: NatTable, chain: string) => {
    const command = `iptables -t ${table} -X ${chain}`;
    const chains = k.ns(nsName, command).tables[table];
    const rules = chainRules(k, nsName, table, chain, command);
    if (BUILTIN_CHAINS[table].includes(chain))
      fail("EINVAL", "iptables: Invalid argument. Run `dmesg' for more information.", command);
    const referenced = (k.ns(nsName, command).jumps[table].get(chain) ?? 0) > 0;
    // iptables-nft refuses both a referenced and a non-empty chain with the same words.
    if (referenced || rules.length) fail("EBUSY", KernelMessage.chainBusy(chain), command);
    chains.delete(chain);
  },
  append: async (nsName: string, table: NatTable, chain: string, rule: IptablesRule) => {
    const command = () => `iptables -t ${table} -A ${chain} ${formatIptablesRule(rule)}`;
    checkRule(k, nsName, table, chain, rule, command);
    chainRules(k, nsName, table, chain, command).push(rule);
    k.ns(nsName, command).countRules(table, [rule], 1);
  },
  insert: async (nsName: string, table: NatTable, chain: string, rule: IptablesRule, position = 1) => {
    const command = () => `iptables -t ${table} -I ${chain} ${position} ${formatIptablesRule(rule)}`;
    checkRule(k, nsName, table, chain, rule, command);
    const rules = chainRules(k, nsName, table, chain, command);
    if (position < 1 || position > rules.length + 1)
      fail("EINVAL", "iptables: Index of insertion too big.", command);
    rules.splice(position - 1, 0, rule);
    k.ns(nsName, command).countRules(table, [rule], 1);
  },
  delete: async (nsName: string, table: NatTable, chain: string, rule: IptablesRule) => {
    const text = formatIptablesRule(rule);
    const command = `iptables -t ${table} -D ${chain} ${text}`;
    const rules = chainRules(k, nsName, table, chain, command);
    // Rules with different targets never print alike: only the others are compared as text.
    const target = jumpTarget(rule);
    const at = rules.findIndex(
      (r) => r.target.kind === rule.target.kind && jumpTarget(r) === target && formatIptablesRule(r) === text,
    );
    if (at < 0) fail("ENOENT", KernelMessage.iptablesBadRule, command);
    k.ns(nsName, command).countRules(table, rules.splice(at, 1), -1);
  },
  save: async (nsName: string, table: NatTable) => formatIptablesSave(table, chainDumps(k, nsName, table)),
  list: async (nsName: string, table: NatTable, chain?: string): Promise<ChainDump[]> => {
    const policy = (c: ChainDump): ChainDump =>
      BUILTIN_CHAINS[table].includes(c.name) ? { ...c, policy: "ACCEPT" } : c;
    if (chain === undefined) return saveOrder(table, chainDumps(k, nsName, table)).map(policy);
    // One chain by name, as `iptables -S CHAIN` reads it: no copy of a 60,000-chain table.
    const rules = k.ns(nsName).tables[table].get(chain);
    return rules ? [policy({ name: chain, rules: [...rules] })] : [];
  },
});

// ---- nftables ----------------------------------------------------------------------------

export const nftApi = (k: SimKernel) => ({
  run: async (nsName: string, commands: readonly NftCommand[]) => {
    const command = () => (commands.length ? formatNftCommand(commands[0]!) : "nft -j -f");
    k.ns(nsName, command).nft.apply(commands, k.clock);
  },
  list: async (nsName: string, family: NftFamily, table: string): Promise<NftObject[]> =>
    k.ns(nsName, `nft list table ${family} ${table}`).nft.list(table, k.clock) ??
    fail("ENOENT", NftMessage.noSuchFile, `nft list table ${family} ${table}`),
});

/** IANA protocol numbers of the protocols `conntrack -p` names here. */
const PROTOCOL_NUMBERS = { tcp: 6, udp: 17 } as const;

export const conntrackApi = (k: SimKernel) => ({
  delete: async (nsName: string, filter: ConntrackFilter): Promise<number> => {
    const argv = conntrackDeleteArguments(filter);
    const ns = k.ns(nsName, `ip netns exec ${nsName} ${argv.join(" ")}`);
    if (!ns.conntrackSize) return 0;
    const protocol = PROTOCOL_NUMBERS[filter.protocol];
    return ns.conntrack.delete(
      (e) => e.original.protocol === protocol && e.original.dstPort === filter.origDstPort,
      k.clock,
    );
  },
});

/** A table's chains; rules are copied, so a reader cannot change the kernel's. */
function chainDumps(k: SimKernel, nsName: string, table: NatTable): ChainDump[] {
  return [...k.ns(nsName).tables[table]].map(([name, rules]) => ({ name, rules: [...rules] }));
}

function chainRules(
  k: SimKernel,
  nsName: string,
  table: NatTable,
  chain: string,
  command: Command,
): IptablesRule[] {
  return (
    k.ns(nsName, command).tables[table].get(chain) ?? fail("ENOENT", KernelMessage.iptablesNoChain, command)
  );
}

function checkRule(
  k: SimKernel,
  nsName: string,
  table: NatTable,
  chain: string,
  rule: IptablesRule,
  command: Command,
): void {
  const t = rule.target.kind;
  if (table === "nat" && (t === "DROP" || t === "REJECT")) {
    fail(
      "EINVAL",
      `The "nat" table is not intended for filtering, the use of ${t} is therefore inhibited.`,
      command,
    );
  }
  if (table === "filter" && (t === "DNAT" || t === "SNAT" || t === "MASQUERADE")) {
    fail("EINVAL", `RULE_APPEND failed (Invalid argument): rule in chain ${chain}`, command);
  }
  if (rule.target.kind === "jump") chainRules(k, nsName, table, rule.target.chain, command);
}

const jumpTarget = (r: IptablesRule) => (r.target.kind === "jump" ? r.target.chain : undefined);
