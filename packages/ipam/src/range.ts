import { Ipv4Prefix, formatIpv4 } from "@podnet/core";

/** One host-local range after canonicalization: every field set, addresses as numbers. */
export interface IpRange {
  subnet: Ipv4Prefix;
  rangeStart: number;
  rangeEnd: number;
  gateway: number;
}

export type RangeSet = IpRange[];

export interface RangeInput {
  /** Absent when the config gave none (host-local then says "IP <nil> not v4 nor v6"). */
  subnet?: { address: number; length: number };
  rangeStart?: number;
  rangeEnd?: number;
  gateway?: number;
}

export function rangeContains(r: IpRange, address: number): boolean {
  return r.subnet.contains(address) && address >= r.rangeStart && address <= r.rangeEnd;
}

export function formatRange(r: IpRange): string {
  return `${formatIpv4(r.rangeStart)}-${formatIpv4(r.rangeEnd)}`;
}

export function formatRangeSet(set: RangeSet): string {
  return set.map(formatRange).join(",");
}

function rangesOverlap(a: IpRange, b: IpRange): boolean {
  return (
    rangeContains(a, b.rangeStart) ||
    rangeContains(a, b.rangeEnd) ||
    rangeContains(b, a.rangeStart) ||
    rangeContains(b, a.rangeEnd)
  );
}

export function rangeSetsOverlap(a: RangeSet, b: RangeSet): boolean {
  return a.some((x) => b.some((y) => rangesOverlap(x, y)));
}

export function rangeSetContains(set: RangeSet, address: number): boolean {
  return set.some((r) => rangeContains(r, address));
}

/**
 * host-local's Range.Canonicalize: the subnet needs two host bits and no host bits set; the
 * gateway defaults to network+1; rangeStart to network+1 (the iterator skips the gateway);
 * rangeEnd to the last address before broadcast. Messages are host-local's.
 */
export function canonicalizeRange(input: RangeInput): IpRange {
  if (!input.subnet) throw new Error("IP <nil> not v4 nor v6");
  const { address, length } = input.subnet;
  const subnet = new Ipv4Prefix(address, length);
  const cidr = `${formatIpv4(address)}/${length}`;
  if (length > 30) throw new Error(`Network ${cidr} too small to allocate from`);
  // host-local fails on it by accident (a range start it cannot print); podnet says why.
  if (length === 0) throw new Error(`Network ${cidr} too large to allocate from: it is every address`);
  if (subnet.network !== address) {
    throw new Error(
      `Network has host bits set. For a subnet mask of length ${length} the network address is ${formatIpv4(subnet.network)}`,
    );
  }
  const partial = {
    subnet,
    rangeStart: input.rangeStart ?? subnet.network + 1,
    rangeEnd: input.rangeEnd ?? subnet.broadcast - 1,
    gateway: input.gateway ?? subnet.network + 1,
  };
  // host-local's Range.Contains bounds rangeStart by rangeEnd too: a start after the end is "not in network".
  if (
    input.rangeStart !== undefined &&
    (!subnet.contains(input.rangeStart) ||
      (input.rangeEnd !== undefined && input.rangeStart > input.rangeEnd))
  )
    throw new Error(`RangeStart ${formatIpv4(input.rangeStart)} not in network ${subnet}`);
  if (
    input.rangeEnd !== undefined &&
    (!subnet.contains(input.rangeEnd) || input.rangeEnd < partial.rangeStart)
  )
    throw new Error(`RangeEnd ${formatIpv4(input.rangeEnd)} not in network ${subnet}`);
  return partial;
}

export function canonicalizeRangeSet(inputs: RangeInput[]): RangeSet {
  if (inputs.length === 0) throw new Error("empty range set");
  const set = inputs.map(canonicalizeRange);
  for (let i = 0; i < set.length; i++) {
    for (let j = i + 1; j < set.length; j++) {
      if (rangesOverlap(set[i]!, set[j]!))
        throw new Error(`subnets ${formatRange(set[i]!)} and ${formatRange(set[j]!)} overlap`);
    }
  }
  return set;
}
