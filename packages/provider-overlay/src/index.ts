/**
 * overlay: flannel's vxlan backend. Each node has flannel.<VNI> (VNI 1, UDP 8472 by default — 4789
 * is IANA's) over its NIC, MTU = underlay − 50, addressed with its pod subnet's network address as
 * a /32; per other node a permanent neighbour (the remote VTEP), an FDB entry (its MAC → its
 * underlay address) and an onlink route — in that order, as flannel writes them. Works across
 * routed underlays.
 */
import { Ipv4Prefix, VXLAN_LINUX_PORT, VXLAN_OVERHEAD, parseMac, type Mac } from "@podnet/core";
import type { NetworkProvider, NodeNetwork } from "@podnet/cni";
import { bridgePlugin } from "@podnet/plugin-bridge";
import { nodeAddress, podBridgeConfig, podSubnet, setupPodBridge, withPortmap } from "@podnet/provider-kit";

export interface OverlayOptions {
  vni?: number;
  /** UDP destination port: 8472 (the kernel's and flannel's default) or 4789 (IANA's). */
  port?: number;
}

/** flannel's node annotation holding the VTEP MAC. */
export const BACKEND_DATA = "flannel.alpha.coreos.com/backend-data";

/** The annotation's VTEP MAC as a value, parsed once per annotation text (peers ask for it N times). */
const vteps = new WeakMap<NodeNetwork, { data: string; mac: Mac }>();

function vtepMac(node: NodeNetwork): Mac {
  const data = node.annotations[BACKEND_DATA];
  if (!data)
    throw new Error(`node ${node.name} has no ${BACKEND_DATA} annotation (set up by the overlay provider)`);
  let known = vteps.get(node);
  if (known?.data !== data) {
    // Any spelling flannel might publish (upper-case hex too) is one value.
    known = { data, mac: parseMac((JSON.parse(data) as { VtepMAC: string }).VtepMAC) };
    vteps.set(node, known);
  }
  return known.mac;
}

export function overlay(options: OverlayOptions = {}): NetworkProvider {
  const vni = options.vni ?? 1;
  const port = options.port ?? VXLAN_LINUX_PORT;
  const device = `flannel.${vni}`;
  return {
    // The name users pick it by (@podnet/providers' registry: overlay-4789), in every table alike.
    name: port === VXLAN_LINUX_PORT ? "overlay" : `overlay-${port}`,
    description: `VXLAN between nodes (${device}, VNI ${vni}, UDP ${port}): pod packets are wrapped in UDP/IP, so nodes need only routed reachability; ${VXLAN_OVERHEAD} bytes a packet and a smaller MTU`,
    underlay: { layer2Adjacency: false },
    overheadBytes: VXLAN_OVERHEAD,
    podMtu: (underlayMtu) => underlayMtu - VXLAN_OVERHEAD,
    podAddressing: "per-node-subnet",
    crossNodeSource: "pod address",
    async setupNode(host, node, cluster) {
      const n = host.netlink;
      const subnet = podSubnet(node);
      await n.link.add(host.ns, {
        kind: "vxlan",
        name: device,
        vni,
        local: nodeAddress(node),
        dev: node.nic,
        dstport: port,
        learning: false,
      });
      await n.addr.add(host.ns, device, {
        address: subnet.network,
        prefix: Ipv4Prefix.of(subnet.network, 32),
      });
      await n.link.set(host.ns, device, { up: true });
      const mac = (await n.link.list(host.ns)).find((l) => l.ifname === device)!.address;
      node.annotations[BACKEND_DATA] = JSON.stringify({ VNI: vni, VtepMAC: mac });
      await setupPodBridge(host, node, cluster, "cni0", node.underlayMtu - VXLAN_OVERHEAD);
    },
    // hostPorts published by a chained portmap, as flannel's CNI config (and kubenet) do.
    cni: withPortmap(bridgePlugin(), "CNI plugin podnet overlay"),
    podNetworkConfig: (node) =>
      podBridgeConfig(node, { type: "overlay", bridge: "cni0", mtu: node.underlayMtu - VXLAN_OVERHEAD }),
    peerEntries(_self, peer) {
      const subnet = podSubnet(peer);
      const vtep = subnet.network;
      const mac = vtepMac(peer);
      return {
        neighbours: [{ dst: vtep, dev: device, lladdr: mac, state: "permanent" }],
        fdb: [{ mac, dev: device, dst: nodeAddress(peer), self: true, permanent: true }],
        routes: [{ dst: subnet, via: vtep, dev: device, onlink: true }],
      };
    },
    // Every node holds the same three entries for a peer.
    peerGroup: () => "",
  };
}
