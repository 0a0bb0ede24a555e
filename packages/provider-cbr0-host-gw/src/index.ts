/**
 * cbr0-host-gw: kubenet's cbr0 with flannel's host-gw routing. Each node gets its own pod subnet
 * from the cluster CIDR on a cbr0 bridge; every node holds a route per other node
 * ("10.0.2.0/24 via 10.100.0.3") — or, with routesOn: "gateway", the underlay gateway holds them.
 * The kernel refuses a next hop that is not on-link, so nodes must share a layer-2 segment.
 */
import { Ipv4Prefix, parseIpv4, type Ipv4 } from "@podnet/core";
import { NO_PEER_ENTRIES, type ClusterNetwork, type NetworkProvider, type NodeNetwork } from "@podnet/cni";
import { appendRuleOnce, rule } from "@podnet/netlink";
import { bridgePlugin } from "@podnet/plugin-bridge";

export interface HostGwOptions {
  /** Where the per-node routes live: on every node (flannel host-gw) or on the underlay gateway. */
  routesOn?: "nodes" | "gateway";
}

/**
 * A node's published facts as values, parsed once per node rather than once per peer entry (a
 * 5,000-node cluster asks for each node's subnet 5,000 times). Re-parsed when the text changes.
 */
const parsed = new WeakMap<
  NodeNetwork,
  { address: string; podCidr?: string; ip: Ipv4; subnet?: Ipv4Prefix }
>();

function valuesOf(node: NodeNetwork) {
  let v = parsed.get(node);
  if (!v || v.address !== node.address || v.podCidr !== node.podCidr) {
    v = {
      address: node.address,
      ip: parseIpv4(node.address),
      ...(node.podCidr ? { podCidr: node.podCidr, subnet: Ipv4Prefix.parse(node.podCidr) } : {}),
    };
    parsed.set(node, v);
  }
  return v;
}

export function podSubnet(node: NodeNetwork): Ipv4Prefix {
  const subnet = valuesOf(node).subnet;
  if (!subnet) throw new Error(`node ${node.name} has no pod CIDR assigned`);
  return subnet;
}

/** The node's underlay address as a value. */
export function nodeAddress(node: NodeNetwork): Ipv4 {
  return valuesOf(node).ip;
}

/** The bridge, its gateway address, forwarding, and masquerade for traffic leaving the cluster. */
export async function setupPodBridge(
  host: Parameters<NetworkProvider["setupNode"]>[0],
  node: NodeNetwork,
  cluster: ClusterNetwork,
  bridge: string,
  mtu: number,
): Promise<void> {
  const n = host.netlink;
  const subnet = podSubnet(node);
  await n.link.add(host.ns, { kind: "bridge", name: bridge, mtu });
  await n.addr.add(host.ns, bridge, { address: subnet.host(1), prefix: subnet });
  await n.link.set(host.ns, bridge, { up: true });
  await n.sysctl.set(host.ns, "net.ipv4.ip_forward", "1");
  // kubelet requires br_netfilter: bridged pod-to-pod replies of service traffic must be un-NATed.
  await n.sysctl.set(host.ns, "net.bridge.bridge-nf-call-iptables", "1");
  await appendRuleOnce(
    n,
    host.ns,
    "nat",
    "POSTROUTING",
    rule`-s ${cluster.clusterCidr} ! -d ${cluster.clusterCidr} -j MASQUERADE`,
  );
}

export function cbr0HostGw(options: HostGwOptions = {}): NetworkProvider {
  const onGateway = options.routesOn === "gateway";
  return {
    name: onGateway ? "cbr0-host-gw (routes on the gateway)" : "cbr0-host-gw",
    description: onGateway
      ? "cbr0 with a pod subnet per node; the underlay gateway holds a route to every node's subnet"
      : "cbr0 with a pod subnet per node; every node holds a route to every other node's subnet via its underlay address",
    underlay: { layer2Adjacency: true },
    overheadBytes: 0,
    podMtu: (underlayMtu) => underlayMtu,
    podAddressing: "per-node-subnet",
    crossNodeSource: "pod address",
    setupNode: (host, node, cluster) => setupPodBridge(host, node, cluster, "cbr0", node.underlayMtu),
    cni: bridgePlugin(),
    podNetworkConfig: (node) => ({
      cniVersion: "1.0.0",
      name: "cbr0",
      type: "cbr0-host-gw",
      bridge: "cbr0",
      isGateway: true,
      isDefaultGateway: true,
      // As flannel's CNI config does: a pod that reaches a Service whose chosen endpoint is itself gets
      // its own packet back through the bridge port it came in on (kube-proxy masquerades it).
      hairpinMode: true,
      mtu: node.underlayMtu,
      ipam: { type: "host-local", ranges: [[{ subnet: podSubnet(node).toString() }]] },
    }),
    peerEntries: (self, peer) =>
      onGateway
        ? NO_PEER_ENTRIES
        : {
            routes: [{ dst: podSubnet(peer), via: nodeAddress(peer), dev: self.nic }],
            neighbours: [],
            fdb: [],
          },
    ...(onGateway
      ? {
          gatewayRoutes: (nodes: NodeNetwork[]) =>
            nodes.map((node) => ({ dst: podSubnet(node), via: nodeAddress(node) })),
        }
      : {}),
  };
}
