/**
 * The simulated kernel's addresses (`ip addr`): a namespace's local addresses and the connected
 * route each prefix brings while its device is up.
 */
import { Ipv4Prefix, formatIpv4, isIpv4Value, type Ipv4InterfaceAddress } from "@podnet/core";
import { KernelMessage, type AddrDump } from "@podnet/netlink";
import type { SimKernel } from "./kernel.js";
import { fail, cidrText, type Command } from "./kernel-args.js";
import { dumpLink, listedLinks } from "./kernel-links.js";
import type { SimLink } from "./link.js";
import { LOOPBACK } from "./namespace.js";

// ---- addresses --------------------------------------------------------------------------

export const addrApi = (k: SimKernel) => ({
  add: async (
    nsName: string,
    dev: string,
    address: Ipv4InterfaceAddress,
    options: { broadcast?: boolean } = {},
  ) => {
    const command = () => `ip -n ${nsName} addr add ${cidrText(address)} dev ${dev}`;
    const link = k.device(k.ns(nsName, command), dev, command);
    const parsed = {
      ...parseInterfaceAddress(address, command),
      ...(options.broadcast ? { broadcast: true } : {}),
    };
    if (
      link.addresses.some((a) => a.address === parsed.address && a.prefix.length === parsed.prefix.length)
    ) {
      fail("EEXIST", KernelMessage.addressAlreadyAssigned, command);
    }
    attachAddress(k, link, parsed);
    if (link.adminUp) addConnectedRoute(link, parsed);
  },
  del: async (nsName: string, dev: string, address: Ipv4InterfaceAddress) => {
    const command = () => `ip -n ${nsName} addr del ${cidrText(address)} dev ${dev}`;
    const link = k.device(k.ns(nsName, command), dev, command);
    const parsed = parseInterfaceAddress(address, command);
    const found = link.addresses.find(
      (a) => a.address === parsed.address && a.prefix.length === parsed.prefix.length,
    );
    if (!found) fail("EADDRNOTAVAIL", KernelMessage.addressNotFound, command);
    detachAddress(k, link, found);
  },
  list: async (nsName: string, filter: { dev?: string } = {}): Promise<AddrDump[]> =>
    listedLinks(k, nsName, filter).map((link) => ({
      ...dumpLink(link),
      addr_info: link.addresses.map((a) => ({
        family: "inet" as const,
        local: formatIpv4(a.address),
        prefixlen: a.prefix.length,
        ...(a.broadcast && a.prefix.length < 31 ? { broadcast: formatIpv4(a.prefix.broadcast) } : {}),
        scope:
          link.kind === "loopback" && LOOPBACK.contains(a.address) ? ("host" as const) : ("global" as const),
        label: link.name,
      })),
    })),
});

export function parseInterfaceAddress(value: Ipv4InterfaceAddress, command: Command): Ipv4InterfaceAddress {
  if (
    !isIpv4Value(value?.address) ||
    !Number.isInteger(value.prefix?.length) ||
    value.prefix.length < 0 ||
    value.prefix.length > 32
  )
    fail("EINVAL", `Error: any valid prefix is expected rather than "${cidrText(value)}".`, command);
  // The prefix is the address's own: a caller's prefix with another network is not trusted.
  return { address: value.address, prefix: new Ipv4Prefix(value.address, value.prefix.length) };
}

export function attachAddress(k: SimKernel, link: SimLink, a: Ipv4InterfaceAddress): void {
  k.topologyVersion++;
  link.ns.addressGeneration++;
  link.addresses.push(a);
  if (!link.ns.localAddresses.has(a.address)) link.ns.localAddresses.set(a.address, link);
}

export function detachAddress(k: SimKernel, link: SimLink, a: Ipv4InterfaceAddress): void {
  k.topologyVersion++;
  link.ns.addressGeneration++;
  link.addresses.splice(link.addresses.indexOf(a), 1);
  if (link.ns.localAddresses.get(a.address) === link) {
    link.ns.localAddresses.delete(a.address);
    for (const other of link.ns.links.values()) {
      if (other.addresses.some((x) => x.address === a.address)) link.ns.localAddresses.set(a.address, other);
    }
  }
  if (!link.addresses.some((x) => x.prefix.equals(a.prefix))) {
    link.ns.routes.removeWhere((r) => r.dev === link && r.protocol === "kernel" && r.dst.equals(a.prefix));
  }
}

export function addConnectedRoute(link: SimLink, a: Ipv4InterfaceAddress): void {
  // No prefix route for a /32 (flannel.1's 10.244.1.0/32) or for loopback's own range.
  if (a.prefix.length === 32 || link.kind === "loopback") return;
  const routes = link.ns.routes;
  if (routes.exact(a.prefix).some((r) => r.dev === link && r.protocol === "kernel")) return;
  routes.insert({
    dst: a.prefix,
    dev: link,
    metric: 0,
    protocol: "kernel",
    scope: "link",
    prefsrc: a.address,
    onlink: false,
  });
}
