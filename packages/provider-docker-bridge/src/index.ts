/**
 * docker-bridge: Docker's default network on every node. Each node has docker0 = 172.17.0.1/16 and
 * its own IPAM over the same range, so two pods on two nodes can hold the same address and
 * pod-to-pod traffic across nodes cannot work. A published port is a DNAT rule on the node's NIC;
 * pod egress is masqueraded behind the node.
 */
import {
  NO_PEER_ENTRIES,
  type CniParams,
  type CniPlugin,
  type NetworkProvider,
  type NodeNetwork,
  type PluginConfig,
} from "@podnet/cni";
import { parseIpv4InterfaceAddress } from "@podnet/core";
import { appendRuleOnce, chainRules, rule, type IptablesRule } from "@podnet/netlink";
import { bridgePlugin } from "@podnet/plugin-bridge";

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

/** The bridge plugin plus Docker's published ports (the `portMappings` capability, as the portmap plugin reads it). */
function dockerCni(): CniPlugin {
  const bridge = bridgePlugin();
  return {
    ...bridge,
    about: "CNI plugin podnet docker-bridge",
    async add(params: CniParams, config: PluginConfig) {
      const result = await bridge.add(params, config);
      const mappings = ((config.runtimeConfig as { portMappings?: PortMapping[] } | undefined)
        ?.portMappings ?? []) as PortMapping[];
      const podIp = result.ips?.[0]?.address.split("/")[0];
      if (podIp && mappings.length) {
        for (const r of publishedPortRules(String(config.nic ?? "eth0"), podIp, params.containerId, mappings))
          await params.host!.netlink.iptables.append(params.host!.ns, "nat", "PREROUTING", r);
      }
      return result;
    },
    async del(params: CniParams, config: PluginConfig) {
      // Rules are found by their comment, not by the deleted link's address: DEL works even after the pod is gone.
      const host = params.host!;
      const mine = (await chainRules(host.netlink, host.ns, "nat", "PREROUTING")).filter((r) =>
        r.matches?.some((m) => m.kind === "comment" && m.comment === commentFor(params.containerId)),
      );
      for (const r of mine) await host.netlink.iptables.delete(host.ns, "nat", "PREROUTING", r);
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
    const n = host.netlink;
    await n.link.add(host.ns, { kind: "bridge", name: "docker0", mtu: node.underlayMtu });
    await n.addr.add(host.ns, "docker0", parseIpv4InterfaceAddress(`${DOCKER_GATEWAY}/16`));
    await n.link.set(host.ns, "docker0", { up: true });
    await n.sysctl.set(host.ns, "net.ipv4.ip_forward", "1");
    // Docker's own masquerade rule for traffic leaving the bridge.
    await appendRuleOnce(
      n,
      host.ns,
      "nat",
      "POSTROUTING",
      rule`-s ${DOCKER_RANGE} ! -o docker0 -j MASQUERADE`,
    );
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
