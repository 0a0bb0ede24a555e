/**
 * The reference plugins' iptables chain names (containernetworking/plugins' utils.FormatChainName):
 * "CNI-", a plugin's own prefix ("DN-" for portmap's per-container chain), then hex of
 * sha512(network name + container ID), cut to iptables' 28 characters. The bridge and portmap
 * plugins both name chains this way, so a chain is found again at DEL from the same two strings.
 */
import { sha512 } from "@noble/hashes/sha2";

const MAX_CHAIN_LENGTH = 28;

export function cniChainName(network: string, containerId: string, prefix = ""): string {
  const head = `CNI-${prefix}`;
  const digest = sha512(new TextEncoder().encode(network + containerId));
  const hex = Array.from(digest.subarray(0, Math.ceil((MAX_CHAIN_LENGTH - head.length) / 2)), (b) =>
    b.toString(16).padStart(2, "0"),
  ).join("");
  return (head + hex).slice(0, MAX_CHAIN_LENGTH);
}
