/**
 * iptables rules as data, with the text form iptables-save prints. Parsing accepts what a user
 * types (`-p tcp --dport 80 -j DNAT --to-destination 10.0.1.2:8080`); formatting gives the
 * canonical saved form (`-p tcp -m tcp --dport 80 ...`), so rules compare by their text.
 */
import { PodnetError } from "@podnet/core";

export type NatTable = "nat" | "filter";

export const BUILTIN_CHAINS: Record<NatTable, readonly string[]> = {
  nat: ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
  filter: ["INPUT", "FORWARD", "OUTPUT"],
};

/** The most ports one `-m multiport` match holds (the kernel's XT_MULTI_PORTS). */
export const MULTIPORT_MAX_PORTS = 15;

/**
 * conntrack states in the order iptables-save prints them. SNAT and DNAT are xt_conntrack's virtual
 * states: the connection's reply tuple does not mirror its original one at the source (SNAT) or the
 * destination (DNAT).
 */
export const CT_STATES = ["INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT"] as const;
export type CtState = (typeof CT_STATES)[number];

export type IptablesMatch =
  /** `dportEnd`: the last port of a range (`--dport 80:81`). */
  | { kind: "tcp" | "udp"; dport?: number; dportEnd?: number; sport?: number }
  | { kind: "conntrack"; ctstate: CtState[]; negated?: boolean }
  | { kind: "comment"; comment: string }
  | { kind: "mark"; value: number; mask: number; negated?: boolean }
  /**
   * `-m addrtype --src-type LOCAL --dst-type LOCAL`: the source, the destination is one of the
   * namespace's own addresses (either may be left out; `negated` is the destination's "!",
   * `srcNegated` the source's).
   */
  | { kind: "addrtype"; dstType?: "LOCAL"; negated?: boolean; srcType?: "LOCAL"; srcNegated?: boolean }
  /**
   * `-m recent` (xt_recent), by source address, as kube-proxy's session affinity writes it: `set`
   * files the source in the list `name` (and matches); `rcheck` matches a source seen within
   * `seconds` (`reap`: stale entries go as it looks); `update` is rcheck that also files it again.
   */
  | {
      kind: "recent";
      mode: "set" | "rcheck" | "update";
      name: string;
      seconds?: number;
      reap?: boolean;
      negated?: boolean;
    }
  /** `-m multiport --dports 80,443`: any of up to 15 destination ports (needs -p tcp or udp). */
  | { kind: "multiport"; dports: number[] }
  | { kind: "statistic"; probability: number };

export type IptablesTarget =
  | { kind: "ACCEPT" | "DROP" | "RETURN" }
  | { kind: "jump"; chain: string }
  | { kind: "DNAT"; toDestination: string }
  | { kind: "SNAT"; toSource: string }
  | { kind: "MASQUERADE"; randomFully?: boolean }
  /** Saved as --set-xmark value/mask: the kernel clears `mask` bits, then XORs `value`. */
  | { kind: "MARK"; value: number; mask: number }
  | {
      kind: "REJECT";
      rejectWith: "icmp-port-unreachable" | "icmp-host-unreachable" | "icmp-net-unreachable" | "tcp-reset";
    };

export interface IptablesRule {
  /** Address matches take a leading "!" to negate, as iptables' "! -s". */
  source?: string;
  destination?: string;
  inInterface?: string;
  outInterface?: string;
  protocol?: "tcp" | "udp" | "icmp";
  matches?: IptablesMatch[];
  target: IptablesTarget;
}

export class IptablesSyntaxError extends PodnetError {
  constructor(
    readonly rule: string,
    reason: string,
  ) {
    super("EIPTABLES", `iptables rule "${rule}": ${reason}`);
  }
}

/** The 31-bit fixed point xt_statistic stores; iptables-save prints it back with %.11f. */
export function statisticThreshold(probability: number): number {
  return Math.round(probability * 0x80000000);
}

const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;

/**
 * A string argument as iptables-save prints it (xtables_save_string): bare only when made of
 * letters, digits, "_" and "-"; otherwise in double quotes with `"`, `\` and `'` escaped — so
 * kube-proxy's endpoint comments read `--comment "default/web:http"`.
 */
function quote(text: string): string {
  return /^[A-Za-z0-9_-]+$/.test(text) ? text : `"${text.replace(/(["\\'])/g, "\\$1")}"`;
}

