/**
 * docker-bridge: Docker's default network on every node. Each node has docker0 = 172.17.0.1/16 and
 * its own IPAM over the same range, so two pods on two nodes can hold the same address and
 * pod-to-pod traffic across nodes cannot work. A published port is a DNAT for the node's own addresses;
 * pod egress is masqueraded behind the node.
 */
import { NO_PEER_ENTRIES, type NetworkProvider, type NodeNetwork } from "@podnet/cni";
import { parseIpv4InterfaceAddress } from "@podnet/core";
import { rule } from "@podnet/netlink";
import { bridgePlugin } from "@podnet/plugin-bridge";
import { setupBridge, withPortmap } from "@podnet/provider-kit";

// Moved to @podnet/provider-kit (every provider chains it); still exported here for code that imported it.
export { portmapPlugin, type PortMapping } from "@podnet/provider-kit";

export const DOCKER_RANGE = "172.17.0.0/16";
export const DOCKER_GATEWAY = "172.17.0.1";

export const dockerBridge: NetworkProvider = {
  name: "docker-bridge",
  description:
    "docker0 (172.17.0.1/16) on every node with its own IPAM: pods on one node talk over the bridge; across nodes addresses repeat and only published ports work",
  underlay: { layer2Adjacency: false },
  overheadBytes: 0,
  podMtu: (underlayMtu) => underlayMtu,
  podAddressing: "same-range-on-every-node",
  podRange: DOCKER_RANGE,
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
  cni: withPortmap(bridgePlugin(), "CNI plugin podnet docker-bridge"),
  podNetworkConfig: (node) => ({
    cniVersion: "1.0.0",
    name: "bridge",
    type: "docker-bridge",
    bridge: "docker0",
    isGateway: true,
    isDefaultGateway: true,
    mtu: node.underlayMtu,
    capabilities: { portMappings: true },
    ipam: { type: "host-local", ranges: [[{ subnet: DOCKER_RANGE }]] },
  }),
  peerEntries: () => NO_PEER_ENTRIES,
};
