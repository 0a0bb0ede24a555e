/**
 * nftables rulesets as data, in the shape of libnftables' JSON (`nft -j list ruleset`, `nft -j -f`):
 * the subset kube-proxy's nftables mode writes — tables of family ip, base and regular chains,
 * verdict maps with concatenated keys, and rules made of matches on payload/meta/fib, mark
 * mangling, `numgen random mod N vmap`, dnat, masquerade and verdicts. The Linux backend hands the
 * same JSON to `nft -j -f -`; the simulator applies and evaluates it. `formatNftRule` gives the
 * text `nft list ruleset` prints, for traces.
 */
import { parseIpv4 } from "@podnet/core";

export type NftFamily = "ip";
export type NftHook = "prerouting" | "input" | "forward" | "output" | "postrouting";
export type NftKeyType = "ipv4_addr" | "inet_proto" | "inet_service";

export interface NftTable {
  family: NftFamily;
  name: string;
}

export interface NftChain {
  family: NftFamily;
  table: string;
  name: string;
  /** Base chains only: the chain type, the hook it is attached to, its priority and policy. */
  type?: "nat" | "filter";
  hook?: NftHook;
  prio?: number;
  policy?: "accept" | "drop";
}

export type NftVerdict =
  | { accept: null }
  | { drop: null }
  | { return: null }
  | { jump: { target: string } }
  | { goto: { target: string } };

/** A key: an address or protocol name as text, a port or number, or their concatenation. */
export type NftAtom = string | number;
export type NftKey = NftAtom | { concat: NftAtom[] };
export type NftMapElement = [NftKey, NftVerdict];

export interface NftMap {
  family: NftFamily;
  table: string;
  name: string;
  type: NftKeyType | NftKeyType[];
  map: "verdict";
  /** No comment: nft 1.0's JSON input drops a map's comment, so the two backends could not agree. */
  elem?: NftMapElement[];
}

/**
 * A named set of keys (kube-proxy's `nodeport-ips`), looked up by a match whose right side is
 * "@name": `ip daddr @nodeport-ips`.
 */
export interface NftSet {
  family: NftFamily;
  table: string;
  name: string;
  type: NftKeyType | NftKeyType[];
  /**
   * `timeout`: elements expire `timeout` seconds after they were added or last updated (kube-proxy's
   * session affinity sets; nft 1.0's JSON takes no "dynamic" flag, nft adds it for `update`).
   */
  flags?: ["timeout"];
  timeout?: number;
  /** Listed by the kernel once an `update` statement fills the set: 65535 unless given. */
  size?: number;
  /** Keys only: a listing leaves out when each element expires. */
  elem?: NftKey[];
}

/** Elements added to or deleted from a named map or set (deleting, and a set, take keys only). */
export interface NftElements {
  family: NftFamily;
  table: string;
  name: string;
  elem: (NftMapElement | NftKey)[];
}

export type NftOperand =
  | { payload: { protocol: "ip"; field: "saddr" | "daddr" } }
  | { payload: { protocol: "tcp" | "udp" | "th"; field: "sport" | "dport" } }
  | { meta: { key: "l4proto" | "mark" } }
  /** `fib daddr type`, `fib saddr type`: the address's type in the routing tables ("local", …). */
  | { fib: { result: "type"; flags: ["daddr"] | ["saddr"] } }
  /** Conntrack state: "new" for a connection's first packet, else "established". */
  | { ct: { key: "state" } }
  | { "&": [{ meta: { key: "mark" } }, number] }
  | { concat: NftOperand[] }
  | { numgen: { mode: "random"; mod: number; offset: number } };

/** A value, a prefix, or "@name": membership of a named set. */
export type NftRight = NftAtom | { prefix: { addr: string; len: number } };

type MarkValue = { "|": [{ meta: { key: "mark" } }, number] } | { "^": [{ meta: { key: "mark" } }, number] };

export type NftStatement =
  /** "in" tests a flag set (ct state), with one flag the same as "==". */
  | { match: { op: "==" | "!=" | "in"; left: NftOperand; right: NftRight } }
  | { mangle: { key: { meta: { key: "mark" } }; value: MarkValue } }
  | { vmap: { key: NftOperand; data: string | { set: NftMapElement[] } } }
  | { dnat: { addr: string; port?: number } }
  | { masquerade: { flags?: "fully-random" } | null }
  /** ICMP port unreachable, nft's default reject for ip. */
  | { reject: { type: "icmp"; expr: "port-unreachable" } }
  /** `update @set { ip saddr }`: the packet's key joins the set, or has its timeout started again. */
  | { set: { op: "update"; elem: NftOperand; set: string } }
  | NftVerdict;

export interface NftRule {
  family: NftFamily;
  table: string;
  chain: string;
  expr: NftStatement[];
}

/** One object of a ruleset listing. */
export type NftObject =
  { table: NftTable } | { chain: NftChain } | { set: NftSet } | { map: NftMap } | { rule: NftRule };

/** One command of a transaction (`nft -j -f`): all apply, or none. */
export type NftCommand =
  | {
      add:
        | { table: NftTable }
        | { chain: NftChain }
        | { set: NftSet }
        | { map: NftMap }
        | { rule: NftRule }
        | { element: NftElements };
    }
  | {
      delete:
        | { table: NftTable }
        | { chain: NftChain }
        | { set: NftSet }
        | { map: NftMap }
        | { element: NftElements };
    }
  | { flush: { chain: NftChain } | { set: NftSet } | { map: NftMap } };

