import { SimKernel } from "@podnet/sim";
import { describe, expect, it } from "vitest";
import { bridgePlugin, hostVethName } from "./bridge.js";

async function node() {
  const k = new SimKernel({ seed: "bridge" });
  await k.netns.add("node1");
  await k.netns.add("pod1");
  return { k, host: { netlink: k, ns: "node1" } };
}
const config = {
  cniVersion: "1.0.0",
  name: "cbr0",
  bridge: "cbr0",
  isGateway: true,
  isDefaultGateway: true,
  mtu: 1450,
  ipam: { type: "host-local", ranges: [[{ subnet: "10.0.1.0/24" }]] },
};

describe("the bridge plugin", () => {
  it("ADD builds the bridge, the veth pair, the address and the default route, and reports them", async () => {
    const { k, host } = await node();
    const params = {
      containerId: "pod1",
      netns: "/run/netns/pod1",
      ifname: "eth0",
      args: "",
      path: [],
      host,
    };
    const result = await bridgePlugin().add(params, config);
    const veth = hostVethName("pod1", "eth0");
    expect(veth).toMatch(/^veth[0-9a-f]{8}$/);
    expect(result.interfaces!.map((i) => [i.name, i.sandbox])).toEqual([
      ["cbr0", undefined],
      [veth, undefined],
      ["eth0", "/run/netns/pod1"],
    ]);
    expect(result.ips).toEqual([{ address: "10.0.1.2/24", gateway: "10.0.1.1", interface: 2 }]);
    expect(result.routes).toEqual([{ dst: "0.0.0.0/0", gw: "10.0.1.1" }]);
    expect((await k.link.list("node1")).find((l) => l.ifname === veth)).toMatchObject({
      master: "cbr0",
      mtu: 1450,
    });
    expect(
      (await k.addr.list("node1")).find((l) => l.ifname === "cbr0")!.addr_info.map((a) => a.local),
    ).toEqual(["10.0.1.1"]);
    expect(await k.route.list("pod1")).toEqual([
      { dst: "default", gateway: "10.0.1.1", dev: "eth0", flags: [] },
      { dst: "10.0.1.0/24", dev: "eth0", protocol: "kernel", scope: "link", prefsrc: "10.0.1.2", flags: [] },
    ]);
    expect(await k.sysctl.get("node1", "net.ipv4.ip_forward")).toBe("1");
  });

  it("refuses a second ADD of the same interface, as the reference plugin does, keeping the first", async () => {
    const { host } = await node();
    const plugin = bridgePlugin();
    const params = { containerId: "pod1", netns: "pod1", ifname: "eth0", args: "", path: [], host };
    await plugin.add(params, config);
    await expect(plugin.add({ ...params, containerId: "pod1b" }, config)).rejects.toThrow(
      "container veth name provided (eth0) already exists",
    );
    await plugin.check(
      { ...params },
      { ...config, prevResult: { cniVersion: "1.0.0", ips: [{ address: "10.0.1.2/24" }] } },
    );
  });

  it("DEL releases the address and the veth, succeeds when repeated and when the namespace is gone", async () => {
    const { k, host } = await node();
    const plugin = bridgePlugin();
    const params = { containerId: "pod1", netns: "pod1", ifname: "eth0", args: "", path: [], host };
    const added = await plugin.add(params, config);
    await plugin.del(params, config);
    await plugin.del(params, config);
    expect((await k.link.list("node1")).some((l) => l.ifname === hostVethName("pod1", "eth0"))).toBe(false);
    await expect(plugin.check(params, { ...config, prevResult: added })).rejects.toThrow(
      "Failed to find container interface eth0",
    );
    // A pod whose namespace was deleted before DEL: its address is still released.
    await plugin.add({ ...params, containerId: "pod2" }, config);
    await k.netns.del("pod1");
    await plugin.del({ ...params, containerId: "pod2" }, config);
    await k.netns.add("pod1");
    const again = await plugin.add(
      { ...params, containerId: "pod3" },
      { ...config, ipam: { type: "host-local", ranges: [[{ subnet: "10.0.1.0/30" }]] } },
    );
    expect(again.ips![0]!.address).toBe("10.0.1.2/30");
  });
});
