/**
 * Attaching a pod through a provider, written once: what a container runtime does for a pod sandbox
 * on a node. The runtime, the route manager's test cluster and the kernel tests all attach pods
 * through these, so they cannot disagree about the config a pod gets (the provider's, without its
 * `capabilities` declaration, with `runtimeConfig.portMappings` when the provider accepts them and the
 * pod publishes ports), nor about DEL getting the same config ADD got, as the CNI spec asks.
 */
import { deepFreeze } from "./frozen.js";
import type { CniHost, PluginConfig } from "./plugin.js";
import type { ClusterNetwork, NetworkProvider, NodeNetwork } from "./provider.js";
import type { CniResult } from "./types.js";

/** What a node is before a provider sets it up: its namespace on the host API and its underlay. */
export interface NodeJoin {
  name: string;
  ns: string;
  address: string;
  underlayMtu: number;
  /** The node's pod subnet, asked for only when the provider gives each node one. */
  podCidr: () => string;
}

/**
 * A node joining the cluster, as the kubelet and the CNI's node agent prepare it, written once: the
 * node as providers see it (pod subnet where the provider addresses pods per node) and the provider's
 * node setup done. Programming its peers is the route manager's job, after this.
 */
export async function joinNode(
  provider: NetworkProvider,
  netlink: CniHost["netlink"],
  cluster: ClusterNetwork,
  join: NodeJoin,
): Promise<NodeNetwork> {
  const node: NodeNetwork = {
    name: join.name,
    ns: join.ns,
    address: join.address,
    nic: "eth0",
    underlayMtu: join.underlayMtu,
    annotations: {},
  };
  if (provider.podAddressing === "per-node-subnet") node.podCidr = join.podCidr();
  await provider.setupNode({ netlink, ns: node.ns }, node, cluster);
  return node;
}

/** A port a pod publishes on its node (a container's hostPort). */
export interface PublishedPort {
  hostPort: number;
  containerPort: number;
  protocol?: "tcp" | "udp";
  /** The node address it is published on (Kubernetes' `hostIP`); all of them when unset. */
  hostIP?: string;
}

export interface PodAttachment {
  containerId: string;
  /** The pod's (sandbox's) namespace, and the node's, as the host API names them. */
  podNs: string;
  nodeNs: string;
  /** The provider's network config for the pod, with `runtimeConfig.portMappings` when it publishes ports. */
  config: PluginConfig;
}

type NodePodConfig = { capabilities?: Record<string, boolean>; config: PluginConfig };
const podConfigs = new WeakMap<NodeNetwork, { key: string; cluster: ClusterNetwork; value: NodePodConfig }>();

/**
 * The provider's config for pods of `node`, made once per node and frozen (frozen.ts): every pod of
 * the node shares it. Made again when the node's fields (annotations too), the provider or the cluster
 * change.
 */
function nodePodConfig(provider: NetworkProvider, node: NodeNetwork, cluster: ClusterNetwork): NodePodConfig {
  const key = [
    provider.name,
    node.name,
    node.ns,
    node.address,
    node.nic,
    node.underlayMtu,
    node.podCidr,
    JSON.stringify(node.annotations),
  ].join("|");
  const cached = podConfigs.get(node);
  if (cached?.key === key && cached.cluster === cluster) return cached.value;
  const { capabilities, ...config } = provider.podNetworkConfig(node, cluster) as PluginConfig & {
    capabilities?: Record<string, boolean>;
  };
  const value = deepFreeze({ ...(capabilities ? { capabilities } : {}), config });
  podConfigs.set(node, { key, cluster, value });
  return value;
}

/** The attachment of pod `containerId` (in namespace `podNs`) on `node` under `provider`. */
export function podAttachment(
  provider: NetworkProvider,
  node: NodeNetwork,
  cluster: ClusterNetwork,
  pod: { containerId: string; podNs: string; publish?: readonly PublishedPort[] },
): PodAttachment {
  const { capabilities, config } = nodePodConfig(provider, node, cluster);
  const published = pod.publish ?? [];
  return {
    containerId: pod.containerId,
    podNs: pod.podNs,
    nodeNs: node.ns,
    config:
      capabilities?.portMappings && published.length
        ? { ...config, runtimeConfig: { portMappings: published.map((p) => ({ ...p })) } }
        : config,
  };
}

/** The pod's sandbox: its namespace with loopback up (the loopback plugin's job). */
export async function createSandbox(netlink: CniHost["netlink"], podNs: string): Promise<void> {
  await netlink.netns.add(podNs);
  await netlink.link.set(podNs, "lo", { up: true });
}

function params(netlink: CniHost["netlink"], pod: PodAttachment) {
  return {
    containerId: pod.containerId,
    netns: pod.podNs,
    ifname: "eth0",
    args: "",
    path: [],
    host: { netlink, ns: pod.nodeNs },
  };
}

/** CNI ADD of the pod through the provider's plugin, run in-process on the host API `netlink`. */
export function addPod(
  provider: NetworkProvider,
  netlink: CniHost["netlink"],
  pod: PodAttachment,
): Promise<CniResult> {
  return provider.cni.add(params(netlink, pod), pod.config);
}

/** CNI DEL of the pod, with the config it was added with; safe to repeat, as the spec requires. */
export function delPod(
  provider: NetworkProvider,
  netlink: CniHost["netlink"],
  pod: PodAttachment,
): Promise<void> {
  return provider.cni.del(params(netlink, pod), pod.config);
}

/** The pod's address, from an ADD result. */
export function podAddress(result: CniResult): string {
  const first = result.ips?.[0];
  if (!first) throw new Error("the CNI result gives the pod no address");
  return first.address.split("/")[0]!;
}
