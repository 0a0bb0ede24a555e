/**
 * Builds a scenario under a provider on a backend — the simulated kernel by default, or real network
 * namespaces (@podnet/lab): the underlay (segments, routers, outside hosts), nodes set up by the
 * provider, pods attached by its CNI plugin with their containers listening, Services with endpoints
 * picked by selector — every change reported by the route manager. Probes (either backend) and
 * traces (the simulator's) then run against it. Names here are the scenario's; `ns()` gives the
 * namespace the backend holds them in.
 */
import { Ipv4Prefix, formatIpv4, parseIpv4, quoteInput as q, type Ipv4Header } from "@podnet/core";
import {
  joinNode,
  createSandbox,
  podAddress,
  podAttachment,
  type ClusterNetwork,
  type NetworkProvider,
  type NodeNetwork,
  type PodAttachment,
} from "@podnet/cni";
import { NodeCidrAllocator } from "@podnet/ipam";
import { parseAddressArgument, parseRouteDst } from "@podnet/netlink";
import { LabTopology } from "@podnet/netlink/lab";
import type { Netlink } from "@podnet/netlink";
import {
  noPolicyEngine,
  policyKey,
  type NetworkPolicy,
  type PolicyApplyReport,
  type PolicyEngine,
} from "@podnet/policy";
import { RouteManager, Tally, type ProxyName, type ReconcileReport } from "@podnet/route-manager";
import type { Trace, TraceSummary } from "@podnet/sim";
import {
  SimBackend,
  requestTranslated,
  translationHop,
  type ClusterBackend,
  type ProbeRequest,
  type ProbeResult,
  type TableSizes,
} from "./backend.js";
import { expandScenario } from "./generate.js";
import { applyPolicies, policyApplied } from "./policy.js";
import { providerIssues } from "./check.js";
import { TargetError, allocate, claim } from "./allocation.js";
import { ProbeTargets } from "./probes.js";
import { ServiceTable, proxyService, resolvePort, sameEndpoints, type ServiceState } from "./services.js";
import {
  HEADLESS,
  type EventSpec,
  type NodeSpec,
  type PodSpec,
  type Scenario,
  type ServiceSpec,
} from "./schema.js";

export interface PodState {
  spec: PodSpec;
  node: string;
  ip: string;
  /** What the pod was attached with: DEL gets the same config ADD got. */
  attachment: PodAttachment;
}

export { TargetError } from "./allocation.js";
export type { ServiceState } from "./services.js";

export interface EventReport {
  at: number;
  description: string;
  /** What the route manager wrote (routes, neighbours, FDB entries, kube-proxy's rules). */
  report?: ReconcileReport;
  /** A NetworkPolicy event: the chains the policy engine wrote and removed on the nodes. */
  policy?: PolicyApplyReport;
}

export interface BuildOptions {
  /** Seeds the simulator's random choices (MACs, Service endpoints); the scenario's name by default. */
  seed?: string;
  /**
   * Called after each node, pod and Service is in place: for a progress bar on large clusters. The
   * build is otherwise one long run of microtasks; a callback that returns a promise resolved by a
   * timer lets the event loop turn (and Ctrl-C be handled) during it.
   */
  onProgress?: (done: number, total: number) => void | Promise<void>;
  /** Where to build: the simulator (the default) or another backend, such as real namespaces. */
  backend?: ClusterBackend;
  /** The NetworkPolicy engine on every node (`none` by default: nothing enforced). */
  policy?: PolicyEngine;
}

export type ProbeOptions = Omit<
  ProbeRequest,
  "fromNs" | "owner" | "to" | "expectNs" | "expectOwner" | "protocol"
> & {
  protocol?: ProbeRequest["protocol"];
};

export class ClusterRuntime {
  readonly backend: ClusterBackend;
  /** The host API the cluster is built through. */
  readonly k: Netlink;
  readonly lab: LabTopology;
  readonly manager: RouteManager;
  /** kube-proxy's mode for the Services: the scenario's `proxy`, iptables by default. */
  readonly proxy: ProxyName;
  readonly cluster: ClusterNetwork;
  readonly nodes = new Map<string, NodeNetwork>();
  readonly pods = new Map<string, PodState>();
  /** The Services by `namespace/name`, with their ClusterIPs and endpoints (`serviceTable.index`). */
  readonly services: ReadonlyMap<string, ServiceState>;
  /** @internal The Services, their ClusterIPs and lookups (services.ts). */
  readonly serviceTable: ServiceTable;
  readonly hosts = new Map<string, string>();
  readonly reports: EventReport[] = [];
  /**
   * The NetworkPolicies in force: the scenario's, then as events set and remove them (the scenario
   * itself is left as it was written).
   */
  networkPolicies: NetworkPolicy[];
  /** Total time the route manager spent reconciling, build and events included. */
  reconcileMs = 0;
  private readonly cidrs: NodeCidrAllocator;
  private readonly scenario: Scenario;
  private readonly targets = new ProbeTargets(this);