function negatable(flag: string, value: string | undefined): string[] {
  if (value === undefined) return [];
  return value.startsWith("!") ? ["!", flag, value.slice(1)] : [flag, value];
}

/** A prefix as iptables-save prints it: a bare address gains /32. */
function withLength(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const bare = value.replace(/^!/, "");
  return (value.startsWith("!") ? "!" : "") + (bare.includes("/") ? bare : `${bare}/32`);
}

export function formatIptablesRule(rule: IptablesRule): string {
  const out: string[] = [
    ...negatable("-s", withLength(rule.source)),
    ...negatable("-d", withLength(rule.destination)),
    ...negatable("-i", rule.inInterface),
    ...negatable("-o", rule.outInterface),
  ];
  if (rule.protocol) out.push("-p", rule.protocol);
  for (const m of rule.matches ?? []) {
    switch (m.kind) {
      case "tcp":
      case "udp":
        out.push("-m", m.kind);
        if (m.sport !== undefined) out.push("--sport", String(m.sport));
        if (m.dport !== undefined)
          out.push("--dport", m.dportEnd !== undefined ? `${m.dport}:${m.dportEnd}` : String(m.dport));
        break;
      case "conntrack":
        out.push(
          "-m",
          "conntrack",
          ...(m.negated ? ["!"] : []),
          "--ctstate",
          CT_STATES.filter((s) => m.ctstate.includes(s)).join(","),
        );
        break;
      case "comment":
        out.push("-m", "comment", "--comment", quote(m.comment));
        break;
      case "mark":
        out.push(
          "-m",
          "mark",
          ...(m.negated ? ["!"] : []),
          "--mark",
          m.mask === 0xffffffff ? hex(m.value) : `${hex(m.value)}/${hex(m.mask)}`,
        );
        break;
      case "addrtype":
        // iptables-save prints the source's type first, whatever the order it was given in.
        out.push("-m", "addrtype");
        if (m.srcType) out.push(...(m.srcNegated ? ["!"] : []), "--src-type", m.srcType);
        if (m.dstType) out.push(...(m.negated ? ["!"] : []), "--dst-type", m.dstType);
        break;
      case "multiport":
        out.push("-m", "multiport", "--dports", m.dports.join(","));
        break;
      case "recent":
        // iptables-save's order: the mode, its time, the list; the mask and side are the defaults.
        out.push("-m", "recent", ...(m.negated ? ["!"] : []), `--${m.mode}`);
        // libxt_recent prints the seconds as a signed int: 4294967295 is saved as -1.
        if (m.seconds !== undefined) out.push("--seconds", String(m.seconds | 0));
        if (m.reap) out.push("--reap");
        out.push("--name", m.name, "--mask", "255.255.255.255", "--rsource");
        break;
      case "statistic":
        out.push(
          "-m",
          "statistic",
          "--mode",
          "random",
          "--probability",
          (statisticThreshold(m.probability) / 0x80000000).toFixed(11),
        );
        break;
    }
  }
  const t = rule.target;
  switch (t.kind) {
    case "jump":
      out.push("-j", t.chain);
      break;
    case "DNAT":
      out.push("-j", "DNAT", "--to-destination", t.toDestination);
      break;
    case "SNAT":
      out.push("-j", "SNAT", "--to-source", t.toSource);
      break;
    case "MASQUERADE":
      out.push("-j", "MASQUERADE", ...(t.randomFully ? ["--random-fully"] : []));
      break;
    case "MARK":
      out.push("-j", "MARK", "--set-xmark", `${hex(t.value)}/${hex(t.mask)}`);
      break;
    case "REJECT":
      out.push("-j", "REJECT", "--reject-with", t.rejectWith);
      break;
    default:
      out.push("-j", t.kind);
  }
  return out.join(" ");
}

/** Splits iptables arguments as a shell would (double quotes, backslash escapes). */
export function splitArguments(text: string): string[] {
  const args: string[] = [];
  let current = "";
  let inQuotes = false;
  let has = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "\\" && inQuotes && i + 1 < text.length) {
      current += text[++i];
    } else if (c === '"') {
      inQuotes = !inQuotes;
      has = true;
    } else if (/\s/.test(c) && !inQuotes) {
      if (has) args.push(current);
      current = "";
      has = false;
    } else {
      current += c;
      has = true;
    }
  }
  if (inQuotes) throw new IptablesSyntaxError(text, "unterminated quote");
  if (has) args.push(current);
  return args;
}

