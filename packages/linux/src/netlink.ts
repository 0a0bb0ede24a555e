import { formatIpv4, formatMac, parseIpv4, type Ipv4InterfaceAddress } from "@podnet/core";
import {
  NetlinkError,
  conntrackDeleteArguments,
  type ConntrackFilter,
  batchArguments,
  fdbArguments,
  fdbEntry,
  formatIptablesRule,
  neighArguments,
  neighEntry,
  parseIptablesSave,
  routeArguments,
  routeEntry,
  splitArguments,
  LayerFanout,
  type AddrDump,
  type BatchOp,
  type BatchResult,
  type ChainDump,
  type Errno,
  type FdbDump,
  type FdbEntry,
  type FdbSpec,
  type IpAddress,
  type IpPrefix,
  type IptablesRule,
  type LinkChange,
  type LinkDump,
  type LinkSpec,
  type NatTable,
  type NftCommand,
  type NftFamily,
  type NftKey,
  type NftMapElement,
  type NftObject,
  compareNftKeys,
  formatNftCommand,
  type NeighDump,
  type NeighEntry,
  type NeighSpec,
  type Netlink,
  type RouteDump,
  type RouteEntry,
  type RouteGetEntry,
  type RouteSpec,
  type SysctlKey,
} from "@podnet/netlink";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "./exec.js";

const ERRNO_BY_TEXT: [RegExp, Errno][] = [
  [/File exists|already assigned|already exists/, "EEXIST"],
  [/No such process/, "ESRCH"],
  [/Cannot find device|Device does not exist/, "ENODEV"],
  [/not up|Network is down/, "ENETDOWN"],
  [/Address not found|Cannot assign requested address/, "EADDRNOTAVAIL"],
  [/Device or resource busy/, "EBUSY"],
  [/Operation not supported/, "EOPNOTSUPP"],
  [/No such file or directory|No chain\/target\/match|Bad rule/, "ENOENT"],
  [/Operation not permitted/, "EPERM"],
  [/Network is unreachable/, "ENETUNREACH"],
];

/** The line a person would quote from iptables/iproute2's stderr, without iptables' version banner. */
export function errorLine(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.replace(/^iptables v[\d.]+ \([^)]*\):\s*/, "").trim())
    .filter((l) => l && !l.startsWith("Try `iptables"));
  return lines[0] ?? "failed";
}

/**
 * nft's message without its location prefix ("internal:0:0-0: Error: …" → "Error: …") and without
 * its spelling hint ("; did you mean table ‘kube-proxy’ in family ip?"), which the simulator does not guess.
 */
function nftErrorLine(stderr: string): string {
  const line = stderr.split("\n").find((l) => l.includes("Error: "));
  return line
    ? line
        .slice(line.indexOf("Error: "))
        .replace(/; did you mean .*$/, "")
        .trim()
    : errorLine(stderr);
}

/** `nft -j list` output as the host API returns it: no metainfo, no handles, elements in key order. */
function listedObjects(json: { nftables: Record<string, Record<string, unknown>>[] }): NftObject[] {
  const out: NftObject[] = [];
  for (const item of json.nftables) {
    const [kind, body] = Object.entries(item)[0]!;
    if (kind === "metainfo") continue;
    const { handle: _handle, ...rest } = body;
    if (kind === "map" && Array.isArray(rest.elem))
      (rest.elem as NftMapElement[]).sort((a, b) => compareNftKeys(a[0], b[0]));
    if (kind === "set" && Array.isArray(rest.elem)) {
      // An element of a set with timeouts is listed with when it expires ({"elem": {"val": …,
      // "expires": …}}): the host API gives the key, as the simulator does.
      rest.elem = (rest.elem as (NftKey | { elem: { val: NftKey } })[]).map((e) =>
        typeof e === "object" && "elem" in e ? e.elem.val : e,
      );
      (rest.elem as NftKey[]).sort(compareNftKeys);
    }
    out.push({ [kind]: rest } as unknown as NftObject);
  }
  return out;
}

