/**
 * cbr0-host-gw: kubenet's cbr0 with flannel's host-gw routing. Each node gets its own pod subnet
 * from the cluster CIDR on a cbr0 bridge; every node holds a route per other node
 * ("10.0.2.0/24 via 10.100.0.3") — or, with routesOn: "gateway", the underlay gateway holds them.
 * The kernel refuses a next hop that is not on-link, so nodes must share a layer-2 segment.
 */
import { NO_PEER_ENTRIES, type NetworkProvider, type NodeNetwork } from "@podnet/cni";
import { bridgePlugin } from "@podnet/plugin-bridge";
import { nodeAddress, podBridgeConfig, podSubnet, setupPodBridge, withPortmap } from "@podnet/provider-kit";

// Moved to @podnet/provider-kit; still exported here for code that imported them from this package.
export { nodeAddress, podSubnet, setupPodBridge } from "@podnet/provider-kit";

export interface HostGwOptions {
  /** Where the per-node routes live: on every node (flannel host-gw) or on the underlay gateway. */
  routesOn?: "nodes" | "gateway";
}

export function cbr0HostGw(options: HostGwOptions = {}): NetworkProvider {
  const onGateway = options.routesOn === "gateway";
  return {
    // The name users pick it by (@podnet/providers' registry), in every table and --json alike.
    name: onGateway ? "cbr0-host-gw-gateway" : "cbr0-host-gw",
    description: onGateway
      ? "cbr0 with a pod subnet per node; the underlay gateway holds a route to every node's subnet"
      : "cbr0 with a pod subnet per node; every node holds a route to every other node's subnet via its underlay address",
    underlay: { layer2Adjacency: true },
    overheadBytes: 0,
    podMtu: (underlayMtu) => underlayMtu,
    podAddressing: "per-node-subnet",
    crossNodeSource: "pod address",
    setupNode: (host, node, cluster) => setupPodBridge(host, node, cluster, "cbr0", node.underlayMtu),
    // hostPorts published by a chained portmap, as flannel's CNI config (and kubenet) do.
    cni: withPortmap(bridgePlugin(), "CNI plugin podnet cbr0-host-gw"),
    podNetworkConfig: (node) =>
      podBridgeConfig(node, { type: "cbr0-host-gw", bridge: "cbr0", mtu: node.underlayMtu }),
    peerEntries: (self, peer) =>
      onGateway
        ? NO_PEER_ENTRIES
        : {
            routes: [{ dst: podSubnet(peer), via: nodeAddress(peer), dev: self.nic }],
            neighbours: [],
            fdb: [],
          },
    // The route to a peer names only the peer and the node's NIC.
    peerGroup: (self) => self.nic,
    ...(onGateway
      ? {
          gatewayRoutes: (nodes: NodeNetwork[]) =>
            nodes.map((node) => ({ dst: podSubnet(node), via: nodeAddress(node) })),
        }
      : {}),
  };
}
