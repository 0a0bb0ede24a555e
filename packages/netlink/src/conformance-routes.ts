/**
 * The host API conformance suite's cases (conformance.ts runs them): addresses and their connected
 * routes, route writes with the kernel's nexthop checks, and `route get`.
 */
import { expect, it } from "vitest";
import type { Harness } from "./conformance.js";
import {
  DEFAULT_ROUTE,
  routeDump,
  parseAddrArgument as cidr,
  parseAddressArgument as ip,
  parseRouteDst as net,
} from "./values.js";

export function routeCases({ setup, refusal, linkedPair }: Harness): void {
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
}
