/**
 * Builds small topologies through any host API — layer-2 segments, hosts plugged into them, bridges
 * holding a pod gateway, pods on veth pairs — the way the original notes draw them. The simulator's
 * tests and benchmarks use it, and the differential tests build the same topology on the simulator
 * and on the real kernel with it. Namespace names get `prefix` (a per-run prefix on Linux). Addresses
 * are given as text, as a person writes a topology, and parsed here.
 */
import { fnv1a32 } from "@podnet/core";
import { NetlinkError } from "./errors.js";
import type { Netlink } from "./types.js";
import { DEFAULT_ROUTE, parseAddrArgument, parseAddressArgument } from "./values.js";

const utf8 = new TextEncoder();

/**
 * `wanted` as a device name: itself when it fits Linux's 15 bytes, else its first characters and a
 * hash of the whole, so that "kubernetes-worker-1-eth0" and "kubernetes-worker-2-eth0" stay two
 * devices (cutting both to 15 characters made them one, and the second host "File exists").
 */
export function deviceName(wanted: string): string {
  if (utf8.encode(wanted).length <= 15) return wanted;
  const hash = fnv1a32(wanted).toString(16).padStart(8, "0");
  let head = "";
  for (const c of wanted) {
    if (utf8.encode(`${head}${c}`).length > 6) break;
    head += c;
  }
  return `${head}-${hash}`;
}

export class LabTopology<N extends Netlink = Netlink> {
  private segments = new Set<string>();

  constructor(
    readonly k: N,
    readonly prefix = "",
  ) {}

  /** The real name of a namespace of this lab. */
  ns(name: string): string {
    return this.prefix + name;
  }

  /**
   * Creates a namespace unless it exists; true when it was created. Asking to create (and being
   * told it exists) rather than listing every namespace per host: listing made N hosts cost N².
   */
  private async ensureNamespace(name: string): Promise<boolean> {
    try {
      await this.k.netns.add(name);
      return true;
    } catch (error) {
      if (error instanceof NetlinkError && error.errno === "EEXIST") return false;
      throw error;
    }
  }

  /** A layer-2 segment: a bridge in the "underlay" namespace, as the Linux backend builds it. */
  async segment(name: string): Promise<void> {
    if (this.segments.has(name)) return;
    const underlay = this.ns("underlay");
    await this.ensureNamespace(underlay);
    await this.k.link.add(underlay, { kind: "bridge", name });
    await this.k.link.set(underlay, name, { up: true });
    this.segments.add(name);
  }

  /** A machine with `nic` plugged into `segment`, addressed `cidr`. */
  async host(
    host: string,
    segment: string,
    cidr: string,
    options: { gateway?: string; forwarding?: boolean; nic?: string; mtu?: number } = {},
  ): Promise<void> {
    await this.segment(segment);
    const name = this.ns(host);
    const underlay = this.ns("underlay");
    const nic = options.nic ?? "eth0";
    if (await this.ensureNamespace(name)) await this.k.link.set(name, "lo", { up: true });
    const port = deviceName(`${host}-${nic}`);
    await this.k.link.add(name, {
      kind: "veth",
      name: nic,
      peer: { name: port, netns: underlay },
      mtu: options.mtu ?? 1500,
    });
    await this.k.link.set(underlay, port, { master: segment, up: true });
    await this.k.addr.add(name, nic, parseAddrArgument(cidr));
    await this.k.link.set(name, nic, { up: true });
    if (options.gateway)
      await this.k.route.add(name, { dst: DEFAULT_ROUTE, via: parseAddressArgument(options.gateway) });
    if (options.forwarding) await this.k.sysctl.set(name, "net.ipv4.ip_forward", "1");
  }

  /**
   * Takes a machine off its segment and deletes its namespace. Its port on the segment is deleted
   * first, and with it the machine's end: deleting the namespace alone leaves the kernel to destroy
   * its devices later, from a work queue, so a machine of the same name plugged in right after could
   * find its old port still there ("File exists").
   */
  async removeHost(host: string, nic = "eth0"): Promise<void> {
    await this.k.link.del(this.ns("underlay"), deviceName(`${host}-${nic}`)).catch((error: unknown) => {
      if (!(error instanceof NetlinkError && error.errno === "ENODEV")) throw error;
    });
    await this.k.netns.del(this.ns(host));
  }

  /** A bridge on a node holding the pods' gateway address (docker0, cbr0). */
  async bridge(nodeName: string, name: string, cidr: string, mtu = 1500): Promise<void> {
    const node = this.ns(nodeName);
    await this.k.link.add(node, { kind: "bridge", name, mtu });
    await this.k.addr.add(node, name, parseAddrArgument(cidr));
    await this.k.link.set(node, name, { up: true });
    await this.k.sysctl.set(node, "net.ipv4.ip_forward", "1");
  }

  /** A pod: its own namespace, eth0 by veth into the node's bridge, a default route to the bridge. */
  async pod(
    nodeName: string,
    podName: string,
    bridge: string,
    cidr: string,
    gateway: string,
    mtu = 1500,
  ): Promise<void> {
    const node = this.ns(nodeName);
    const pod = this.ns(podName);
    await this.k.netns.add(pod);
    await this.k.link.set(pod, "lo", { up: true });
    const hostEnd = deviceName(`veth-${podName}`);
    await this.k.link.add(node, { kind: "veth", name: hostEnd, peer: { name: "eth0", netns: pod }, mtu });
    await this.k.link.set(node, hostEnd, { master: bridge, up: true });
    await this.k.addr.add(pod, "eth0", parseAddrArgument(cidr));
    await this.k.link.set(pod, "eth0", { up: true });
    await this.k.route.add(pod, { dst: DEFAULT_ROUTE, via: parseAddressArgument(gateway) });
  }
}
