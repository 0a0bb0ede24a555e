// Each fact of the original design notes, as an engine-level test on a hand-built topology.
import { decodePacket, formatIpv4, type Ipv4Header } from "@podnet/core";
import { NetlinkError, rule } from "@podnet/netlink";
import { requireSystem, tsharkFields } from "@podnet/testing";
import { describe, expect, it } from "vitest";
import { SocketError, tracePcap, type Trace } from "../src/index.js";
import { Lab } from "./lab.js";
import {
  parseAddrArgument as cidr,
  parseAddressArgument as ip,
  parseLinkAddress as mac,
  parseRouteDst as net,
} from "@podnet/netlink";

const events = (t: Trace) => t.hops.map((h) => `${h.direction[0]} ${h.ns} ${h.event}`);
const arrivalTtl = (t: Trace, ns: string) => {
  const hop = t.hops.find((h) => h.ns === ns && h.event === "deliver" && h.direction === "request")!;
  return (hop.packet.headers.find((x) => x.kind === "ipv4") as Ipv4Header).ttl;
};

async function dockerNode(lab: Lab, node: string, address: string, pods: [string, string][]) {
  await lab.host(node, "lan", `${address}/24`);
  await lab.bridge(node, "docker0", "172.17.0.1/16");
  for (const [pod, ip] of pods) await lab.pod(node, pod, "docker0", `${ip}/16`, "172.17.0.1");
}

describe("a pod is one network namespace shared by its containers", () => {
  it("lets two containers reach each other on localhost", async () => {
    const lab = new Lab();
    await lab.k.netns.add("web");
    await lab.k.link.set("web", "lo", { up: true });
    lab.k.listen("web", { protocol: "tcp", port: 80, owner: "nginx" });
    const trace = lab.k.send({ from: "web", owner: "sidecar", to: "127.0.0.1", protocol: "tcp", port: 80 });
    expect(trace.outcome).toBe("reached");
    expect(trace.deliveredTo).toMatchObject({ ns: "web", owner: "nginx", port: 80 });
    expect(trace.hops.every((h) => h.ns === "web")).toBe(true);
    expect(trace.hops.filter((h) => h.wire).every((h) => h.dev === "lo")).toBe(true);
  });

  it("refuses a second container binding the same port, naming the one that holds it", async () => {
    const lab = new Lab();
    await lab.k.netns.add("web");
    lab.k.listen("web", { protocol: "tcp", port: 80, owner: "nginx" });
    expect(() => lab.k.listen("web", { protocol: "tcp", port: 80, owner: "apache" })).toThrow(SocketError);
    expect(() => lab.k.listen("web", { protocol: "tcp", port: 80, owner: "apache" })).toThrow(
      "apache: bind 0.0.0.0:80/tcp in web: Address already in use (held by nginx)",
    );
    lab.k.listen("web", { protocol: "udp", port: 80, owner: "dns" }); // another protocol is another port space
  });

  it("has no localhost until the sandbox brings lo up", async () => {
    const lab = new Lab();
    await lab.k.netns.add("bare");
    const trace = lab.k.send({ from: "bare", to: "127.0.0.1", protocol: "tcp", port: 80 });
    expect(trace.outcome).toBe("unreachable");
    expect(trace.reason).toContain("Network is unreachable");
  });
});

