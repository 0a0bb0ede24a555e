/**
 * host-local's configuration (LoadIPAMConfig): the `ipam` block of a network config, requested
 * addresses from CNI_ARGS, args.cni.ips and runtimeConfig.ips, and the legacy single-range form,
 * validated in host-local's order with host-local's words.
 */
import { parseIpv4 } from "@podnet/core";
import { parseCniArgs, type CniRoute, type PluginConfig } from "@podnet/cni";
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

function ipOf(text: unknown, what = "IP address"): number {
  if (typeof text !== "string") throw new Error(`invalid ${what}: ${String(text)}`);
  if (text.includes(":")) throw new Error(`${text}: IPv6 is not supported by podnet-ipam`);
  try {
    return parseIpv4(text.split("/")[0]!);
  } catch {
    throw new Error(`invalid ${what}: ${text}`);
  }
}

function cidrOf(text: unknown): { address: number; length: number } {
  if (typeof text !== "string" || !/^[^/]+\/\d{1,2}$/.test(text))
    throw new Error(`invalid CIDR address: ${String(text)}`);
  if (text.includes(":")) throw new Error(`${text}: IPv6 is not supported by podnet-ipam`);
  const [address, length] = text.split("/");
  const len = Number(length);
  if (len > 32) throw new Error(`invalid CIDR address: ${text}`);
  try {
    return { address: parseIpv4(address!), length: len };
  } catch {
    throw new Error(`invalid CIDR address: ${text}`);
  }
}

function rangeInput(raw: unknown): RangeInput {
  const r = (raw ?? {}) as Record<string, unknown>;
  const input: RangeInput = { subnet: cidrOf(r.subnet) };
  if (r.rangeStart !== undefined) input.rangeStart = ipOf(r.rangeStart);
  if (r.rangeEnd !== undefined) input.rangeEnd = ipOf(r.rangeEnd);
  if (r.gateway !== undefined) input.gateway = ipOf(r.gateway);
  return input;
}

/** CNI_ARGS as host-local reads them: IP= and IgnoreUnknown= are known; anything else is an error unless ignored. */
function requestedFromCniArgs(args: string): number[] {
  const pairs = parseCniArgs(args);
  const unknown: string[] = [];
  let ignoreUnknown = false;
  const ips: number[] = [];
  for (const [key, value] of pairs) {
    if (key === "IgnoreUnknown") {
      if (["1", "true", "True", "TRUE", "t", "T"].includes(value)) ignoreUnknown = true;
      else if (!["0", "false", "False", "FALSE", "f", "F"].includes(value))
        throw new Error(
          `ARGS: error parsing value of pair "${key}=${value}": boolean unmarshal error: invalid input ${value}`,
        );
    } else if (key === "IP") ips.push(ipOf(value));
    else unknown.push(`${key}=${value}`);
  }
  if (unknown.length && !ignoreUnknown)
    throw new Error(`ARGS: unknown args [${unknown.map((u) => JSON.stringify(u)).join(" ")}]`);
  return ips;
}

export function loadHostLocalConfig(config: PluginConfig, cniArgs: string): HostLocalConfig {
  const ipam = config.ipam as Record<string, unknown> | undefined;
  // Decoding comes first in host-local (json.Unmarshal), so a malformed subnet wins over everything else.
  const legacy = ipam && ipam.subnet !== undefined ? rangeInput(ipam) : undefined;
  const rawRanges = ipam?.ranges;
  if (rawRanges !== undefined && !Array.isArray(rawRanges))
    throw new Error(
      "json: cannot unmarshal ranges into Go struct field IPAMConfig.ipam.ranges of type []allocator.RangeSet",
    );
  const declared = ((rawRanges ?? []) as unknown[]).map((set) =>
    (Array.isArray(set) ? set : []).map(rangeInput),
  );
  const runtime = (config.runtimeConfig ?? {}) as Record<string, unknown>;
  const runtimeRanges = Array.isArray(runtime.ipRanges)
    ? (runtime.ipRanges as unknown[]).map((set) => (Array.isArray(set) ? set : []).map(rangeInput))
    : [];
  if (!ipam) throw new Error("IPAM config missing 'ipam' key");

  const requested = requestedFromCniArgs(cniArgs);
  const cniIps = ((config.args as { cni?: { ips?: unknown[] } } | undefined)?.cni?.ips ?? []) as unknown[];
  requested.push(...cniIps.map((ip) => ipOf(ip)));
  if (Array.isArray(runtime.ips)) requested.push(...(runtime.ips as unknown[]).map((ip) => ipOf(ip)));

  const inputs = [...runtimeRanges, ...(legacy ? [[legacy]] : []), ...declared];
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
    dataDir: typeof ipam.dataDir === "string" && ipam.dataDir !== "" ? ipam.dataDir : DEFAULT_DATA_DIR,
    ranges,
    requestedIps: [...new Set(requested)],
  };
  if (Array.isArray(ipam.routes)) out.routes = ipam.routes as CniRoute[];
  if (typeof ipam.resolvConf === "string" && ipam.resolvConf !== "") out.resolvConf = ipam.resolvConf;
  return out;
}
