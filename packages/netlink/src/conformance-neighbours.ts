/**
 * The host API conformance suite's cases (conformance.ts runs them): permanent neighbours, VXLAN
 * forwarding entries, batches and layers.
 */
import { expect, it } from "vitest";
import type { Harness } from "./conformance.js";
import {
  parseAddrArgument as cidr,
  parseAddressArgument as ip,
  parseLinkAddress as mac,
  parseRouteDst as net,
} from "./values.js";

export function neighbourCases({ setup, refusal, linkedPair, flannelDevice }: Harness): void {
  it("keeps permanent neighbours and VXLAN forwarding entries as flannel writes them", async () => {
    const { n, a } = await flannelDevice();
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
    // The same entry appended twice: the second is accepted and changes nothing.
    for (let i = 0; i < 2; i++)
      await n.fdb.append(a, {
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
      fdb: [{ mac: vtep(i), dev: "flannel.1", dst: ip(`192.168.77.${i + 1}`), self: true, permanent: true }],
    });
    const routes = async (m: string) =>
      (await n.route.list(m)).filter((r) => r.protocol !== "kernel").map((r) => `${r.dst} via ${r.gateway}`);
    for (const [i, m] of ns.entries()) expect(await n.layer.attach("peers", m, `o${i}`)).toEqual([]);
    for (const i of [0, 1, 2]) expect(await n.layer.set("peers", `o${i}`, peer(i))).toEqual([]);
    expect(await routes(ns[0]!)).toEqual(["10.9.1.0/24 via 192.168.77.2", "10.9.2.0/24 via 192.168.77.3"]);
    expect(await routes(ns[1]!)).toEqual(["10.9.0.0/24 via 192.168.77.1", "10.9.2.0/24 via 192.168.77.3"]);
    // The kernel's neighbour dump order is its hash's: compare as sets.
    expect((await n.neigh.list(ns[2]!)).map((e) => `${e.dst} ${e.lladdr}`).sort()).toEqual([
      "10.244.0.0 96:fe:d6:d5:45:00",
      "10.244.1.0 96:fe:d6:d5:45:01",
    ]);
    expect((await n.fdb.list(ns[2]!, { dev: "flannel.1" })).map((e) => `${e.mac} ${e.dst}`).sort()).toEqual([
      "96:fe:d6:d5:45:00 192.168.77.1",
      "96:fe:d6:d5:45:01 192.168.77.2",
    ]);
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
}
