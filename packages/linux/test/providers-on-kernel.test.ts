// Providers are written once and run unchanged on the simulator and on Linux. The notes' two-node
// cluster is built by each provider and the route manager on both backends, through the same code;
// then the node route tables must be identical, and real pings must agree with the simulator's traces.
import {
  joinNode,
  addPod,
  createSandbox,
  podAddress,
  podAttachment,
  type ClusterNetwork,
  type NetworkProvider,
  type NodeNetwork,
} from "@podnet/cni";
import { NodeCidrAllocator } from "@podnet/ipam";
import type { Netlink } from "@podnet/netlink";
import { LabTopology } from "@podnet/netlink/lab";
import { cbr0HostGw } from "@podnet/provider-cbr0-host-gw";
import { dockerBridge } from "@podnet/provider-docker-bridge";
import { overlay } from "@podnet/provider-overlay";
import { RouteManager } from "@podnet/route-manager";
import { SimKernel } from "@podnet/sim";
import { describe, expect, it } from "vitest";
import { connectTcp, listenTcp, ping, removeNamespaces } from "../src/index.js";
import { answerTtl, kernelTestRun, tcpOutcome } from "./kernel.js";

const { system, linux, nextPrefix } = kernelTestRun(["ip", "bridge", "iptables", "sysctl", "ping", "socat"]);

const cluster: ClusterNetwork = { clusterCidr: "10.0.0.0/16", nodeMaskSize: 24, serviceCidr: "10.96.0.0/12" };

/** The notes' cluster: gateway .1, an outside host .50, node1 .2 (pods web, client), node2 .3 (pod db). */
async function build(provider: NetworkProvider, netlink: Netlink, prefix: string) {
  const lab = new LabTopology(netlink, prefix);
  await lab.host("gw", "lan", "10.100.0.1/24", { forwarding: true });
  await lab.host("outside", "lan", "10.100.0.50/24");
  const cidrs = new NodeCidrAllocator(cluster.clusterCidr, cluster.nodeMaskSize);
  const manager = new RouteManager({ netlink, provider, cluster, gatewayNs: lab.ns("gw") });
  const nodes = new Map<string, NodeNetwork>();
  for (const [name, address] of [
    ["node1", "10.100.0.2"],
    ["node2", "10.100.0.3"],
  ] as const) {
    await lab.host(name, "lan", `${address}/24`, { gateway: "10.100.0.1" });
    const node = await joinNode(provider, netlink, cluster, {
      name,
      ns: lab.ns(name),
      address,
      underlayMtu: 1500,
      podCidr: () => cidrs.allocate().toString(),
    });
    const report = await manager.nodeJoined(node);
    expect(report.refused).toEqual([]);
    nodes.set(name, node);
  }
  const ips: Record<string, string> = {};
  for (const [nodeName, pod] of [
    ["node1", "web"],
    ["node1", "client"],
    ["node2", "db"],
  ] as const) {
    const podNs = lab.ns(pod);
    await createSandbox(netlink, podNs);
    const attachment = podAttachment(provider, nodes.get(nodeName)!, cluster, { containerId: pod, podNs });
    ips[pod] = podAddress(await addPod(provider, netlink, attachment));
  }
  return { lab, ips };
}

/** kube-proxy's view of a Service: port 80 to the endpoints' 8080. */
const service = (endpoints: string[], name = "web", clusterIP = "10.96.0.10") => ({
  namespace: "default",
  name,
  clusterIP,
  ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "tcp" as const }],
  endpoints,
});

/** A route manager for each backend's cluster, knowing both nodes, to write kube-proxy's chains. */
function managers(provider: NetworkProvider, labs: LabTopology[]): RouteManager[] {
  return labs.map((lab) => {
    const m = new RouteManager({ netlink: lab.k, provider, cluster, gatewayNs: lab.ns("gw") });
    for (const name of ["node1", "node2"])
      m.adopt({
        name,
        ns: lab.ns(name),
        address: name === "node1" ? "10.100.0.2" : "10.100.0.3",
        nic: "eth0",
        underlayMtu: 1500,
        annotations: {},
      });
    return m;
  });
}

const cases: { provider: NetworkProvider; crossNodeTtl: number; hairpin: "reached" | "dropped" }[] = [
  // Docker leaves hairpin mode off on container ports while its userland proxy is on (the default).
  { provider: dockerBridge, crossNodeTtl: 64, hairpin: "dropped" },
  { provider: cbr0HostGw(), crossNodeTtl: 62, hairpin: "reached" },
  { provider: cbr0HostGw({ routesOn: "gateway" }), crossNodeTtl: 61, hairpin: "reached" },
  { provider: overlay(), crossNodeTtl: 62, hairpin: "reached" },
];

