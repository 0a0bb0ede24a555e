// A minimal cluster runtime over the simulator, for the route manager's tests and benchmark: the
// underlay is built with LabTopology, nodes are set up by the provider, pods are added through the
// provider's CNI plugin, and every change reaches the route manager as an event.
import {
  joinNode,
  addPod,
  createSandbox,
  delPod,
  podAddress,
  podAttachment,
  type ClusterNetwork,
  type NetworkProvider,
  type NodeNetwork,
  type PodAttachment,
} from "@podnet/cni";
import { NodeCidrAllocator } from "@podnet/ipam";
import { cbr0HostGw } from "@podnet/provider-cbr0-host-gw";
import type { Netlink } from "@podnet/netlink";
import { LabTopology } from "@podnet/netlink/lab";
import { SimKernel } from "@podnet/sim";
import { RouteManager, type ProxyName, type ReconcileReport, type Service } from "../src/index.js";

export const CLUSTER: ClusterNetwork = {
  clusterCidr: "10.0.0.0/16",
  nodeMaskSize: 24,
  // Not Kubernetes' default /12: that holds the underlay's 10.100.0.0/24, whose packets kube-proxy's nftables
  // mode would drop as unallocated ClusterIPs (the scenario schema refuses such a cluster).
  serviceCidr: "10.96.0.0/16",
};

export class TestCluster {
  readonly k: SimKernel;
  readonly lab: LabTopology<SimKernel>;
  readonly manager: RouteManager;
  readonly cluster: ClusterNetwork;
  readonly cidrs: NodeCidrAllocator;
  readonly nodes = new Map<string, NodeNetwork>();
  readonly pods = new Map<string, { node: string; ip: string; attachment: PodAttachment }>();
  private adopted: NodeNetwork[] = [];

  constructor(
    readonly provider: NetworkProvider,
    options: {
      gatewayNs?: string;
      seed?: string;
      cluster?: ClusterNetwork;
      /** The host API the route manager writes through (the simulator itself by default). */
      managerHost?: (k: SimKernel) => Netlink;
      /** kube-proxy's mode (iptables by default). */
      proxy?: ProxyName;
    } = {},
  ) {
    this.k = new SimKernel({ seed: options.seed ?? "cluster" });
    this.lab = new LabTopology(this.k);
    this.cluster = options.cluster ?? CLUSTER;
    // As flannel's SubnetMin, the first subnet is kept back: the notes' nodes get 10.0.1.0/24 and 10.0.2.0/24.
    this.cidrs = new NodeCidrAllocator(this.cluster.clusterCidr, this.cluster.nodeMaskSize, {
      reserved: [0],
    });
    this.manager = new RouteManager({
      netlink: options.managerHost ? options.managerHost(this.k) : this.k,
      provider,
      cluster: this.cluster,
      ...(options.gatewayNs ? { gatewayNs: options.gatewayNs } : {}),
      ...(options.proxy ? { proxy: options.proxy } : {}),
    });
  }

  /** A router/gateway on the underlay (not a node). */
  async router(name: string, interfaces: { segment: string; cidr: string }[]): Promise<void> {
    for (const [i, nic] of interfaces.entries())
      await this.lab.host(name, nic.segment, nic.cidr, { nic: `eth${i}`, forwarding: i === 0 });
  }

  /** Programs the nodes added with `adopt` since the last call at once, by the manager's bulk load. */
  async loadAdopted(): Promise<ReconcileReport> {
    const nodes = this.adopted;
    this.adopted = [];
    return this.manager.nodesJoined(nodes);
  }