/** One answer of `ip -j route get`. */
interface RawRouteGet {
  type?: string;
  dst: string;
  gateway?: string;
  dev: string;
  prefsrc?: string;
  expires?: number;
  metrics?: { mtu?: number }[];
}

function errnoOf(message: string): Errno {
  return ERRNO_BY_TEXT.find(([re]) => re.test(message))?.[1] ?? "EINVAL";
}

/** Whether /run/netns/<name> is this process's own network namespace (same inode). */
function isOwnNamespace(name: string): boolean {
  if (name.includes("/")) return false; // not a name: `ip netns exec` refuses it, with its own words
  const named = statSync(`/run/netns/${name}`, { throwIfNoEntry: false });
  if (!named) return false;
  const own = statSync("/proc/self/ns/net");
  return named.dev === own.dev && named.ino === own.ino;
}

/**
 * The host API on the real kernel, through iproute2, bridge, iptables and sysctl, one process per
 * call. Every error is the tool's own stderr line, so it can be compared word for word with the
 * simulator's.
 */
export class LinuxNetlink implements Netlink {
  private async exec(argv: string[]): Promise<string> {
    const result = await run(argv);
    if (result.code !== 0) {
      const message = errorLine(result.stderr);
      throw new NetlinkError(errnoOf(message), message, argv.join(" "));
    }
    return result.stdout;
  }

  /** `ip -n NS …`, or plain `ip …` for "", the namespace this process runs in. */
  private ip(ns: string, ...args: string[]): Promise<string> {
    return this.exec(ns === "" ? ["ip", ...args] : ["ip", "-n", ns, ...args]);
  }

  /**
   * A command run inside a namespace (`ip netns exec`), or directly for "" — and directly too when
   * the named namespace is the one this process already runs in (a CNI plugin executed inside its
   * node's namespace): entering it again costs a process and a remount of /sys for nothing.
   */
  private inside(ns: string, argv: string[]): Promise<string> {
    return this.exec(ns === "" || isOwnNamespace(ns) ? argv : ["ip", "netns", "exec", ns, ...argv]);
  }

  private bridgeTool(ns: string, ...args: string[]): Promise<string> {
    return this.exec(ns === "" ? ["bridge", ...args] : ["bridge", "-n", ns, ...args]);
  }

  private async json<T>(ns: string, ...args: string[]): Promise<T[]> {
    const out = await this.ip(ns, "-j", ...args);
    return out.trim() ? (JSON.parse(out) as T[]) : [];
  }

  readonly netns = {
    add: async (name: string) => void (await this.exec(["ip", "netns", "add", name])),
    del: async (name: string) => {
      await this.exec(["ip", "netns", "del", name]);
      this.fanout.forget(name);
    },
    list: async () => {
      const out = await this.exec(["ip", "-j", "netns", "list"]);
      return (out.trim() ? (JSON.parse(out) as { name: string }[]) : []).map((n) => n.name).sort();
    },
  };

  readonly sysctl = {
    set: async (ns: string, key: SysctlKey, value: string) =>
      void (await this.inside(ns, ["sysctl", "-qw", `${key}=${value}`])),
    get: async (ns: string, key: SysctlKey) => (await this.inside(ns, ["sysctl", "-n", key])).trim(),
  };

