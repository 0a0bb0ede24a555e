// Every fact of the original notes, under every provider, with the outcome and the reason a user
// should see — including where a provider is expected to fail.
import { formatIpv4, type Ipv4Header } from "@podnet/core";
import type { NetworkProvider } from "@podnet/cni";
import { cbr0HostGw } from "@podnet/provider-cbr0-host-gw";
import { dockerBridge } from "@podnet/provider-docker-bridge";
import { overlay } from "@podnet/provider-overlay";
import type { Trace } from "@podnet/sim";
import { describe, expect, it } from "vitest";
import { TestCluster } from "./cluster.js";
import { parseRouteDst as net } from "@podnet/netlink";

const sourceSeen = (trace: Trace, ns: string) => {
  const hop = trace.hops.find((h) => h.ns === ns && h.event === "deliver" && h.direction === "request")!;
  return formatIpv4((hop.packet.headers[0] as Ipv4Header).src);
};

/** The notes' two nodes on 10.100.0.0/24 with the gateway at .1; a pod per node plus a client on node1. */
async function twoNodes(provider: NetworkProvider, routesOnGateway = false) {
  const c = new TestCluster(provider, routesOnGateway ? { gatewayNs: "gw" } : {});
  await c.router("gw", [{ segment: "lan", cidr: "10.100.0.1/24" }]);
  await c.lab.host("outside", "lan", "10.100.0.50/24");
  const joined = [
    await c.addNode("node1", "10.100.0.2/24", { gateway: "10.100.0.1" }),
    await c.addNode("node2", "10.100.0.3/24", { gateway: "10.100.0.1" }),
  ];
  const web = await c.addPod("node1", "web", { listen: [80] });
  const client = await c.addPod("node1", "client");
  const db = await c.addPod("node2", "db", {
    listen: [80],
    publish: [{ hostPort: 8080, containerPort: 80 }],
  });
  return { c, web, client, db, joined };
}

const hostGw = cbr0HostGw();
const hostGwOnGateway = cbr0HostGw({ routesOn: "gateway" });
const vxlan = overlay();

describe("the notes' two nodes under each provider", () => {
  for (const provider of [dockerBridge, hostGw, hostGwOnGateway, vxlan]) {
    it(`${provider.name}: two pods on one node talk over the node's bridge`, async () => {
      const { c, web } = await twoNodes(provider, provider === hostGwOnGateway);
      const trace = c.k.send({ from: "client", to: web, protocol: "tcp", port: 80, expectNamespace: "web" });
      expect(trace.outcome).toBe("reached");
      expect(trace.hops.some((h) => h.event === "forward")).toBe(false); // bridged, never routed
    });

    it(`${provider.name}: masquerades pod traffic leaving the cluster behind the node`, async () => {
      const { c } = await twoNodes(provider, provider === hostGwOnGateway);
      const trace = c.k.send({ from: "client", to: "10.100.0.50" });
      expect(trace.outcome).toBe("reached");
      expect(sourceSeen(trace, "outside")).toBe("10.100.0.2");
    });
  }

  it("docker-bridge: the pod address on another node is a local pod's too — the packet reaches the wrong pod", async () => {
    const { c, web, db } = await twoNodes(dockerBridge);
    expect(db).toBe(web); // both 172.17.0.2: each node's docker0 starts the same range
    const trace = c.k.send({ from: "client", to: db, protocol: "tcp", port: 80, expectNamespace: "db" });
    expect(trace.outcome).toBe("wrong-destination");
    expect(trace.reason).toBe("reached web, which also holds 172.17.0.2, not db");
  });

  it("docker-bridge: another node's pod is reachable only through its published port, with the client hidden by NAT", async () => {
    const { c } = await twoNodes(dockerBridge);
    const trace = c.k.send({
      from: "client",
      to: "10.100.0.3",
      protocol: "tcp",
      port: 8080,
      expectNamespace: "db",
    });
    expect(trace.outcome).toBe("reached");
    expect(trace.deliveredTo).toMatchObject({ ns: "db", port: 80 });
    expect(sourceSeen(trace, "db")).toBe("10.100.0.2"); // node1's address, not the client's 172.17.0.3
    expect(trace.hops.find((h) => h.event === "nat" && h.ns === "node2")!.detail).toMatch(
      /^nat PREROUTING: DNAT 10\.100\.0\.3:8080 → 172\.17\.0\.2:80/,
    );
  });

  for (const provider of [hostGw, vxlan]) {
    it(`${provider.name}: a pod reaches a pod on the other node with its own address`, async () => {
      const { c, client, db } = await twoNodes(provider);
      const trace = c.k.send({ from: "client", to: db, protocol: "tcp", port: 80, expectNamespace: "db" });
      expect(trace.outcome).toBe("reached");
      expect(sourceSeen(trace, "db")).toBe(client);
      expect(provider.crossNodeSource).toBe("pod address");
    });
  }

  it("cbr0-host-gw: every node holds a route to the other node's subnet, the notes' 10.0.2.0/24 via 10.100.0.3", async () => {
    const { c, joined } = await twoNodes(hostGw);
    expect(c.nodes.get("node1")!.podCidr).toBe("10.0.1.0/24");
    expect(c.nodes.get("node2")!.podCidr).toBe("10.0.2.0/24");
    expect(await c.k.route.list("node1", { exact: net("10.0.2.0/24") })).toEqual([
      { dst: "10.0.2.0/24", gateway: "10.100.0.3", dev: "eth0", flags: [] },
    ]);
    expect(await c.k.route.list("node2", { exact: net("10.0.1.0/24") })).toEqual([
      { dst: "10.0.1.0/24", gateway: "10.100.0.2", dev: "eth0", flags: [] },
    ]);
    // node1 gets one route when node2 joins; node2 gets its route to node1 (plus kube-proxy's base chains).
    expect(joined[1]!.nodes.node1).toEqual({ added: 1, removed: 0, changed: 0 });
    expect(joined[1]!.refused).toEqual([]);
  });

  it("cbr0-host-gw: a node whose pod CIDR changes has its peers' routes swapped, nothing else", async () => {
    const { c } = await twoNodes(hostGw);
    const node2 = { ...c.nodes.get("node2")!, podCidr: "10.0.7.0/24" };
    const report = await c.manager.nodeUpdated(node2);
    expect(report.nodes.node1).toEqual({ added: 1, removed: 1, changed: 0 });
    expect(
      (await c.k.route.list("node1"))
        .filter((r) => r.dst.startsWith("10.0."))
        .map((r) => `${r.dst} via ${r.gateway ?? "-"}`),
    ).toEqual(["10.0.1.0/24 via -", "10.0.7.0/24 via 10.100.0.3"]);
  });

  it("cbr0-host-gw with routes on the gateway: the nodes hold none, the gateway holds one per node, and traffic goes through it", async () => {
    const { c, db } = await twoNodes(hostGwOnGateway, true);
    expect((await c.k.route.list("node1")).some((r) => r.dst === "10.0.2.0/24")).toBe(false);
    expect((await c.k.route.list("gw")).filter((r) => r.dst.startsWith("10.0."))).toEqual([
      { dst: "10.0.1.0/24", gateway: "10.100.0.2", dev: "eth0", flags: [] },
      { dst: "10.0.2.0/24", gateway: "10.100.0.3", dev: "eth0", flags: [] },
    ]);
    const trace = c.k.send({ from: "client", to: db, expectNamespace: "db" });
    expect(trace.outcome).toBe("reached");
    expect(trace.hops.some((h) => h.ns === "gw" && h.event === "forward")).toBe(true);
  });

  it("overlay: wraps pod packets in VXLAN with flannel's per-peer entries and gives pods the 1450 MTU", async () => {
    const { c, db } = await twoNodes(vxlan);
    const mac2 = JSON.parse(c.nodes.get("node2")!.annotations["flannel.alpha.coreos.com/backend-data"]!)
      .VtepMAC as string;
    expect(await c.k.neigh.list("node1")).toContainEqual({
      dst: "10.0.2.0",
      dev: "flannel.1",
      lladdr: mac2,
      state: ["PERMANENT"],
    });
    expect(await c.k.fdb.list("node1", { dev: "flannel.1" })).toEqual([
      { mac: mac2, ifname: "flannel.1", dst: "10.100.0.3", flags: ["self"], state: "permanent" },
    ]);
    expect(await c.k.route.list("node1", { exact: net("10.0.2.0/24") })).toEqual([
      { dst: "10.0.2.0/24", gateway: "10.0.2.0", dev: "flannel.1", flags: ["onlink"] },
    ]);
    expect((await c.k.link.list("client")).find((l) => l.ifname === "eth0")!.mtu).toBe(1450);
    const trace = c.k.send({ from: "client", to: db });
    expect(trace.hops.find((h) => h.event === "encap")!.detail).toMatch(
      /^flannel\.1: VXLAN vni 1 to 10\.100\.0\.3:8472/,
    );
  });
});

