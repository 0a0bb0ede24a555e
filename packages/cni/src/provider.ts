/**
 * The contract a network provider (docker-bridge, cbr0-host-gw, overlay, or yours) implements. A
 * provider is data and functions; the cluster runtime and the route manager call it, and it acts on
 * hosts only through the host API it is handed, so one provider runs unchanged on the simulator and
 * on Linux. See docs/writing-a-provider.md.
 */
import type { LayerEntries, RouteSpec } from "@podnet/netlink";
import type { CniHost, CniPlugin, PluginConfig } from "./plugin.js";

export interface ClusterNetwork {
  /** Where per-node pod subnets come from, e.g. "10.0.0.0/16". */
  clusterCidr: string;
  /** Size of each node's pod subnet (kube-controller-manager's --node-cidr-mask-size). */
  nodeMaskSize: number;
  serviceCidr: string;
}

export interface NodeNetwork {
  name: string;
  /** The node's namespace on the host API. */
  ns: string;
  /** Underlay address of the node's NIC, e.g. "10.100.0.2". */
  address: string;
  nic: string;
  underlayMtu: number;
  /** Set by the runtime from the node CIDR allocator when the provider wants one. */
  podCidr?: string;
  /** What the provider publishes about the node at setup (flannel's annotations, e.g. the VTEP MAC). */
  annotations: Record<string, string>;
}

/** The entries node `self` must hold for one other node (flannel's per-lease work, host-gw's route). */
export type PeerEntries = LayerEntries;

export interface NetworkProvider {
  name: string;
  description: string;
  underlay: {
    /** Needs every node on one layer-2 segment (host-gw: the kernel refuses a next hop that is not on-link). */
    layer2Adjacency: boolean;
  };
  /** Bytes each pod packet carries on the underlay beyond its own (VXLAN: 50). */
  overheadBytes: number;
  podMtu(underlayMtu: number): number;
  /** Whether each node gets its own pod subnet from the cluster CIDR, or every node reuses one range. */
  podAddressing: "per-node-subnet" | "same-range-on-every-node";
  /** The range every node's pods take, when it is the provider's own (docker-bridge: 172.17.0.0/16). */
  podRange?: string;
  /** What a pod on another node sees as the source of pod-to-pod traffic. */
  crossNodeSource: "pod address" | "node address (through a published port)";
  /** Devices and rules a node needs before its first pod. May add annotations to `node`. */
  setupNode(host: CniHost, node: NodeNetwork, cluster: ClusterNetwork): Promise<void>;
  /** The plugin the runtime calls for each pod, and the network config it passes for pods of `node`. */
  cni: CniPlugin;
  podNetworkConfig(node: NodeNetwork, cluster: ClusterNetwork): PluginConfig;
  /** Entries `self` keeps for `peer`; empty for designs with no per-peer state. */
  peerEntries(self: NodeNetwork, peer: NodeNetwork, cluster: ClusterNetwork): PeerEntries;
  /**
   * Nodes of one group hold the same entries for any peer (`peerEntries` reads nothing else of
   * `self`). The route manager then writes each peer's entries once per group, as a host API layer,
   * rather than once per node: O(nodes) work and memory for a cluster instead of O(nodes²). Leave it
   * out when a node's entries depend on more of the node.
   */
  peerGroup?(self: NodeNetwork): string;
  /** When set, the per-node routes live on the underlay gateway instead of on the nodes. */
  gatewayRoutes?(nodes: NodeNetwork[], cluster: ClusterNetwork): RouteSpec[];
}

export const NO_PEER_ENTRIES: PeerEntries = Object.freeze({
  routes: [],
  neighbours: [],
  fdb: [],
}) as PeerEntries;