  readonly link = {
    add: async (ns: string, spec: LinkSpec) => {
      const common = [
        ...(spec.mtu !== undefined ? ["mtu", String(spec.mtu)] : []),
        ...(spec.address !== undefined ? ["address", formatMac(spec.address)] : []),
      ];
      // Names after their keywords (`name`, `dev`) everywhere: a bare "up", "help" or "type" is read
      // as iproute2's own word, and `ip link add up type veth` makes veth0 and veth1 instead.
      const args = ["link", "add", "name", spec.name, ...common, "type", spec.kind];
      // A peer for "" (this process's own namespace) is placed by PID: `netns <our pid>`.
      // iproute2 applies an `mtu` before `type veth` to the first end only: the peer is given its own.
      if (spec.kind === "veth") {
        args.push(
          "peer",
          "name",
          spec.peer.name,
          ...(spec.mtu !== undefined ? ["mtu", String(spec.mtu)] : []),
        );
        if (spec.peer.netns !== undefined)
          args.push("netns", spec.peer.netns === "" ? String(process.pid) : spec.peer.netns);
      }
      if (spec.kind === "vxlan") {
        args.push("id", String(spec.vni));
        if (spec.local !== undefined) args.push("local", formatIpv4(spec.local));
        if (spec.dev) args.push("dev", spec.dev);
        // Name the port always: iproute2 otherwise warns and the kernel picks 8472.
        args.push("dstport", String(spec.dstport ?? 8472));
        if (spec.learning === false) args.push("nolearning");
      }
      await this.ip(ns, ...args);
    },
    del: async (ns: string, name: string) => void (await this.ip(ns, "link", "del", "dev", name)),
    set: async (ns: string, name: string, change: LinkChange) => {
      const args: string[] = [];
      if (change.master !== undefined)
        args.push(...(change.master === null ? ["nomaster"] : ["master", change.master]));
      if (change.mtu !== undefined) args.push("mtu", String(change.mtu));
      if (change.address !== undefined) args.push("address", formatMac(change.address));
      if (change.netns !== undefined) args.push("netns", change.netns);
      if (args.length) await this.ip(ns, "link", "set", "dev", name, ...args);
      if (change.hairpin !== undefined)
        await this.bridgeTool(ns, "link", "set", "dev", name, "hairpin", change.hairpin ? "on" : "off");
      const target = change.netns ?? ns;
      if (change.up !== undefined)
        await this.ip(target, "link", "set", "dev", name, change.up ? "up" : "down");
    },
    list: async (ns: string, filter: { dev?: string } = {}): Promise<LinkDump[]> =>
      (await this.json<RawLink>(ns, "-d", "link", "show"))
        .filter((raw) => filter.dev === undefined || raw.ifname === filter.dev)
        .map(toLinkDump),
  };

  readonly addr = {
    add: async (
      ns: string,
      dev: string,
      address: Ipv4InterfaceAddress,
      options: { broadcast?: boolean } = {},
    ) =>
      void (await this.ip(
        ns,
        "addr",
        "add",
        cidrArgument(address),
        ...(options.broadcast ? ["broadcast", "+"] : []),
        "dev",
        dev,
      )),
    del: async (ns: string, dev: string, address: Ipv4InterfaceAddress) =>
      void (await this.ip(ns, "addr", "del", cidrArgument(address), "dev", dev)),
    // One exec either way: `ip … show dev NAME` fails for a missing device, where this answers none.
    list: async (ns: string, filter: { dev?: string } = {}): Promise<AddrDump[]> =>
      (await this.json<RawLink & { addr_info: RawAddr[] }>(ns, "-d", "addr", "show"))
        .filter((raw) => filter.dev === undefined || raw.ifname === filter.dev)
        .map((raw) => ({
          ...toLinkDump(raw),
          addr_info: raw.addr_info
            .filter((a) => a.family === "inet")
            .map((a) => ({
              family: "inet" as const,
              local: a.local,
              prefixlen: a.prefixlen,
              ...(a.broadcast ? { broadcast: a.broadcast } : {}),
              scope: a.scope,
              label: a.label ?? raw.ifname,
            })),
        })),
  };

