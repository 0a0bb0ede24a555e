import { formatMac, parseMac } from "@podnet/core";
import { DEFAULT_ROUTE, parseAddressArgument as ip, parseRouteDst as net } from "@podnet/netlink";
import { describe, expect, it } from "vitest";
import { Lab } from "./lab.js";

/** Two pods on one node's bridge, the node routing to a second node's pod subnet. */
async function twoPods() {
  const lab = new Lab();
  await lab.host("node1", "lan", "10.100.0.2/24", { forwarding: true });
  await lab.host("node2", "lan", "10.100.0.3/24", { forwarding: true });
  await lab.bridge("node1", "cbr0", "10.0.1.1/24");
  await lab.bridge("node2", "cbr0", "10.0.2.1/24");
  await lab.pod("node1", "a", "cbr0", "10.0.1.2/24", "10.0.1.1");
  await lab.pod("node2", "b", "cbr0", "10.0.2.2/24", "10.0.2.1");
  await lab.k.route.add("node1", { dst: net("10.0.2.0/24"), via: ip("10.100.0.3") });
  await lab.k.route.add("node2", { dst: net("10.0.1.0/24"), via: ip("10.100.0.2") });
  return lab;
}

describe("a trace's hops", () => {
  it("are made when read, and say what happened when the packet went, whatever changed since", async () => {
    const [early, late] = [await twoPods(), await twoPods()];
    // Both labs learn their neighbours first: the traces compared are the warm ones.
    early.k.send({ from: "a", to: "10.0.2.2" });
    late.k.send({ from: "a", to: "10.0.2.2" });
    const readAtOnce = early.k.send({ from: "a", to: "10.0.2.2" });
    const expected = JSON.parse(JSON.stringify(readAtOnce.hops));
    const readLater = late.k.send({ from: "a", to: "10.0.2.2" });
    expect(readLater.hopCount).toBe(expected.length);
    // After the trace: the routes it took are gone, the bridge has another MAC, a port went down.
    await late.k.route.del("node1", { dst: net("10.0.2.0/24"), via: ip("10.100.0.3") });
    await late.k.link.set("node2", "cbr0", { address: parseMac("02:00:00:00:00:99") });
    await late.k.link.set("node2", "eth0", { up: false });
    await late.k.route.add("node1", { dst: DEFAULT_ROUTE, via: ip("10.100.0.3") });
    expect(JSON.parse(JSON.stringify(readLater.hops))).toEqual(expected);
    expect(
      readLater.hops.some((h) => h.detail === "forward: 10.0.2.0/24 via 10.100.0.3 dev eth0, ttl 64→63"),
    ).toBe(true);
    expect(readLater.hops.map((h) => h.detail).join("\n")).not.toContain(
      formatMac(parseMac("02:00:00:00:00:99")),
    );
  });

  it("are counted, not kept, for a summary: the same count and answer as the trace's, floods included", async () => {
    // Two more pods on each bridge: the first contact's ARP floods copies that nobody takes, which a
    // trace drops from its hops and a summary must not count either.
    const twins: Lab[] = [];
    for (let i = 0; i < 2; i++) {
      const lab = await twoPods();
      await lab.pod("node1", "c", "cbr0", "10.0.1.3/24", "10.0.1.1");
      await lab.pod("node2", "d", "cbr0", "10.0.2.3/24", "10.0.2.1");
      twins.push(lab);
    }
    const [summarised, traced] = twins as [Lab, Lab];
    const bMac = parseMac((await traced.k.link.list("b")).find((l) => l.ifname === "eth0")!.address!);
    // Cold (ARP on every segment), then warm, then a pod of the same bridge; then node2's bridge
    // forgets b, so the request to b is flooded to every port (d's copy taken by nobody).
    for (const to of ["10.0.2.2", "10.0.2.2", "10.0.1.3", "forget", "10.0.2.2"]) {
      if (to === "forget") {
        for (const lab of twins) await lab.k.fdb.del("node2", { mac: bMac, dev: "veth-b", self: false });
        continue;
      }
      const summary = summarised.k.probe({ from: "a", to, srcPort: 7 });
      const trace = traced.k.send({ from: "a", to, srcPort: 7 });
      expect(summary.hopCount).toBe(trace.hops.length);
      expect(summary.outcome).toBe(trace.outcome);
      expect(summary.answer?.ttl).toBe(trace.hops.at(-1)!.packet.headers.find((h) => h.kind === "ipv4")!.ttl);
    }
  });

  it("name a flood's ports as the bridge had them when the frame went", async () => {
    const [early, late] = [await twoPods(), await twoPods()];
    for (const lab of [early, late]) await lab.pod("node1", "c", "cbr0", "10.0.1.3/24", "10.0.1.1");
    const expected = early.k.send({ from: "a", to: "10.0.1.3" }).hops.map((h) => h.detail);
    expect(expected).toContain("cbr0: broadcast from veth-a: flood to veth-c and up to the bridge");
    const readLater = late.k.send({ from: "a", to: "10.0.1.3" });
    await late.pod("node1", "e", "cbr0", "10.0.1.5/24", "10.0.1.1");
    await late.k.link.set("node1", "veth-c", { up: false });
    expect(readLater.hops.map((h) => h.detail)).toEqual(expected);
  });

  it("are in the trace's JSON, its spread and its structured clone, with their packets", async () => {
    const lab = await twoPods();
    const trace = lab.k.send({ from: "a", to: "10.0.2.2" });
    const json = JSON.parse(JSON.stringify(trace));
    expect(json.hops).toHaveLength(trace.hopCount!);
    expect(json.hops[0]).toMatchObject({ direction: "request", ns: "a", event: "send" });
    expect({ ...trace }.hops).toHaveLength(trace.hopCount!);
    const clone = structuredClone(lab.k.send({ from: "a", to: "10.0.2.2" }));
    expect(clone.hops.length).toBeGreaterThan(0);
    expect(clone.hops.every((h) => h.packet.headers.length > 0)).toBe(true);
    // A trace can be given other hops (a caller filtering them).
    trace.hops = trace.hops.slice(0, 2);
    expect(trace.hops).toHaveLength(2);
  });
});

