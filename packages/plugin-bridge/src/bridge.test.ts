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

/** CNI parameters for an attachment of `containerId` in `netns`, run on `host`. */
const attachment = (
  host: { netlink: SimKernel; ns: string },
  netns: string,
  containerId = "pod1",
  ifname = "eth0",
) => ({ containerId, netns, ifname, args: "", path: [], host });

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

  it("gives two attachments whose host names collide a name each, and DEL removes only its own", async () => {
    const { k, host } = await node();
    await k.netns.add("pod2");
    // Two container IDs whose derived host names are one (32 bits of FNV-1a).
    expect(hostVethName("podb5cf", "eth0")).toBe(hostVethName("pod2b299", "eth0"));
    const plugin = bridgePlugin();
    const first = await plugin.add(attachment(host, "pod1", "podb5cf"), config);
    const second = await plugin.add(attachment(host, "pod2", "pod2b299"), config);
    expect(second.interfaces![1]!.name).toBe(hostVethName("pod2b299", "eth0", 1));
    await plugin.check(attachment(host, "pod2", "pod2b299"), { ...config, prevResult: second });
    // A DEL naming the other pod's namespace, and one for a container never added, delete nothing.
    await plugin.del(attachment(host, "pod1", "nosuch"), config);
    expect((await k.link.list("pod1")).map((l) => l.ifname)).toEqual(["lo", "eth0"]);
    await plugin.del(attachment(host, "pod2", "pod2b299"), config);
    expect((await k.link.list("pod2")).map((l) => l.ifname)).toEqual(["lo"]);
    expect((await k.link.list("pod1")).map((l) => l.ifname)).toEqual(["lo", "eth0"]);
    await plugin.check(attachment(host, "pod1", "podb5cf"), { ...config, prevResult: first });
    // Once its namespace is gone the pair is gone with it: DEL succeeds and removes nothing else.
    await k.netns.del("pod1");
    await plugin.del(attachment(host, "pod1", "podb5cf"), config);
    expect((await k.link.list("node1")).map((l) => l.ifname)).toEqual(["lo", "cbr0"]);
  });

  it("masquerades a container's second interface beside its first, and a failed ADD leaves the first's rules", async () => {
    const { k, host } = await node();
    const plugin = bridgePlugin();
    // No default route: a second default through the same subnet is another question.
    const masq = { ...config, isDefaultGateway: false, ipMasq: true };
    await plugin.add(attachment(host, "pod1", "c1", "eth0"), masq);
    const one = await k.iptables.save("node1", "nat");
    await plugin.add(attachment(host, "pod1", "c1", "eth1"), masq);
    const both = await k.iptables.save("node1", "nat");
    expect(both.split("\n").filter((l) => l.startsWith("-A POSTROUTING"))).toEqual([
      expect.stringContaining("-s 10.0.1.2/32"),
      expect.stringContaining("-s 10.0.1.3/32"),
    ]);
    // A third ADD that fails (the interface exists) changes nothing.
    await expect(plugin.add(attachment(host, "pod1", "c1", "eth0"), masq)).rejects.toThrow("already exists");
    expect(await k.iptables.save("node1", "nat")).toBe(both);
    expect(one).not.toBe(both);
  });

  it("says which bridge it failed to create, and takes the address back", async () => {
    const { k, host } = await node();
    const params = attachment(host, "pod1");
    await expect(bridgePlugin().add(params, { ...config, bridge: "averyverylongbridge" })).rejects.toThrow(
      'failed to create bridge "averyverylongbridge": Error: argument "averyverylongbridge" is wrong: "name" not a valid ifname',
    );
    expect((await k.link.list("node1")).map((l) => l.ifname)).toEqual(["lo"]);
    // The address is free again: the next ADD gets the first one.
    const result = await bridgePlugin().add(params, config);
    expect(result.ips![0]!.address).toBe("10.0.1.2/24");
  });

  it("refuses an IPAM type other than its built-in host-local before anything changes", async () => {
    const { k, host } = await node();
    const params = attachment(host, "pod1");
    for (const type of ["nosuchipam", "static"])
      await expect(bridgePlugin().add(params, { ...config, ipam: { ...config.ipam, type } })).rejects.toThrow(
        `ipam type "${type}" is not supported: podnet's bridge plugin has host-local built in`,
      );
    expect((await k.link.list("node1")).map((l) => l.ifname)).toEqual(["lo"]);
  });

  it("refuses a second ADD of the same interface, as the reference plugin does, keeping the first", async () => {
    const { host } = await node();
    const plugin = bridgePlugin();
    const params = attachment(host, "pod1");
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
    const params = attachment(host, "pod1");
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

describe("the bridge plugin given bad input", () => {
  const nodeState = async (k: SimKernel, ns: string) => ({
    links: (await k.link.list(ns)).map((l) => [l.ifname, l.linkinfo?.info_kind]),
    addrs: (await k.addr.list(ns)).map((l) => l.addr_info.map((a) => a.local)),
    routes: await k.route.list(ns),
  });

  it("refuses a CNI_NETNS of /run/netns/ or the node's own namespace, and the node is left as it was", async () => {
    const { k, host } = await node();
    const before = await nodeState(k, "node1");
    await expect(bridgePlugin().add(attachment(host, "/run/netns/"), config)).rejects.toMatchObject({
      cniCode: 999,
      msg: 'failed to open netns "/run/netns/": not a namespace',
    });
    await expect(bridgePlugin().add(attachment(host, "/run/netns/node1"), config)).rejects.toMatchObject({
      cniCode: 4,
      msg: 'CNI_NETNS "/run/netns/node1" is the namespace the plugin runs in, not a container\'s',
    });
    expect(await nodeState(k, "node1")).toEqual(before);
  });

  it("DEL for a container never added deletes nothing, not even an eth0 of that namespace", async () => {
    const { k, host } = await node();
    await k.link.add("pod1", { kind: "veth", name: "eth0", peer: { name: "other0" } });
    const before = [await nodeState(k, "node1"), await nodeState(k, "pod1")];
    await bridgePlugin().del(attachment(host, "/run/netns/pod1", "neverseen"), config);
    expect([await nodeState(k, "node1"), await nodeState(k, "pod1")]).toEqual(before);
  });

  it("a bad IPAM block is refused before the bridge or the veth is made", async () => {
    const { k, host } = await node();
    const before = [await nodeState(k, "node1"), await nodeState(k, "pod1")];
    await expect(
      bridgePlugin().add(attachment(host, "pod1"), { ...config, ipam: { type: "host-local", dataDir: 5 } }),
    ).rejects.toThrow(
      "json: cannot unmarshal number into Go struct field IPAMConfig.ipam.dataDir of type string",
    );
    expect([await nodeState(k, "node1"), await nodeState(k, "pod1")]).toEqual(before);
  });
});