describe("docker-style networking on one node", () => {
  it("connects two pods through the bridge after ARP", async () => {
    const lab = new Lab();
    await dockerNode(lab, "node1", "10.100.0.2", [
      ["pod-a", "172.17.0.2"],
      ["pod-b", "172.17.0.3"],
    ]);
    const trace = lab.k.send({ from: "pod-a", to: "172.17.0.3" });
    expect(trace.outcome).toBe("reached");
    expect(trace.replyReceived).toBe(true);
    expect(events(trace)).toContain("r node1 bridge");
    expect(trace.hops.find((h) => h.event === "arp-request")!.detail).toBe(
      "who-has 172.17.0.3 tell 172.17.0.2 on eth0",
    );
    // Same L2 segment: no router, so the TTL arrives untouched.
    expect(arrivalTtl(trace, "pod-b")).toBe(64);
    expect(trace.hops.some((h) => h.ns === "node1" && h.event === "forward")).toBe(false);
  });

  it("publishes a pod's port with DNAT on the node's eth0 and un-NATs the answer", async () => {
    const lab = new Lab();
    await dockerNode(lab, "node1", "10.100.0.2", [["web", "172.17.0.2"]]);
    await lab.host("client", "lan", "10.100.0.9/24");
    lab.k.listen("web", { protocol: "tcp", port: 80, owner: "nginx" });
    await lab.k.iptables.append(
      "node1",
      "nat",
      "PREROUTING",
      rule`-i eth0 -p tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80`,
    );
    await lab.k.iptables.append(
      "node1",
      "nat",
      "POSTROUTING",
      rule`-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE`,
    );
    const trace = lab.k.send({ from: "client", to: "10.100.0.2", protocol: "tcp", port: 8080 });
    expect(trace.outcome).toBe("reached");
    expect(trace.deliveredTo).toMatchObject({ ns: "web", address: "172.17.0.2", port: 80, owner: "nginx" });
    const nat = trace.hops.filter((h) => h.event === "nat").map((h) => `${h.direction} ${h.detail}`);
    expect(nat[0]).toMatch(
      /^request nat PREROUTING: DNAT 10\.100\.0\.2:8080 → 172\.17\.0\.2:80 by -A PREROUTING -i eth0 -p tcp -m tcp --dport 8080/,
    );
    expect(nat).toContain("reply conntrack (reply): source 172.17.0.2 → 10.100.0.2 (un-DNAT)");
    // The client sees the answer from the address it dialled.
    const answer = trace.hops.filter((h) => h.ns === "client" && h.event === "deliver").at(-1)!;
    expect(formatIpv4((answer.packet.headers[0] as Ipv4Header).src)).toBe("10.100.0.2");
  });
});

describe("docker0 on every node: one 172.17.0.0/16 everywhere", () => {
  it("cannot reach a pod on another node: nobody on the local bridge answers ARP", async () => {
    const lab = new Lab();
    await dockerNode(lab, "node1", "10.100.0.2", [["pod-a", "172.17.0.2"]]);
    await dockerNode(lab, "node2", "10.100.0.3", [["pod-b", "172.17.0.3"]]);
    const trace = lab.k.send({ from: "pod-a", to: "172.17.0.3", expectNamespace: "pod-b" });
    expect(trace.outcome).toBe("unreachable");
    expect(trace.reason).toBe(
      "connect: No route to host (no ARP reply for 172.17.0.3 on eth0: host unreachable) (at pod-a)",
    );
    expect(trace.hops.some((h) => h.ns.startsWith("node2") || h.ns === "pod-b")).toBe(false);
  });

  it("reaches the wrong pod when a local pod holds the same address, and says so", async () => {
    const lab = new Lab();
    await dockerNode(lab, "node1", "10.100.0.2", [
      ["pod-a", "172.17.0.2"],
      ["pod-c", "172.17.0.3"],
    ]);
    await dockerNode(lab, "node2", "10.100.0.3", [["pod-b", "172.17.0.3"]]);
    const trace = lab.k.send({ from: "pod-a", to: "172.17.0.3", expectNamespace: "pod-b" });
    expect(trace.outcome).toBe("wrong-destination");
    expect(trace.deliveredTo?.ns).toBe("pod-c");
    expect(trace.reason).toBe("reached pod-c, which also holds 172.17.0.3, not pod-b");
  });
});

async function hostGwCluster(lab: Lab, routesOnGateway: boolean) {
  await lab.host("node1", "lan", "10.100.0.2/24", routesOnGateway ? { gateway: "10.100.0.1" } : {});
  await lab.host("node2", "lan", "10.100.0.3/24", routesOnGateway ? { gateway: "10.100.0.1" } : {});
  await lab.bridge("node1", "cbr0", "10.0.1.1/24");
  await lab.bridge("node2", "cbr0", "10.0.2.1/24");
  await lab.pod("node1", "pod1", "cbr0", "10.0.1.2/24", "10.0.1.1");
  await lab.pod("node2", "pod2", "cbr0", "10.0.2.2/24", "10.0.2.1");
  if (routesOnGateway) {
    await lab.host("gw", "lan", "10.100.0.1/24", { forwarding: true });
    await lab.k.route.add("gw", { dst: net("10.0.1.0/24"), via: ip("10.100.0.2") });
    await lab.k.route.add("gw", { dst: net("10.0.2.0/24"), via: ip("10.100.0.3") });
  } else {
    await lab.k.route.add("node1", { dst: net("10.0.2.0/24"), via: ip("10.100.0.3") });
    await lab.k.route.add("node2", { dst: net("10.0.1.0/24"), via: ip("10.100.0.2") });
  }
}

