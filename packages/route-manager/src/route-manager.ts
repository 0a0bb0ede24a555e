/**
 * Keeps every node's tables in step with the cluster, as events arrive. It has two jobs, which real
 * clusters split and which are two classes here:
 * - `PeerRoutes`: pod-subnet reachability (routes, neighbours, FDB entries per other node, from the
 *   provider) — flannel's job or the cloud route controller's, not kube-proxy's, although the
 *   original notes credit kube-proxy;
 * - `ServiceProxy`: Services (ClusterIP, NodePort) as kube-proxy writes them, in its iptables or its
 *   nftables mode (proxies.ts) — kube-proxy's real job.
 * This facade routes each event to the job it concerns and reports what changed. Entries are compared
 * as values (a prefix, an address, a MAC), so no spelling of a wanted entry can make a resync delete
 * and re-add it.
 */
import type { ClusterNetwork, NetworkProvider, NodeNetwork, PeerEntries } from "@podnet/cni";
import type { Netlink } from "@podnet/netlink";
import { Tally, now, type ReconcileReport, type Refusal } from "./apply.js";
import { PeerRoutes } from "./peers.js";
import { SERVICE_PROXIES, type ProxyName, type ServiceProxy } from "./proxies.js";
import type { Service } from "./services.js";

export type { NodeChanges, ReconcileReport, Refusal } from "./apply.js";

export interface RouteManagerOptions {
  netlink: Netlink;
  provider: NetworkProvider;
  cluster: ClusterNetwork;
  /** The underlay gateway's namespace, for providers that keep their routes there. */
  gatewayNs?: string;
  /** kube-proxy's mode for Services: "iptables" (the default) or "nftables". */
  proxy?: ProxyName;
}

export class RouteManager {
  readonly peers: PeerRoutes;
  readonly proxy: ServiceProxy;

  constructor(options: RouteManagerOptions) {
    this.peers = new PeerRoutes(options);
    this.proxy = SERVICE_PROXIES[options.proxy ?? "iptables"](options.netlink, options.cluster);
  }

  get nodes(): Map<string, NodeNetwork> {
    return this.peers.nodes;
  }

  get services(): Map<string, Service> {
    return this.proxy.services;
  }

  /** Every change the kernel refused so far, for explaining unreachable destinations. */
  get refusals(): Refusal[] {
    return this.peers.refusals;
  }

  /**
   * Records a node whose tables are already in place — after the manager restarts, or when a
   * cluster is bulk-loaded — without writing anything. `resync()` verifies and repairs.
   */
  adopt(node: NodeNetwork): void {
    this.peers.adopt(node);
  }

  nodeJoined(node: NodeNetwork): Promise<ReconcileReport> {
    return this.run(`node ${node.name} joined`, async (tally) => {
      await this.peers.joined(tally, node);
      await this.proxy.sync(tally, node);
    });
  }

  /**
   * Nodes whose machines came up together (a cluster bulk-loaded): each takes its peers' entries
   * once (with peer groups, one layer write per peer and one attach per node), then its Services.
   * With `parallel` the nodes are programmed at the same time, as real hosts are.
   */
  nodesJoined(nodes: readonly NodeNetwork[], options: { parallel?: boolean } = {}): Promise<ReconcileReport> {
    return this.run(`${nodes.length} nodes joined`, async (tally) => {
      await this.peers.joinedAll(tally, nodes, options.parallel);
      if (options.parallel) await Promise.all(nodes.map((node) => this.proxy.sync(tally, node)));
      else for (const node of nodes) await this.proxy.sync(tally, node);
    });
  }

  nodeLeft(name: string): Promise<ReconcileReport> {
    this.proxy.forget(name);
    return this.run(`node ${name} left`, (tally) => this.peers.left(tally, name));
  }

  /** A node's pod CIDR was assigned, changed or released: peers drop the old entries, take the new. */
  nodeUpdated(node: NodeNetwork): Promise<ReconcileReport> {
    return this.run(`node ${node.name} updated`, (tally) => this.peers.updated(tally, node));
  }

  /** One Service's partial sync on every node: its own chains, and its entries in the shared ones. */
  serviceChanged(service: Service): Promise<ReconcileReport> {
    const before = this.proxy.set(service);
    return this.serviceSync(`service ${service.namespace}/${service.name} changed`, before, service);
  }

  /** kube-proxy's full sync: the whole Service list at once (a start, a relist), one sync per node. */
  servicesReplaced(services: Iterable<Service>): Promise<ReconcileReport> {
    this.proxy.replaceAll(services);
    return this.syncAllServices(`${this.services.size} services synced`);
  }

  serviceDeleted(namespace: string, name: string): Promise<ReconcileReport> {
    const before = this.proxy.delete(namespace, name);
    return this.serviceSync(`service ${namespace}/${name} deleted`, before, undefined);
  }

  /**
   * Compares every node's whole tables with what they should hold and repairs them. With `parallel`,
   * the nodes are reconciled at the same time (real hosts, where each write is a process and the
   * nodes do not share a kernel); the result is the same, only the order of refusals may differ.
   */
  resync(options: { parallel?: boolean } = {}): Promise<ReconcileReport> {
    return this.run("full resync", async (tally) => {
      await this.peers.resync(tally, options.parallel);
      const nodes = [...this.nodes.values()];
      if (options.parallel) await Promise.all(nodes.map((node) => this.proxy.sync(tally, node)));
      else for (const node of nodes) await this.proxy.sync(tally, node);
    });
  }

  /** Every entry a node should hold, across all its peers. */
  desired(node: NodeNetwork): PeerEntries {
    const peers = this.peers.desired(node);
    return {
      routes: peers.flatMap((p) => p.routes),
      neighbours: peers.flatMap((p) => p.neighbours),
      fdb: peers.flatMap((p) => p.fdb),
    };
  }

  private serviceSync(event: string, before?: Service, after?: Service): Promise<ReconcileReport> {
    return this.run(event, async (tally) => {
      for (const node of this.nodes.values()) await this.proxy.changed(tally, node, before, after);
    });
  }

  private syncAllServices(event: string): Promise<ReconcileReport> {
    return this.run(event, async (tally) => {
      for (const node of this.nodes.values()) await this.proxy.sync(tally, node);
    });
  }

  private async run(event: string, work: (tally: Tally) => Promise<void>): Promise<ReconcileReport> {
    const started = now();
    const tally = new Tally();
    await work(tally);
    return tally.report(event, started);
  }
}