describe("0.0.0.0", () => {
  // As on Linux (checked on 6.18: `ping 0.0.0.0` prints "PING 0.0.0.0 (127.0.0.1)" and is answered;
  // a router forwards 0.0.0.1 like any address since 5.3). It was routed by the default route and
  // answered "network unreachable" by the node.
  it("is this host for a sender, and 0.0.0.1 is an address like another", async () => {
    const lab = await twoPods();
    const self = lab.k.send({ from: "a", to: "0.0.0.0" });
    expect([self.outcome, self.reason]).toEqual(["reached", "echo reply from 127.0.0.1 (a)"]);
    expect(self.hops.every((h) => h.ns === "a")).toBe(true);
    expect(lab.k.send({ from: "a", to: "0.0.0.0", protocol: "tcp", port: 80 }).reason).toMatch(
      /^connection refused: RST from 127\.0\.0\.1:80/,
    );
    const other = lab.k.send({ from: "a", to: "0.0.0.1" });
    expect(other.reason).toBe("network unreachable: node1 has no route to 0.0.0.1");
  });
});

describe("a multicast group", () => {
  // As on Linux (the lab's multicast fixture runs it on the kernel): a group address is sent to the
  // link, never to the gateway; nothing answers a ping or a datagram to it, and TCP never connects.
  it("is sent on the route's device, not to its gateway, and nothing answers", async () => {
    const lab = await twoPods();
    lab.k.listen("b", { protocol: "udp", port: 53, owner: "dns" });
    const ping = lab.k.send({ from: "a", to: "224.0.0.1" });
    expect([ping.outcome, ping.reason]).toEqual([
      "dropped",
      "echo request to multicast group 224.0.0.1, sent on eth0 with TTL 1: no router forwards it, and every host ignores an echo request to a group (icmp_echo_ignore_broadcasts = 1) (at a)",
    ]);
    expect(ping.hops.map((h) => [h.ns, h.event, h.detail])).toContainEqual([
      "a",
      "route",
      "multicast 224.0.0.1 dev eth0",
    ]);
    expect(ping.hops.every((h) => h.ns === "a")).toBe(true);
    const udp = lab.k.send({ from: "a", to: "239.1.2.3", protocol: "udp", port: 53 });
    expect([udp.outcome, udp.reason]).toEqual([
      "dropped",
      "datagram to multicast group 239.1.2.3, sent on eth0 with TTL 1: no router forwards it, and an answer would come from a listener's own address, which a socket that sent to the group does not take (at a)",
    ]);
    const tcp = lab.k.send({ from: "a", to: "224.0.0.1", protocol: "tcp", port: 80 });
    expect([tcp.outcome, tcp.reason]).toEqual([
      "unreachable",
      "connect: Network is unreachable (224.0.0.1 is a multicast group: TCP never connects to one) (at a)",
    ]);
  });
});