describe("a pod subnet per node, with routes", () => {
  it("routes pod to pod across nodes with a route on every node", async () => {
    const lab = new Lab();
    await hostGwCluster(lab, false);
    expect(await lab.k.route.list("node1")).toContainEqual({
      dst: "10.0.2.0/24",
      gateway: "10.100.0.3",
      dev: "eth0",
      flags: [],
    });
    const trace = lab.k.send({ from: "pod1", to: "10.0.2.2", expectNamespace: "pod2" });
    expect(trace.outcome).toBe("reached");
    expect(trace.replyReceived).toBe(true);
    expect(arrivalTtl(trace, "pod2")).toBe(62); // node1 and node2 each forward once
    expect(trace.hops.find((h) => h.ns === "node1" && h.event === "forward")!.detail).toBe(
      "forward: 10.0.2.0/24 via 10.100.0.3 dev eth0, ttl 64→63",
    );
    // The pod's own address survives the trip: no NAT in host-gw.
    const delivered = trace.hops.find((h) => h.ns === "pod2" && h.event === "deliver")!;
    expect(formatIpv4((delivered.packet.headers[0] as Ipv4Header).src)).toBe("10.0.1.2");
  });

  it("routes through the underlay gateway when the routes live there instead", async () => {
    const lab = new Lab();
    await hostGwCluster(lab, true);
    const trace = lab.k.send({ from: "pod1", to: "10.0.2.2", expectNamespace: "pod2" });
    expect(trace.outcome).toBe("reached");
    expect(arrivalTtl(trace, "pod2")).toBe(61); // node1, the gateway, node2
    expect(trace.hops.some((h) => h.ns === "gw" && h.event === "forward")).toBe(true);
  });

  it("refuses a route whose gateway is not on-link, as Linux does", async () => {
    const lab = new Lab();
    await lab.host("node1", "seg-a", "192.168.1.2/24");
    await expect(
      lab.k.route.add("node1", { dst: net("10.0.2.0/24"), via: ip("192.168.2.2") }),
    ).rejects.toThrow(NetlinkError);
    await expect(
      lab.k.route.add("node1", { dst: net("10.0.2.0/24"), via: ip("192.168.2.2") }),
    ).rejects.toMatchObject({
      errno: "EINVAL",
      message: "Error: Nexthop has invalid gateway.",
      reason: "Nexthop has invalid gateway",
    });
  });
});

async function vxlanCluster(lab: Lab, vxlanMtu?: number) {
  await lab.host("router", "seg-a", "192.168.1.1/24", { forwarding: true });
  await lab.host("router", "seg-b", "192.168.2.1/24", { nic: "eth1" });
  await lab.host("node1", "seg-a", "192.168.1.2/24", { gateway: "192.168.1.1" });
  await lab.host("node2", "seg-b", "192.168.2.2/24", { gateway: "192.168.2.1" });
  const nodes = [
    { name: "node1", ip: "192.168.1.2", subnet: 1 },
    { name: "node2", ip: "192.168.2.2", subnet: 2 },
  ];
  for (const n of nodes) {
    await lab.k.link.add(n.name, {
      kind: "vxlan",
      name: "flannel.1",
      vni: 1,
      local: ip(n.ip),
      dev: "eth0",
      dstport: 8472,
      learning: false,
      ...(vxlanMtu ? { mtu: vxlanMtu } : {}),
    });
    await lab.k.addr.add(n.name, "flannel.1", cidr(`10.244.${n.subnet}.0/32`));
    await lab.k.link.set(n.name, "flannel.1", { up: true });
    await lab.bridge(n.name, "cni0", `10.244.${n.subnet}.1/24`, 1450);
    await lab.pod(n.name, `pod${n.subnet}`, "cni0", `10.244.${n.subnet}.2/24`, `10.244.${n.subnet}.1`, 1450);
  }
  for (const [a, b] of [
    [nodes[0]!, nodes[1]!],
    [nodes[1]!, nodes[0]!],
  ] as const) {
    const vtep = mac((await lab.k.link.list(b.name)).find((l) => l.ifname === "flannel.1")!.address);
    await lab.k.neigh.replace(a.name, {
      dst: ip(`10.244.${b.subnet}.0`),
      dev: "flannel.1",
      lladdr: vtep,
      state: "permanent",
    });
    await lab.k.fdb.append(a.name, {
      mac: vtep,
      dev: "flannel.1",
      dst: ip(b.ip),
      self: true,
      permanent: true,
    });
    await lab.k.route.replace(a.name, {
      dst: net(`10.244.${b.subnet}.0/24`),
      via: ip(`10.244.${b.subnet}.0`),
      dev: "flannel.1",
      onlink: true,
    });
  }
}

