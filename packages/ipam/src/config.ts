/**
 * host-local's configuration (LoadIPAMConfig): the `ipam` block of a network config, requested
 * addresses from CNI_ARGS, args.cni.ips and runtimeConfig.ips, and the legacy single-range form.
 * The config is decoded as strictly as host-local's json.Unmarshal into its Go structs (a key of the
 * wrong type is an error, never a silent default), then validated in host-local's order with
 * host-local's words.
 */
import { formatIpv4, parseIpv4 } from "@podnet/core";
import {
  CniError,
  CniErrorCode,
  GoTypeError,
  goUnmarshal,
  memoFrozen,
  deepFreeze,
  jsonKind,
  parseCniArgs,
  type CniRoute,
  type GoType,
  type PluginConfig,
} from "@podnet/cni";
import { canonicalizeRangeSet, rangeSetsOverlap, type RangeInput, type RangeSet } from "./range.js";

export const DEFAULT_DATA_DIR = "/var/lib/cni/networks";

export interface HostLocalConfig {
  name: string;
  cniVersion: string;
  dataDir: string;
  ranges: RangeSet[];
  routes?: CniRoute[];
  resolvConf?: string;
  requestedIps: number[];
}

function ipv4Only(text: string): void {
  if (text.includes(":")) throw new Error(`${text}: IPv6 is not supported by podnet-ipam`);
}

function ipOf(text: string, message = `invalid IP address: ${text}`): number {
  ipv4Only(text);
  try {
    return parseIpv4(text);
  } catch {
    throw new Error(message);
  }
}

/**
 * net.ParseCIDR: the prefix length is decimal digits, leading zeros allowed ("/008" is /8; Go's
 * dtoi), at most 32. The address keeps its host bits (types.ParseCIDR puts them back).
 */
function cidrOf(text: string): { address: number; length: number; text: string } {
  ipv4Only(text);
  const match = /^([^/]+)\/(\d+)$/.exec(text);
  const length = Number(match?.[2]);
  if (!match || length > 32) throw new Error(`invalid CIDR address: ${text}`);
  const address = ipOf(match[1]!, `invalid CIDR address: ${text}`);
  // As types.IPNet marshals it again: the length without its leading zeros.
  return { address, length, text: `${match[1]}/${length}` };
}

// The Go types of host-local 1.1.1's Net and IPAMConfig (plugins/ipam/host-local/backend/allocator/config.go).
/** net.IP: a TextUnmarshaler; "" is a nil IP. */
const netIp: GoType = {
  kind: "text",
  goType: "net.IP",
  parse: (text) => (text === "" ? undefined : ipOf(text)),
};
/** pkg/ip.IP (requested addresses): an address with or without a prefix length. */
const requestedIp: GoType = {
  kind: "text",
  goType: "*ip.IP",
  parse: (text) => ipOf(text.split("/")[0]!, `invalid IP address ${text}`),
};
/** types.IPNet: unmarshals a string, then net.ParseCIDR. */
const ipNet: GoType = {
  kind: "unmarshaler",
  decode: (value) => {
    if (typeof value !== "string") throw new GoTypeError(jsonKind(value), "string", { path: [] });
    return cidrOf(value).text;
  },
};
const routeStruct: GoType = {
  kind: "struct",
  name: "route",
  goType: "types.route",
  fields: { dst: ipNet, gw: netIp },
};
/** types.Route unmarshals into its own struct, so its type errors surface at `routes`. */
const route: GoType = {
  kind: "unmarshaler",
  decode: (value) => {
    const r = goUnmarshal(value, routeStruct) as { dst?: string; gw?: number } | undefined;
    // host-local prints a route without dst as {"dst":"<nil>"}; a result the runtime cannot use.
    if (r?.dst === undefined)
      throw new CniError(CniErrorCode.INVALID_NETWORK_CONFIG, "invalid route: dst is required");
    return r;
  },
};
const rangeFields: Record<string, GoType> = {
  rangeStart: netIp,
  rangeEnd: netIp,
  subnet: ipNet,
  gateway: netIp,
};
const rangeType: GoType = { kind: "struct", name: "Range", goType: "allocator.Range", fields: rangeFields };
const rangeSets: GoType = {
  kind: "slice",
  goType: "[]allocator.RangeSet",
  of: { kind: "slice", goType: "allocator.RangeSet", of: rangeType },
};
const requestedIps: GoType = { kind: "slice", goType: "[]*ip.IP", of: requestedIp };
const netType: GoType = {
  kind: "struct",
  name: "Net",
  goType: "allocator.Net",
  fields: {
    name: { kind: "string" },
    cniVersion: { kind: "string" },
    ipam: {
      kind: "struct",
      name: "IPAMConfig",
      goType: "allocator.IPAMConfig",
      fields: {
        ...rangeFields, // the embedded *Range: the legacy single-range form
        Name: { kind: "string" },
        type: { kind: "string" },
        routes: { kind: "slice", goType: "[]*types.Route", of: route },
        dataDir: { kind: "string" },
        resolvConf: { kind: "string" },
        ranges: rangeSets,
      },
    },
    runtimeConfig: {
      kind: "struct",
      name: "",
      goType:
        'struct { IPRanges []allocator.RangeSet "json:\\"ipRanges,omitempty\\""; IPs []*ip.IP "json:\\"ips,omitempty\\"" }',
      fields: { ipRanges: rangeSets, ips: requestedIps },
    },
    args: {
      kind: "struct",
      name: "",
      goType: 'struct { A *allocator.IPAMArgs "json:\\"cni\\"" }',
      fields: {
        cni: {
          kind: "struct",
          name: "IPAMArgs",
          goType: "allocator.IPAMArgs",
          fields: { ips: requestedIps },
        },
      },
    },
  },
};