  readonly route = {
    add: async (ns: string, spec: RouteSpec) =>
      void (await this.ip(ns, "route", "add", ...routeArguments(spec))),
    replace: async (ns: string, spec: RouteSpec) =>
      void (await this.ip(ns, "route", "replace", ...routeArguments(spec))),
    del: async (ns: string, spec: RouteSpec) =>
      void (await this.ip(ns, "route", "del", ...routeArguments(spec))),
    list: async (ns: string, filter: { exact?: IpPrefix } = {}): Promise<RouteDump[]> =>
      this.json<RouteDump>(
        ns,
        "route",
        "show",
        ...(filter.exact !== undefined ? ["exact", filter.exact.toString()] : []),
      ),
    entries: async (ns: string, filter: { exact?: IpPrefix } = {}): Promise<RouteEntry[]> =>
      (await this.route.list(ns, filter)).map(routeEntry),
    get: async (ns: string, dst: IpAddress): Promise<RouteGetEntry> => {
      const [raw] = await this.json<RawRouteGet>(ns, "route", "get", formatIpv4(dst));
      const entry: RouteGetEntry = {
        dst,
        type: raw!.type === "local" || raw!.type === "broadcast" ? raw!.type : "unicast",
        dev: raw!.dev,
      };
      if (raw!.gateway !== undefined) entry.gateway = parseIpv4(raw!.gateway);
      if (raw!.prefsrc !== undefined) entry.prefsrc = parseIpv4(raw!.prefsrc);
      const mtu = raw!.metrics?.find((m) => m.mtu !== undefined)?.mtu;
      if (mtu !== undefined) entry.mtu = mtu;
      if (raw!.expires !== undefined) entry.expires = raw!.expires;
      return entry;
    },
  };

  readonly neigh = {
    replace: async (ns: string, e: NeighSpec) =>
      void (await this.ip(ns, "neigh", "replace", ...neighArguments(e))),
    del: async (ns: string, e: Pick<NeighSpec, "dst" | "dev">) =>
      void (await this.ip(ns, "neigh", "del", ...neighArguments(e))),
    list: async (ns: string, filter: { dst?: IpAddress; dev?: string } = {}): Promise<NeighDump[]> =>
      (
        await this.json<NeighDump>(
          ns,
          "neigh",
          "show",
          ...(filter.dst !== undefined ? [formatIpv4(filter.dst)] : []),
          ...(filter.dev ? ["dev", filter.dev] : []),
        )
      )
        // Filtered by device, `ip -j neigh` leaves the device out of each entry.
        .map((n) => ({
          dst: n.dst,
          dev: n.dev ?? filter.dev!,
          ...(n.lladdr ? { lladdr: n.lladdr } : {}),
          state: n.state,
        })),
    entries: async (ns: string, filter: { dst?: IpAddress; dev?: string } = {}): Promise<NeighEntry[]> =>
      (await this.neigh.list(ns, filter)).map(neighEntry),
  };

  readonly fdb = {
    append: async (ns: string, e: FdbSpec) =>
      void (await this.bridgeTool(ns, "fdb", "append", ...fdbArguments(e))),
    replace: async (ns: string, e: FdbSpec) =>
      void (await this.bridgeTool(ns, "fdb", "replace", ...fdbArguments(e))),
    del: async (ns: string, e: FdbSpec) =>
      void (await this.bridgeTool(ns, "fdb", "del", ...fdbArguments({ ...e, permanent: false }))),
    list: async (ns: string, filter: { dev?: string; mac?: number } = {}): Promise<FdbDump[]> => {
      const only = filter.mac !== undefined ? formatMac(filter.mac) : undefined;
      const out = await this.bridgeTool(ns, "-j", "fdb", "show", ...(filter.dev ? ["dev", filter.dev] : []));
      const raw = ((out.trim() ? JSON.parse(out) : []) as (FdbDump & { master?: string })[])
        .map((e) => ({ ...e, ifname: e.ifname ?? filter.dev! }))
        .filter((e) => only === undefined || e.mac === only);
      // Keep what a program wrote or the bridge learned; drop the kernel's own permanent entries (port MACs, multicast).
      return raw
        .filter((e) => e.dst !== undefined || (e.master !== undefined && e.state !== "permanent"))
        .map((e) => ({
          mac: e.mac,
          ifname: e.ifname,
          ...(e.dst ? { dst: e.dst } : {}),
          ...(e.master ? { master: e.master } : {}),
          flags: e.flags,
          state: e.state ?? "",
        }));
    },
    entries: async (ns: string, filter: { dev?: string; mac?: number } = {}): Promise<FdbEntry[]> =>
      (await this.fdb.list(ns, filter)).map(fdbEntry),
  };