describe.skipIf(system.skip)("providers on the kernel and on the simulator", () => {
  it("cbr0-host-gw + kube-proxy's chains: a Service DNATs on the real kernel as in the simulator", async () => {
    const provider = cbr0HostGw();
    const sim = await build(provider, new SimKernel({ seed: "services" }), "");
    const real = await build(provider, linux, nextPrefix());
    const listeners = [];
    try {
      const [simManager, realManager] = managers(provider, [sim.lab, real.lab]) as [
        RouteManager,
        RouteManager,
      ];
      // Endpoints: db on the other node, web on the client's node (its answer is bridged: br_netfilter un-NATs it).
      for (const [endpoints, expect1] of [
        [[real.ips.db!], "db"],
        [[real.ips.web!], "web"],
      ] as const) {
        await simManager.serviceChanged(service([...endpoints]));
        await realManager.serviceChanged(service([...endpoints]));
        expect(await linux.iptables.save(real.lab.ns("node1"), "nat")).toContain("-j KUBE-SVC-");
        listeners.push(await listenTcp(real.lab.ns(expect1), 8080, expect1));
        (sim.lab.k as SimKernel).listen(expect1, { protocol: "tcp", port: 8080, owner: expect1 });
        const simTrace = (sim.lab.k as SimKernel).send({
          from: "client",
          to: "10.96.0.10",
          protocol: "tcp",
          port: 80,
        });
        const realResult = await connectTcp(real.lab.ns("client"), "10.96.0.10", 80);
        expect({ kernel: realResult.outcome, reply: realResult.reply }).toEqual({
          kernel: "connected",
          reply: expect1,
        });
        expect({ sim: simTrace.outcome, endpoint: simTrace.deliveredTo?.ns }).toEqual({
          sim: "reached",
          endpoint: expect1,
        });
      }
      // A Service without endpoints is refused at once on both, by kube-proxy's REJECT rule.
      await simManager.serviceChanged(service([], "empty", "10.96.0.11"));
      await realManager.serviceChanged(service([], "empty", "10.96.0.11"));
      const simEmpty = (sim.lab.k as SimKernel).send({
        from: "client",
        to: "10.96.0.11",
        protocol: "tcp",
        port: 80,
      });
      expect(await connectTcp(real.lab.ns("client"), "10.96.0.11", 80)).toMatchObject({ outcome: "refused" });
      expect(simEmpty.reason).toMatch(/^rejected by node1: .*has no endpoints/);
    } finally {
      for (const l of listeners) l.kill();
      await removeNamespaces(linux, real.lab.prefix);
    }
  }, 60_000);

  for (const { provider, hairpin } of cases) {
    it(`${provider.name}: a pod reaching a Service whose endpoint is itself is ${hairpin}, as on the kernel`, async () => {
      const sim = await build(provider, new SimKernel({ seed: "hairpin" }), "");
      const real = await build(provider, linux, nextPrefix());
      const managed = managers(provider, [sim.lab, real.lab]);
      for (const m of managed) await m.serviceChanged(service([real.ips.web!], "self", "10.96.0.20"));
      const listener = await listenTcp(real.lab.ns("web"), 8080, "web");
      try {
        (sim.lab.k as SimKernel).listen("web", { protocol: "tcp", port: 8080, owner: "web" });
        const trace = (sim.lab.k as SimKernel).send({
          from: "web",
          to: "10.96.0.20",
          protocol: "tcp",
          port: 80,
        });
        const result = await connectTcp(real.lab.ns("web"), "10.96.0.20", 80, 2000);
        expect({ kernel: tcpOutcome(result), sim: trace.outcome }).toEqual({ kernel: hairpin, sim: hairpin });
      } finally {
        listener.kill();
        await removeNamespaces(linux, real.lab.prefix);
      }
    }, 60_000);
  }

  for (const { provider, crossNodeTtl } of cases) {
    it(`${provider.name}: same tables, same reachability, same TTLs`, async () => {
      const sim = await build(provider, new SimKernel({ seed: "providers" }), "");
      const real = await build(provider, linux, nextPrefix());
      try {
        expect(real.ips).toEqual(sim.ips);
        for (const node of ["node1", "node2", "gw"]) {
          expect(await linux.route.list(real.lab.ns(node))).toEqual(await sim.lab.k.route.list(node));
        }
        // Pod to pod across nodes (under docker-bridge the address is also web's, on node1: it answers).
        const crossSim = (sim.lab.k as SimKernel).send({
          from: "client",
          to: sim.ips.db!,
          dontFragment: true,
        });
        const crossReal = await ping(real.lab.ns("client"), real.ips.db!);
        expect({ kernel: crossReal.outcome, ttl: crossReal.ttl }).toEqual({
          kernel: "reached",
          ttl: crossNodeTtl,
        });
        expect({ sim: crossSim.outcome, ttl: answerTtl(crossSim, "client") }).toEqual({
          sim: "reached",
          ttl: crossNodeTtl,
        });
        // Pod to a host outside the cluster, masqueraded by node1.
        const outSim = (sim.lab.k as SimKernel).send({
          from: "client",
          to: "10.100.0.50",
          dontFragment: true,
        });
        const outReal = await ping(real.lab.ns("client"), "10.100.0.50");
        expect({ kernel: outReal.outcome, ttl: outReal.ttl }).toEqual({ kernel: "reached", ttl: 63 });
        expect({ sim: outSim.outcome, ttl: answerTtl(outSim, "client") }).toEqual({
          sim: "reached",
          ttl: 63,
        });
      } finally {
        await removeNamespaces(linux, real.lab.prefix);
      }
    }, 60_000);
  }
});