  private constructor(
    scenario: Scenario,
    readonly provider: NetworkProvider,
    backend: ClusterBackend,
    readonly policyEngine: PolicyEngine,
  ) {
    this.scenario = expandScenario(scenario);
    this.networkPolicies = [...this.scenario.networkPolicies];
    this.backend = backend;
    this.k = backend.netlink;
    this.lab = new LabTopology(this.k, backend.prefix);
    this.cluster = scenario.cluster;
    this.cidrs = new NodeCidrAllocator(scenario.cluster.clusterCidr, scenario.cluster.nodeMaskSize);
    this.serviceTable = new ServiceTable(scenario.cluster.serviceCidr, this.scenario.services);
    this.services = this.serviceTable.index.map;
    for (const n of this.scenario.nodes) if (n.podCidr) this.cidrs.occupy(n.podCidr);
    this.proxy = scenario.proxy ?? "iptables";
    this.manager = new RouteManager({
      netlink: this.k,
      provider,
      cluster: this.cluster,
      proxy: this.proxy,
      ...(this.gatewayRouter() ? { gatewayNs: this.ns(this.gatewayRouter()!) } : {}),
    });
  }

  /** The namespace that holds scenario name `name` on this backend. */
  ns(name: string): string {
    return this.backend.prefix + name;
  }

  /** Builds the scenario's starting state (events are run separately). */
  static async build(
    scenario: Scenario,
    provider: NetworkProvider,
    options: BuildOptions = {},
  ): Promise<ClusterRuntime> {
    const clash = providerIssues(scenario, provider)[0];
    if (clash) throw new TargetError(clash.message);
    const backend: ClusterBackend = options.backend ?? new SimBackend(options.seed ?? scenario.name);
    const runtime = new ClusterRuntime(scenario, provider, backend, options.policy ?? noPolicyEngine);
    const { nodes, pods, services } = runtime.scenario;
    const total = nodes.length + pods.length + services.length;
    let done = 0;
    const step = async () => {
      await options.onProgress?.(++done, total);
    };
    await runtime.buildUnderlay();
    await runtime.addNodesAtOnce(nodes, step);
    if (backend.parallelNodes) {
      // Kubelets on different nodes attach their pods at the same time; one node's pods stay in
      // order, so each node's IPAM hands out addresses as it would one by one.
      const byNode = new Map<string, PodSpec[]>();
      for (const pod of pods) byNode.set(pod.node, [...(byNode.get(pod.node) ?? []), pod]);
      let failed = false;
      await settled(
        [...byNode.values()].map(async (list) => {
          try {
            for (const pod of list) {
              if (failed) return;
              await runtime.addPod(pod).then(step);
            }
          } catch (error) {
            failed = true;
            throw error;
          }
        }),
      );
      // The pods in the scenario's order, as the simulator lists them.
      const states = pods.map((p) => [p.name, runtime.pods.get(p.name)!] as const);
      runtime.pods.clear();
      for (const [name, state] of states) runtime.pods.set(name, state);
    } else for (const pod of pods) await runtime.addPod(pod).then(step);
    await runtime.setServicesAtOnce(services, step);
    await applyPolicies(runtime);
    return runtime;
  }

  /**
   * Whether the provider publishes hostPorts: its pod config declares the portMappings capability,
   * so a portmap plugin in its CNI chain gets the pod's mappings.
   */
  publishesPorts(): boolean {
    const node = this.nodes.values().next().value;
    if (!node) return false;
    const config = this.provider.podNetworkConfig(node, this.cluster) as {
      capabilities?: { portMappings?: boolean };
    };
    return Boolean(config.capabilities?.portMappings);
  }

  get spec(): Scenario {
    return this.scenario;
  }

  private segment(name: string) {
    const seg = this.scenario.underlay.segments.find((s) => s.name === name)!;
    return { ...seg, prefix: Ipv4Prefix.parse(seg.subnet) };
  }

