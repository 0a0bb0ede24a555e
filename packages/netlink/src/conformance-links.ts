/**
 * The host API conformance suite's cases (conformance.ts runs them): namespaces, links (veth, bridges,
 * VXLAN), their names and MTUs, and sysctls.
 */
import { expect, it } from "vitest";
import type { Harness } from "./conformance.js";
import { parseAddrArgument as cidr } from "./values.js";

export function linkCases({ setup, refusal, flannelDevice }: Harness): void {
  it("creates, lists and deletes namespaces, refusing duplicates and unknown names", async () => {
    const {
      n,
      ns: [a],
    } = await setup("a");
    expect(await n.netns.list()).toContain(a);
    expect((await refusal(n.netns.add(a!))).message).toBe(
      `Cannot create namespace file "/run/netns/${a}": File exists`,
    );
    await n.netns.del(a!);
    expect(await n.netns.list()).not.toContain(a);
    expect((await refusal(n.netns.del(a!))).message).toBe(
      `Cannot remove namespace file "/run/netns/${a}": No such file or directory`,
    );
  });

  it("gives a new namespace a loopback that is down and has no address until brought up", async () => {
    const {
      n,
      ns: [a],
    } = await setup("a");
    const [lo] = await n.addr.list(a!);
    expect(lo).toMatchObject({
      ifname: "lo",
      flags: ["LOOPBACK"],
      mtu: 65536,
      operstate: "DOWN",
      link_type: "loopback",
      addr_info: [],
    });
    await n.link.set(a!, "lo", { up: true });
    const [up] = await n.addr.list(a!);
    expect(up!.flags).toEqual(["LOOPBACK", "UP", "LOWER_UP"]);
    expect(up!.addr_info).toEqual([
      { family: "inet", local: "127.0.0.1", prefixlen: 8, scope: "host", label: "lo" },
    ]);
    expect(await n.route.list(a!)).toEqual([]);
  });

  it("makes veth pairs across namespaces whose carrier needs both ends up", async () => {
    const {
      n,
      ns: [a, b],
    } = await setup("a", "b");
    await n.link.add(a!, { kind: "veth", name: "v0", peer: { name: "v1", netns: b! } });
    await n.link.set(a!, "v0", { up: true });
    const half = (await n.link.list(a!)).find((l) => l.ifname === "v0")!;
    expect(half).toMatchObject({
      flags: ["NO-CARRIER", "BROADCAST", "MULTICAST", "UP"],
      operstate: "DOWN",
      mtu: 1500,
      link_type: "ether",
    });
    expect(half.linkinfo?.info_kind).toBe("veth");
    await n.link.set(b!, "v1", { up: true });
    const both = (await n.link.list(a!)).find((l) => l.ifname === "v0")!;
    expect(both).toMatchObject({ flags: ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], operstate: "UP" });
    expect(both.address).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    // Listed by name, a device is what the whole dump shows of it; a missing one lists nothing.
    expect(await n.link.list(a!, { dev: "v0" })).toEqual([both]);
    expect(await n.addr.list(a!, { dev: "v0" })).toEqual(
      (await n.addr.list(a!)).filter((l) => l.ifname === "v0"),
    );
    expect(await n.link.list(a!, { dev: "nope0" })).toEqual([]);
    expect(await n.addr.list(a!, { dev: "nope0" })).toEqual([]);
    // Deleting one end deletes the pair.
    await n.link.del(b!, "v1");
    expect((await n.link.list(a!)).map((l) => l.ifname)).toEqual(["lo"]);
  });

  it("refuses bad, duplicate and unknown device names with the kernel's words", async () => {
    const {
      n,
      ns: [a],
    } = await setup("a");
    await n.link.add(a!, { kind: "bridge", name: "br0" });
    expect(await refusal(n.link.add(a!, { kind: "bridge", name: "br0" }))).toMatchObject({
      errno: "EEXIST",
      message: "RTNETLINK answers: File exists",
    });
    // iproute2 refuses a name it cannot pass (over 15 bytes, "/" or a space, empty), the kernel
    // one it can (":", "." and ".."); a veth pair with one bad name is not made at all.
    for (const name of ["thisnameiswaytoolong", "äääääääää", "a/b", "a b", ""])
      expect((await refusal(n.link.add(a!, { kind: "bridge", name }))).message).toBe(
        `Error: argument "${name}" is wrong: "name" not a valid ifname`,
      );
    for (const name of ["a:b", ".", ".."])
      expect((await refusal(n.link.add(a!, { kind: "bridge", name }))).message).toBe(
        "RTNETLINK answers: Invalid argument",
      );
    expect(
      (await refusal(n.link.add(a!, { kind: "veth", name: "v0", peer: { name: "thisnameiswaytoolong" } })))
        .message,
    ).toBe('Error: argument "thisnameiswaytoolong" is wrong: "name" not a valid ifname');
    expect((await n.link.list(a!)).map((l) => l.ifname)).toEqual(["lo", "br0"]);
    expect(await refusal(n.link.set(a!, "nosuch", { up: true }))).toMatchObject({
      errno: "ENODEV",
      message: 'Cannot find device "nosuch"',
    });
    expect((await refusal(n.link.del(a!, "nosuch"))).message).toBe('Cannot find device "nosuch"');
    expect((await refusal(n.link.set(a!, "br0", { mtu: 50 }))).message).toBe(
      "Error: mtu less than device minimum.",
    );
  });

  it("takes device names that are iproute2's own words", async () => {
    const {
      n,
      ns: [a, b],
    } = await setup("a", "b");
    // A container interface may be called anything 1-15 characters long; the reference plugins
    // take these (runtimes pass CNI_IFNAME through), so the host API must too.
    await n.link.add(a!, { kind: "bridge", name: "help" });
    await n.link.add(a!, { kind: "veth", name: "up", peer: { name: "type", netns: b! } });
    await n.link.add(a!, { kind: "veth", name: "dev", peer: { name: "master" } });
    await n.link.set(a!, "up", { master: "help", mtu: 1400, up: true });
    await n.link.set(a!, "master", { master: "help" });
    await n.addr.add(b!, "type", cidr("192.168.78.2/24"));
    // A veth's peer is registered first (the lower index); the bridge's MTU follows its smallest
    // port's, since none was set on it.
    const links = await n.link.list(a!);
    expect(links.map((l) => [l.ifname, l.master ?? "", l.mtu])).toEqual([
      ["lo", "", 65536],
      ["help", "", 1400],
      ["up", "help", 1400],
      ["master", "help", 1500],
      ["dev", "", 1500],
    ]);
    expect((await n.addr.list(b!, { dev: "type" }))[0]!.addr_info.map((x) => x.local)).toEqual([
      "192.168.78.2",
    ]);
    await n.link.del(a!, "dev");
    await n.link.del(a!, "up");
    expect((await n.link.list(a!)).map((l) => l.ifname)).toEqual(["lo", "help"]);
    expect((await n.link.list(b!)).map((l) => l.ifname)).toEqual(["lo"]);
  });

  it("keeps a bridge's MTU at its smallest port's until the bridge's own is set", async () => {
    const {
      n,
      ns: [a],
    } = await setup("a");
    const mtu = async () => (await n.link.list(a!, { dev: "br0" }))[0]!.mtu;
    // An MTU given when the bridge is made is not "set": the first port changes it.
    await n.link.add(a!, { kind: "bridge", name: "br0", mtu: 1450 });
    await n.link.add(a!, { kind: "veth", name: "v0", peer: { name: "v1" }, mtu: 1400 });
    expect(await mtu()).toBe(1450);
    await n.link.set(a!, "v0", { master: "br0" });
    expect(await mtu()).toBe(1400);
    await n.link.set(a!, "v0", { mtu: 1300 });
    expect(await mtu()).toBe(1300);
    await n.link.set(a!, "v0", { master: null });
    expect(await mtu()).toBe(1500);
    await n.link.set(a!, "br0", { mtu: 1450 });
    await n.link.set(a!, "v0", { master: "br0" });
    expect(await mtu()).toBe(1450);
    await n.link.del(a!, "v0");
    expect(await mtu()).toBe(1450);
  });

  it("enslaves veth ends to a bridge, and only to a bridge", async () => {
    const {
      n,
      ns: [a],
    } = await setup("a");
    await n.link.add(a!, { kind: "bridge", name: "br0" });
    await n.link.add(a!, { kind: "veth", name: "p0", peer: { name: "p1" } });
    await n.link.set(a!, "p0", { master: "br0" });
    expect((await n.link.list(a!)).find((l) => l.ifname === "p0")!.master).toBe("br0");
    await n.link.set(a!, "p0", { hairpin: true });
    expect((await refusal(n.link.set(a!, "p1", { master: "p0" }))).message).toBe(
      "RTNETLINK answers: Operation not supported",
    );
    expect((await refusal(n.link.set(a!, "p1", { hairpin: true }))).message).toBe(
      "RTNETLINK answers: Operation not supported",
    );
    expect((await refusal(n.link.set(a!, "p1", { master: "nosuch" }))).message).toBe(
      'Error: argument "nosuch" is wrong: Device does not exist',
    );
    await n.link.set(a!, "p0", { master: null });
    expect((await n.link.list(a!)).find((l) => l.ifname === "p0")!.master).toBeUndefined();
  });

  it("sizes a VXLAN device 50 bytes under its lower device, as flannel relies on", async () => {
    const { n, a } = await flannelDevice(9000);
    await n.link.add(a, { kind: "vxlan", name: "vx4789", vni: 4096, dstport: 4789 });
    const links = await n.link.list(a!);
    const flannel = links.find((l) => l.ifname === "flannel.1")!;
    expect(flannel.mtu).toBe(8950);
    expect(links.find((l) => l.ifname === "e1")!.mtu).toBe(9000); // a veth's MTU is both ends'
    expect(flannel.linkinfo?.info_kind).toBe("vxlan");
    expect(flannel.linkinfo?.info_data).toMatchObject({
      id: 1,
      local: "192.168.50.1",
      link: "e0",
      port: 8472,
      learning: false,
    });
    expect(links.find((l) => l.ifname === "vx4789")!.mtu).toBe(1500);
    expect(links.find((l) => l.ifname === "vx4789")!.linkinfo?.info_data).toMatchObject({
      id: 4096,
      port: 4789,
      learning: true,
    });
  });

  it("sets and reads forwarding and bridge-netfilter sysctls per namespace", async () => {
    const {
      n,
      ns: [a, b],
    } = await setup("a", "b");
    expect(await n.sysctl.get(a!, "net.ipv4.ip_forward")).toBe("0");
    await n.sysctl.set(a!, "net.ipv4.ip_forward", "1");
    expect(await n.sysctl.get(a!, "net.ipv4.ip_forward")).toBe("1");
    expect(await n.sysctl.get(b!, "net.ipv4.ip_forward")).toBe("0");
    // br_netfilter loaded (as Docker and kubelet need it): a new namespace starts at 1.
    expect(await n.sysctl.get(b!, "net.bridge.bridge-nf-call-iptables")).toBe("1");
    await n.sysctl.set(b!, "net.bridge.bridge-nf-call-iptables", "0");
    expect(await n.sysctl.get(b!, "net.bridge.bridge-nf-call-iptables")).toBe("0");
    await n.sysctl.set(a!, "net.bridge.bridge-nf-call-iptables", "1");
    expect(await n.sysctl.get(a!, "net.bridge.bridge-nf-call-iptables")).toBe("1");
    // (A new namespace's route_localnet is the root namespace's: only what is set is compared.)
    await n.sysctl.set(a!, "net.ipv4.conf.all.route_localnet", "1");
    await n.sysctl.set(b!, "net.ipv4.conf.all.route_localnet", "0");
    expect(await n.sysctl.get(a!, "net.ipv4.conf.all.route_localnet")).toBe("1");
    expect(await n.sysctl.get(b!, "net.ipv4.conf.all.route_localnet")).toBe("0");
    // Per device, as the portmap plugin sets its bridge's; a device that is not there has no key.
    await n.link.add(b!, { kind: "bridge", name: "br0" });
    await n.sysctl.set(b!, "net.ipv4.conf.br0.route_localnet", "1");
    expect(await n.sysctl.get(b!, "net.ipv4.conf.br0.route_localnet")).toBe("1");
    expect(await n.sysctl.get(b!, "net.ipv4.conf.all.route_localnet")).toBe("0");
    await n.sysctl.set(b!, "net.ipv4.conf.br0.route_localnet", "0");
    expect(await n.sysctl.get(b!, "net.ipv4.conf.br0.route_localnet")).toBe("0");
    expect((await refusal(n.sysctl.set(b!, "net.ipv4.conf.nosuch0.route_localnet", "1"))).message).toBe(
      "sysctl: cannot stat /proc/sys/net/ipv4/conf/nosuch0/route_localnet: No such file or directory",
    );
  });
}
