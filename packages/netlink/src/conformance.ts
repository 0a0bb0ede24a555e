/**
 * One conformance suite for every implementation of the host API: the simulator runs it, and so
 * does the Linux backend against the real kernel, so the two are held to the same observable
 * behaviour — dumps in iproute2's JSON shapes and the kernel's refusals word for word.
 *
 *   describeNetlinkConformance("sim", { create: async () => ({ netlink: new SimKernel(), prefix: "" }) });
 */
import { afterEach, describe, expect, it } from "vitest";
import { NetlinkError } from "./errors.js";
import { formatIptablesSave, rule } from "./iptables.js";
import { nftablesCases } from "./conformance-nftables.js";
import type { Netlink } from "./types.js";
import {
  DEFAULT_ROUTE,
  routeDump,
  parseAddrArgument as cidr,
  parseAddressArgument as ip,
  parseLinkAddress as mac,
  parseRouteDst as net,
} from "./values.js";

export interface ConformanceTarget {
  /** A host API to test and a prefix for the names of the namespaces the suite creates. */
  create(): Promise<{ netlink: Netlink; prefix: string }>;
  /** Skip the whole suite, with the reason (e.g. not root). */
  skip?: string;
}

/** The refusal of a call; a function also covers parsing its arguments (text refused at the edge). */
async function refusal(call: Promise<unknown> | (() => Promise<unknown>)): Promise<NetlinkError> {
  try {
    await (typeof call === "function" ? call() : call);
  } catch (error) {
    if (error instanceof NetlinkError) return error;
    throw error;
  }
  throw new Error("expected the call to be refused, and it succeeded");
}