  /** The router holding the gateway address of the nodes' segment: where gateway routes go. */
  private gatewayRouter(): string | undefined {
    const seg = this.scenario.underlay.segments.find((s) => s.gateway);
    return this.scenario.underlay.routers.find((r) => r.interfaces.some((i) => i.address === seg?.gateway))
      ?.name;
  }

  private async buildUnderlay(): Promise<void> {
    for (const seg of this.scenario.underlay.segments) await this.lab.segment(seg.name);
    for (const router of this.scenario.underlay.routers) {
      for (const [i, nic] of router.interfaces.entries()) {
        const seg = this.segment(nic.segment);
        await this.lab.host(router.name, nic.segment, `${nic.address}/${seg.prefix.length}`, {
          nic: `eth${i}`,
          forwarding: i === 0,
          mtu: seg.mtu,
        });
      }
      for (const r of router.routes)
        await this.k.route.add(this.ns(router.name), {
          dst: parseRouteDst(r.dst),
          via: parseAddressArgument(r.via),
        });
    }
    for (const host of this.scenario.underlay.hosts) {
      const seg = this.segment(host.segment);
      await this.lab.host(host.name, host.segment, `${host.address}/${seg.prefix.length}`, {
        ...(seg.gateway ? { gateway: seg.gateway } : {}),
        mtu: seg.mtu,
      });
      for (const l of host.listen)
        await this.backend.listen(this.ns(host.name), {
          protocol: l.protocol,
          port: l.port,
          owner: host.name,
        });
      this.hosts.set(host.name, host.address);
    }
  }

  async addNode(spec: NodeSpec): Promise<ReconcileReport> {
    if (this.nodes.has(spec.name)) throw new TargetError(`node ${spec.name} exists already`);
    if (spec.podCidr && this.provider.podAddressing === "per-node-subnet") {
      // A pinned pod subnet is reserved here, as the scenario's own nodes' are at the start: a node
      // that joins later with a subnet already handed out would share its pods' addresses.
      if (!claim(this.cidrs, spec.podCidr)) {
        const holder = [...this.nodes.values()].find((n) => n.podCidr === spec.podCidr);
        const taken = holder ? `is already node ${holder.name}'s` : "is taken";
        throw new TargetError(`node ${spec.name}: podCidr ${spec.podCidr} ${taken}`);
      }
    }
    const node = await this.setUpNode(spec);
    this.nodes.set(spec.name, node);
    return this.timed(this.manager.nodeJoined(node));
  }

  /** A node's machine on the underlay and the provider's node setup; its peers are not programmed. */
  private async setUpNode(spec: NodeSpec): Promise<NodeNetwork> {
    const seg = this.segment(spec.segment);
    await this.lab.host(spec.name, spec.segment, `${spec.address}/${seg.prefix.length}`, {
      ...(seg.gateway ? { gateway: seg.gateway } : {}),
      mtu: seg.mtu,
    });
    return joinNode(this.provider, this.k, this.cluster, {
      name: spec.name,
      ns: this.ns(spec.name),
      address: spec.address,
      underlayMtu: seg.mtu,
      podCidr: () =>
        spec.podCidr ??
        allocate(this.cidrs, `node ${spec.name}: no pod subnet left`, () => this.cidrs.allocate().toString()),
    });
  }

  /**
   * The scenario's nodes brought up at once, as a real cluster's machines boot, then programmed by the
   * route manager's bulk load: each node written once, where node-by-node joins rewrite every earlier
   * node at each join. Pod subnets are handed out first, in the scenario's order, so they do not
   * depend on which machine was ready first. Real hosts come up in parallel; the simulator's nodes
   * one after another, so device numbers follow the scenario's order.
   */
  private async addNodesAtOnce(specs: NodeSpec[], step: () => Promise<void>): Promise<void> {
    const perNode = this.provider.podAddressing === "per-node-subnet";
    const allocated = specs.map((spec) =>
      perNode ? { ...spec, podCidr: spec.podCidr ?? this.cidrs.allocate().toString() } : spec,
    );
    const setUp = async (spec: NodeSpec) => {
      const node = await this.setUpNode(spec);
      await step();
      return node;
    };
    const parallel = this.backend.parallelNodes === true;
    const ready: NodeNetwork[] = [];
    if (parallel) ready.push(...(await settled(allocated.map(setUp))));
    else for (const spec of allocated) ready.push(await setUp(spec));
    for (const node of ready) this.nodes.set(node.name, node);
    await this.timed(this.manager.nodesJoined(ready, { parallel }));
  }

