/**
 * Values from programs are checked as the kernel checks netlink attributes: a number that is no
 * address is refused with iproute2's words for the text it would have been.
 */
import { Ipv4Prefix, formatIpv4, isIpv4Value, isMacValue, type Ipv4InterfaceAddress } from "@podnet/core";
import { KernelMessage, NetlinkError, type Errno } from "@podnet/netlink";

const utf8 = new TextEncoder();
const ASCII = /^[ -~]*$/;

/**
 * A link name as `ip link add name NAME` takes it: iproute2 refuses an empty one, one over 15 bytes
 * (IFNAMSIZ less its NUL: "ä" is two) or one with "/" or ASCII whitespace before sending anything,
 * and the kernel (dev_valid_name) one with ":" and "." or "..".
 */
export function checkIfname(name: string, command: Command): void {
  // ASCII names (nearly all) are their own byte count: no encoding per link made.
  const bytes = ASCII.test(name) ? name.length : utf8.encode(name).length;
  if (name === "" || bytes > 15 || /[/ \t\n\v\f\r]/.test(name))
    fail("EINVAL", KernelMessage.badIfname(name), command);
}

/** The kernel's half of `checkIfname`, met only once iproute2's half has passed. */
export function checkKernelIfname(name: string, command: Command): void {
  if (name.includes(":") || name === "." || name === "..")
    fail("EINVAL", KernelMessage.invalidArgument, command);
}

/**
 * The command a refusal names, in iproute2 syntax. A function where building the text costs: the
 * route manager writes a million routes at 1,000 nodes and almost none is refused.
 */
export type Command = string | (() => string);

export function fail(errno: Errno, message: string, command: Command): never {
  throw new NetlinkError(errno, message, typeof command === "string" ? command : command());
}

/** A destination prefix from a program: a prefix value with its host bits clear. */
export function isPrefixValue(value: unknown): value is Ipv4Prefix {
  const p = value as Ipv4Prefix | undefined;
  return (
    typeof p === "object" &&
    p !== null &&
    isIpv4Value(p.network) &&
    Number.isInteger(p.length) &&
    p.length >= 0 &&
    p.length <= 32 &&
    (p.network & p.mask) >>> 0 === p.network
  );
}

export function parseMac(value: number, command: Command): number {
  return isMacValue(value)
    ? value
    : fail("EINVAL", `Error: "${String(value)}" is not a valid link address.`, command);
}

export function parseAddress(value: number, command: Command): number {
  return isIpv4Value(value)
    ? value
    : fail("EINVAL", `Error: inet address is expected rather than "${String(value)}".`, command);
}

export function parseDst(value: Ipv4Prefix, command: Command): Ipv4Prefix {
  return isPrefixValue(value)
    ? value
    : fail("EINVAL", `Error: any valid prefix is expected rather than "${String(value)}".`, command);
}

export function cidrText(a: Ipv4InterfaceAddress): string {
  return `${formatIpv4(a.address)}/${a.prefix?.length}`;
}