export function describeNetlinkConformance(name: string, target: ConformanceTarget): void {
  describe.skipIf(target.skip)(`host API conformance: ${name}`, () => {
    let created: { netlink: Netlink; names: string[] } | undefined;

    afterEach(async () => {
      if (!created) return;
      for (const ns of created.names.reverse()) await created.netlink.netns.del(ns).catch(() => undefined);
      created = undefined;
    });

    /** A fresh host API and namespaces named prefix+short, removed after the test. */
    async function setup(...shorts: string[]) {
      const { netlink, prefix } = await target.create();
      created = { netlink, names: [] };
      const names = shorts.map((s) => prefix + s);
      for (const ns of names) {
        await netlink.netns.add(ns);
        created.names.push(ns);
      }
      return { n: netlink, ns: names };
    }

    /** Namespaces a and b joined by veth e0–e0, both up, a's end addressed 192.168.77.1/24. */
    async function linkedPair() {
      const {
        n,
        ns: [a, b],
      } = await setup("a", "b");
      await n.link.add(a!, { kind: "veth", name: "e0", peer: { name: "e0", netns: b! } });
      await n.addr.add(a!, "e0", cidr("192.168.77.1/24"));
      await n.link.set(a!, "e0", { up: true });
      await n.link.set(b!, "e0", { up: true });
      return { n, a: a! };
    }

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
      const {
        n,
        ns: [a],
      } = await setup("a");
      await n.link.add(a!, { kind: "veth", name: "e0", peer: { name: "e1" }, mtu: 9000 });
      await n.link.add(a!, {
        kind: "vxlan",
        name: "flannel.1",
        vni: 1,
        local: ip("192.168.50.1"),
        dev: "e0",
        dstport: 8472,
        learning: false,
      });
      await n.link.add(a!, { kind: "vxlan", name: "vx4789", vni: 4096, dstport: 4789 });
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

    it("installs the connected route of an address only while the link is up, and never for a /32", async () => {
      const {
        n,
        ns: [a],
      } = await setup("a");
      await n.link.add(a!, { kind: "veth", name: "d0", peer: { name: "d0p" } });
      await n.addr.add(a!, "d0", cidr("10.1.1.1/24"));
      expect(await n.route.list(a!)).toEqual([]);
      await n.link.set(a!, "d0", { up: true });
      await n.addr.add(a!, "d0", cidr("10.1.1.7/32"));
      expect(await n.route.list(a!)).toEqual([
        {
          dst: "10.1.1.0/24",
          dev: "d0",
          protocol: "kernel",
          scope: "link",
          prefsrc: "10.1.1.1",
          flags: ["linkdown"],
        },
      ]);
      expect((await n.addr.list(a!)).find((l) => l.ifname === "d0")!.addr_info).toEqual([
        { family: "inet", local: "10.1.1.1", prefixlen: 24, scope: "global", label: "d0" },
        { family: "inet", local: "10.1.1.7", prefixlen: 32, scope: "global", label: "d0" },
      ]);
      expect((await refusal(n.addr.add(a!, "d0", cidr("10.1.1.1/24")))).message).toBe(
        "Error: ipv4: Address already assigned.",
      );
      expect((await refusal(() => n.addr.add(a!, "d0", cidr("10.1.1.300/24")))).message).toBe(
        'Error: any valid prefix is expected rather than "10.1.1.300/24".',
      );
      expect((await refusal(n.addr.del(a!, "d0", cidr("10.9.9.9/24")))).message).toBe(
        "Error: ipv4: Address not found.",
      );
      await n.addr.del(a!, "d0", cidr("10.1.1.1/24"));
      expect(await n.route.list(a!)).toEqual([]);
    });

    it("adds, replaces and deletes routes with the kernel's nexthop checks", async () => {
      const { n, a } = await linkedPair();
      await n.link.add(a!, { kind: "veth", name: "down0", peer: { name: "down1" } });
      await n.route.add(a!, { dst: net("10.9.2.0/24"), via: ip("192.168.77.2") });
      expect(
        await refusal(n.route.add(a!, { dst: net("10.9.2.0/24"), via: ip("192.168.77.3") })),
      ).toMatchObject({
        errno: "EEXIST",
        message: "RTNETLINK answers: File exists",
      });
      await n.route.replace(a!, { dst: net("10.9.2.0/24"), via: ip("192.168.77.3") });
      await n.route.add(a!, { dst: net("10.9.2.0/24"), via: ip("192.168.77.4"), metric: 100 });
      await n.route.add(a!, { dst: net("10.9.7.5"), via: ip("192.168.77.5") });
      await n.route.add(a!, { dst: DEFAULT_ROUTE, via: ip("192.168.77.254"), dev: "e0" });
      await n.route.add(a!, { dst: net("10.9.4.0/24"), via: ip("10.9.4.0"), dev: "e0", onlink: true });
      expect(
        await refusal(n.route.add(a!, { dst: net("10.9.3.0/24"), via: ip("192.168.78.2") })),
      ).toMatchObject({
        errno: "EINVAL",
        message: "Error: Nexthop has invalid gateway.",
      });
      expect(
        (await refusal(n.route.add(a!, { dst: net("10.9.3.0/24"), via: ip("10.9.4.0"), dev: "e0" }))).message,
      ).toBe("Error: Nexthop has invalid gateway.");
      expect(
        (
          await refusal(
            n.route.add(a!, { dst: net("10.9.3.0/24"), via: ip("10.9.4.0"), dev: "down0", onlink: true }),
          )
        ).message,
      ).toBe("Error: Nexthop device is not up.");
      expect(
        (await refusal(n.route.add(a!, { dst: net("10.9.3.0/24"), via: ip("10.9.4.0"), onlink: true })))
          .message,
      ).toBe("Error: Nexthop device required for onlink.");
      expect((await refusal(n.route.add(a!, { dst: net("10.9.3.0/24"), dev: "down0" }))).message).toBe(
        "Error: Device for nexthop is not up.",
      );
      expect((await refusal(n.route.add(a!, { dst: net("10.9.3.0/24"), dev: "nosuch" }))).message).toBe(
        'Cannot find device "nosuch"',
      );
      expect((await refusal(() => n.route.add(a!, { dst: net("10.9.3.5/24"), dev: "e0" }))).message).toBe(
        "Error: Invalid prefix for given prefix length.",
      );
      expect((await refusal(() => n.route.add(a!, { dst: net("10.9.3.0/33"), dev: "e0" }))).message).toBe(
        'Error: any valid prefix is expected rather than "10.9.3.0/33".',
      );
      expect(await n.route.list(a!)).toEqual([
        { dst: "default", gateway: "192.168.77.254", dev: "e0", flags: [] },
        { dst: "10.9.2.0/24", gateway: "192.168.77.3", dev: "e0", flags: [] },
        { dst: "10.9.2.0/24", gateway: "192.168.77.4", dev: "e0", metric: 100, flags: [] },
        { dst: "10.9.4.0/24", gateway: "10.9.4.0", dev: "e0", flags: ["onlink"] },
        { dst: "10.9.7.5", gateway: "192.168.77.5", dev: "e0", flags: [] },
        {
          dst: "192.168.77.0/24",
          dev: "e0",
          protocol: "kernel",
          scope: "link",
          prefsrc: "192.168.77.1",
          flags: [],
        },
      ]);
      expect(await n.route.list(a!, { exact: net("10.9.2.0/24") })).toEqual([
        { dst: "10.9.2.0/24", gateway: "192.168.77.3", dev: "e0", flags: [] },
        { dst: "10.9.2.0/24", gateway: "192.168.77.4", dev: "e0", metric: 100, flags: [] },
      ]);
      expect(await n.route.list(a!, { exact: net("10.9.0.0/16") })).toEqual([]);
      // Programs read the same routes as values, in the same order.
      expect((await n.route.entries(a!)).map(routeDump)).toEqual(await n.route.list(a!));
      expect(await n.route.entries(a!, { exact: net("10.9.7.5/32") })).toEqual([
        {
          dst: net("10.9.7.5"),
          gateway: ip("192.168.77.5"),
          dev: "e0",
          scope: "global",
          metric: 0,
          onlink: false,
          linkdown: false,
        },
      ]);
      await n.route.del(a!, { dst: net("10.9.2.0/24"), metric: 100 });
      expect(await refusal(n.route.del(a!, { dst: net("10.9.6.0/24") }))).toMatchObject({
        errno: "ESRCH",
        message: "RTNETLINK answers: No such process",
      });
      // A link going down takes every route through it, static ones too; up brings back only the connected one.
      await n.link.set(a!, "e0", { up: false });
      expect(await n.route.list(a!)).toEqual([]);
      await n.link.set(a!, "e0", { up: true });
      expect((await n.route.list(a!)).map((r) => r.dst)).toEqual(["192.168.77.0/24"]);
    });

    it("keeps permanent neighbours and VXLAN forwarding entries as flannel writes them", async () => {
      const {
        n,
        ns: [a],
      } = await setup("a");
      await n.link.add(a!, { kind: "veth", name: "e0", peer: { name: "e1" } });
      await n.link.add(a!, {
        kind: "vxlan",
        name: "flannel.1",
        vni: 1,
        local: ip("192.168.50.1"),
        dev: "e0",
        dstport: 8472,
        learning: false,
      });
      await n.neigh.replace(a!, {
        dst: ip("10.244.2.0"),
        dev: "flannel.1",
        lladdr: mac("96:fe:d6:d5:45:cf"),
        state: "permanent",
      });
      await n.neigh.replace(a!, {
        dst: ip("10.244.2.0"),
        dev: "flannel.1",
        lladdr: mac("96:fe:d6:d5:45:d0"),
        state: "permanent",
      });
      expect(await n.neigh.list(a!)).toEqual([
        { dst: "10.244.2.0", dev: "flannel.1", lladdr: "96:fe:d6:d5:45:d0", state: ["PERMANENT"] },
      ]);
      expect(await n.neigh.list(a!, { dst: ip("10.244.2.0"), dev: "flannel.1" })).toHaveLength(1);
      expect(await n.neigh.entries(a!, { dst: ip("10.244.2.0"), dev: "flannel.1" })).toEqual([
        { dst: ip("10.244.2.0"), dev: "flannel.1", lladdr: mac("96:FE:D6:D5:45:D0"), state: ["PERMANENT"] },
      ]);
      expect(await n.neigh.list(a!, { dst: ip("10.244.3.0"), dev: "flannel.1" })).toEqual([]);
      expect((await refusal(n.neigh.del(a!, { dst: ip("10.244.9.0"), dev: "flannel.1" }))).message).toBe(
        "RTNETLINK answers: No such file or directory",
      );
      await n.fdb.append(a!, {
        mac: mac("96:fe:d6:d5:45:d0"),
        dev: "flannel.1",
        dst: ip("192.168.50.2"),
        self: true,
        permanent: true,
      });
      await n.fdb.append(a!, {
        mac: mac("96:fe:d6:d5:45:d0"),
        dev: "flannel.1",
        dst: ip("192.168.50.2"),
        self: true,
        permanent: true,
      });
      await n.fdb.append(a!, {
        mac: mac("00:00:00:00:00:00"),
        dev: "flannel.1",
        dst: ip("192.168.50.3"),
        self: true,
        permanent: true,
      });
      await n.fdb.append(a!, {
        mac: mac("00:00:00:00:00:00"),
        dev: "flannel.1",
        dst: ip("192.168.50.4"),
        self: true,
        permanent: true,
      });
      // The kernel dumps its FDB in hash order: compare as a set.
      const byMacAndDst = (x: { mac: string; dst?: string }, y: { mac: string; dst?: string }) =>
        `${x.mac}${x.dst}`.localeCompare(`${y.mac}${y.dst}`);
      expect((await n.fdb.list(a!)).sort(byMacAndDst)).toEqual([
        {
          mac: "00:00:00:00:00:00",
          ifname: "flannel.1",
          dst: "192.168.50.3",
          flags: ["self"],
          state: "permanent",
        },
        {
          mac: "00:00:00:00:00:00",
          ifname: "flannel.1",
          dst: "192.168.50.4",
          flags: ["self"],
          state: "permanent",
        },
        {
          mac: "96:fe:d6:d5:45:d0",
          ifname: "flannel.1",
          dst: "192.168.50.2",
          flags: ["self"],
          state: "permanent",
        },
      ]);
      expect(await n.fdb.list(a!, { dev: "flannel.1", mac: mac("96:fe:d6:d5:45:d0") })).toEqual([
        {
          mac: "96:fe:d6:d5:45:d0",
          ifname: "flannel.1",
          dst: "192.168.50.2",
          flags: ["self"],
          state: "permanent",
        },
      ]);
      expect(await n.fdb.entries(a!, { dev: "flannel.1", mac: mac("96:FE:D6:D5:45:D0") })).toEqual([
        {
          mac: mac("96:fe:d6:d5:45:d0"),
          dev: "flannel.1",
          dst: ip("192.168.50.2"),
          flags: ["self"],
          state: "permanent",
        },
      ]);
      expect(
        (
          await refusal(
            n.fdb.del(a!, {
              mac: mac("96:fe:d6:d5:45:99"),
              dev: "flannel.1",
              dst: ip("192.168.50.2"),
              self: true,
            }),
          )
        ).message,
      ).toBe("RTNETLINK answers: No such file or directory");
      await n.fdb.del(a!, {
        mac: mac("96:fe:d6:d5:45:d0"),
        dev: "flannel.1",
        dst: ip("192.168.50.2"),
        self: true,
      });
      await n.neigh.del(a!, { dst: ip("10.244.2.0"), dev: "flannel.1" });
      expect(await n.neigh.list(a!)).toEqual([]);
      expect((await n.fdb.list(a!)).map((e) => e.dst).sort()).toEqual(["192.168.50.3", "192.168.50.4"]);
    });

    it("applies a batch of writes in order, a refusal not stopping the rest (ip -batch -force)", async () => {
      const { n, a } = await linkedPair();
      await n.link.add(a!, { kind: "vxlan", name: "flannel.1", vni: 1, dev: "e0", learning: false });
      await n.link.set(a!, "flannel.1", { up: true });
      const vtep = mac("96:fe:d6:d5:45:cf");
      const result = await n.batch(a!, [
        { op: "route.add", spec: { dst: net("10.9.2.0/24"), via: ip("192.168.77.2") } },
        { op: "route.add", spec: { dst: net("10.9.2.0/24"), via: ip("192.168.77.3") } },
        { op: "route.add", spec: { dst: net("10.9.3.0/24"), via: ip("10.9.9.9") } },
        { op: "neigh.replace", spec: { dst: ip("10.244.2.0"), dev: "flannel.1", lladdr: vtep } },
        {
          op: "fdb.append",
          spec: { mac: vtep, dev: "flannel.1", dst: ip("192.168.77.2"), self: true, permanent: true },
        },
        { op: "fdb.del", spec: { mac: mac("96:fe:d6:d5:45:99"), dev: "flannel.1", dst: ip("192.168.77.2") } },
        {
          op: "route.replace",
          spec: { dst: net("10.244.2.0/24"), via: ip("10.244.2.0"), dev: "flannel.1", onlink: true },
        },
        { op: "route.del", spec: { dst: net("10.9.6.0/24") } },
      ]);
      expect(result.map((e) => e?.message)).toEqual([
        undefined,
        "RTNETLINK answers: File exists",
        "Error: Nexthop has invalid gateway.",
        undefined,
        undefined,
        "RTNETLINK answers: No such file or directory",
        undefined,
        "RTNETLINK answers: No such process",
      ]);
      expect(result[1]?.errno).toBe("EEXIST");
      expect((await n.route.list(a!)).filter((r) => r.protocol !== "kernel")).toEqual([
        { dst: "10.9.2.0/24", gateway: "192.168.77.2", dev: "e0", flags: [] },
        { dst: "10.244.2.0/24", gateway: "10.244.2.0", dev: "flannel.1", flags: ["onlink"] },
      ]);
      expect(await n.neigh.list(a!)).toEqual([
        { dst: "10.244.2.0", dev: "flannel.1", lladdr: "96:fe:d6:d5:45:cf", state: ["PERMANENT"] },
      ]);
      expect(await n.fdb.list(a!, { dev: "flannel.1" })).toEqual([
        {
          mac: "96:fe:d6:d5:45:cf",
          ifname: "flannel.1",
          dst: "192.168.77.2",
          flags: ["self"],
          state: "permanent",
        },
      ]);
      expect(await n.batch(a!, [])).toEqual([]);
    });

    it("holds a layer's entries in every member but the owner's own, whole or not at all", async () => {
      const { n, ns } = await setup("a", "b", "c");
      for (const [i, m] of ns.entries()) {
        // A veth pair inside the namespace: a NIC with carrier, on kernels without the dummy module.
        await n.link.add(m, { kind: "veth", name: "eth0", peer: { name: "eth0p" } });
        await n.addr.add(m, "eth0", cidr(`192.168.77.${i + 1}/24`));
        await n.link.set(m, "eth0p", { up: true });
        await n.link.set(m, "eth0", { up: true });
        await n.link.add(m, { kind: "vxlan", name: "flannel.1", vni: 1, dev: "eth0", learning: false });
        await n.link.set(m, "flannel.1", { up: true });
      }
      const vtep = (i: number) => mac(`96:fe:d6:d5:45:0${i}`);
      const peer = (i: number, via = `192.168.77.${i + 1}`) => ({
        routes: [{ dst: net(`10.9.${i}.0/24`), via: ip(via), dev: "eth0" }],
        neighbours: [
          { dst: ip(`10.244.${i}.0`), dev: "flannel.1", lladdr: vtep(i), state: "permanent" as const },
        ],
        fdb: [
          { mac: vtep(i), dev: "flannel.1", dst: ip(`192.168.77.${i + 1}`), self: true, permanent: true },
        ],
      });
      const routes = async (m: string) =>
        (await n.route.list(m))
          .filter((r) => r.protocol !== "kernel")
          .map((r) => `${r.dst} via ${r.gateway}`);
      for (const [i, m] of ns.entries()) expect(await n.layer.attach("peers", m, `o${i}`)).toEqual([]);
      for (const i of [0, 1, 2]) expect(await n.layer.set("peers", `o${i}`, peer(i))).toEqual([]);
      expect(await routes(ns[0]!)).toEqual(["10.9.1.0/24 via 192.168.77.2", "10.9.2.0/24 via 192.168.77.3"]);
      expect(await routes(ns[1]!)).toEqual(["10.9.0.0/24 via 192.168.77.1", "10.9.2.0/24 via 192.168.77.3"]);
      // The kernel's neighbour dump order is its hash's: compare as sets.
      expect((await n.neigh.list(ns[2]!)).map((e) => `${e.dst} ${e.lladdr}`).sort()).toEqual([
        "10.244.0.0 96:fe:d6:d5:45:00",
        "10.244.1.0 96:fe:d6:d5:45:01",
      ]);
      expect((await n.fdb.list(ns[2]!, { dev: "flannel.1" })).map((e) => `${e.mac} ${e.dst}`).sort()).toEqual(
        ["96:fe:d6:d5:45:00 192.168.77.1", "96:fe:d6:d5:45:01 192.168.77.2"],
      );
      // An owner's new entries replace its old ones everywhere.
      await n.layer.set("peers", "o1", {
        ...peer(1),
        routes: [{ dst: net("10.9.7.0/24"), via: ip("192.168.77.2") }],
      });
      expect(await routes(ns[0]!)).toEqual(["10.9.2.0/24 via 192.168.77.3", "10.9.7.0/24 via 192.168.77.2"]);
      // A gateway no member reaches: each refuses, and holds none of that owner's entries.
      const refused = await n.layer.set("peers", "o9", peer(9, "10.1.1.1"));
      expect(refused.map((r) => [r.ns, r.owner, r.entry, r.error.message]).sort()).toEqual(
        ns.map((m) => [m, "o9", "10.9.9.0/24 via 10.1.1.1 dev eth0", "Error: Nexthop has invalid gateway."]),
      );
      for (const m of ns) {
        expect((await n.neigh.list(m)).map((e) => e.dst)).not.toContain("10.244.9.0");
        expect((await n.fdb.list(m, { dev: "flannel.1" })).map((e) => e.mac)).not.toContain(
          "96:fe:d6:d5:45:09",
        );
      }
      // A member's own writes meet the layer's entries as its own; one that left keeps what it held.
      expect(
        (await refusal(n.route.add(ns[0]!, { dst: net("10.9.2.0/24"), via: ip("192.168.77.3") }))).message,
      ).toBe("RTNETLINK answers: File exists");
      await n.route.del(ns[0]!, { dst: net("10.9.2.0/24"), via: ip("192.168.77.3") });
      await n.layer.detach("peers", ns[1]!);
      await n.layer.set("peers", "o2", { routes: [], neighbours: [], fdb: [] });
      expect(await routes(ns[0]!)).toEqual(["10.9.7.0/24 via 192.168.77.2"]);
      expect(await routes(ns[1]!)).toEqual(["10.9.0.0/24 via 192.168.77.1", "10.9.2.0/24 via 192.168.77.3"]);
      expect(await routes(ns[2]!)).toEqual(["10.9.0.0/24 via 192.168.77.1", "10.9.7.0/24 via 192.168.77.2"]);
    });

    it("writes kube-proxy's chains and saves them as iptables-save does", async () => {
      const {
        n,
        ns: [a],
      } = await setup("a");
      for (const chain of [
        "KUBE-SERVICES",
        "KUBE-SVC-ABC",
        "KUBE-SEP-1",
        "KUBE-MARK-MASQ",
        "KUBE-POSTROUTING",
      ])
        await n.iptables.newChain(a!, "nat", chain);
      await n.iptables.append(
        a!,
        "nat",
        "PREROUTING",
        rule`-m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
      );
      await n.iptables.append(
        a!,
        "nat",
        "KUBE-SERVICES",
        rule`-d 10.96.0.10/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-ABC`,
      );
      await n.iptables.append(
        a!,
        "nat",
        "KUBE-SVC-ABC",
        rule`-m comment --comment "default/web:http -> 10.0.1.2:8080" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-1`,
      );
      await n.iptables.append(a!, "nat", "KUBE-SEP-1", rule`-s 10.0.1.2/32 -j KUBE-MARK-MASQ`);
      await n.iptables.append(
        a!,
        "nat",
        "KUBE-SEP-1",
        rule`-p tcp -m tcp -j DNAT --to-destination 10.0.1.2:8080`,
      );
      // kube-proxy's NodePort jump (under --iptables-localhost-nodeports=false), its matches as typed.
      await n.iptables.append(
        a!,
        "nat",
        "KUBE-SERVICES",
        rule`-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-SVC-ABC`,
      );
      await n.iptables.append(a!, "nat", "KUBE-SVC-ABC", rule`-m addrtype ! --dst-type LOCAL -j RETURN`);
      await n.iptables.append(a!, "nat", "KUBE-MARK-MASQ", rule`-j MARK --or-mark 0x4000`);
      await n.iptables.append(a!, "nat", "KUBE-POSTROUTING", rule`-m mark ! --mark 0x4000/0x4000 -j RETURN`);
      await n.iptables.append(a!, "nat", "KUBE-POSTROUTING", rule`-j MARK --xor-mark 0x4000`);
      await n.iptables.append(
        a!,
        "nat",
        "KUBE-POSTROUTING",
        rule`-m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully`,
      );
      await n.iptables.append(a!, "nat", "POSTROUTING", rule`-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE`);
      await n.iptables.insert(
        a!,
        "nat",
        "PREROUTING",
        rule`-i eth0 -p tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80`,
        1,
      );
      await n.iptables.append(
        a!,
        "filter",
        "FORWARD",
        rule`-d 10.96.0.11/32 -p tcp -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable`,
      );
      expect(await n.iptables.save(a!, "nat")).toBe(
        [
          "*nat",
          ":PREROUTING ACCEPT [0:0]",
          ":INPUT ACCEPT [0:0]",
          ":OUTPUT ACCEPT [0:0]",
          ":POSTROUTING ACCEPT [0:0]",
          ":KUBE-MARK-MASQ - [0:0]",
          ":KUBE-POSTROUTING - [0:0]",
          ":KUBE-SEP-1 - [0:0]",
          ":KUBE-SERVICES - [0:0]",
          ":KUBE-SVC-ABC - [0:0]",
          "-A PREROUTING -i eth0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80",
          '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
          "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE",
          "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
          "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
          "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
          '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
          "-A KUBE-SEP-1 -s 10.0.1.2/32 -j KUBE-MARK-MASQ",
          "-A KUBE-SEP-1 -p tcp -m tcp -j DNAT --to-destination 10.0.1.2:8080",
          '-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-ABC',
          '-A KUBE-SERVICES ! -d 127.0.0.0/8 -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-SVC-ABC',
          '-A KUBE-SVC-ABC -m comment --comment "default/web:http -> 10.0.1.2:8080" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-1',
          "-A KUBE-SVC-ABC -m addrtype ! --dst-type LOCAL -j RETURN",
          "COMMIT",
          "",
        ].join("\n"),
      );
      // Programs read the rules as data: the same rules, no text round trip.
      expect(formatIptablesSave("nat", await n.iptables.list(a!, "nat"))).toBe(
        await n.iptables.save(a!, "nat"),
      );
      expect((await n.iptables.list(a!, "nat", "KUBE-SEP-1")).map((c) => c.rules.length)).toEqual([2]);
      expect(await n.iptables.list(a!, "nat", "NOPE")).toEqual([]);
      expect((await n.iptables.list(a!, "nat")).map((c) => c.name)).toEqual([
        "PREROUTING",
        "INPUT",
        "OUTPUT",
        "POSTROUTING",
        "KUBE-MARK-MASQ",
        "KUBE-POSTROUTING",
        "KUBE-SEP-1",
        "KUBE-SERVICES",
        "KUBE-SVC-ABC",
      ]);
      expect(await n.iptables.save(a!, "filter")).toBe(
        formatIptablesSave("filter", [
          {
            name: "FORWARD",
            rules: [
              rule`-d 10.96.0.11/32 -p tcp -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable`,
            ],
          },
        ]),
      );
    });

    it("writes a policy engine's filter chains (conntrack states, port ranges) as iptables-save does", async () => {
      const {
        n,
        ns: [a],
      } = await setup("a");
      await n.iptables.newChain(a!, "filter", "PODNET-NETPOL");
      await n.iptables.newChain(a!, "filter", "PNP-I-1");
      await n.iptables.insert(a!, "filter", "FORWARD", rule`-j PODNET-NETPOL`, 1);
      await n.iptables.append(
        a!,
        "filter",
        "PODNET-NETPOL",
        rule`-m conntrack --ctstate ESTABLISHED,RELATED -j RETURN`,
      );
      await n.iptables.append(a!, "filter", "PODNET-NETPOL", rule`-d 10.0.1.2/32 -j PNP-I-1`);
      await n.iptables.append(
        a!,
        "filter",
        "PNP-I-1",
        rule`-s 10.0.2.0/24 -p tcp --dport 80:81 -m comment --comment "x/allow ingress[0]" -j RETURN`,
      );
      await n.iptables.append(
        a!,
        "filter",
        "PNP-I-1",
        rule`-s 10.0.0.0/16 -p udp -m udp --dport 53:53 -j RETURN`,
      );
      await n.iptables.append(a!, "filter", "PNP-I-1", rule`-m comment --comment "default deny" -j DROP`);
      await n.iptables.append(a!, "filter", "PNP-I-1", rule`-m conntrack --ctstate NEW,INVALID -j DROP`);
      expect(await n.iptables.save(a!, "filter")).toBe(
        [
          "*filter",
          ":INPUT ACCEPT [0:0]",
          ":FORWARD ACCEPT [0:0]",
          ":OUTPUT ACCEPT [0:0]",
          ":PNP-I-1 - [0:0]",
          ":PODNET-NETPOL - [0:0]",
          "-A FORWARD -j PODNET-NETPOL",
          '-A PNP-I-1 -s 10.0.2.0/24 -p tcp -m tcp --dport 80:81 -m comment --comment "x/allow ingress[0]" -j RETURN',
          "-A PNP-I-1 -s 10.0.0.0/16 -p udp -m udp --dport 53 -j RETURN",
          '-A PNP-I-1 -m comment --comment "default deny" -j DROP',
          "-A PNP-I-1 -m conntrack --ctstate INVALID,NEW -j DROP",
          "-A PODNET-NETPOL -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
          "-A PODNET-NETPOL -d 10.0.1.2/32 -j PNP-I-1",
          "COMMIT",
          "",
        ].join("\n"),
      );
      await n.iptables.delete(a!, "filter", "PNP-I-1", rule`-p udp -s 10.0.0.0/16 --dport 53 -j RETURN`);
      expect((await n.iptables.list(a!, "filter", "PNP-I-1"))[0]!.rules.length).toBe(3);
    });

    it("refuses iptables changes as iptables does", async () => {
      const {
        n,
        ns: [a],
      } = await setup("a");
      await n.iptables.newChain(a!, "nat", "X");
      expect(await refusal(n.iptables.newChain(a!, "nat", "X"))).toMatchObject({
        errno: "EEXIST",
        message: "iptables: Chain already exists.",
      });
      expect((await refusal(n.iptables.append(a!, "nat", "NOPE", rule`-j ACCEPT`))).message).toBe(
        "iptables: No chain/target/match by that name.",
      );
      expect((await refusal(n.iptables.delete(a!, "nat", "POSTROUTING", rule`-j MASQUERADE`))).message).toBe(
        "iptables: Bad rule (does a matching rule exist in that chain?).",
      );
      expect((await refusal(n.iptables.append(a!, "nat", "POSTROUTING", rule`-j DROP`))).message).toBe(
        'The "nat" table is not intended for filtering, the use of DROP is therefore inhibited.',
      );
      expect((await refusal(n.iptables.append(a!, "filter", "FORWARD", rule`-j MASQUERADE`))).message).toBe(
        "RULE_APPEND failed (Invalid argument): rule in chain FORWARD",
      );
      await n.iptables.append(a!, "nat", "POSTROUTING", rule`-j X`);
      expect(await refusal(n.iptables.deleteChain(a!, "nat", "X"))).toMatchObject({
        errno: "EBUSY",
        message: "CHAIN_DEL failed (Device or resource busy): chain X",
      });
      await n.iptables.delete(a!, "nat", "POSTROUTING", rule`-j X`);
      await n.iptables.append(a!, "nat", "X", rule`-j RETURN`);
      expect((await refusal(n.iptables.deleteChain(a!, "nat", "X"))).message).toBe(
        "CHAIN_DEL failed (Device or resource busy): chain X",
      );
      await n.iptables.flush(a!, "nat", "X");
      await n.iptables.deleteChain(a!, "nat", "X");
      expect(await n.iptables.save(a!, "nat")).toBe(formatIptablesSave("nat", []));
    });

    nftablesCases(setup, refusal);

    it("takes a gateway on a device that shares its subnet with another, looked up through that device", async () => {
      const {
        n,
        ns: [a],
      } = await setup("a");
      for (const [end, peer] of [
        ["e0", "p0"],
        ["e1", "p1"],
      ] as const) {
        await n.link.add(a!, { kind: "veth", name: end, peer: { name: peer } });
        await n.link.set(a!, end, { up: true });
        await n.link.set(a!, peer, { up: true });
      }
      await n.addr.add(a!, "e0", cidr("10.9.0.2/24"));
      await n.addr.add(a!, "e1", cidr("10.9.0.3/24"));
      await n.route.add(a!, { dst: DEFAULT_ROUTE, via: ip("10.9.0.1"), dev: "e1" });
      await n.route.add(a!, { dst: net("10.8.0.0/16"), via: ip("10.9.0.1"), dev: "e0" });
      expect((await n.route.list(a!)).map((r) => `${r.dst} ${r.gateway ?? "-"} ${r.dev}`)).toEqual([
        "default 10.9.0.1 e1",
        "10.8.0.0/16 10.9.0.1 e0",
        "10.9.0.0/24 - e0",
        "10.9.0.0/24 - e1",
      ]);
    });

    it("answers route get with the route, device and source address the kernel would use", async () => {
      const { n, a } = await linkedPair();
      await n.route.add(a, { dst: net("10.9.2.0/24"), via: ip("192.168.77.2") });
      expect(await n.route.get(a, ip("10.9.2.5"))).toEqual({
        dst: ip("10.9.2.5"),
        type: "unicast",
        gateway: ip("192.168.77.2"),
        dev: "e0",
        prefsrc: ip("192.168.77.1"),
      });
      expect(await n.route.get(a, ip("192.168.77.9"))).toEqual({
        dst: ip("192.168.77.9"),
        type: "unicast",
        dev: "e0",
        prefsrc: ip("192.168.77.1"),
      });
      expect(await n.route.get(a, ip("192.168.77.1"))).toEqual({
        dst: ip("192.168.77.1"),
        type: "local",
        dev: "lo",
        prefsrc: ip("192.168.77.1"),
      });
      expect(await refusal(n.route.get(a, ip("10.50.0.1")))).toMatchObject({
        errno: "ENETUNREACH",
        message: "RTNETLINK answers: Network is unreachable",
      });
    });

    it("answers route get for broadcast addresses from the local table, never via a gateway", async () => {
      const { n, a } = await linkedPair();
      const broadcast = (dst: string, dev: string, prefsrc: string) => ({
        dst: ip(dst),
        type: "broadcast",
        dev,
        prefsrc: ip(prefsrc),
      });
      expect(await n.route.get(a, ip("192.168.77.255"))).toEqual(
        broadcast("192.168.77.255", "e0", "192.168.77.1"),
      );
      // The limited broadcast needs a route to leave by, and takes its device, not its gateway.
      expect(await refusal(n.route.get(a, ip("255.255.255.255")))).toMatchObject({ errno: "ENETUNREACH" });
      await n.route.add(a, { dst: net("0.0.0.0/0"), via: ip("192.168.77.2") });
      expect(await n.route.get(a, ip("255.255.255.255"))).toEqual(
        broadcast("255.255.255.255", "e0", "192.168.77.1"),
      );
      // lo's own: 127.255.255.255 is broadcast, the rest of 127/8 local.
      await n.link.set(a, "lo", { up: true });
      expect(await n.route.get(a, ip("127.255.255.255"))).toEqual(
        broadcast("127.255.255.255", "lo", "127.0.0.1"),
      );
      expect((await n.route.get(a, ip("127.0.0.9"))).type).toBe("local");
      // No broadcast route for a /31 (RFC 3021) or the network's own address; none on a device that is down.
      await n.addr.add(a, "e0", cidr("10.9.7.2/31"));
      expect((await n.route.get(a, ip("10.9.7.3"))).type).toBe("unicast");
      expect((await n.route.get(a, ip("192.168.77.0"))).type).toBe("unicast");
      // A device going down takes its broadcast routes with its other routes.
      await n.link.set(a, "e0", { up: false });
      expect(await refusal(n.route.get(a, ip("192.168.77.255")))).toMatchObject({ errno: "ENETUNREACH" });
    });

    it("deletes tracked flows by protocol and original destination port, refusing what conntrack would misread", async () => {
      const {
        n,
        ns: [a],
      } = await setup("a");
      // No flow tracked: nothing deleted, and that is an answer (conntrack exits 1 and says 0).
      expect(await n.conntrack.delete(a!, { protocol: "udp", origDstPort: 5353 })).toBe(0);
      expect(await n.conntrack.delete(a!, { protocol: "tcp", origDstPort: 8080 })).toBe(0);
      const refused = async (filter: unknown) =>
        (await refusal(n.conntrack.delete(a!, filter as { protocol: "udp"; origDstPort: number }))).message;
      expect(await refused({ protocol: "udp", origDstPort: 70000 })).toBe(
        'conntrack: port "70000" is not 1-65535',
      );
      expect(await refused({ protocol: "udp", origDstPort: 0 })).toBe('conntrack: port "0" is not 1-65535');
      expect(await refused({ protocol: "udp", origDstPort: 53.5 })).toBe(
        'conntrack: port "53.5" is not 1-65535',
      );
      expect(await refused({ protocol: "udp --orig-src 1.2.3.4", origDstPort: 53 })).toBe(
        'conntrack: protocol "udp --orig-src 1.2.3.4" is not tcp or udp',
      );
      const missing = await refusal(n.conntrack.delete(`${a!}x`, { protocol: "udp", origDstPort: 53 }));
      expect(missing.message).toBe(`Cannot open network namespace "${a!}x": No such file or directory`);
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
  });
}