  async removeNode(name: string): Promise<ReconcileReport> {
    const node = this.nodes.get(name);
    if (!node) throw new TargetError(`unknown node ${q(name)}`);
    // The node's pods go first, through CNI DEL as the kubelet would drain them, so their addresses
    // are free again if the node rejoins.
    for (const [pod, state] of [...this.pods]) if (state.node === name) await this.detachPod(pod);
    await this.backend.stopProcessesIn?.(node.ns);
    await this.lab.removeHost(name);
    if (node.podCidr) this.cidrs.release(node.podCidr);
    this.nodes.delete(name);
    const report = await this.timed(this.manager.nodeLeft(name));
    const refreshed = await this.refreshEndpoints(`node ${name} removed`);
    return refreshed ? sumReports(report.event, [report, refreshed]) : report;
  }

  async addPod(spec: PodSpec): Promise<PodState> {
    const node = this.nodes.get(spec.node);
    if (!node) throw new TargetError(`pod ${spec.name}: unknown node ${q(spec.node)}`);
    const podNs = this.ns(spec.name);
    await createSandbox(this.k, podNs);
    const attachment = podAttachment(this.provider, node, this.cluster, {
      containerId: spec.name,
      podNs,
      publish: spec.containers.flatMap((c) =>
        c.ports
          .filter((p) => p.hostPort)
          .map((p) => ({
            hostPort: p.hostPort!,
            containerPort: p.containerPort,
            protocol: p.protocol,
            ...(p.hostIP !== undefined ? { hostIP: p.hostIP } : {}),
          })),
      ),
    });
    const result = await this.backend.attachPod(this.provider, attachment);
    for (const c of spec.containers)
      for (const p of c.ports)
        await this.backend.listen(podNs, {
          protocol: p.protocol,
          port: p.containerPort,
          owner: `${spec.name}/${c.name}`,
        });
    const state = { spec, node: spec.node, ip: podAddress(result), attachment };
    this.pods.set(spec.name, state);
    return state;
  }

  /** Removes a pod; what the Services it was an endpoint of wrote on the nodes, if any. */
  async removePod(name: string): Promise<ReconcileReport | undefined> {
    if (!this.pods.has(name)) throw new TargetError(`unknown pod ${q(name)}`);
    await this.detachPod(name);
    return this.refreshEndpoints(`pod ${name} removed`);
  }

  private async detachPod(name: string): Promise<void> {
    await this.backend.detachPod(this.provider, this.pods.get(name)!.attachment);
    // Its containers end with it, as when the kubelet deletes a pod.
    await this.backend.stopProcessesIn?.(this.ns(name));
    await this.k.netns.del(this.ns(name));
    this.pods.delete(name);
  }

  /** The pods a Service's selector picks, in the cluster's order. */
  selectedPods(spec: ServiceSpec): PodState[] {
    const wanted = Object.entries(spec.selector);
    // As Kubernetes' endpoints controller: pods of the Service's own namespace, and none for an
    // empty selector (such a Service's endpoints are somebody else's to manage).
    if (!wanted.length) return [];
    return [...this.pods.values()].filter(
      (p) => p.spec.namespace === spec.namespace && wanted.every(([k, v]) => p.spec.labels[k] === v),
    );
  }

  /**
   * The scenario's Services at the start, as kube-proxy starts: their ClusterIPs taken in order as
   * `setService` takes them, then one full sync per node. One partial sync per Service made 10,000
   * Services cost a build of half a minute under iptables (each inserting into KUBE-SERVICES); a
   * full sync ends with the same chains (route-manager's partial-sync property test).
   */
  private async setServicesAtOnce(specs: readonly ServiceSpec[], step: () => Promise<void>): Promise<void> {
    if (!specs.length) return;
    for (const spec of specs) this.serviceTable.set(spec, this.selectedPods(spec));
    const proxied = [...this.services.values()].filter((s) => s.clusterIP !== HEADLESS);
    await this.timed(this.manager.servicesReplaced(proxied.map(proxyService)));
    for (let i = 0; i < specs.length; i++) await step();
  }

