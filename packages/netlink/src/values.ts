/**
 * The host API's text edges: iproute2's notation for values (what the Linux backend passes as
 * arguments and what `ip -j` prints), parsers for the text a user writes with iproute2's own
 * refusals, and the conversions between `ip -j` dumps and typed entries. One place, so the
 * simulator and the Linux backend spell and read values the same way.
 */
import {
  Ipv4Prefix,
  formatIpv4,
  formatMac,
  parseIpv4,
  parseIpv4InterfaceAddress,
  parseMac,
  type Ipv4,
  type Ipv4InterfaceAddress,
  type Mac,
} from "@podnet/core";
import { NetlinkError } from "./errors.js";
import type {
  BatchOp,
  ConntrackFilter,
  FdbDump,
  FdbSpec,
  FdbEntry,
  IpPrefix,
  NeighDump,
  NeighEntry,
  NeighSpec,
  RouteDump,
  RouteEntry,
  RouteSpec,
} from "./types.js";

/** 0.0.0.0/0, iproute2's "default". */
export const DEFAULT_ROUTE = new Ipv4Prefix(0, 0);

/** A destination as `ip route` prints it: "default", a host bare, else address/length. */
export function formatRouteDst(dst: IpPrefix): string {
  return dst.length === 0 ? "default" : dst.length === 32 ? formatIpv4(dst.network) : dst.toString();
}

/** `ip neigh` arguments for an entry (`nud permanent` unless told). */
export function neighArguments(e: NeighSpec | Pick<NeighSpec, "dst" | "dev">): string[] {
  const args = [formatIpv4(e.dst)];
  if ("lladdr" in e) args.push("lladdr", formatMac(e.lladdr));
  args.push("dev", e.dev);
  if ("lladdr" in e) args.push("nud", e.state ?? "permanent");
  return args;
}

/** `bridge fdb` arguments for an entry: `self` (the VXLAN device's table) unless told otherwise. */
export function fdbArguments(e: FdbSpec): string[] {
  return [
    formatMac(e.mac),
    "dev",
    e.dev,
    ...(e.dst !== undefined ? ["dst", formatIpv4(e.dst)] : []),
    ...((e.self ?? true) ? ["self"] : ["master"]),
    ...(e.permanent ? ["permanent"] : []),
  ];
}

/**
 * `conntrack` arguments deleting the flows `filter` names; a NetlinkError (EINVAL) for a filter the
 * host API refuses, the same words on every backend.
 */
export function conntrackDeleteArguments(filter: ConntrackFilter): string[] {
  const { protocol, origDstPort: port } = filter;
  const argv = ["conntrack", "-D", "-f", "ipv4", "-p", String(protocol), "--orig-port-dst", String(port)];
  if (protocol !== "tcp" && protocol !== "udp")
    throw new NetlinkError(
      "EINVAL",
      `conntrack: protocol ${JSON.stringify(String(protocol))} is not tcp or udp`,
      argv.join(" "),
    );
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new NetlinkError(
      "EINVAL",
      `conntrack: port ${JSON.stringify(String(port))} is not 1-65535`,
      argv.join(" "),
    );
  return argv;
}

/** A batch write as the command line it stands for, without the tool: ["route", "add", …]. */
export function batchArguments(op: BatchOp): string[] {
  const [group, verb] = op.op.split(".") as [string, string];
  switch (op.op) {
    case "route.add":
    case "route.replace":
    case "route.del":
      return [group, verb, ...routeArguments(op.spec)];
    case "neigh.replace":
    case "neigh.del":
      return [group, verb, ...neighArguments(op.spec)];
    default:
      // `bridge fdb del` matches an entry without its flags.
      return [group, verb, ...fdbArguments(op.op === "fdb.del" ? { ...op.spec, permanent: false } : op.spec)];
  }
}

/** A route spec as iproute2 writes it: "10.0.2.0/24 via 10.100.0.3 dev eth0 onlink metric 100". */
export function formatRouteSpec(spec: RouteSpec): string {
  return routeArguments(spec).join(" ");
}

/** A route spec as `ip route add` arguments. */
export function routeArguments(spec: RouteSpec): string[] {
  const args = [formatRouteDst(spec.dst)];
  if (spec.via !== undefined) args.push("via", formatIpv4(spec.via));
  if (spec.dev) args.push("dev", spec.dev);
  if (spec.onlink) args.push("onlink");
  if (spec.metric !== undefined) args.push("metric", String(spec.metric));
  if (spec.src !== undefined) args.push("src", formatIpv4(spec.src));
  if (spec.scope) args.push("scope", spec.scope);
  return args;
}

// ---- parsing what a user writes, refused in iproute2's words --------------------------------

function refuse(message: string, text: string): never {
  throw new NetlinkError("EINVAL", message, text);
}

