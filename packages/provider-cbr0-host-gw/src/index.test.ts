import { parseAddressArgument as ip, parseRouteDst as net } from "@podnet/netlink";
import { describe, expect, it } from "vitest";
import { cbr0HostGw } from "./index.js";

const node = (name: string, address: string, podCidr?: string) => ({
  name,
  ns: name,
  address,
  nic: "eth0",
  underlayMtu: 1500,
  annotations: {},
  ...(podCidr ? { podCidr } : {}),
});
const cluster = { clusterCidr: "10.0.0.0/16", nodeMaskSize: 24, serviceCidr: "10.96.0.0/12" };

describe("the cbr0-host-gw provider", () => {
  it("gives each node the notes' route per peer: 10.0.2.0/24 via 10.100.0.3", () => {
    expect(
      cbr0HostGw().peerEntries(
        node("n1", "10.100.0.2", "10.0.1.0/24"),
        node("n2", "10.100.0.3", "10.0.2.0/24"),
        cluster,
      ),
    ).toEqual({
      routes: [{ dst: net("10.0.2.0/24"), via: ip("10.100.0.3"), dev: "eth0" }],
      neighbours: [],
      fdb: [],
    });
  });

  it("puts the routes on the gateway instead when asked, and none on the nodes", () => {
    const p = cbr0HostGw({ routesOn: "gateway" });
    const nodes = [node("n1", "10.100.0.2", "10.0.1.0/24"), node("n2", "10.100.0.3", "10.0.2.0/24")];
    expect(p.peerEntries(nodes[0]!, nodes[1]!, cluster).routes).toEqual([]);
    expect(p.gatewayRoutes!(nodes, cluster)).toEqual([
      { dst: net("10.0.1.0/24"), via: ip("10.100.0.2") },
      { dst: net("10.0.2.0/24"), via: ip("10.100.0.3") },
    ]);
    expect(p.underlay.layer2Adjacency).toBe(true);
  });

  it("asks for a pod CIDR before it can configure pods", () => {
    expect(() => cbr0HostGw().podNetworkConfig(node("n1", "10.100.0.2"), cluster)).toThrow(
      "node n1 has no pod CIDR assigned",
    );
    expect(cbr0HostGw().podNetworkConfig(node("n1", "10.100.0.2", "10.0.1.0/24"), cluster).ipam).toEqual({
      type: "host-local",
      ranges: [[{ subnet: "10.0.1.0/24" }]],
    });
  });
});