  async setService(spec: ServiceSpec): Promise<ReconcileReport> {
    const state = this.serviceTable.set(spec, this.selectedPods(spec));
    // kube-proxy skips a headless Service: no node holds anything for it.
    if (state.clusterIP === HEADLESS)
      return untouched(`service ${spec.namespace}/${spec.name} set (headless)`);
    return this.timed(this.manager.serviceChanged(proxyService(state)));
  }

  /** Removes the Service of this name: in `namespace`, or the only one of the name when none is said. */
  async removeService(name: string, namespace?: string): Promise<ReconcileReport> {
    const found = this.serviceTable.index.named(name, namespace);
    if ("error" in found) throw new TargetError(found.error);
    const state = this.serviceTable.remove(found.namespace, name)!;
    if (state.clusterIP === HEADLESS)
      return untouched(`service ${found.namespace}/${name} deleted (headless)`);
    return this.timed(this.manager.serviceDeleted(found.namespace, name));
  }

  /** The Service a probe's `svc/<ref>` names (`web`, or `web.shop`), or why none. */
  service(ref: string): ServiceState | { error: string } {
    const found = this.serviceTable.index.find(ref);
    return "error" in found ? found : found.value;
  }

  /** How a probe names this Service: `web`, or `web.shop` when another namespace has a `web`. */
  serviceRef(state: ServiceState): string {
    return this.serviceTable.index.ref(state.spec.namespace, state.spec.name);
  }

  private async timed(pending: Promise<ReconcileReport>): Promise<ReconcileReport> {
    const report = await pending;
    this.reconcileMs += report.durationMs;
    return report;
  }

  /**
   * Each Service whose endpoints a pod's coming or going changed is set again; what they wrote, as
   * one report (none when no Service changed).
   */
  private async refreshEndpoints(event: string): Promise<ReconcileReport | undefined> {
    const reports: ReconcileReport[] = [];
    for (const state of this.services.values()) {
      const pods = this.selectedPods(state.spec);
      const now = state.spec.ports.map((p) => resolvePort(p, pods));
      if (!sameEndpoints(now, state.portEndpoints)) reports.push(await this.setService(state.spec));
    }
    return reports.length ? sumReports(event, reports) : undefined;
  }

  /** Runs the scenario's timed events in order, recording what each changed. */
  async runEvents(events: EventSpec[] = this.scenario.events): Promise<EventReport[]> {
    for (const e of [...events].sort((a, b) => a.at - b.at)) {
      const before = [...this.networkPolicies];
      let description = "";
      let report: ReconcileReport | undefined;
      switch (e.action) {
        case "addNode":
          description = `node ${e.node.name} joins`;
          report = await this.addNode(e.node);
          break;
        case "removeNode":
          description = `node ${e.node} leaves`;
          report = await this.removeNode(e.node);
          break;
        case "addPod":
          description = `pod ${e.pod.name} starts on ${e.pod.node}`;
          await this.addPod(e.pod);
          report = await this.refreshEndpoints(`pod ${e.pod.name} added`);
          break;
        case "removePod":
          description = `pod ${e.pod} stops`;
          report = await this.removePod(e.pod);
          break;
        case "setService":
          description = `service ${e.service.namespace}/${e.service.name} set`;
          report = await this.setService(e.service);
          break;
        case "removeService":
          description = `service ${e.namespace ? `${e.namespace}/` : ""}${e.service} removed`;
          report = await this.removeService(e.service, e.namespace);
          break;
        case "setNetworkPolicy":
          description = `NetworkPolicy ${policyKey(e.networkPolicy)} set`;
          this.setNetworkPolicy(e.networkPolicy);
          break;
        case "removeNetworkPolicy":
          description = `NetworkPolicy ${e.networkPolicy.namespace}/${e.networkPolicy.name} removed`;
          this.removeNetworkPolicy(e.networkPolicy.namespace, e.networkPolicy.name);
          break;
      }
      let policy: PolicyApplyReport | undefined;
      // Pods, nodes or policies came or went: each node's policy chains follow.
      if (e.action !== "setService" && e.action !== "removeService") {
        const policyEvent = e.action === "setNetworkPolicy" || e.action === "removeNetworkPolicy";
        let applied;
        try {
          applied = await applyPolicies(this);
        } catch (error) {
          // Refused before any node was written (past the engine's limits): the policy is not in force.
          if (policyEvent) this.networkPolicies = before;
          throw error;
        }
        if (policyEvent) {
          description += policyApplied(this.policyEngine, applied);
          policy = applied;
        }
      }
      this.reports.push({
        at: e.at,
        description,
        ...(report ? { report } : {}),
        ...(policy ? { policy } : {}),
      });
    }
    return this.reports;
  }