function parseMark(text: string, rule: string): { value: number; mask: number } {
  const [value, mask] = text.split("/");
  const v = Number(value);
  const m = mask === undefined ? 0xffffffff : Number(mask);
  if (!Number.isInteger(v) || !Number.isInteger(m)) throw new IptablesSyntaxError(rule, `bad mark "${text}"`);
  return { value: v >>> 0, mask: m >>> 0 };
}

function parsePort(text: string | undefined, rule: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new IptablesSyntaxError(rule, `bad port "${text}"`);
  return port;
}

/** Parses one rule's arguments (without `-A CHAIN`). */
export function parseIptablesRule(text: string): IptablesRule {
  const args = splitArguments(text);
  const rule: Partial<IptablesRule> & { matches: IptablesMatch[] } = { matches: [] };
  let negate = false;
  let module: IptablesMatch | undefined;
  const next = (flag: string) => {
    const value = args.shift();
    if (value === undefined) throw new IptablesSyntaxError(text, `${flag} needs a value`);
    return value;
  };
  const portMatch = (): { kind: "tcp" | "udp"; dport?: number; dportEnd?: number; sport?: number } => {
    if (module && (module.kind === "tcp" || module.kind === "udp")) return module;
    if (rule.protocol !== "tcp" && rule.protocol !== "udp")
      throw new IptablesSyntaxError(text, "--dport needs -p tcp or -p udp");
    // iptables loads the protocol's match implicitly; iptables-save then prints "-m tcp".
    const implicit = { kind: rule.protocol };
    rule.matches.push(implicit);
    module = implicit;
    return implicit;
  };
  while (args.length) {
    const arg = args.shift()!;
    const bang = negate ? "!" : "";
    if (arg === "!") {
      negate = true;
      continue;
    }
    switch (arg) {
      case "-s":
      case "--source":
        rule.source = bang + next(arg);
        break;
      case "-d":
      case "--destination":
        rule.destination = bang + next(arg);
        break;
      case "-i":
      case "--in-interface":
        rule.inInterface = bang + next(arg);
        break;
      case "-o":
      case "--out-interface":
        rule.outInterface = bang + next(arg);
        break;
      case "-p":
      case "--protocol": {
        const p = next(arg);
        if (p !== "tcp" && p !== "udp" && p !== "icmp")
          throw new IptablesSyntaxError(text, `unsupported protocol "${p}"`);
        rule.protocol = p;
        break;
      }
      case "-m":
      case "--match": {
        const name = next(arg);
        if (name === "tcp" || name === "udp") module = { kind: name };
        else if (name === "comment") module = { kind: "comment", comment: "" };
        else if (name === "mark") module = { kind: "mark", value: 0, mask: 0xffffffff };
        else if (name === "addrtype") module = { kind: "addrtype" };
        else if (name === "statistic") module = { kind: "statistic", probability: 1 };
        else if (name === "conntrack") module = { kind: "conntrack", ctstate: [] };
        else if (name === "multiport") module = { kind: "multiport", dports: [] };
        else if (name === "recent") module = { kind: "recent", mode: undefined!, name: "DEFAULT" };
        else throw new IptablesSyntaxError(text, `unsupported match "${name}"`);
        rule.matches.push(module);
        break;
      }
      case "--dports":
      case "--destination-ports": {
        if (module?.kind !== "multiport") throw new IptablesSyntaxError(text, `${arg} needs -m multiport`);
        const ports = next(arg).split(",");
        if (ports.length > MULTIPORT_MAX_PORTS)
          throw new IptablesSyntaxError(text, "too many ports specified");
        module.dports = ports.map((port) => parsePort(port, text));
        break;
      }
      case "--dport":
      case "--destination-port": {
        const match = portMatch();
        const [first, last] = next(arg).split(":");
        match.dport = parsePort(first, text);
        if (last !== undefined) {
          const end = parsePort(last, text);
          // iptables stores a range whose ends are equal as the single port.
          if (end < match.dport)
            throw new IptablesSyntaxError(text, `port range ${first}:${last} is reversed`);
          if (end !== match.dport) match.dportEnd = end;
        }
        break;
      }
      case "--ctstate": {
        if (module?.kind !== "conntrack") throw new IptablesSyntaxError(text, "--ctstate needs -m conntrack");
        for (const state of next(arg).split(",")) {
          if (!(CT_STATES as readonly string[]).includes(state))
            throw new IptablesSyntaxError(text, `unknown conntrack state "${state}"`);
          module.ctstate.push(state as CtState);
        }
        if (negate) module.negated = true;
        break;
      }
      case "--sport":
      case "--source-port":
        portMatch().sport = parsePort(next(arg), text);
        break;
      case "--set":
      case "--rcheck":
      case "--update": {
        if (module?.kind !== "recent") throw new IptablesSyntaxError(text, `${arg} needs -m recent`);
        if (module.mode)
          throw new IptablesSyntaxError(
            text,
            `recent: option "--${module.mode}" cannot be used together with "${arg}"`,
          );
        module.mode = arg.slice(2) as "set" | "rcheck" | "update";
        if (negate) module.negated = true;
        break;
      }
      case "--seconds": {
        if (module?.kind !== "recent") throw new IptablesSyntaxError(text, "--seconds needs -m recent");
        const value = next(arg);
        const seconds = Number(value);
        if (!/^\d+$/.test(value) || seconds < 1 || seconds > 0xffffffff)
          throw new IptablesSyntaxError(
            text,
            'recent: bad value for option "--seconds", or out of range (1-4294967295)',
          );
        module.seconds = seconds;
        break;
      }
      case "--reap":
        if (module?.kind !== "recent") throw new IptablesSyntaxError(text, "--reap needs -m recent");
        module.reap = true;
        break;
      case "--name":
        if (module?.kind !== "recent") throw new IptablesSyntaxError(text, "--name needs -m recent");
        module.name = next(arg);
        break;
      case "--mask": {
        if (module?.kind !== "recent") throw new IptablesSyntaxError(text, "--mask needs -m recent");
        const mask = next(arg);
        if (mask !== "255.255.255.255")
          throw new IptablesSyntaxError(text, `recent: unsupported --mask ${mask} (255.255.255.255 only)`);
        break;
      }
      case "--rsource":
        if (module?.kind !== "recent") throw new IptablesSyntaxError(text, "--rsource needs -m recent");
        break;
      case "--comment":
        if (module?.kind !== "comment") throw new IptablesSyntaxError(text, "--comment needs -m comment");
        module.comment = next(arg);
        break;
      case "--mark":
        if (module?.kind !== "mark") throw new IptablesSyntaxError(text, "--mark needs -m mark");
        Object.assign(module, parseMark(next(arg), text), negate ? { negated: true } : {});
        break;
      case "--src-type":
      case "--dst-type": {
        if (module?.kind !== "addrtype") throw new IptablesSyntaxError(text, `${arg} needs -m addrtype`);
        const type = next(arg);
        if (type !== "LOCAL")
          throw new IptablesSyntaxError(text, `unsupported address type "${type}" (LOCAL only)`);
        if (arg === "--src-type") {
          module.srcType = type;
          if (negate) module.srcNegated = true;
        } else {
          module.dstType = type;
          if (negate) module.negated = true;
        }
        break;
      }
      case "--mode":
        if (next(arg) !== "random") throw new IptablesSyntaxError(text, "only --mode random is supported");
        break;
      case "--probability": {
        if (module?.kind !== "statistic")
          throw new IptablesSyntaxError(text, "--probability needs -m statistic");
        const p = Number(next(arg));
        if (!(p >= 0 && p <= 1)) throw new IptablesSyntaxError(text, `probability must be 0-1`);
        module.probability = p;
        break;
      }
      case "-j":
      case "--jump":
        rule.target = parseTarget(next(arg), args, text);
        break;
      default:
        throw new IptablesSyntaxError(text, `unknown option "${arg}"`);
    }
    negate = false;
  }
  if (!rule.target) throw new IptablesSyntaxError(text, "no target (-j)");
  // iptables checks this once the rule is read, so "-m multiport --dports 80 -p tcp" is accepted.
  if (rule.matches.some((m) => m.kind === "multiport") && rule.protocol !== "tcp" && rule.protocol !== "udp")
    throw new IptablesSyntaxError(text, "multiport needs -p tcp or -p udp");
  for (const m of rule.matches) {
    if (m.kind !== "recent") continue;
    if (!m.mode)
      throw new IptablesSyntaxError(
        text,
        "recent: you must specify one of `--set', `--rcheck' `--update' or `--remove'",
      );
    if (m.reap && m.seconds === undefined)
      throw new IptablesSyntaxError(text, 'recent: option "--reap" also requires "--seconds"');
    // The kernel refuses the rule (xt_recent's checkentry: EINVAL).
    if (m.mode === "set" && m.seconds !== undefined)
      throw new IptablesSyntaxError(text, "recent: --seconds needs --rcheck or --update");
  }
  if (rule.matches.some((m) => m.kind === "addrtype" && !m.srcType && !m.dstType))
    throw new IptablesSyntaxError(text, "addrtype: you must specify --src-type or --dst-type");
  const result: IptablesRule = { ...rule, target: rule.target };
  if (rule.matches.length === 0) delete result.matches;
  return result;
}