describe("nodes on two routed segments", () => {
  async function routed(provider: NetworkProvider) {
    const c = new TestCluster(provider);
    await c.router("router", [
      { segment: "seg-a", cidr: "192.168.1.1/24" },
      { segment: "seg-b", cidr: "192.168.2.1/24" },
    ]);
    const joins = [
      await c.addNode("node1", "192.168.1.2/24", { segment: "seg-a", gateway: "192.168.1.1" }),
      await c.addNode("node2", "192.168.2.2/24", { segment: "seg-b", gateway: "192.168.2.1" }),
    ];
    await c.addPod("node1", "client");
    const db = await c.addPod("node2", "db", { listen: [80] });
    return { c, db, joins };
  }

  it("cbr0-host-gw: the kernel refuses the routes, and the refusal is the reason traffic fails", async () => {
    const { c, db, joins } = await routed(hostGw);
    expect(joins[1]!.refused).toEqual([
      { node: "node2", entry: "10.0.1.0/24 via 192.168.1.2 dev eth0", reason: "Nexthop has invalid gateway" },
      { node: "node1", entry: "10.0.2.0/24 via 192.168.2.2 dev eth0", reason: "Nexthop has invalid gateway" },
    ]);
    const trace = c.k.send({ from: "client", to: db, protocol: "tcp", port: 80, expectNamespace: "db" });
    // The router cannot even return its ICMP error: it has no route to pod subnets either. Silence.
    expect(trace.outcome).toBe("dropped");
    expect(trace.reason).toBe("network unreachable: router has no route to 10.0.2.2");
  });

  it("overlay: works across the routed underlay, the router seeing only node addresses", async () => {
    const { c, db } = await routed(vxlan);
    const trace = c.k.send({ from: "client", to: db, protocol: "tcp", port: 80, expectNamespace: "db" });
    expect(trace.outcome).toBe("reached");
    const onRouter = trace.hops.find((h) => h.ns === "router" && h.event === "forward")!;
    expect(formatIpv4((onRouter.packet.headers[0] as Ipv4Header).dst)).toBe("192.168.2.2");
  });
});
