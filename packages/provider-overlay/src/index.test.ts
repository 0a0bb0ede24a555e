import { parseAddressArgument as ip, parseLinkAddress as mac, parseRouteDst as net } from "@podnet/netlink";
import { describe, expect, it } from "vitest";
import { BACKEND_DATA, overlay } from "./index.js";

const node = (name: string, address: string, podCidr: string, mac: string) => ({
  name,
  ns: name,
  address,
  nic: "eth0",
  underlayMtu: 1500,
  podCidr,
  annotations: { [BACKEND_DATA]: JSON.stringify({ VNI: 1, VtepMAC: mac }) },
});
const cluster = { clusterCidr: "10.244.0.0/16", nodeMaskSize: 24, serviceCidr: "10.96.0.0/12" };

describe("the overlay provider", () => {
  it("asks for flannel's three entries per peer: neighbour, FDB, onlink route", () => {
    const self = node("n1", "192.168.50.1", "10.244.1.0/24", "f6:76:92:87:7d:63");
    const peer = node("n2", "192.168.50.2", "10.244.2.0/24", "96:fe:d6:d5:45:cf");
    expect(overlay().peerEntries(self, peer, cluster)).toEqual({
      neighbours: [
        { dst: ip("10.244.2.0"), dev: "flannel.1", lladdr: mac("96:fe:d6:d5:45:cf"), state: "permanent" },
      ],
      fdb: [
        {
          mac: mac("96:fe:d6:d5:45:cf"),
          dev: "flannel.1",
          dst: ip("192.168.50.2"),
          self: true,
          permanent: true,
        },
      ],
      routes: [{ dst: net("10.244.2.0/24"), via: ip("10.244.2.0"), dev: "flannel.1", onlink: true }],
    });
  });

  it("costs 50 bytes a packet and names its device and port from the options", () => {
    const iana = overlay({ vni: 4096, port: 4789 });
    expect([iana.overheadBytes, iana.podMtu(1500), iana.name]).toEqual([50, 1450, "overlay-4789"]);
    expect(
      iana.peerEntries(
        node("a", "1.1.1.1", "10.244.1.0/24", "02:00:00:00:00:01"),
        node("b", "1.1.1.2", "10.244.2.0/24", "02:00:00:00:00:02"),
        cluster,
      ).routes[0]!.dev,
    ).toBe("flannel.4096");
    expect(() =>
      overlay().peerEntries(
        node("a", "1.1.1.1", "10.244.1.0/24", "x"),
        { ...node("b", "1.1.1.2", "10.244.2.0/24", "x"), annotations: {} },
        cluster,
      ),
    ).toThrow("node b has no flannel.alpha.coreos.com/backend-data annotation");
  });
});