function parseTarget(name: string, args: string[], text: string): IptablesTarget {
  const option = (flag: string): string | undefined => {
    if (args[0] !== flag) return undefined;
    args.shift();
    const value = args.shift();
    if (value === undefined) throw new IptablesSyntaxError(text, `${flag} needs a value`);
    return value;
  };
  switch (name) {
    case "ACCEPT":
    case "DROP":
    case "RETURN":
      return { kind: name };
    case "DNAT": {
      const to = option("--to-destination");
      if (!to) throw new IptablesSyntaxError(text, "DNAT needs --to-destination");
      return { kind: "DNAT", toDestination: to };
    }
    case "SNAT": {
      const to = option("--to-source");
      if (!to) throw new IptablesSyntaxError(text, "SNAT needs --to-source");
      return { kind: "SNAT", toSource: to };
    }
    case "MASQUERADE":
      if (args[0] === "--random-fully") {
        args.shift();
        return { kind: "MASQUERADE", randomFully: true };
      }
      return { kind: "MASQUERADE" };
    case "MARK": {
      const flag = args.shift();
      const value = args.shift();
      if (value === undefined)
        throw new IptablesSyntaxError(text, "MARK needs --set-xmark, --set-mark, --or-mark or --xor-mark");
      const mark = parseMark(value, text);
      // How iptables' MARK target rewrites each form into the kernel's (value, mask) pair.
      if (flag === "--set-xmark") return { kind: "MARK", ...mark };
      if (flag === "--set-mark")
        return {
          kind: "MARK",
          value: mark.value,
          mask: mark.mask === 0xffffffff ? 0xffffffff : mark.mask | mark.value,
        };
      if (flag === "--or-mark") return { kind: "MARK", value: mark.value, mask: mark.value };
      if (flag === "--xor-mark") return { kind: "MARK", value: mark.value, mask: 0 };
      throw new IptablesSyntaxError(text, `unsupported MARK option "${flag}"`);
    }
    case "REJECT": {
      const withValue = option("--reject-with") ?? "icmp-port-unreachable";
      if (
        !["icmp-port-unreachable", "icmp-host-unreachable", "icmp-net-unreachable", "tcp-reset"].includes(
          withValue,
        )
      ) {
        throw new IptablesSyntaxError(text, `unsupported --reject-with "${withValue}"`);
      }
      return { kind: "REJECT", rejectWith: withValue as "tcp-reset" };
    }
    default:
      if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new IptablesSyntaxError(text, `bad chain name "${name}"`);
      return { kind: "jump", chain: name };
  }
}