/** `ip route`'s destination: "default", "10.0.2.5" (a host), or "10.0.2.0/24" with no host bits. */
export function parseRouteDst(text: string): IpPrefix {
  if (text === "default") return DEFAULT_ROUTE;
  let parsed: Ipv4InterfaceAddress;
  try {
    parsed = text.includes("/")
      ? parseIpv4InterfaceAddress(text)
      : { address: parseIpv4(text), prefix: new Ipv4Prefix(parseIpv4(text), 32) };
  } catch {
    return refuse(`Error: any valid prefix is expected rather than "${text}".`, text);
  }
  if (parsed.address !== parsed.prefix.network)
    refuse("Error: Invalid prefix for given prefix length.", text);
  return parsed.prefix;
}

/** `ip addr`'s argument: "10.0.1.1/24", or a bare address as its /32. */
export function parseAddrArgument(text: string): Ipv4InterfaceAddress {
  try {
    return text.includes("/")
      ? parseIpv4InterfaceAddress(text)
      : { address: parseIpv4(text), prefix: new Ipv4Prefix(parseIpv4(text), 32) };
  } catch {
    return refuse(`Error: any valid prefix is expected rather than "${text}".`, text);
  }
}

/** A gateway, neighbour or VTEP address ("via 10.0.0.1"). */
export function parseAddressArgument(text: string): Ipv4 {
  try {
    return parseIpv4(text);
  } catch {
    return refuse(`Error: inet address is expected rather than "${text}".`, text);
  }
}

/**
 * A link-layer address ("lladdr 96:FE:…"), read as iproute2 reads it: one or two hex digits per
 * octet, any case. A bad octet is refused by iproute2 itself, a wrong length by the kernel.
 */
export function parseLinkAddress(text: string): Mac {
  const parts = text.split(":");
  let value = 0;
  for (const part of parts) {
    if (!/^[0-9a-fA-F]{1,2}$/.test(part)) refuse(`"${part}" is invalid lladdr.`, text);
    value = value * 256 + parseInt(part, 16);
  }
  if (parts.length !== 6) refuse("Error: Invalid link address.", text);
  return value;
}

// ---- dumps and entries ----------------------------------------------------------------------

/** A route entry as `ip -j route` prints it (same key order). */
export function routeDump(r: RouteEntry): RouteDump {
  const flags: string[] = [];
  if (r.onlink) flags.push("onlink");
  if (r.linkdown) flags.push("linkdown");
  const dump: RouteDump = { dst: formatRouteDst(r.dst) } as RouteDump;
  if (r.gateway !== undefined) dump.gateway = formatIpv4(r.gateway);
  dump.dev = r.dev;
  if (r.protocol) dump.protocol = r.protocol;
  if (r.scope !== "global") dump.scope = r.scope;
  if (r.prefsrc !== undefined) dump.prefsrc = formatIpv4(r.prefsrc);
  if (r.metric) dump.metric = r.metric;
  dump.flags = flags;
  return dump;
}

export function routeEntry(d: RouteDump): RouteEntry {
  const entry: RouteEntry = {
    dst: parseRouteDst(d.dst),
    dev: d.dev,
    scope: (d.scope as RouteEntry["scope"] | undefined) ?? "global",
    metric: d.metric ?? 0,
    onlink: d.flags.includes("onlink"),
    linkdown: d.flags.includes("linkdown"),
  };
  if (d.gateway !== undefined) entry.gateway = parseIpv4(d.gateway);
  if (d.protocol !== undefined) entry.protocol = d.protocol;
  if (d.prefsrc !== undefined) entry.prefsrc = parseIpv4(d.prefsrc);
  return entry;
}

export function neighDump(e: NeighEntry): NeighDump {
  return {
    dst: formatIpv4(e.dst),
    dev: e.dev,
    ...(e.lladdr !== undefined ? { lladdr: formatMac(e.lladdr) } : {}),
    state: e.state,
  };
}

export function neighEntry(d: NeighDump): NeighEntry {
  return {
    dst: parseIpv4(d.dst),
    dev: d.dev,
    ...(d.lladdr !== undefined ? { lladdr: parseMac(d.lladdr) } : {}),
    state: d.state,
  };
}

export function fdbDump(e: FdbEntry): FdbDump {
  return {
    mac: formatMac(e.mac),
    ifname: e.dev,
    ...(e.dst !== undefined ? { dst: formatIpv4(e.dst) } : {}),
    ...(e.master !== undefined ? { master: e.master } : {}),
    flags: e.flags,
    state: e.state,
  };
}

export function fdbEntry(d: FdbDump): FdbEntry {
  return {
    mac: parseMac(d.mac),
    dev: d.ifname,
    ...(d.dst !== undefined ? { dst: parseIpv4(d.dst) } : {}),
    ...(d.master !== undefined ? { master: d.master } : {}),
    flags: d.flags,
    state: d.state,
  };
}
