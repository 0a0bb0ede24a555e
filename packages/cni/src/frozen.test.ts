import { describe, expect, it } from "vitest";
import { podAttachment } from "./attach.js";
import { deepFreeze, memoFrozen } from "./frozen.js";
import type { NetworkProvider, NodeNetwork } from "./provider.js";

describe("configs shared by a node's pods", () => {
  it("decodes a frozen config once and a mutable one every time", () => {
    let decodes = 0;
    const decode = memoFrozen((c: { subnet: string }) => (decodes++, c.subnet.toUpperCase()));
    const frozen = deepFreeze({ subnet: "a", ranges: [{ x: 1 }] });
    expect([decode(frozen), decode(frozen)]).toEqual(["A", "A"]);
    expect(decodes).toBe(1);
    const mutable = { subnet: "b" };
    decode(mutable);
    mutable.subnet = "c";
    expect(decode(mutable)).toBe("C");
    expect(decodes).toBe(3);
    expect(Object.isFrozen(frozen.ranges[0])).toBe(true);
  });

  it("gives every pod of a node the same frozen config, and a new one when the node changes", () => {
    let made = 0;
    const provider = {
      name: "p",
      podNetworkConfig: (node: NodeNetwork) => (
        made++,
        { cniVersion: "1.0.0", name: "n", type: "bridge", ipam: { ranges: [[{ subnet: node.podCidr }]] } }
      ),
    } as unknown as NetworkProvider;
    const node: NodeNetwork = {
      name: "n1",
      ns: "n1",
      address: "10.100.0.2",
      nic: "eth0",
      underlayMtu: 1500,
      podCidr: "10.0.1.0/24",
      annotations: {},
    };
    const cluster = { clusterCidr: "10.0.0.0/16" } as never;
    const a = podAttachment(provider, node, cluster, { containerId: "a", podNs: "a" });
    const b = podAttachment(provider, node, cluster, { containerId: "b", podNs: "b" });
    expect(b.config).toBe(a.config);
    expect(Object.isFrozen((a.config as unknown as { ipam: object }).ipam)).toBe(true);
    expect(made).toBe(1);
    node.podCidr = "10.0.9.0/24";
    const c = podAttachment(provider, node, cluster, { containerId: "c", podNs: "c" });
    expect(c.config).toMatchObject({ ipam: { ranges: [[{ subnet: "10.0.9.0/24" }]] } });
    expect(made).toBe(2);
  });
});