/** Convenience for writing rules in iptables syntax: rule`-s 10.0.0.0/16 -j MASQUERADE`. */
export function rule(strings: TemplateStringsArray, ...values: unknown[]): IptablesRule {
  return parseIptablesRule(
    strings.reduce((text, s, i) => text + s + (i < values.length ? String(values[i]) : ""), ""),
  );
}

export interface ChainDump {
  name: string;
  policy?: "ACCEPT" | "DROP";
  rules: IptablesRule[];
}

/** iptables-save text for one table (counters zeroed, no timestamps): built-ins first, then user chains by name. */
export function formatIptablesSave(table: NatTable, chains: ChainDump[]): string {
  const builtin = BUILTIN_CHAINS[table];
  const ordered = saveOrder(table, chains);
  const lines = [`*${table}`];
  for (const chain of ordered) {
    lines.push(
      builtin.includes(chain.name)
        ? `:${chain.name} ${chain.policy ?? "ACCEPT"} [0:0]`
        : `:${chain.name} - [0:0]`,
    );
  }
  for (const chain of ordered)
    for (const r of chain.rules) lines.push(`-A ${chain.name} ${formatIptablesRule(r)}`);
  lines.push("COMMIT");
  return lines.join("\n") + "\n";
}

/** Reads iptables-save text (one table), e.g. from a real kernel, dropping comments and counters. */
export function parseIptablesSave(text: string): { table: NatTable; chains: ChainDump[] } {
  let table: NatTable | undefined;
  const chains = new Map<string, ChainDump>();
  for (const line of text.split("\n")) {
    if (line.startsWith("*")) table = line.slice(1).trim() as NatTable;
    else if (line.startsWith(":")) {
      const [name, policy] = line.slice(1).split(" ");
      chains.set(name!, {
        name: name!,
        ...(policy === "-" ? {} : { policy: policy as "ACCEPT" }),
        rules: [],
      });
    } else if (line.startsWith("-A ")) {
      const rest = line.slice(3);
      const space = rest.indexOf(" ");
      chains.get(rest.slice(0, space))?.rules.push(parseIptablesRule(rest.slice(space + 1)));
    }
  }
  if (!table) throw new IptablesSyntaxError(text.slice(0, 40), "no *table line");
  return { table, chains: [...chains.values()] };
}

