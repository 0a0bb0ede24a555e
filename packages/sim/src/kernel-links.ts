/**
 * The simulated kernel's links (`ip link`): creation by kind, changes, bridge ports, up and down,
 * moves between namespaces, and dumps in `ip -j link` shape.
 */
import { formatIpv4 } from "@podnet/core";
import { KernelMessage, type LinkChange, type LinkDump, type LinkSpec } from "@podnet/netlink";
import type { SimKernel } from "./kernel.js";
import { checkIfname, fail, parseMac, parseAddress } from "./kernel-args.js";
import { attachAddress, detachAddress, addConnectedRoute } from "./kernel-addresses.js";
import type { SimLink } from "./link.js";
import { LOOPBACK, type SimNamespace } from "./namespace.js";
import { VxlanFdb } from "./number-map.js";

// ---- links ------------------------------------------------------------------------------

export const linkApi = (k: SimKernel) => ({
  add: async (nsName: string, spec: LinkSpec) => addLink(k, nsName, spec),
  del: async (nsName: string, name: string) => {
    const command = `ip -n ${nsName} link del ${name}`;
    destroyLink(k, k.device(k.ns(nsName, command), name, command));
  },
  set: async (nsName: string, name: string, change: LinkChange) => setLink(k, nsName, name, change),
  list: async (nsName: string, filter: { dev?: string } = {}): Promise<LinkDump[]> =>
    listedLinks(k, nsName, filter).map((l) => dumpLink(l)),
});

/** The links a `link show` / `addr show` lists: all by index, or the one named (none if absent). */
export function listedLinks(k: SimKernel, nsName: string, filter: { dev?: string }): SimLink[] {
  const links = k.ns(nsName).links;
  if (filter.dev !== undefined) {
    const link = links.get(filter.dev);
    return link ? [link] : [];
  }
  return [...links.values()].sort((a, b) => a.index - b.index);
}

export function addLink(k: SimKernel, nsName: string, spec: LinkSpec): void {
  const command = `ip -n ${nsName} link add ${spec.name} type ${spec.kind}`;
  const ns = k.ns(nsName, command);
  switch (spec.kind) {
    case "veth": {
      const peerNs = spec.peer.netns !== undefined ? k.ns(spec.peer.netns, command) : ns;
      // iproute2 reads both names before it sends anything.
      checkIfname(spec.name, command);
      checkIfname(spec.peer.name, command);
      if (
        ns.links.has(spec.name) ||
        peerNs.links.has(spec.peer.name) ||
        (peerNs === ns && spec.peer.name === spec.name)
      )
        fail("EEXIST", KernelMessage.fileExists, command);
      // The kernel registers the peer first: it takes the lower index (`ip link` lists it first).
      const b = k.createLink(peerNs, spec.peer.name, "veth", spec.mtu ?? 1500, undefined, command);
      const a = k.createLink(ns, spec.name, "veth", spec.mtu ?? 1500, spec.address, command);
      a.peer = b;
      b.peer = a;
      return;
    }
    case "bridge": {
      const bridge = k.createLink(ns, spec.name, "bridge", spec.mtu ?? 1500, spec.address, command);
      bridge.ports = new Set();
      bridge.fdb = new Map();
      bridge.portMacs = new Map();
      return;
    }
    case "dummy":
      k.createLink(ns, spec.name, "dummy", spec.mtu ?? 1500, spec.address, command);
      return;
    case "vxlan": {
      if (!Number.isInteger(spec.vni) || spec.vni < 0 || spec.vni >= 2 ** 24)
        fail("EINVAL", `Error: argument "${spec.vni}" is wrong: invalid id`, command);
      const lower = spec.dev !== undefined ? k.device(ns, spec.dev, command) : undefined;
      const local = spec.local !== undefined ? parseAddress(spec.local, command) : undefined;
      // With a lower device the kernel sets MTU = lower MTU − 50 (the VXLAN overhead); without one it stays 1500.
      const vxlan = k.createLink(
        ns,
        spec.name,
        "vxlan",
        spec.mtu ?? (lower ? lower.mtu - 50 : 1500),
        spec.address,
        command,
      );
      vxlan.vxlan = {
        vni: spec.vni,
        local,
        dstport: spec.dstport ?? 8472,
        dev: spec.dev,
        learning: spec.learning ?? true,
        fdb: new VxlanFdb(),
      };
      return;
    }
  }
}

export function setLink(k: SimKernel, nsName: string, name: string, change: LinkChange): void {
  const command = `ip -n ${nsName} link set ${name}`;
  k.topologyVersion++;
  const ns = k.ns(nsName, command);
  // iproute2 resolves the master's name before anything else.
  if (typeof change.master === "string" && !ns.links.has(change.master))
    fail("ENODEV", KernelMessage.noSuchMaster(change.master), command);
  const link = k.device(ns, name, command);
  if (change.address !== undefined) {
    const bridge = link.master;
    if (bridge) release(link);
    link.mac = parseMac(change.address, command);
    if (bridge) enslave(bridge, link);
  }
  if (change.mtu !== undefined) {
    if (!Number.isInteger(change.mtu) || change.mtu < 68) fail("EINVAL", KernelMessage.mtuTooSmall, command);
    if (change.mtu > 65535) fail("EINVAL", "Error: mtu greater than device maximum.", command);
    link.mtu = change.mtu;
    if (link.kind === "bridge") link.mtuSetByUser = true;
    else if (link.master) autoMtu(link.master);
  }
  if (change.master !== undefined) {
    release(link);
    if (change.master !== null) {
      const bridge = k.device(ns, change.master, command);
      if (bridge.kind !== "bridge" || bridge === link)
        fail("EOPNOTSUPP", KernelMessage.notSupported, command);
      enslave(bridge, link);
    }
  }
  if (change.hairpin !== undefined) {
    if (!link.master)
      fail("EOPNOTSUPP", KernelMessage.notSupported, `bridge -n ${nsName} link set dev ${name} hairpin`);
    link.hairpin = change.hairpin;
  }
  if (change.netns !== undefined && change.netns !== nsName)
    moveLink(k, link, k.ns(change.netns, command), command);
  if (change.up !== undefined && change.up !== link.adminUp) {
    if (change.up) linkUp(k, link);
    else linkDown(k, link);
  }
}

