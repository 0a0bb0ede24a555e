import { AddressParseError } from "./errors.js";

/**
 * An IPv4 address as an unsigned 32-bit number. Numbers, not strings, because every hot path
 * (route lookup, IPAM, the packet walk) compares and masks addresses.
 */
export type Ipv4 = number;

/**
 * The address family of a value, in iproute2's words. Only "inet" exists today; IPv6 joins as
 * "inet6" with its own address and prefix types, so code that keys or formats by family keeps
 * working when it does.
 */
export type AddressFamily = "inet";

/** True for a number that is an IPv4 address (an integer in 0 … 2³² − 1). */
export function isIpv4Value(value: unknown): value is Ipv4 {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= 0xffffffff;
}

const DECIMAL = /^[0-9]+$/;

function parseOctets(text: string, input: string): Ipv4 {
  const parts = text.split(".");
  if (parts.length !== 4) throw new AddressParseError(input, `expected 4 octets, got ${parts.length}`);
  let value = 0;
  for (const part of parts) {
    if (!DECIMAL.test(part)) throw new AddressParseError(input, `octet "${part}" is not a decimal number`);
    // Leading zeros are refused as Go's net.ParseIP (and so the CNI plugins) refuses them: inet_aton
    // would read them as octal, so "010" is ambiguous.
    if (part.length > 1 && part[0] === "0")
      throw new AddressParseError(input, `octet ${part} has a leading zero`);
    const octet = Number(part);
    if (octet > 255) throw new AddressParseError(input, `octet ${part} out of range`);
    value = value * 256 + octet;
  }
  return value;
}

/**
 * Parses dotted-quad text ("10.0.1.2"). Throws AddressParseError naming the input. Well-formed text is
 * read character by character (a send parses its destination: `split` and a regex per octet were a
 * measured share of a warm trace); anything else goes the careful way, which words the refusal.
 */
export function parseIpv4(text: string): Ipv4 {
  const value = scanIpv4(text);
  return value >= 0 ? value : parseOctets(text, text);
}

/** Well-formed dotted-quad text's value, else -1 (`parseOctets` words why). */
function scanIpv4(text: string): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57 && !(digits === 1 && octet === 0) && digits < 3) {
      octet = octet * 10 + (c - 48);
      digits++;
      if (octet > 255) return -1;
    } else return -1;
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + octet;
}

export function isIpv4(text: string): boolean {
  // No error made to be thrown away: the scenario check asks it of every one of 150,000 names.
  return scanIpv4(text) >= 0;
}

export function formatIpv4(address: Ipv4): string {
  return `${address >>> 24}.${(address >>> 16) & 255}.${(address >>> 8) & 255}.${address & 255}`;
}

/** The netmask of a prefix length as a number (length 0 gives 0: JS shifts by 32 are no-ops). */
export function prefixMask(length: number): number {
  return length === 0 ? 0 : (0xffffffff << (32 - length)) >>> 0;
}

function parseLength(text: string, input: string): number {
  if (!DECIMAL.test(text)) throw new AddressParseError(input, `prefix length "${text}" is not a number`);
  const length = Number(text);
  if (length > 32) throw new AddressParseError(input, `prefix length ${length} out of range (0-32)`);
  return length;
}

function splitCidr(text: string): [string, string] {
  const slash = text.indexOf("/");
  if (slash < 0) throw new AddressParseError(text, "missing prefix length (expected address/length)");
  return [text.slice(0, slash), text.slice(slash + 1)];
}

/** An IPv4 prefix (CIDR block). Immutable; `network` always has its host bits clear. */
export class Ipv4Prefix {
  readonly network: Ipv4;
  readonly length: number;

  constructor(network: Ipv4, length: number) {
    if (!Number.isInteger(length) || length < 0 || length > 32) {
      throw new RangeError(`prefix length ${length} out of range (0-32)`);
    }
    this.length = length;
    this.network = (network & prefixMask(length)) >>> 0;
  }