/** nft's words for the refusals the host API reports (after "Error: "). */
export const NftMessage = {
  noSuchFile: "Error: No such file or directory",
  couldNotProcess: (reason: string) => `Error: Could not process rule: ${reason}`,
} as const;

/** Whether an element is a map element (key and verdict) or a key alone. */
export const isMapElement = (e: NftMapElement | NftKey): e is NftMapElement =>
  Array.isArray(e) && e.length === 2 && typeof e[1] === "object";

/** The verdict a statement ends with, if it is one. */
export function verdictOf(s: NftStatement): NftVerdict | undefined {
  return "accept" in s || "drop" in s || "return" in s || "jump" in s || "goto" in s
    ? (s as NftVerdict)
    : undefined;
}

// ---- text, as `nft list ruleset` prints it ------------------------------------------------------

export function formatNftVerdict(v: NftVerdict): string {
  if ("jump" in v) return `jump ${v.jump.target}`;
  if ("goto" in v) return `goto ${v.goto.target}`;
  return Object.keys(v)[0]!;
}

const hex8 = (n: number) => `0x${(n >>> 0).toString(16).padStart(8, "0")}`;

export function formatNftOperand(o: NftOperand): string {
  if ("payload" in o) return `${o.payload.protocol} ${o.payload.field}`;
  if ("meta" in o) return `meta ${o.meta.key}`;
  if ("fib" in o) return `fib ${o.fib.flags.join(" . ")} ${o.fib.result}`;
  if ("ct" in o) return `ct ${o.ct.key}`;
  if ("&" in o) return `meta mark & ${hex8(o["&"][1])}`;
  if ("concat" in o) return o.concat.map(formatNftOperand).join(" . ");
  return `numgen ${o.numgen.mode} mod ${o.numgen.mod}${o.numgen.offset ? ` offset ${o.numgen.offset}` : ""}`;
}

function formatRight(r: NftRight, left: NftOperand): string {
  if (typeof r === "object") return `${r.prefix.addr}/${r.prefix.len}`;
  return "&" in left && typeof r === "number" ? hex8(r) : String(r);
}

export function formatNftKey(k: NftKey): string {
  return typeof k === "object" ? k.concat.join(" . ") : String(k);
}

const formatElements = (elements: NftMapElement[]) =>
  `{ ${elements.map(([k, v]) => `${formatNftKey(k)} : ${formatNftVerdict(v)}`).join(", ")} }`;

export function formatNftStatement(s: NftStatement): string {
  const verdict = verdictOf(s);
  if (verdict) return formatNftVerdict(verdict);
  if ("match" in s) {
    const { op, left, right } = s.match;
    const hidden = (op === "==" && !("&" in left)) || op === "in";
    return `${formatNftOperand(left)} ${hidden ? "" : `${op} `}${formatRight(right, left)}`;
  }
  if ("mangle" in s) {
    const [op, [, value]] = Object.entries(s.mangle.value)[0]!;
    return `meta mark set meta mark ${op} ${hex8(value)}`;
  }
  if ("vmap" in s) {
    const data = s.vmap.data;
    return `${formatNftOperand(s.vmap.key)} vmap ${typeof data === "string" ? data : formatElements(data.set)}`;
  }
  if ("dnat" in s) return `dnat to ${s.dnat.addr}${s.dnat.port === undefined ? "" : `:${s.dnat.port}`}`;
  if ("reject" in s) return "reject";
  if ("masquerade" in s) return `masquerade${s.masquerade?.flags ? ` ${s.masquerade.flags}` : ""}`;
  if ("set" in s) return `${s.set.op} ${s.set.set} { ${formatNftOperand(s.set.elem)} }`;
  return "";
}

/** A rule as `nft list ruleset` prints it inside its chain. */
export function formatNftRule(rule: Pick<NftRule, "expr">): string {
  return rule.expr.map(formatNftStatement).join(" ");
}

// ---- values -------------------------------------------------------------------------------------

const PROTOCOLS: Record<string, number> = { icmp: 1, tcp: 6, udp: 17 };

/** A key atom as a number: an address, a protocol name or a port; NaN when it is none of them. */
export function nftAtomValue(atom: NftAtom): number {
  if (typeof atom === "number") return atom;
  const protocol = PROTOCOLS[atom];
  if (protocol !== undefined) return protocol;
  try {
    return parseIpv4(atom);
  } catch {
    return Number.NaN;
  }
}

/** One key as one string of numbers, so two spellings of a key are one entry. */
export function nftKeyId(key: NftKey): string {
  return typeof key === "object" ? key.concat.map(nftAtomValue).join("|") : String(nftAtomValue(key));
}

/** Keys in value order (addresses, protocols and ports as numbers), the order podnet lists a map's elements in. */
export function compareNftKeys(a: NftKey, b: NftKey): number {
  const x = typeof a === "object" ? a.concat : [a];
  const y = typeof b === "object" ? b.concat : [b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = nftAtomValue(x[i]!) - nftAtomValue(y[i]!);
    if (d) return d;
  }
  return x.length - y.length;
}

/** The command text a refusal names, as a person would type it (`nft add rule ip t c …`). */
export function formatNftCommand(command: NftCommand): string {
  const [verb, body] = Object.entries(command)[0]! as [string, Record<string, unknown>];
  const [kind, object] = Object.entries(body)[0]! as [string, Record<string, unknown>];
  const where = [object.family, object.table ?? "", object.chain ?? object.name].filter(Boolean).join(" ");
  const rest = kind === "rule" ? ` ${formatNftRule(object as unknown as NftRule)}` : "";
  return `nft ${verb} ${kind} ${where}${rest}`;
}