/** The part of the host API that idempotent rule writers need. */
interface RuleHost {
  iptables: {
    list(ns: string, table: NatTable, chain?: string): Promise<ChainDump[]>;
    append(ns: string, table: NatTable, chain: string, rule: IptablesRule): Promise<void>;
  };
}

/** The part of the host API that idempotent rule inserters need. */
interface InsertHost {
  iptables: RuleHost["iptables"] & {
    insert(ns: string, table: NatTable, chain: string, rule: IptablesRule, position?: number): Promise<void>;
  };
}

/** The rules of one chain as the host reports them, for idempotent writers. */
export async function chainRules(
  netlink: { iptables: Pick<RuleHost["iptables"], "list"> },
  ns: string,
  table: NatTable,
  chain: string,
): Promise<IptablesRule[]> {
  return (await netlink.iptables.list(ns, table, chain)).find((c) => c.name === chain)?.rules ?? [];
}

/** Rules are equal when iptables would save them alike: their canonical text is their value. */
export function sameRule(a: IptablesRule, b: IptablesRule): boolean {
  return a === b || formatIptablesRule(a) === formatIptablesRule(b);
}

/** Whether `chain` holds a rule equal to `rule` (`iptables -C`). */
async function holds(netlink: RuleHost, ns: string, table: NatTable, chain: string, rule: IptablesRule) {
  return (await chainRules(netlink, ns, table, chain)).some((r) => sameRule(r, rule));
}

/** Appends `rule` to `chain` unless an identical rule is already there (`iptables -C || iptables -A`). */
export async function appendRuleOnce(
  netlink: RuleHost,
  ns: string,
  table: NatTable,
  chain: string,
  rule: IptablesRule,
): Promise<boolean> {
  if (await holds(netlink, ns, table, chain, rule)) return false;
  await netlink.iptables.append(ns, table, chain, rule);
  return true;
}

/**
 * Inserts `rule` at the top of `chain` unless an identical rule is already there, where it stays
 * (`iptables -C || iptables -I`, as kube-proxy and kubelet ensure their jumps).
 */
export async function insertRuleOnce(
  netlink: InsertHost,
  ns: string,
  table: NatTable,
  chain: string,
  rule: IptablesRule,
): Promise<boolean> {
  if (await holds(netlink, ns, table, chain, rule)) return false;
  await netlink.iptables.insert(ns, table, chain, rule, 1);
  return true;
}

/** Chains in iptables-save's order: the table's built-ins first, then the others by name. */
export function saveOrder(table: NatTable, chains: ChainDump[]): ChainDump[] {
  const builtin = BUILTIN_CHAINS[table];
  return [
    ...builtin.map((name) => chains.find((c) => c.name === name) ?? { name, rules: [] }),
    ...chains
      .filter((c) => !builtin.includes(c.name))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  ];
}