  /**
   * One `ip -force -batch -` (or `bridge -force -batch -` for FDB writes) per run of consecutive
   * writes for the same tool, in order: one process for a peer's entries instead of one per entry.
   * With -force the tool goes on after a refusal and names the failed line ("Command failed -:3")
   * after the kernel's words.
   */
  async batch(ns: string, ops: readonly BatchOp[]): Promise<BatchResult> {
    const result: BatchResult = new Array<NetlinkError | undefined>(ops.length).fill(undefined);
    for (let start = 0; start < ops.length;) {
      const tool = ops[start]!.op.startsWith("fdb.") ? "bridge" : "ip";
      let end = start;
      while (end < ops.length && (ops[end]!.op.startsWith("fdb.") ? "bridge" : "ip") === tool) end++;
      const lines = ops.slice(start, end).map(batchArguments);
      const argv = [tool, ...(ns === "" ? [] : ["-n", ns]), "-force", "-batch", "-"];
      const out = await run(argv, lines.map((l) => l.join(" ")).join("\n") + "\n");
      for (const [line, message] of batchFailures(out.stderr)) {
        const at = start + line - 1;
        if (line >= 1 && at < end)
          result[at] = new NetlinkError(
            errnoOf(message),
            message,
            [tool, "-n", ns, ...lines[line - 1]!].join(" "),
          );
      }
      if (out.code !== 0 && !result.slice(start, end).some(Boolean))
        throw new NetlinkError(errnoOf(errorLine(out.stderr)), errorLine(out.stderr), argv.join(" "));
      start = end;
    }
    return result;
  }

  /** Layers as they are on real hosts: each member's own writes, one batch per member. */
  private readonly fanout = new LayerFanout((ns, ops) => this.batch(ns, ops));
  readonly layer: Netlink["layer"] = this.fanout;

  readonly iptables = {
    newChain: async (ns: string, table: NatTable, chain: string) =>
      void (await this.iptablesExec(ns, table, "-N", chain)),
    flush: async (ns: string, table: NatTable, chain: string) =>
      void (await this.iptablesExec(ns, table, "-F", chain)),
    deleteChain: async (ns: string, table: NatTable, chain: string) =>
      void (await this.iptablesExec(ns, table, "-X", chain)),
    append: async (ns: string, table: NatTable, chain: string, rule: IptablesRule) =>
      void (await this.iptablesExec(ns, table, "-A", chain, ...splitArguments(formatIptablesRule(rule)))),
    insert: async (ns: string, table: NatTable, chain: string, rule: IptablesRule, position = 1) =>
      void (await this.iptablesExec(
        ns,
        table,
        "-I",
        chain,
        String(position),
        ...splitArguments(formatIptablesRule(rule)),
      )),
    delete: async (ns: string, table: NatTable, chain: string, rule: IptablesRule) =>
      void (await this.iptablesExec(ns, table, "-D", chain, ...splitArguments(formatIptablesRule(rule)))),
    save: async (ns: string, table: NatTable) => {
      const out = await this.inside(ns, ["iptables-save", "-t", table]);
      // Only the timestamped comment lines go; counters stay as the kernel reports them.
      return (
        out
          .split("\n")
          .filter((l) => !l.startsWith("#") && l !== "")
          .join("\n") + "\n"
      );
    },
    list: async (ns: string, table: NatTable, chain?: string): Promise<ChainDump[]> =>
      parseIptablesSave(await this.iptables.save(ns, table)).chains.filter(
        (c) => chain === undefined || c.name === chain,
      ),
  };

  readonly conntrack = {
    delete: async (ns: string, filter: ConntrackFilter): Promise<number> => {
      const argv = conntrackDeleteArguments(filter);
      const result = await run(ns === "" || isOwnNamespace(ns) ? argv : ["ip", "netns", "exec", ns, ...argv]);
      // conntrack exits 1 when it deleted nothing, and says so: that is an answer, not a failure.
      const deleted = /(\d+) flow entries have been deleted/.exec(result.stderr);
      if (deleted) return Number(deleted[1]);
      const message = errorLine(result.stderr);
      throw new NetlinkError(errnoOf(message), message, argv.join(" "));
    },
  };