/** A decoded Range (keys present only when set). */
interface DecodedRange {
  subnet?: string;
  rangeStart?: number;
  rangeEnd?: number;
  gateway?: number;
}

interface DecodedNet {
  ipam?: DecodedRange & {
    routes?: ({ dst: string; gw?: number } | undefined)[];
    dataDir?: string;
    resolvConf?: string;
    ranges?: (DecodedRange | undefined)[][];
  };
  runtimeConfig?: { ipRanges?: (DecodedRange | undefined)[][]; ips?: (number | undefined)[] };
  args?: { cni?: { ips?: (number | undefined)[] } };
}

/**
 * CNI_ARGS as host-local reads them: IP= and IgnoreUnknown= are known; anything else is an error
 * unless ignored. IP is one field: a later IP= replaces an earlier one, as LoadArgs sets it.
 */
function requestedFromCniArgs(args: string): number[] {
  const pairs = parseCniArgs(args);
  const unknown: string[] = [];
  let ignoreUnknown = false;
  let ip: number | undefined;
  for (const [key, value] of pairs) {
    if (key === "IgnoreUnknown") {
      if (["1", "true", "True", "TRUE", "t", "T"].includes(value)) ignoreUnknown = true;
      else if (!["0", "false", "False", "FALSE", "f", "F"].includes(value))
        throw new Error(
          `ARGS: error parsing value of pair "${key}=${value}": boolean unmarshal error: invalid input ${value}`,
        );
    } else if (key === "IP") ip = ipOf(value.split("/")[0]!);
    else unknown.push(`${key}=${value}`);
  }
  if (unknown.length && !ignoreUnknown)
    throw new Error(`ARGS: unknown args [${unknown.map((u) => JSON.stringify(u)).join(" ")}]`);
  return ip === undefined ? [] : [ip];
}

function rangeInput(r: DecodedRange | undefined): RangeInput {
  const input: RangeInput = {};
  if (r?.subnet !== undefined) input.subnet = cidrOf(r.subnet);
  if (r?.rangeStart !== undefined) input.rangeStart = r.rangeStart;
  if (r?.rangeEnd !== undefined) input.rangeEnd = r.rangeEnd;
  if (r?.gateway !== undefined) input.gateway = r.gateway;
  return input;
}

const rangeSetInputs = (sets: (DecodedRange | undefined)[][] | undefined): RangeInput[][] =>
  (sets ?? []).map((set) => (set ?? []).map(rangeInput));

/**
 * The config as host-local reads it. Without CNI_ARGS the answer depends on the config alone: a frozen
 * config (a node's pods share one) is decoded once. Callers get a copy they may change.
 */
export function loadHostLocalConfig(config: PluginConfig, cniArgs: string): HostLocalConfig {
  if (cniArgs !== "") return decodeHostLocalConfig(config, cniArgs);
  const shared = decodeFrozen(config);
  return { ...shared, ranges: [...shared.ranges], requestedIps: [...shared.requestedIps] };
}

const decodeFrozen = memoFrozen((config: PluginConfig) => deepFreeze(decodeHostLocalConfig(config, "")));

function decodeHostLocalConfig(config: PluginConfig, cniArgs: string): HostLocalConfig {
  const net = goUnmarshal(config, netType) as DecodedNet;
  const ipam = net.ipam;
  if (!ipam) throw new Error("IPAM config missing 'ipam' key");

  const requested = requestedFromCniArgs(cniArgs);
  // A null in a list of addresses decodes to nothing (host-local dereferences it and panics).
  const listed = [...(net.args?.cni?.ips ?? []), ...(net.runtimeConfig?.ips ?? [])];
  requested.push(...listed.filter((ip) => ip !== undefined));

  // Runtime ranges first, then the legacy single range, then the declared ones (host-local's order).
  const inputs = [
    ...rangeSetInputs(net.runtimeConfig?.ipRanges),
    ...(ipam.subnet !== undefined ? [[rangeInput(ipam)]] : []),
    ...rangeSetInputs(ipam.ranges),
  ];
  if (inputs.length === 0) throw new Error("no IP ranges specified");
  const ranges = inputs.map((set, i) => {
    try {
      return canonicalizeRangeSet(set);
    } catch (error) {
      throw new Error(`invalid range set ${i}: ${(error as Error).message}`);
    }
  });
  // Specs before 0.3.0 carry one address per family.
  if (ranges.length > 1 && ["0.1.0", "0.2.0"].includes(config.cniVersion)) {
    throw new Error(`CNI version ${config.cniVersion} does not support more than 1 address per family`);
  }
  for (let i = 0; i < ranges.length - 1; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      if (rangeSetsOverlap(ranges[i]!, ranges[j]!)) throw new Error(`range set ${i} overlaps with ${j}`);
    }
  }
  const out: HostLocalConfig = {
    name: config.name,
    cniVersion: config.cniVersion,
    dataDir: ipam.dataDir || DEFAULT_DATA_DIR,
    ranges,
    requestedIps: [...new Set(requested)],
  };
  if (ipam.routes)
    out.routes = ipam.routes.map((r) => {
      if (!r) throw new CniError(CniErrorCode.INVALID_NETWORK_CONFIG, "invalid route: null");
      return { dst: r.dst, ...(r.gw !== undefined ? { gw: formatIpv4(r.gw) } : {}) };
    });
  if (ipam.resolvConf) out.resolvConf = ipam.resolvConf;
  return out;
}
