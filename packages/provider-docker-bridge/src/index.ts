/**
 * docker-bridge: Docker's default network on every node. Each node has docker0 = 172.17.0.1/16 and
 * its own IPAM over the same range, so two pods on two nodes can hold the same address and
 * pod-to-pod traffic across nodes cannot work. A published port is a DNAT rule on the node's NIC;
 * pod egress is masqueraded behind the node.
 */
import {
  CniError,
  CniErrorCode,
  LEGACY_VERSIONS,
  NO_PEER_ENTRIES,
  type CniParams,
  type CniResult,
  type CniPlugin,
  type NetworkProvider,
  type NodeNetwork,
  type PluginConfig,
} from "@podnet/cni";
import { parseIpv4InterfaceAddress } from "@podnet/core";
import { chainRules, rule, type IptablesRule } from "@podnet/netlink";
import { bridgePlugin } from "@podnet/plugin-bridge";
import { setupBridge } from "@podnet/provider-kit";

export const DOCKER_RANGE = "172.17.0.0/16";
export const DOCKER_GATEWAY = "172.17.0.1";

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol?: "tcp" | "udp";
}

const commentFor = (containerId: string) => `podnet published port of ${containerId}`;

function publishedPortRules(
  nic: string,
  podIp: string,
  containerId: string,
  mappings: PortMapping[],
): IptablesRule[] {
  return mappings.map((m) => ({
    inInterface: nic,
    protocol: m.protocol ?? "tcp",
    matches: [
      { kind: "comment", comment: commentFor(containerId) },
      { kind: m.protocol ?? "tcp", dport: m.hostPort },
    ],
    target: { kind: "DNAT", toDestination: `${podIp}:${m.containerPort}` },
  }));
}

/**
 * Docker's published ports as a chained CNI plugin, the way the reference `portmap` plugin works: it
 * reads the `portMappings` capability and the pod's address from the previous plugin's result, and
 * adds one DNAT rule per mapping on the node. DEL finds the rules by their comment, so it works after
 * the pod is gone. The `podnet-portmap` executable (@podnet/lab) runs this plugin on a real node.
 */
export function portmapPlugin(): CniPlugin {
  return {
    about: "CNI plugin podnet portmap",
    supportedVersions: LEGACY_VERSIONS,
    async add(params: CniParams, config: PluginConfig) {
      const prev = config.prevResult as CniResult | undefined;
      if (!prev)
        throw new CniError(
          CniErrorCode.INVALID_NETWORK_CONFIG,
          "portmap must be chained after a plugin that gives the pod an address",
        );
      const mappings =
        (config.runtimeConfig as { portMappings?: PortMapping[] } | undefined)?.portMappings ?? [];
      const podIp = prev.ips?.[0]?.address.split("/")[0];
      if (podIp && mappings.length) {
        for (const r of publishedPortRules(String(config.nic ?? "eth0"), podIp, params.containerId, mappings))
          await params.host!.netlink.iptables.append(params.host!.ns, "nat", "PREROUTING", r);
      }
      return prev;
    },
    async del(params: CniParams) {
      const host = params.host!;
      const mine = (await chainRules(host.netlink, host.ns, "nat", "PREROUTING")).filter((r) =>
        r.matches?.some((m) => m.kind === "comment" && m.comment === commentFor(params.containerId)),
      );
      for (const r of mine) await host.netlink.iptables.delete(host.ns, "nat", "PREROUTING", r);
    },
    async check() {},
  };
}

/** The bridge plugin with the portmap plugin chained after it, as one in-process plugin. */
function dockerCni(): CniPlugin {
  const bridge = bridgePlugin();
  const portmap = portmapPlugin();
  return {
    ...bridge,
    about: "CNI plugin podnet docker-bridge",
    async add(params: CniParams, config: PluginConfig) {
      const result = await bridge.add(params, config);
      return portmap.add(params, { ...config, prevResult: result });
    },
    async del(params: CniParams, config: PluginConfig) {
      await portmap.del(params, config);
      await bridge.del(params, config);
    },
  };
}

export const dockerBridge: NetworkProvider = {
  name: "docker-bridge",
  description:
    "docker0 (172.17.0.1/16) on every node with its own IPAM: pods on one node talk over the bridge; across nodes addresses repeat and only published ports work",
  underlay: { layer2Adjacency: false },
  overheadBytes: 0,
  podMtu: (underlayMtu) => underlayMtu,
  podAddressing: "same-range-on-every-node",
  crossNodeSource: "node address (through a published port)",
  async setupNode(host, node: NodeNetwork) {
    await setupBridge(host, {
      name: "docker0",
      mtu: node.underlayMtu,
      gateway: parseIpv4InterfaceAddress(`${DOCKER_GATEWAY}/16`),
      // Docker's own masquerade rule for traffic leaving the bridge.
      masquerade: rule`-s ${DOCKER_RANGE} ! -o docker0 -j MASQUERADE`,
    });
  },
  cni: dockerCni(),
  podNetworkConfig: (node) => ({
    cniVersion: "1.0.0",
    name: "bridge",
    type: "docker-bridge",
    bridge: "docker0",
    isGateway: true,
    isDefaultGateway: true,
    mtu: node.underlayMtu,
    nic: node.nic,
    capabilities: { portMappings: true },
    ipam: { type: "host-local", ranges: [[{ subnet: DOCKER_RANGE }]] },
  }),
  peerEntries: () => NO_PEER_ENTRIES,
};