  readonly nft = {
    run: async (ns: string, commands: readonly NftCommand[]) => {
      if (!commands.length) return;
      // nft cannot read a transaction from a socket on stdin (node's pipes): it reads a file.
      const dir = mkdtempSync(join(tmpdir(), "podnet-nft-"));
      const file = join(dir, "transaction.json");
      try {
        writeFileSync(file, JSON.stringify({ nftables: commands }));
        const argv = ["nft", "-j", "-f", file];
        const result = await run(
          ns === "" || isOwnNamespace(ns) ? argv : ["ip", "netns", "exec", ns, ...argv],
        );
        if (result.code !== 0) {
          const message = nftErrorLine(result.stderr);
          throw new NetlinkError(errnoOf(message), message, formatNftCommand(commands[0]!));
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    list: async (ns: string, family: NftFamily, table: string): Promise<NftObject[]> => {
      let out: string;
      try {
        out = await this.inside(ns, ["nft", "-j", "list", "table", family, table]);
      } catch (error) {
        if (!(error instanceof NetlinkError)) throw error;
        throw new NetlinkError(error.errno, nftErrorLine(error.message), `nft list table ${family} ${table}`);
      }
      return listedObjects(JSON.parse(out) as { nftables: Record<string, Record<string, unknown>>[] });
    },
  };

  private iptablesExec(ns: string, table: NatTable, ...args: string[]): Promise<string> {
    return this.inside(ns, ["iptables", "-w", "-t", table, ...args]);
  }
}

interface RawAddr {
  family: string;
  local: string;
  prefixlen: number;
  broadcast?: string;
  scope: "global" | "host" | "link";
  label?: string;
}

/** `ip -j -d link` as the kernel prints it: LinkDump's fields, with looser operstate/link_type and more of linkinfo. */
type RawLink = Omit<LinkDump, "operstate" | "link_type" | "linkinfo"> & {
  operstate: string;
  link_type: string;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown>; info_slave_kind?: string };
};

const VXLAN_FIELDS = ["id", "local", "link", "port", "learning"];

function toLinkDump(raw: RawLink): LinkDump {
  const dump: LinkDump = {
    ifindex: raw.ifindex,
    ifname: raw.ifname,
    flags: raw.flags,
    mtu: raw.mtu,
    operstate: raw.operstate === "UP" || raw.operstate === "DOWN" ? raw.operstate : "UNKNOWN",
    link_type: raw.link_type === "loopback" ? "loopback" : "ether",
    address: raw.address,
  };
  if (raw.link_index !== undefined) dump.link_index = raw.link_index;
  if (raw.master) dump.master = raw.master;
  if (raw.linkinfo?.info_kind) {
    dump.linkinfo = { info_kind: raw.linkinfo.info_kind };
    if (raw.linkinfo.info_kind === "vxlan" && raw.linkinfo.info_data) {
      dump.linkinfo.info_data = Object.fromEntries(
        Object.entries(raw.linkinfo.info_data).filter(([k]) => VXLAN_FIELDS.includes(k)),
      );
    }
    if (raw.linkinfo.info_slave_kind) dump.linkinfo.info_slave_kind = raw.linkinfo.info_slave_kind;
  }
  return dump;
}

function cidrArgument(a: Ipv4InterfaceAddress): string {
  return `${formatIpv4(a.address)}/${a.prefix.length}`;
}

/** The failed lines of a `-force -batch` run: each "Command failed -:N" after the kernel's words. */
function batchFailures(stderr: string): [number, string][] {
  const failures: [number, string][] = [];
  let words: string[] = [];
  for (const line of stderr.split("\n")) {
    const failed = /^Command failed -:(\d+)$/.exec(line.trim());
    if (failed) {
      failures.push([Number(failed[1]), errorLine(words.join("\n"))]);
      words = [];
    } else words.push(line);
  }
  return failures;
}