describe("an overlay: VXLAN between nodes", () => {
  it("carries pod packets between nodes on different routed subnets, outer and inner headers visible", async () => {
    const lab = new Lab();
    await vxlanCluster(lab);
    expect((await lab.k.link.list("node1")).find((l) => l.ifname === "flannel.1")!.mtu).toBe(1450);
    const trace = lab.k.send({
      from: "pod1",
      to: "10.244.2.2",
      protocol: "tcp",
      port: 80,
      expectNamespace: "pod2",
    });
    expect(trace.outcome).toBe("refused"); // reached pod2, which has no listener: RST
    expect(trace.deliveredTo?.ns).toBe("pod2");
    const encap = trace.hops.find((h) => h.event === "encap" && h.direction === "request")!;
    expect(encap.detail).toMatch(/^flannel\.1: VXLAN vni 1 to 192\.168\.2\.2:8472/);
    const onUnderlay = trace.hops.find((h) => h.ns === "router" && h.event === "forward")!;
    expect(onUnderlay.packet.headers.map((h) => h.kind)).toEqual([
      "ipv4",
      "udp",
      "vxlan",
      "ethernet",
      "ipv4",
      "tcp",
    ]);
    const [outer, , , , inner] = onUnderlay.packet.headers as Ipv4Header[];
    expect([
      formatIpv4(outer!.src),
      formatIpv4(outer!.dst),
      formatIpv4(inner!.src),
      formatIpv4(inner!.dst),
    ]).toEqual(["192.168.1.2", "192.168.2.2", "10.244.1.2", "10.244.2.2"]);
    expect(trace.hops.some((h) => h.ns === "node2" && h.event === "decap")).toBe(true);
  });

  it("refuses the VXLAN route without onlink, as Linux does", async () => {
    const lab = new Lab();
    await vxlanCluster(lab);
    await expect(
      lab.k.route.replace("node1", { dst: net("10.244.3.0/24"), via: ip("10.244.3.0"), dev: "flannel.1" }),
    ).rejects.toThrow("Error: Nexthop has invalid gateway.");
  });

  it("answers a 1500-byte DF packet into the 1450 path with fragmentation needed", async () => {
    const lab = new Lab();
    await vxlanCluster(lab);
    // A pod whose MTU was left at 1500 sends a full-size packet with DF: the path is 1450.
    await lab.k.link.set("pod1", "eth0", { mtu: 1500 });
    await lab.k.link.set("node1", "veth-pod1", { mtu: 1500 });
    await lab.k.link.set("node1", "cni0", { mtu: 1500 });
    const trace = lab.k.send({ from: "pod1", to: "10.244.2.2", size: 1472 });
    expect(trace.outcome).toBe("unreachable");
    expect(trace.reason).toBe("fragmentation needed: mtu 1450 at node1 flannel.1");
    const error = trace.hops.find((h) => h.ns === "pod1" && h.event === "deliver")!;
    expect(error.packet.headers[1]).toMatchObject({ kind: "icmp", type: 3, code: 4, nextHopMtu: 1450 });
    // pod1 learned the path MTU: DF sends are refused at once, ping's default fragments in pod1.
    expect((await lab.k.route.get("pod1", ip("10.244.2.2"))).mtu).toBe(1450);
    const refused = lab.k.send({ from: "pod1", to: "10.244.2.2", size: 1472, dontFragment: true });
    expect(refused.reason).toMatch(/^message too long, mtu=1450: 1500-byte IP packet \(1472-byte payload\)/);
    const fragmented = lab.k.send({ from: "pod1", to: "10.244.2.2", size: 1472 });
    expect(fragmented.outcome).toBe("reached");
    expect(fragmented.hops.filter((h) => h.event === "fragment").map((h) => [h.ns, h.detail])).toEqual([
      [
        "pod1",
        "1500-byte IP packet (1472-byte payload) over mtu 1450: sent as 2 fragments of at most 1444 bytes (DF not set)",
      ],
      ["pod2", "pod2 reassembles 2 fragments into one 1500-byte IP packet (1472-byte payload)"],
      // The echo reply is never DF: pod2 (MTU 1450) fragments it on the way back.
      [
        "pod2",
        "1500-byte IP packet (1472-byte payload) over mtu 1450: sent as 2 fragments of at most 1444 bytes (DF not set)",
      ],
      ["pod1", "pod1 reassembles 2 fragments into one 1500-byte IP packet (1472-byte payload)"],
    ]);
  });

  const system = requireSystem({ tools: ["tshark"] });
  const tshark = (pcap: Uint8Array, fields: string[], options: string[] = []) =>
    tsharkFields(system.paths.tshark!, pcap, fields, options);

  it.skipIf(system.skip)(
    "exports fragments as they crossed: the sender's, each encapsulated on its own, and a router's of those",
    async () => {
      const lab = new Lab();
      await vxlanCluster(lab);
      // seg-b carries 1400-byte packets: the router cuts what node1 encapsulated for it.
      await lab.k.link.set("router", "eth1", { mtu: 1400 });
      await lab.k.link.set("node2", "eth0", { mtu: 1400 });
      const trace = lab.k.send({ from: "pod1", to: "10.244.2.2", size: 1472 });
      expect(trace.outcome).toBe("reached");
      const fields = ["frame.len", "ip.len", "ip.flags.mf", "ip.frag_offset", "ip.id"];
      // pod1 (MTU 1450) sent 1444 + 76 bytes; node1 encapsulated each fragment (50 bytes more), both
      // within seg-a's 1500.
      const node1 = tshark(tracePcap(trace, { ns: "node1", dev: "eth0" }), fields, ["-Y", "vxlan"]);
      expect(node1.slice(0, 2)).toEqual([
        ["1508", "1494,1444", "0,1", "0,0", "0x0000,0x0000"],
        ["140", "126,76", "0,0", "0,178", "0x0001,0x0000"],
      ]);
      // The router cut the first at 1400 (1376 + 98 bytes of its UDP datagram); the second fits.
      // tshark reassembles the cut one: its last piece shows the 1444-byte inner fragment it held.
      const cut = tshark(tracePcap(trace, { ns: "router", dev: "eth1" }), fields, [
        "-Y",
        "ip.dst == 192.168.2.2",
      ]);
      expect(cut).toEqual([
        ["1410", "1396", "1", "0", "0x0000"],
        ["132", "118,1444", "0,1", "172,0", "0x0000,0x0000"],
        ["140", "126,76", "0,0", "0,178", "0x0001,0x0000"],
      ]);
      // Reassembled, tshark finds pod1's echo request whole, its checksum good.
      const whole = tshark(
        tracePcap(trace, { ns: "router", dev: "eth1" }),
        ["icmp.type", "ip.reassembled.length", "icmp.checksum.status"],
        ["-Y", "icmp.type == 8"],
      );
      expect(whole).toEqual([["8", "1480", "1"]]); // 8 bytes of ICMP header and 1,472 of data
      // The trace counts what the capture shows: three pieces cross seg-b (the first carrier cut in two).
      expect(trace.hops.find((h) => h.ns === "router" && h.event === "fragment")!.detail).toBe(
        "1550-byte IP packet (VXLAN) over mtu 1400: sent as 3 fragments of at most 1396 bytes (DF not set)",
      );
      // No frame is longer than its link allows: 1400 + 14 on seg-b, 1500 + 14 elsewhere.
      for (const frame of tshark(tracePcap(trace, { ns: "router", dev: "eth1" }), ["frame.len"]))
        expect(Number(frame[0])).toBeLessThanOrEqual(1414);
    },
  );

  it.skipIf(system.skip)(
    "exports what crossed node1's eth0 as a pcap that tshark decodes as VXLAN",
    async () => {
      const lab = new Lab();
      await vxlanCluster(lab);
      const trace = lab.k.send({ from: "pod1", to: "10.244.2.2" });
      const pcap = tracePcap(trace, { ns: "node1", dev: "eth0" });
      // The IP frames (node1's ARP for the router crossed too).
      const rows = tshark(pcap, ["ip.src", "vxlan.vni", "icmp.type"], ["-Y", "ip"]);
      expect(rows).toContainEqual(["192.168.1.2,10.244.1.2", "1", "8"]); // request: outer node1, inner pod1, echo request
      expect(rows).toContainEqual(["192.168.2.2,10.244.2.2", "1", "0"]); // reply, decapsulated on the way in
      expect(rows.length).toBe(2);
      expect(decodePacket(new Uint8Array(pcap.subarray(40))).headers[0]!.kind).toBe("ethernet");
    },
  );
});
