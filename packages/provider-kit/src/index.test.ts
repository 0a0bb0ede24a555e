import { parseAddressArgument as ip, parseRouteDst as net } from "@podnet/netlink";
import { SimKernel } from "@podnet/sim";
import { describe, expect, it } from "vitest";
import { nodeAddress, podBridgeConfig, podSubnet, setupPodBridge } from "./index.js";

const node = (podCidr?: string) => ({
  name: "n1",
  ns: "n1",
  address: "10.100.0.2",
  nic: "eth0",
  underlayMtu: 1500,
  annotations: {},
  ...(podCidr ? { podCidr } : {}),
});
const cluster = { clusterCidr: "10.0.0.0/16", nodeMaskSize: 24, serviceCidr: "10.96.0.0/12" };

describe("the provider kit", () => {
  it("reads a node's pod subnet and address as values, and follows a changed pod CIDR", () => {
    const n = node("10.0.1.0/24");
    expect(podSubnet(n).equals(net("10.0.1.0/24"))).toBe(true);
    expect(nodeAddress(n)).toBe(ip("10.100.0.2"));
    n.podCidr = "10.0.7.0/24";
    expect(podSubnet(n).equals(net("10.0.7.0/24"))).toBe(true);
    expect(() => podSubnet(node())).toThrow("node n1 has no pod CIDR assigned");
  });

  it("sets up the pod bridge: gateway address, forwarding, br_netfilter, one masquerade rule", async () => {
    const k = new SimKernel({ seed: "kit" });
    await k.netns.add("n1");
    const n = node("10.0.1.0/24");
    await setupPodBridge({ netlink: k, ns: "n1" }, n, cluster, "cbr0", 1450);
    const bridge = (await k.link.list("n1")).find((l) => l.ifname === "cbr0")!;
    expect({ kind: bridge.linkinfo?.info_kind, mtu: bridge.mtu }).toEqual({ kind: "bridge", mtu: 1450 });
    expect((await k.addr.list("n1")).find((a) => a.ifname === "cbr0")?.addr_info[0]).toMatchObject({
      local: "10.0.1.1",
      prefixlen: 24,
    });
    expect(await k.sysctl.get("n1", "net.ipv4.ip_forward")).toBe("1");
    expect(await k.sysctl.get("n1", "net.bridge.bridge-nf-call-iptables")).toBe("1");
    // A second bridge on the node (or a rerun) does not add the masquerade rule twice.
    await setupPodBridge({ netlink: k, ns: "n1" }, n, cluster, "cni0", 1450);
    const masquerades = (await k.iptables.save("n1", "nat"))
      .split("\n")
      .filter((l) => l.includes("MASQUERADE"));
    expect(masquerades).toEqual(["-A POSTROUTING -s 10.0.0.0/16 ! -d 10.0.0.0/16 -j MASQUERADE"]);
  });

  it("configures the bridge plugin for the node's pods, hairpin mode on, hostPorts for portmap", () => {
    expect(podBridgeConfig(node("10.0.1.0/24"), { type: "mine", bridge: "br0", mtu: 1400 })).toEqual({
      cniVersion: "1.0.0",
      name: "cbr0",
      type: "mine",
      bridge: "br0",
      isGateway: true,
      isDefaultGateway: true,
      hairpinMode: true,
      mtu: 1400,
      capabilities: { portMappings: true },
      ipam: { type: "host-local", ranges: [[{ subnet: "10.0.1.0/24" }]] },
    });
  });
});