export function enslave(bridge: SimLink, port: SimLink): void {
  port.master = bridge;
  bridge.ports!.add(port);
  bridge.portMacs!.set(port.mac, (bridge.portMacs!.get(port.mac) ?? 0) + 1);
  // The bridge's MTU is its ports' smallest already: one more port can only lower it (the first sets
  // it). Not a walk of every port: the underlay's bridge takes 5,000 of them in a build.
  if (!bridge.mtuSetByUser) bridge.mtu = bridge.ports!.size === 1 ? port.mtu : Math.min(bridge.mtu, port.mtu);
}

/**
 * A bridge's MTU follows its ports' smallest (1500 with none), as the kernel's br_mtu_auto_adjust
 * keeps it, until its own MTU is set (an MTU given when it is made is not "set": the next port
 * changes it).
 */
function autoMtu(bridge: SimLink): void {
  if (bridge.mtuSetByUser) return;
  let mtu = 0;
  for (const port of bridge.ports!) if (mtu === 0 || port.mtu < mtu) mtu = port.mtu;
  bridge.mtu = mtu || 1500;
}

export function release(port: SimLink): void {
  const bridge = port.master;
  if (!bridge) return;
  bridge.ports!.delete(port);
  const count = bridge.portMacs!.get(port.mac) ?? 0;
  if (count <= 1) bridge.portMacs!.delete(port.mac);
  else bridge.portMacs!.set(port.mac, count - 1);
  for (const [mac, entry] of bridge.fdb!) if (entry.port === port) bridge.fdb!.delete(mac);
  port.master = undefined;
  autoMtu(bridge);
}

export function linkUp(k: SimKernel, link: SimLink): void {
  link.adminUp = true;
  link.ns.addressGeneration++;
  if (link.kind === "loopback" && !link.addresses.some((a) => a.address === 0x7f000001)) {
    // A namespace's lo has no address until it is brought up; then the kernel gives it 127.0.0.1/8.
    attachAddress(k, link, { address: 0x7f000001, prefix: LOOPBACK });
  }
  for (const a of link.addresses) addConnectedRoute(link, a);
}

export function linkDown(k: SimKernel, link: SimLink): void {
  k.layers.deviceDown(link);
  link.adminUp = false;
  link.ns.addressGeneration++;
  // As the kernel does: a device going down takes every route through it and its neighbours along.
  link.ns.routes.removeWhere((r) => r.dev === link);
  for (const key of link.ns.neighbours.keys())
    if (Math.floor(key / 4294967296) === link.index) link.ns.neighbours.delete(key);
}

export function moveLink(k: SimKernel, link: SimLink, target: SimNamespace, command: string): void {
  if (target.links.has(link.name)) fail("EEXIST", KernelMessage.fileExists, command);
  // Its inet settings are made anew in the namespace it joins.
  link.ns.localnetDevices?.delete(link);
  // Moving a device to another namespace brings it down and drops its addresses and routes.
  linkDown(k, link);
  release(link);
  for (const a of [...link.addresses]) detachAddress(k, link, a);
  link.ns.links.delete(link.name);
  link.ns = target;
  target.links.set(link.name, link);
}

export function destroyLink(k: SimKernel, link: SimLink): void {
  if (!link.ns.links.has(link.name) || link.ns.links.get(link.name) !== link) return;
  k.topologyVersion++;
  link.ns.localnetDevices?.delete(link);
  linkDown(k, link);
  for (const a of [...link.addresses]) detachAddress(k, link, a);
  release(link);
  if (link.ports) for (const port of [...link.ports]) release(port);
  link.ns.links.delete(link.name);
  const peer = link.peer;
  link.peer = undefined;
  if (peer) {
    peer.peer = undefined;
    destroyLink(k, peer);
  }
}

export function dumpLink(link: SimLink): LinkDump {
  const flags = link.kind === "loopback" ? ["LOOPBACK"] : ["BROADCAST", "MULTICAST"];
  if (link.adminUp) {
    if (!link.carrier) flags.unshift("NO-CARRIER");
    flags.push("UP");
    if (link.carrier) flags.push("LOWER_UP");
  }
  const dump: LinkDump = {
    ifindex: link.index,
    ifname: link.name,
    flags,
    mtu: link.mtu,
    operstate: !link.adminUp ? "DOWN" : link.kind === "veth" ? (link.carrier ? "UP" : "DOWN") : "UNKNOWN",
    link_type: link.kind === "loopback" ? "loopback" : "ether",
    address: link.macText,
  };
  if (link.peer) dump.link_index = link.peer.index;
  if (link.master) dump.master = link.master.name;
  if (link.kind !== "loopback") {
    dump.linkinfo = { info_kind: link.kind };
    if (link.vxlan) {
      const v = link.vxlan;
      dump.linkinfo.info_data = {
        id: v.vni,
        ...(v.local !== undefined ? { local: formatIpv4(v.local) } : {}),
        ...(v.dev !== undefined ? { link: v.dev } : {}),
        port: v.dstport,
        learning: v.learning,
      };
    }
    if (link.master) dump.linkinfo.info_slave_kind = "bridge";
  }
  return dump;
}
