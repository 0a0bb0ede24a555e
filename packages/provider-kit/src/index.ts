/**
 * What podnet's per-node-subnet providers share: a node's published facts as values (its pod
 * subnet, its underlay address), the pod bridge every node needs before its first pod (gateway
 * address, forwarding, br_netfilter, masquerade for traffic leaving the cluster), and the bridge
 * plugin's network config for the node's pods. cbr0-host-gw and overlay are built from it; a new
 * provider that puts pods on a bridge with a subnet per node starts here.
 */
import { Ipv4Prefix, parseIpv4, type Ipv4, type Ipv4InterfaceAddress } from "@podnet/core";
import type { CniHost, ClusterNetwork, NodeNetwork, PluginConfig } from "@podnet/cni";
import { appendRuleOnce, rule, type IptablesRule } from "@podnet/netlink";

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

/** The node's pod subnet as a value; a node the runtime gave no pod CIDR is an error, said so. */
export function podSubnet(node: NodeNetwork): Ipv4Prefix {
  const subnet = valuesOf(node).subnet;
  if (!subnet) throw new Error(`node ${node.name} has no pod CIDR assigned`);
  return subnet;
}

/** The node's underlay address as a value. */
export function nodeAddress(node: NodeNetwork): Ipv4 {
  return valuesOf(node).ip;
}

/**
 * A node's pod bridge as every bridge provider makes it (docker0, cbr0, cni0): the bridge holding the
 * pods' gateway address, forwarding on, bridged traffic through iptables, and the provider's
 * masquerade rule for traffic leaving the pods.
 */
export async function setupBridge(
  host: CniHost,
  bridge: { name: string; mtu: number; gateway: Ipv4InterfaceAddress; masquerade: IptablesRule },
): Promise<void> {
  const n = host.netlink;
  await n.link.add(host.ns, { kind: "bridge", name: bridge.name, mtu: bridge.mtu });
  await n.addr.add(host.ns, bridge.name, bridge.gateway);
  await n.link.set(host.ns, bridge.name, { up: true });
  await n.sysctl.set(host.ns, "net.ipv4.ip_forward", "1");
  // kubelet and dockerd both load br_netfilter and turn this on: bridged replies of Service traffic
  // must be un-NATed, and containers on one bridge pass its iptables rules.
  await n.sysctl.set(host.ns, "net.bridge.bridge-nf-call-iptables", "1");
  await appendRuleOnce(n, host.ns, "nat", "POSTROUTING", bridge.masquerade);
}

/** The pod bridge of a node with its own pod subnet: masquerade for traffic leaving the cluster. */
export async function setupPodBridge(
  host: CniHost,
  node: NodeNetwork,
  cluster: ClusterNetwork,
  bridge: string,
  mtu: number,
): Promise<void> {
  const subnet = podSubnet(node);
  await setupBridge(host, {
    name: bridge,
    mtu,
    gateway: { address: subnet.host(1), prefix: subnet },
    masquerade: rule`-s ${cluster.clusterCidr} ! -d ${cluster.clusterCidr} -j MASQUERADE`,
  });
}

export interface PodBridgeConfig {
  /** The plugin type the config names (the provider's). */
  type: string;
  bridge: string;
  mtu: number;
}

/**
 * The bridge plugin's config for pods of `node`: gateway on the bridge, default route through it,
 * host-local over the node's subnet, the portMappings capability for hostPorts, and hairpin mode as
 * flannel's CNI config sets it — a pod that
 * reaches a Service whose chosen endpoint is itself gets its own packet back through the bridge port
 * it came in on (kube-proxy masquerades it).
 */
export function podBridgeConfig(node: NodeNetwork, { type, bridge, mtu }: PodBridgeConfig): PluginConfig {
  return {
    cniVersion: "1.0.0",
    name: "cbr0",
    type,
    bridge,
    isGateway: true,
    isDefaultGateway: true,
    hairpinMode: true,
    mtu,
    capabilities: { portMappings: true },
    ipam: { type: "host-local", ranges: [[{ subnet: podSubnet(node).toString() }]] },
  };
}
export { portmapPlugin, withPortmap, type PortMapping } from "./portmap.js";