  /** `kubectl apply` of one NetworkPolicy: it replaces the policy with its namespace/name, if any. */
  setNetworkPolicy(policy: NetworkPolicy): void {
    const key = policyKey(policy);
    const at = this.networkPolicies.findIndex((p) => policyKey(p) === key);
    if (at < 0) this.networkPolicies.push(policy);
    else this.networkPolicies[at] = policy;
  }

  removeNetworkPolicy(namespace: string, name: string): void {
    const at = this.networkPolicies.findIndex(
      (p) => p.metadata.namespace === namespace && p.metadata.name === name,
    );
    if (at < 0) throw new TargetError(`unknown NetworkPolicy ${q(`${namespace}/${name}`)}`);
    this.networkPolicies.splice(at, 1);
  }

  /** Where a name points: a pod's, node's or host's namespace and address; a service's ClusterIP. */
  resolve(target: string): ReturnType<ProbeTargets["resolve"]> {
    return this.targets.resolve(target);
  }

  /** The namespace and process a probe starts from: "web" (the pod), "web/nginx" (a container), a node or a host. */
  origin(from: string): { ns: string; owner?: string } {
    return this.targets.origin(from);
  }

  /**
   * The Service a target reaches through kube-proxy — `svc/<name>`, a ClusterIP, or a node's
   * NodePort — with the pods its selector picks; only a Service port of `protocol` when given.
   */
  serviceOf(...args: Parameters<ProbeTargets["serviceOf"]>): ReturnType<ProbeTargets["serviceOf"]> {
    return this.targets.serviceOf(...args);
  }

  /** A Service's port and pod `endpoint` among its endpoints, for `trace`'s `endpoint`. */
  endpointOf(...args: Parameters<ProbeTargets["endpointOf"]>): ReturnType<ProbeTargets["endpointOf"]> {
    return this.targets.endpointOf(...args);
  }

  /**
   * The Service whose random draw picked where `trace` went, with its endpoints (pod names): a
   * target reaching a Service of several endpoints, on a path where kube-proxy translated it.
   * Undefined for one endpoint, or a packet dropped before a draw was made (an
   * externalTrafficPolicy: Local node without endpoints).
   */
  serviceDraw(
    to: string,
    protocol: "icmp" | "tcp" | "udp" | undefined,
    trace: Trace,
  ): { service: string; endpoints: string[] } | undefined {
    const found = this.serviceOf(to, undefined, protocol ?? this.resolve(to).protocol);
    if (!found || found.endpoints.length < 2) return undefined;
    if (!requestTranslated(trace)) return undefined;
    return { service: `svc/${this.serviceRef(found.service)}`, endpoints: found.endpoints.map((e) => e.pod) };
  }

