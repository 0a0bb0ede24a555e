import { AddressParseError } from "./errors.js";

/**
 * A MAC address as a 48-bit number (exact in a double). Numbers keep bridge FDB lookups and
 * comparisons cheap in the packet walk.
 */
export type Mac = number;

export const BROADCAST_MAC: Mac = 0xffffffffffff;
const OCTET_SCALE = 2 ** 40;

export function parseMac(text: string): Mac {
  const parts = text.split(":");
  if (parts.length !== 6)
    throw new AddressParseError(text, `expected 6 colon-separated octets, got ${parts.length}`);
  let value = 0;
  for (const part of parts) {
    if (!/^[0-9a-fA-F]{2}$/.test(part))
      throw new AddressParseError(text, `octet "${part}" is not two hex digits`);
    value = value * 256 + parseInt(part, 16);
  }
  return value;
}

/** True for a number that is a MAC address (an integer in 0 … 2⁴⁸ − 1). */
export function isMacValue(value: unknown): value is Mac {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= BROADCAST_MAC;
}

export function formatMac(mac: Mac): string {
  let out = "";
  for (let shift = 5; shift >= 0; shift--) {
    const octet = Math.floor(mac / 256 ** shift) % 256;
    out += (shift === 5 ? "" : ":") + octet.toString(16).padStart(2, "0");
  }
  return out;
}

/** Group bit (I/G) of the first octet: broadcast and multicast frames are flooded by bridges. */
export function isMulticastMac(mac: Mac): boolean {
  return Math.floor(mac / OCTET_SCALE) % 2 === 1;
}

/**
 * mulberry32: a tiny seeded generator. Not for secrets; for reproducible MACs, veth names and
 * `statistic --mode random` decisions, so the same scenario always gives the same trace.
 */
export class SeededRandom {
  private state: number;

  constructor(seed: number | string) {
    this.state = typeof seed === "number" ? seed >>> 0 : fnv1a32(seed);
  }

  /** Where the sequence is: equal before and after means nothing was drawn in between. */
  get position(): number {
    return this.state;
  }

  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }
}

/** FNV-1a, 32-bit: a stable hash for seeding from names. */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * Hands out locally administered unicast MACs (first octet xxxxxx10, as the kernel's random MACs
 * for veth/bridge/vxlan are) from a seed, so traces are reproducible run to run.
 */
export class MacGenerator {
  private readonly random: SeededRandom;

  constructor(seed: number | string) {
    this.random = new SeededRandom(seed);
  }

  next(): Mac {
    const high = ((this.random.nextUint32() & 0xfeff) | 0x0200) >>> 0; // clear I/G, set U/L in octet 0
    const low = this.random.nextUint32();
    return high * 2 ** 32 + low;
  }
}