  /**
   * Parses "10.0.0.0/16". Host bits set ("10.0.0.5/16") are refused with the message the CNI
   * plugins use, because a user who writes that usually meant something else.
   */
  static parse(text: string): Ipv4Prefix {
    const [addressText, lengthText] = splitCidr(text);
    const address = parseOctets(addressText, text);
    const length = parseLength(lengthText, text);
    const prefix = new Ipv4Prefix(address, length);
    if (prefix.network !== address) {
      throw new AddressParseError(
        text,
        `host bits set; for a mask of length ${length} the network address is ${formatIpv4(prefix.network)}`,
      );
    }
    return prefix;
  }

  static of(address: Ipv4, length: number): Ipv4Prefix {
    return new Ipv4Prefix(address, length);
  }

  /** A getter, not a field: a table of a million prefixes should not carry a million tags. */
  get family(): AddressFamily {
    return "inet";
  }

  get mask(): number {
    return prefixMask(this.length);
  }

  /** Number of addresses in the prefix, network and broadcast included. */
  get size(): number {
    return 2 ** (32 - this.length);
  }

  /** The last address (the IPv4 broadcast address for length < 31). */
  get broadcast(): Ipv4 {
    return (this.network + this.size - 1) >>> 0;
  }

  contains(address: Ipv4): boolean {
    return (address & this.mask) >>> 0 === this.network;
  }

  containsPrefix(other: Ipv4Prefix): boolean {
    return other.length >= this.length && this.contains(other.network);
  }

  overlaps(other: Ipv4Prefix): boolean {
    return this.containsPrefix(other) || other.containsPrefix(this);
  }

  equals(other: Ipv4Prefix): boolean {
    return this.network === other.network && this.length === other.length;
  }

  /** The n-th address counted from the network address (n = 1 is the conventional gateway). */
  host(n: number): Ipv4 {
    if (!Number.isInteger(n) || n < 0 || n >= this.size) {
      throw new RangeError(`${this}: host index ${n} out of range (0-${this.size - 1})`);
    }
    return (this.network + n) >>> 0;
  }

  /** Offset of an address inside the prefix, or -1 when outside. */
  indexOf(address: Ipv4): number {
    return this.contains(address) ? address - this.network : -1;
  }

  *addresses(): IterableIterator<Ipv4> {
    for (let i = 0; i < this.size; i++) yield (this.network + i) >>> 0;
  }

  subnetCount(length: number): number {
    this.checkSubnetLength(length);
    return 2 ** (length - this.length);
  }

  /** The index-th subnet of the given length (10.0.0.0/16 subnet(2, 24) is 10.0.2.0/24). */
  subnet(index: number, length: number): Ipv4Prefix {
    const count = this.subnetCount(length);
    if (!Number.isInteger(index) || index < 0 || index >= count) {
      throw new RangeError(`${this}: subnet index ${index} out of range for /${length} (0-${count - 1})`);
    }
    return new Ipv4Prefix(this.network + index * 2 ** (32 - length), length);
  }

  *subnets(length: number): IterableIterator<Ipv4Prefix> {
    const count = this.subnetCount(length);
    for (let i = 0; i < count; i++) yield this.subnet(i, length);
  }

  toString(): string {
    return `${formatIpv4(this.network)}/${this.length}`;
  }

  toJSON(): string {
    return this.toString();
  }

  private checkSubnetLength(length: number): void {
    if (!Number.isInteger(length) || length < this.length || length > 32) {
      throw new RangeError(`${this}: cannot split into /${length} (must be ${this.length}-32)`);
    }
  }
}

/** An address with its prefix, as on an interface: "10.244.1.1/24". Host bits are expected here. */
export interface Ipv4InterfaceAddress {
  readonly address: Ipv4;
  readonly prefix: Ipv4Prefix;
}

export function parseIpv4InterfaceAddress(text: string): Ipv4InterfaceAddress {
  const [addressText, lengthText] = splitCidr(text);
  const address = parseOctets(addressText, text);
  return { address, prefix: new Ipv4Prefix(address, parseLength(lengthText, text)) };
}

export function formatIpv4InterfaceAddress(value: Ipv4InterfaceAddress): string {
  return `${formatIpv4(value.address)}/${value.prefix.length}`;
}