  async addNode(
    name: string,
    cidr: string,
    options: {
      segment?: string;
      gateway?: string;
      podCidr?: string;
      /** Set the node up and record it without programming anything (see `loadAdopted`). */
      adopt?: boolean;
    } = {},
  ): Promise<ReconcileReport | undefined> {
    await this.lab.host(
      name,
      options.segment ?? "lan",
      cidr,
      options.gateway ? { gateway: options.gateway } : {},
    );
    const node = await joinNode(this.provider, this.k, this.cluster, {
      name,
      ns: name,
      address: cidr.split("/")[0]!,
      underlayMtu: 1500,
      podCidr: () => {
        if (options.podCidr) this.cidrs.occupy(options.podCidr);
        return options.podCidr ?? this.cidrs.allocate().toString();
      },
    });
    this.nodes.set(name, node);
    if (options.adopt) {
      this.adopted.push(node);
      return void this.manager.adopt(node);
    }
    return this.manager.nodeJoined(node);
  }

  async removeNode(name: string): Promise<ReconcileReport> {
    const node = this.nodes.get(name)!;
    for (const [pod, info] of this.pods) if (info.node === name) await this.removePod(pod);
    await this.lab.removeHost(name);
    if (node.podCidr) this.cidrs.release(node.podCidr);
    this.nodes.delete(name);
    return this.manager.nodeLeft(name);
  }

  async addPod(
    nodeName: string,
    pod: string,
    options: { listen?: number[]; publish?: { hostPort: number; containerPort: number }[] } = {},
  ): Promise<string> {
    const node = this.nodes.get(nodeName)!;
    await createSandbox(this.k, pod);
    const attachment = podAttachment(this.provider, node, this.cluster, {
      containerId: pod,
      podNs: pod,
      ...(options.publish ? { publish: options.publish } : {}),
    });
    const ip = podAddress(await addPod(this.provider, this.k, attachment));
    for (const port of options.listen ?? [])
      this.k.listen(pod, { protocol: "tcp", port, owner: `${pod}-app` });
    this.pods.set(pod, { node: nodeName, ip, attachment });
    return ip;
  }

  async removePod(pod: string): Promise<void> {
    const { attachment } = this.pods.get(pod)!;
    await delPod(this.provider, this.k, attachment);
    await delPod(this.provider, this.k, attachment); // DEL twice: must still succeed
    await this.k.netns.del(pod);
    this.pods.delete(pod);
  }

  service(service: Service): Promise<ReconcileReport> {
    return this.manager.serviceChanged(service);
  }

  /** Routes, neighbours and FDB entries of every node, for comparing clusters. */
  async tables(): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    for (const name of [...this.nodes.keys()].sort()) {
      out[name] = {
        routes: await this.k.route.list(name),
        neigh: (await this.k.neigh.list(name)).filter((n) => n.state.includes("PERMANENT")),
        // An FDB is a set: the kernel dumps it in hash order, the simulator in insertion order.
        fdb: (await this.k.fdb.list(name))
          .filter((f) => f.dst)
          .sort((a, b) => `${a.mac}${a.dst}`.localeCompare(`${b.mac}${b.dst}`)),
        nat: await this.k.iptables.save(name, "nat"),
      };
    }
    return out;
  }
}

/**
 * Two nodes behind a gateway, an outside host, a client pod and Service web (ClusterIP 10.96.0.10:80,
 * NodePort 30080) over three endpoints listening on 8080, under `proxy`.
 */
export async function clusterWithService(
  provider: NetworkProvider = cbr0HostGw(),
  proxy: ProxyName = "iptables",
) {
  const c = new TestCluster(provider, { proxy });
  await c.router("gw", [{ segment: "lan", cidr: "10.100.0.1/24" }]);
  await c.lab.host("outside", "lan", "10.100.0.50/24");
  await c.addNode("node1", "10.100.0.2/24", { gateway: "10.100.0.1" });
  await c.addNode("node2", "10.100.0.3/24", { gateway: "10.100.0.1" });
  const endpoints = [
    await c.addPod("node1", "web-a", { listen: [8080] }),
    await c.addPod("node2", "web-b", { listen: [8080] }),
    await c.addPod("node2", "web-c", { listen: [8080] }),
  ];
  await c.addPod("node1", "client");
  const web: Service = {
    namespace: "default",
    name: "web",
    clusterIP: "10.96.0.10",
    ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "tcp", nodePort: 30080 }],
    endpoints,
  };
  const report = await c.service(web);
  return { c, web, endpoints, report };
}