  /**
   * One packet and its answer, hop by hop (the simulator only). `endpoint` names the pod a Service's
   * random draw picks (kube-proxy's `statistic`/`numgen` made to choose it), for a trace through an
   * endpoint other than the one the draw would give; `hooks` adds a hop at every filter hook the
   * packet passes, with the rules (or the policy) that let it on.
   */
  trace(
    from: string,
    to: string,
    options: ProbeOptions & { endpoint?: string; hooks?: boolean } = {},
  ): Trace {
    if (!(this.backend instanceof SimBackend))
      throw new TargetError("hop-by-hop traces come from the simulator; this cluster is on another backend");
    const { endpoint, hooks, ...probe } = options;
    const request = this.targets.request(from, to, probe);
    const shown = hooks ? { hooks } : {};
    if (endpoint === undefined) return this.backend.send(request, shown);
    const { endpoint: chosen, service, ref } = this.targets.endpointOf(to, request.protocol, endpoint);
    // The pod chosen is where the answer must come from: under docker-bridge another pod on the
    // translating node may hold the same address, and landing there is a wrong destination.
    request.expectNs = this.ns(chosen.pod);
    const wanted = { address: parseIpv4(chosen.ip), port: chosen.port };
    const trace = this.backend.send(request, { endpoint: wanted, ...shown });
    const landed = translation(trace);
    if (landed?.ip === chosen.ip && landed.port === chosen.port) return trace;
    // Not translated there: the draw the packet met did not offer it, or there was none to make.
    const named = (ip: string, port: number | undefined) => {
      const pods = service.portEndpoints.flat().filter((e) => e.ip === ip && e.port === port);
      return pods.length ? [...new Set(pods.map((e) => e.pod))].join("/") : `${ip}:${port}`;
    };
    const seen = this.backend.netlink.random.seen;
    if (seen)
      throw new TargetError(
        `${endpoint} is not drawn from here: ${seen.ns}'s rules for ${ref} draw from ${seen.offered
          .map((o) => named(formatIpv4(o.address), o.port))
          .join(", ")}`,
      );
    // Translated without a draw: a client held to its endpoint, or a list of one (iptables draws
    // nothing for a single endpoint; nftables' numgen mod 1 is a draw, told above).
    if (landed)
      throw new TargetError(
        `${endpoint} is not drawn from here: ${
          service.spec.sessionAffinity === "ClientIP"
            ? `session affinity holds this client to ${named(landed.ip, landed.port)}`
            : `${landed.ns}'s rules for ${ref} draw from ${named(landed.ip, landed.port)}`
        }`,
      );
    // The packet never met kube-proxy's rules: its outcome says where it ended.
    return trace;
  }

  /**
   * One packet and its answer, summarised (outcome, reason, hop count): the simulator only. A repeated
   * exchange is answered from the simulator's flow cache — the same summary a walk would give.
   */
  summary(from: string, to: string, options: ProbeOptions = {}): TraceSummary {
    if (!(this.backend instanceof SimBackend))
      throw new TargetError(
        "simulated summaries come from the simulator; this cluster is on another backend",
      );
    return this.backend.summary(this.targets.request(from, to, options));
  }

  /**
   * How many routes, permanent neighbours and remote FDB entries a namespace holds: counted by the
   * backend when it can, else read as values (never dumps: at 5,000 nodes that is 25 million entries,
   * and text would format every one).
   */
  async tableSizes(ns: string): Promise<TableSizes> {
    if (this.backend.tableSizes) return this.backend.tableSizes(ns);
    const [routes, neighbours, fdb] = await Promise.all([
      this.k.route.entries(ns),
      this.k.neigh.entries(ns),
      this.k.fdb.entries(ns),
    ]);
    return {
      routes: routes.length,
      permanentNeighbours: neighbours.filter((n) => n.state.includes("PERMANENT")).length,
      remoteFdb: fdb.filter((f) => f.dst !== undefined).length,
    };
  }

  /** One probe on whichever backend the cluster is on: its outcome class, and the answer's TTL. */
  probe(from: string, to: string, options: ProbeOptions = {}): Promise<ProbeResult> {
    return this.backend.probe(this.targets.request(from, to, options));
  }
}

/**
 * The values of work run side by side, once every piece has settled; the first failure (in the
 * given order) is thrown then, not as it happens. A lab's build removes what it made when it fails
 * (Ctrl-C stops it at its next step): with Promise.all that removal listed the lab's namespaces while
 * another node's pod was still being made, and that pod's namespace outlived the lab.
 */
async function settled<T>(work: Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(work);
  const failure = results.find((r) => r.status === "rejected");
  if (failure) throw failure.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** The report of a change that writes nothing on any node (a headless Service's): an empty tally's. */
const untouched = (event: string): ReconcileReport => new Tally().report(event, performance.now());

/** Several reconciles of one event as one report: their counts summed, node by node. */
function sumReports(event: string, reports: readonly ReconcileReport[]): ReconcileReport {
  const tally = new Tally();
  for (const r of reports) {
    for (const [node, c] of Object.entries(r.nodes))
      for (const kind of ["added", "removed", "changed"] as const) tally.count(node, kind, c[kind]);
    tally.refused.push(...r.refused);
  }
  return { ...tally.report(event, 0), durationMs: reports.reduce((t, r) => t + r.durationMs, 0) };
}

/** Where kube-proxy translated the request to (its first DNAT hop): the node and the endpoint. */
function translation(trace: Trace): { ns: string; ip: string; port: number | undefined } | undefined {
  const hop = translationHop(trace);
  if (!hop) return undefined;
  const headers = hop.packet.headers;
  const at = headers.findLastIndex((h) => h.kind === "ipv4");
  if (at < 0) return undefined;
  const l4 = headers[at + 1];
  return {
    ns: hop.ns,
    ip: formatIpv4((headers[at] as Ipv4Header).dst),
    port: l4?.kind === "tcp" || l4?.kind === "udp" ? l4.dstPort : undefined,
  };
}
