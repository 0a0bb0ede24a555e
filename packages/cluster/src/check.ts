/**
 * A scenario's meaning, checked before anything is built: references, addresses, overlaps, ports,
 * capacities, and the timed events played forward in order. Everything the build would trip over is
 * reported here, at its place in the file, so a build never starts on a scenario it cannot finish.
 */
import { Ipv4Prefix, formatIpv4, isIpv4, parseIpv4, quoteInput as q } from "@podnet/core";
import { NodeCidrAllocator } from "@podnet/ipam";
import type { ScenarioIssue } from "./load.js";
import type { NodeSpec, PodSpec, Scenario, ServiceSpec } from "./schema.js";
import { parseOrigin, parseTarget } from "./target.js";

/** 127.0.0.1, where a hostPort may be published for the node's own processes alone. */
const LOOPBACK = 0x7f000001;

/** Kubernetes' documented envelope (nodes, pods, Services), which podnet takes as its own limit. */
export const SCENARIO_LIMITS = { nodes: 5_000, pods: 150_000, services: 10_000 } as const;

/** kube-controller-manager refuses a node mask more than 16 bits longer than the cluster CIDR's. */
const CLUSTER_SUBNET_MAX_DIFF = 16;
/** kube-apiserver refuses an IPv4 service CIDR larger than a /12. */
const SERVICE_CIDR_MIN_LENGTH = 12;

type Path = (string | number)[];

const plural = (n: number, one: string, many = `${one}s`) =>
  `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;

class Checker {
  readonly issues: ScenarioIssue[] = [];
  private readonly cluster: Ipv4Prefix;
  private readonly services: Ipv4Prefix;
  private readonly segments = new Map<string, Ipv4Prefix>();
  /** Every name in use now, and what holds it. */
  private readonly names = new Map<string, string>();
  /** Every underlay address in use now, and who holds it. */
  private readonly addresses = new Map<number, string>();
  private readonly nodes = new Map<string, { podCidr?: string; pods: number; address: number }>();
  private readonly pods = new Map<string, PodSpec>();
  /** Published ports by node, port and protocol: the pods holding them, and on which address. */
  private readonly hostPorts = new Map<string, { pod: string; hostIP: number }[]>();
  private readonly serviceState = new Map<string, { clusterIP?: string; nodePorts: string[] }>();
  private readonly clusterIPs = new Map<string, string>();
  private readonly nodePorts = new Map<string, string>();
  private readonly podCidrs = new Map<string, string>();
  /** `existingNamespaces` of the scenario, made once. */
  private namespaces?: Set<string>;
  /** The pod subnets and ClusterIPs in those maps that the allocators gave out (none was pinned). */
  private readonly allocated = new Set<string>();
  /**
   * The runtime's allocators, driven as it drives them (pinned values reserved first, then the
   * others handed out in order, events after): an event that pins a pod subnet or ClusterIP the
   * allocator gave away is refused here, at its place, not by the runtime halfway through a build.
   * Undefined when the cluster or service CIDR is refused already.
   */
  private podSubnets?: NodeCidrAllocator;
  private serviceIps?: NodeCidrAllocator;
  private readonly nodeCapacity: number;
  private readonly podCapacity: number;
  private readonly serviceCapacity: number;

  constructor(private readonly s: Scenario) {
    this.cluster = Ipv4Prefix.parse(s.cluster.clusterCidr);
    this.services = Ipv4Prefix.parse(s.cluster.serviceCidr);
    const mask = s.cluster.nodeMaskSize;
    this.nodeCapacity =
      mask < this.cluster.length || mask - this.cluster.length > CLUSTER_SUBNET_MAX_DIFF
        ? Infinity // reported below; no capacity check on top of that
        : this.cluster.subnetCount(mask);
    // host-local hands out a node subnet less its network, gateway and broadcast addresses.
    this.podCapacity = Math.max(0, 2 ** (32 - mask) - 3);
    // The service allocator holds back the network address, .1 and the broadcast address.
    this.serviceCapacity = Math.max(0, this.services.size - 3);
  }

  fail(path: Path, message: string): void {
    // A generated node or pod has no fields in the file: its problem is the generate field that
    // made it (and, resized, the flag that set that field), said once, not once per node or pod.
    if (path[0] === "generate") {
      const field = path.slice(0, 2);
      if (!this.issues.some((i) => i.path[0] === "generate" && i.path[1] === field[1]))
        this.issues.push({ path: field, message });
    } else this.issues.push({ path, message });
  }

  run(): ScenarioIssue[] {
    this.checkCluster();
    this.checkUnderlay();
    if (!this.checkEnvelope()) return this.issues;
    this.startAllocators();
    this.s.nodes.forEach((n, i) => this.addNode(n, ["nodes", i]));
    this.expandGenerated();
    this.s.pods.forEach((p, i) => this.addPod(p, ["pods", i]));
    this.s.services.forEach((svc, i) => this.setService(svc, ["services", i]));
    this.playEvents();
    this.checkTraffic();
    this.checkPolicies();
    return this.issues;
  }

  /** Namespaces and NetworkPolicies are named once each (a policy by namespace/name). */
  private checkPolicies(): void {
    const namespaces = new Set<string>();
    this.s.namespaces.forEach((ns, i) => {
      if (namespaces.has(ns.name))
        this.fail(["namespaces", i, "name"], `namespace ${ns.name} is defined twice`);
      namespaces.add(ns.name);
    });
    const policies = new Set<string>();
    this.s.networkPolicies.forEach((p, i) => {
      const key = `${p.metadata.namespace}/${p.metadata.name}`;
      if (policies.has(key))
        this.fail(["networkPolicies", i, "metadata", "name"], `NetworkPolicy ${key} is defined twice`);
      policies.add(key);
      this.requireNamespace(["networkPolicies", i, "metadata", "namespace"], p.metadata.namespace);
    });
  }

  /** An object (a policy, a Service) goes into a namespace that exists. */
  private requireNamespace(path: Path, namespace: string): void {
    if (!(this.namespaces ??= existingNamespaces(this.s)).has(namespace))
      this.fail(path, missingNamespace(namespace, " and namespaces: does not declare it"));
  }

  private checkCluster(): void {
    const { cluster, services } = this;
    const mask = this.s.cluster.nodeMaskSize;
    if (cluster.containsPrefix(services))
      this.fail(
        ["cluster", "serviceCidr"],
        `service CIDR ${services} is inside the cluster CIDR ${cluster}: ClusterIPs would collide with pod addresses`,
      );
    else if (cluster.overlaps(services))
      this.fail(["cluster", "serviceCidr"], `service CIDR ${services} overlaps the cluster CIDR ${cluster}`);
    if (services.length < SERVICE_CIDR_MIN_LENGTH)
      this.fail(
        ["cluster", "serviceCidr"],
        `service CIDR ${services} is larger than Kubernetes allows (at most a /${SERVICE_CIDR_MIN_LENGTH})`,
      );
    if (mask < cluster.length)
      this.fail(["cluster", "nodeMaskSize"], `/${mask} is larger than the cluster CIDR ${cluster}`);
    else if (mask - cluster.length > CLUSTER_SUBNET_MAX_DIFF)
      this.fail(
        ["cluster", "nodeMaskSize"],
        `/${mask} node subnets are more than ${CLUSTER_SUBNET_MAX_DIFF} bits smaller than the cluster CIDR ${cluster} (kube-controller-manager refuses that)`,
      );
  }

  private checkUnderlay(): void {
    const { underlay } = this.s;
    underlay.segments.forEach((seg, i) => {
      const path = ["underlay", "segments", i];
      const prefix = Ipv4Prefix.parse(seg.subnet);
      if (this.segments.has(seg.name))
        this.fail([...path, "name"], `segment ${q(seg.name)} is defined twice`);
      for (const [other, p] of this.segments)
        if (p.overlaps(prefix))
          this.fail([...path, "subnet"], `${prefix} overlaps segment ${q(other)} (${p})`);
      for (const [what, p] of [
        ["cluster CIDR", this.cluster],
        ["service CIDR", this.services],
      ] as const)
        if (p.overlaps(prefix)) this.fail([...path, "subnet"], `${prefix} overlaps the ${what} ${p}`);
      if (prefix.length > 30)
        this.fail([...path, "subnet"], `${prefix} has no room for hosts (a segment needs a /30 or larger)`);
      if (seg.gateway) {
        const gw = parseIpv4(seg.gateway);
        if (!prefix.contains(gw))
          this.fail([...path, "gateway"], `${seg.gateway} is outside the segment's subnet ${prefix}`);
        else if (gw === prefix.network || gw === prefix.broadcast)
          this.fail([...path, "gateway"], `${seg.gateway} is the network or broadcast address of ${prefix}`);
      }
      if (!this.segments.has(seg.name)) this.segments.set(seg.name, prefix);
    });
    underlay.routers.forEach((r, i) => {
      this.claim(["underlay", "routers", i, "name"], r.name, "router");
      const on = new Set<string>();
      r.interfaces.forEach((nic, j) => {
        const path = ["underlay", "routers", i, "interfaces", j];
        if (on.has(nic.segment))
          this.fail(
            [...path, "segment"],
            `router ${r.name} already has an interface on segment ${q(nic.segment)}`,
          );
        on.add(nic.segment);
        this.onSegment(path, nic.segment, nic.address, r.name, "router");
      });
      const own = new Set(r.interfaces.map((nic) => nic.address));
      const destinations = new Set<string>();
      r.routes.forEach((route, j) => {
        const dst = Ipv4Prefix.parse(route.dst).toString();
        if (destinations.has(dst))
          this.fail(
            ["underlay", "routers", i, "routes", j, "dst"],
            `${r.name} already has a route to ${dst} (the kernel answers "File exists")`,
          );
        destinations.add(dst);
        const via = parseIpv4(route.via);
        const onLink = r.interfaces.some((nic) => this.segments.get(nic.segment)?.contains(via));
        if (own.has(route.via))
          this.fail(
            ["underlay", "routers", i, "routes", j, "via"],
            `${route.via} is ${r.name}'s own address`,
          );
        else if (!onLink)
          this.fail(
            ["underlay", "routers", i, "routes", j, "via"],
            `next hop ${route.via} is not on any segment ${r.name} is connected to (${r.interfaces.map((nic) => nic.segment).join(", ")}): the kernel refuses an off-link gateway`,
          );
      });
    });
    underlay.hosts.forEach((h, i) => {
      this.claim(["underlay", "hosts", i, "name"], h.name, "host");
      const sockets = new Set<string>();
      h.listen.forEach((l, j) => {
        const key = `${l.port}/${l.protocol}`;
        if (sockets.has(key))
          this.fail(["underlay", "hosts", i, "listen", j], `${h.name} already listens on ${key}`);
        sockets.add(key);
      });
      this.onSegment(["underlay", "hosts", i], h.segment, h.address, h.name, "host");
    });
  }

  /** False when the scenario is beyond the envelope: nothing else is worth expanding then. */
  private checkEnvelope(): boolean {
    const g = this.s.generate;
    const addedNodes = this.s.events.filter((e) => e.action === "addNode").length;
    const addedPods = this.s.events.filter((e) => e.action === "addPod").length;
    const nodes = this.s.nodes.length + (g?.nodes ?? 0) + addedNodes;
    const pods = this.s.pods.length + (g ? g.nodes * g.podsPerNode : 0) + addedPods;
    const services = new Set([
      ...this.s.services.map((svc) => svc.name),
      ...this.s.events.flatMap((e) => (e.action === "setService" ? [e.service.name] : [])),
    ]).size;
    const where: Path = g ? ["generate", "nodes"] : ["nodes"];
    let ok = true;
    if (nodes > SCENARIO_LIMITS.nodes) {
      this.fail(
        where,
        `${plural(nodes, "node")} is beyond Kubernetes' envelope of ${SCENARIO_LIMITS.nodes.toLocaleString("en-US")} nodes, which podnet supports`,
      );
      ok = false;
    }
    if (pods > SCENARIO_LIMITS.pods) {
      this.fail(
        g ? ["generate", "podsPerNode"] : ["pods"],
        `${plural(pods, "pod")} is beyond Kubernetes' envelope of ${SCENARIO_LIMITS.pods.toLocaleString("en-US")} pods, which podnet supports`,
      );
      ok = false;
    }
    if (services > SCENARIO_LIMITS.services)
      this.fail(
        ["services"],
        `${plural(services, "Service")} is beyond Kubernetes' envelope of ${SCENARIO_LIMITS.services.toLocaleString("en-US")} Services, which podnet supports`,
      );
    return ok;
  }

  private claim(path: Path, name: string, what: string): boolean {
    if (name === "underlay") {
      this.fail(path, `"underlay" is reserved for the underlay's own namespace`);
      return false;
    }
    // Probes name their targets by name or address: a name that is an address would take the
    // address's probes (a pod "10.0.0.5" answering for whatever holds 10.0.0.5).
    if (isIpv4(name)) {
      this.fail(path, `${what} name ${q(name)} reads as an IPv4 address: probes could not tell them apart`);
      return false;
    }
    const previous = this.names.get(name);
    if (previous) {
      this.fail(path, `${what} name ${q(name)} is already used by a ${previous}`);
      return false;
    }
    this.names.set(name, what);
    return true;
  }

  private onSegment(
    path: Path,
    segment: string,
    address: string,
    owner: string,
    kind: "router" | "host" | "node",
  ): number | undefined {
    const prefix = this.segments.get(segment);
    if (!prefix) {
      this.fail(
        [...path, "segment"],
        `unknown segment ${q(segment)} (segments: ${[...this.segments.keys()].join(", ")})`,
      );
      return undefined;
    }
    const ip = parseIpv4(address);
    if (!prefix.contains(ip))
      this.fail([...path, "address"], `${address} is outside its segment ${q(segment)} (${prefix})`);
    else if (ip === prefix.network || ip === prefix.broadcast)
      this.fail([...path, "address"], `${address} is the network or broadcast address of ${prefix}`);
    // Every other machine on the segment routes through its gateway, and the kernel refuses a
    // gateway that is one of the machine's own addresses: only a router may hold it.
    const gateway = this.s.underlay.segments.find((seg) => seg.name === segment)?.gateway;
    if (kind !== "router" && gateway === address)
      this.fail(
        [...path, "address"],
        `${address} is segment ${q(segment)}'s gateway: only a router's interface may hold it`,
      );
    const holder = this.addresses.get(ip);
    if (holder) {
      this.fail([...path, "address"], `${address} is already ${holder}'s address`);
      return undefined;
    }
    this.addresses.set(ip, owner);
    return ip;
  }

  private startAllocators(): void {
    if (!this.issues.length) {
      this.podSubnets = new NodeCidrAllocator(this.cluster, this.s.cluster.nodeMaskSize);
      this.serviceIps = NodeCidrAllocator.forServices(this.s.cluster.serviceCidr);
    }
    for (const n of this.s.nodes) if (n.podCidr) this.drive(this.podSubnets, (a) => a.occupy(n.podCidr!));
    for (const svc of this.s.services)
      if (svc.clusterIP) this.drive(this.serviceIps, (a) => a.occupy(`${svc.clusterIP}/32`));
  }

  /**
   * One step of an allocator; undefined when it refuses: none left (reported by count) or a value
   * outside its range (reported where it is written).
   */
  private drive<T>(
    allocator: NodeCidrAllocator | undefined,
    step: (a: NodeCidrAllocator) => T,
  ): T | undefined {
    try {
      return allocator ? step(allocator) : undefined;
    } catch {
      return undefined;
    }
  }

  private addNode(n: NodeSpec, path: Path, at?: string): void {
    if (!this.claim([...path, "name"], n.name, "node")) return;
    const address = this.onSegment(path, n.segment, n.address, n.name, "node");
    if (this.nodes.size + 1 > this.nodeCapacity)
      this.fail(
        [...path, "name"],
        `node ${n.name}${at ?? ""} would be node number ${this.nodes.size + 1}, but the cluster CIDR ${this.cluster} holds only ${plural(this.nodeCapacity, `/${this.s.cluster.nodeMaskSize} pod subnet`)}`,
      );
    if (n.podCidr) {
      const p = Ipv4Prefix.parse(n.podCidr);
      if (!this.cluster.containsPrefix(p) || p.length !== this.s.cluster.nodeMaskSize)
        this.fail(
          [...path, "podCidr"],
          `${p} is not a /${this.s.cluster.nodeMaskSize} inside the cluster CIDR ${this.cluster}`,
        );
      const other = this.podCidrs.get(p.toString());
      if (other)
        this.fail(
          [...path, "podCidr"],
          `${p} is already node ${q(other)}'s pod CIDR${this.allocated.has(p.toString()) ? " (the allocator gave it out)" : ""}`,
        );
      else {
        this.podCidrs.set(p.toString(), n.name);
        // The scenario's own nodes' subnets were reserved at the start; an event's is claimed now.
        if (at !== undefined) this.drive(this.podSubnets, (a) => a.occupy(p.toString()));
      }
    }
    const podCidr = n.podCidr
      ? Ipv4Prefix.parse(n.podCidr).toString()
      : this.drive(this.podSubnets, (a) => a.allocate().toString());
    if (podCidr && !n.podCidr) {
      this.podCidrs.set(podCidr, n.name);
      this.allocated.add(podCidr);
    }
    this.nodes.set(n.name, { ...(podCidr ? { podCidr } : {}), pods: 0, address: address ?? -1 });
  }

  /** Generated nodes and pods, checked against what is listed by name and address. */
  private expandGenerated(): void {
    const g = this.s.generate;
    if (!g) return;
    const prefix = this.segments.get(g.segment);
    if (!prefix) {
      this.fail(["generate", "segment"], `unknown segment ${q(g.segment)}`);
      return;
    }
    const first = parseIpv4(g.firstAddress);
    const last = first + g.nodes - 1;
    if (
      !prefix.contains(first) ||
      !prefix.contains(last) ||
      first === prefix.network ||
      last >= prefix.broadcast
    ) {
      this.fail(
        ["generate", "nodes"],
        `${g.nodes} nodes from ${g.firstAddress} do not fit in segment ${q(g.segment)} (${prefix}), which ends at ${formatIpv4(prefix.broadcast)}`,
      );
      return;
    }
    for (let i = 0; i < g.nodes; i++) {
      const name = `node-${i}`;
      const holder = this.names.get(name);
      if (holder) {
        this.fail(["generate", "nodes"], `generated node ${q(name)} is already the name of a ${holder}`);
        return;
      }
      const taken = this.addresses.get(first + i);
      if (taken) {
        this.fail(
          ["generate", "firstAddress"],
          `generated node ${name} would get ${formatIpv4(first + i)}, which is already ${taken}'s address`,
        );
        return;
      }
    }
    for (let i = 0; i < g.nodes; i++) {
      const name = `node-${i}`;
      this.addNode({ name, segment: g.segment, address: formatIpv4(first + i) }, ["generate", "nodes"]);
      for (let j = 0; j < g.podsPerNode; j++)
        this.addPod(
          {
            name: `${name}-pod-${j}`,
            namespace: "default",
            node: name,
            labels: g.labels,
            containers: [{ name: "app", ports: [] }],
          },
          ["generate", "podsPerNode"],
        );
    }
  }

  private addPod(p: PodSpec, path: Path, at?: string): void {
    if (!this.claim([...path, "name"], p.name, "pod")) return;
    const node = this.nodes.get(p.node);
    if (!node) {
      const known = [...this.nodes.keys()];
      this.fail(
        [...path, "node"],
        `unknown node ${q(p.node)}${at ?? ""} (nodes: ${known.length > 8 ? `${known.slice(0, 8).join(", ")}, …` : known.join(", ") || "none"})`,
      );
    } else if (++node.pods > this.podCapacity)
      this.fail(
        [...path, "node"],
        `pod ${p.name} would be pod number ${node.pods} on ${p.node}, but a /${this.s.cluster.nodeMaskSize} pod subnet holds only ${plural(this.podCapacity, "pod")}`,
      );
    this.pods.set(p.name, p);
    const containers = new Map<string, number>();
    const ports = new Map<string, string>();
    const portNames = new Set<string>();
    p.containers.forEach((c, j) => {
      if (containers.has(c.name))
        this.fail([...path, "containers", j, "name"], `pod ${p.name} already has a container ${q(c.name)}`);
      containers.set(c.name, j);
      c.ports.forEach((port, k) => {
        const key = `${port.containerPort}/${port.protocol}`;
        const holder = ports.get(key);
        if (holder)
          this.fail(
            [...path, "containers", j, "ports", k],
            `port ${key} is already taken by container ${q(holder)}: the containers of a pod share one network namespace`,
          );
        ports.set(key, c.name);
        if (port.name !== undefined) {
          if (portNames.has(port.name))
            this.fail(
              [...path, "containers", j, "ports", k, "name"],
              `pod ${p.name} already has a port named ${q(port.name)}`,
            );
          portNames.add(port.name);
        }
        const at: Path = [...path, "containers", j, "ports", k];
        if (port.hostPort !== undefined) this.publish(p, node, port, at);
        else if (port.hostIP !== undefined)
          this.fail([...at, "hostIP"], `hostIP ${port.hostIP} needs a hostPort to publish`);
      });
    });
  }

  /**
   * A hostPort is one node's port: two pods may publish it only on different addresses (as
   * Kubernetes' scheduler holds it: 0.0.0.0 takes every address). Its hostIP must be an address the
   * node answers on — its own or 127.0.0.1 — or the rules would match nothing that arrives.
   */
  private publish(
    p: PodSpec,
    node: { address: number } | undefined,
    port: PodSpec["containers"][number]["ports"][number],
    at: Path,
  ): void {
    const hostIP = port.hostIP === undefined ? 0 : parseIpv4(port.hostIP);
    if (node && hostIP !== 0 && hostIP !== LOOPBACK && hostIP !== node.address) {
      this.fail(
        [...at, "hostIP"],
        `hostIP ${port.hostIP} is not an address of node ${p.node} (${formatIpv4(node.address)}): the port would answer nowhere; use the node's address, 127.0.0.1 or 0.0.0.0`,
      );
      return;
    }
    const key = `${p.node} ${port.hostPort}/${port.protocol}`;
    const held = this.hostPorts.get(key) ?? [];
    const other = held.find((h) => h.hostIP === 0 || hostIP === 0 || h.hostIP === hostIP);
    if (other)
      this.fail(
        [...at, "hostPort"],
        `hostPort ${port.hostPort}/${port.protocol} on ${p.node}${hostIP ? ` (${port.hostIP})` : ""} is already published by pod ${q(other.pod)}${other.hostIP ? ` on ${formatIpv4(other.hostIP)}` : ""}`,
      );
    else this.hostPorts.set(key, [...held, { pod: p.name, hostIP }]);
  }

  private removePod(name: string): void {
    const p = this.pods.get(name);
    if (!p) return;
    this.pods.delete(name);
    this.names.delete(name);
    const node = this.nodes.get(p.node);
    if (node) node.pods--;
    for (const c of p.containers)
      for (const port of c.ports)
        if (port.hostPort !== undefined) {
          const key = `${p.node} ${port.hostPort}/${port.protocol}`;
          const held = this.hostPorts.get(key)?.filter((h) => h.pod !== name) ?? [];
          if (held.length) this.hostPorts.set(key, held);
          else this.hostPorts.delete(key);
        }
  }

  private setService(svc: ServiceSpec, path: Path): void {
    const existing = this.serviceState.get(svc.name);
    if (existing && path[0] === "services")
      return this.fail([...path, "name"], `service ${q(svc.name)} is defined twice`);
    for (const np of existing?.nodePorts ?? []) this.nodePorts.delete(np);
    if (!existing && this.serviceState.size + 1 > this.serviceCapacity)
      this.fail(
        [...path, "name"],
        `service ${svc.name} would be Service number ${this.serviceState.size + 1}, but the service CIDR ${this.services} holds only ${plural(this.serviceCapacity, "ClusterIP")}`,
      );
    let clusterIP = existing?.clusterIP;
    if (svc.clusterIP) {
      const ip = parseIpv4(svc.clusterIP);
      if (!this.services.contains(ip))
        this.fail([...path, "clusterIP"], `${svc.clusterIP} is outside the service CIDR ${this.services}`);
      else if (ip === this.services.network || ip === this.services.broadcast)
        this.fail(
          [...path, "clusterIP"],
          `${svc.clusterIP} is the network or broadcast address of the service CIDR ${this.services}`,
        );
      else if (ip === this.services.network + 1)
        this.fail(
          [...path, "clusterIP"],
          `${svc.clusterIP} is the kubernetes Service's: the API server takes the service CIDR's first address (Kubernetes refuses it: provided IP is already allocated)`,
        );
      else if (existing?.clusterIP && existing.clusterIP !== svc.clusterIP)
        this.fail(
          [...path, "clusterIP"],
          `service ${svc.name} already has ClusterIP ${existing.clusterIP}; a ClusterIP cannot change`,
        );
      const holder = this.clusterIPs.get(svc.clusterIP);
      if (holder && holder !== svc.name)
        this.fail(
          [...path, "clusterIP"],
          `${svc.clusterIP} is already service ${q(holder)}'s ClusterIP${this.allocated.has(svc.clusterIP) ? " (the allocator gave it out)" : ""}`,
        );
      else {
        this.clusterIPs.set(svc.clusterIP, svc.name);
        // The scenario's own Services' were reserved at the start; an event's is claimed now.
        if (!existing && path[0] === "events")
          this.drive(this.serviceIps, (a) => a.occupy(`${svc.clusterIP}/32`));
        clusterIP = svc.clusterIP;
      }
    } else if (!existing) {
      clusterIP = this.drive(this.serviceIps, (a) => a.allocateAddress());
      if (clusterIP) {
        this.clusterIPs.set(clusterIP, svc.name);
        this.allocated.add(clusterIP);
      }
    }
    this.requireNamespace([...path, "namespace"], svc.namespace);
    const seen = new Set<string>();
    const names = new Set<string>();
    const nodePorts: string[] = [];
    svc.ports.forEach((port, j) => {
      const key = `${port.port}/${port.protocol}`;
      if (seen.has(key))
        this.fail([...path, "ports", j, "port"], `service ${svc.name} already has port ${key}`);
      seen.add(key);
      // The API server's words: a port of a Service with several is named, each name once.
      if (svc.ports.length > 1 && !port.name)
        this.fail([...path, "ports", j, "name"], `required: a Service with several ports names each one`);
      else if (port.name && names.has(port.name))
        this.fail(
          [...path, "ports", j, "name"],
          `service ${svc.name} already has a port named ${q(port.name)}`,
        );
      names.add(port.name);
      if (port.nodePort === undefined) return;
      if (svc.type !== "NodePort")
        return this.fail([...path, "ports", j, "nodePort"], `a nodePort needs type: NodePort`);
      const np = `${port.nodePort}/${port.protocol}`;
      const holder = this.nodePorts.get(np);
      if (holder)
        this.fail(
          [...path, "ports", j, "nodePort"],
          `nodePort ${np} is already ${holder === svc.name ? "another port" : `service ${q(holder)}'s`}`,
        );
      else {
        this.nodePorts.set(np, svc.name);
        nodePorts.push(np);
      }
    });
    this.serviceState.set(svc.name, { ...(clusterIP ? { clusterIP } : {}), nodePorts });
  }

  /** Plays the events forward in the order the runtime runs them (by time, then as listed). */
  private playEvents(): void {
    const order = this.s.events.map((e, i) => ({ e, i })).sort((a, b) => a.e.at - b.e.at || a.i - b.i);
    for (const { e, i } of order) {
      const path: Path = ["events", i];
      const at = ` at ${e.at}`;
      switch (e.action) {
        case "addNode":
          this.addNode(e.node, [...path, "node"], at);
          break;
        case "removeNode": {
          const node = this.nodes.get(e.node);
          if (!node) {
            this.fail([...path, "node"], `no node ${q(e.node)} to remove${at}`);
            break;
          }
          for (const [name, p] of this.pods) if (p.node === e.node) this.removePod(name);
          this.nodes.delete(e.node);
          this.names.delete(e.node);
          this.addresses.delete(node.address);
          if (node.podCidr) {
            this.podCidrs.delete(node.podCidr);
            this.allocated.delete(node.podCidr);
            this.drive(this.podSubnets, (a) => a.release(node.podCidr!));
          }
          break;
        }
        case "addPod":
          this.addPod(e.pod, [...path, "pod"], at);
          break;
        case "removePod":
          if (!this.pods.has(e.pod)) this.fail([...path, "pod"], `no pod ${q(e.pod)} to remove${at}`);
          else this.removePod(e.pod);
          break;
        case "setService":
          this.setService(e.service, [...path, "service"]);
          break;
        case "removeService": {
          const svc = this.serviceState.get(e.service);
          if (!svc) {
            this.fail([...path, "service"], `no service ${q(e.service)} to remove${at}`);
            break;
          }
          for (const np of svc.nodePorts) this.nodePorts.delete(np);
          if (svc.clusterIP) {
            this.clusterIPs.delete(svc.clusterIP);
            this.allocated.delete(svc.clusterIP);
            this.drive(this.serviceIps, (a) => a.release(`${svc.clusterIP}/32`));
          }
          this.serviceState.delete(e.service);
          break;
        }
      }
    }
  }

  /** Probes run after every event: they name what exists once the events have all happened. */
  private checkTraffic(): void {
    const after = this.s.events.length ? " after the scenario's events" : "";
    this.s.traffic.forEach((t, i) => {
      const path: Path = ["traffic", i];
      const from = parseOrigin(t.from);
      const pod = this.pods.get(from.name);
      if (!this.names.has(from.name))
        this.fail([...path, "from"], `unknown pod, node or host ${q(from.name)}${after}`);
      else if (from.container !== undefined) {
        if (!pod) this.fail([...path, "from"], `${from.name} is not a pod: it has no containers`);
        else if (!pod.containers.some((c) => c.name === from.container))
          this.fail(
            [...path, "from"],
            `pod ${from.name} has no container ${q(from.container)} (containers: ${pod.containers.map((c) => c.name).join(", ")})`,
          );
      } else if (this.names.get(from.name) === "router")
        this.fail([...path, "from"], `${from.name} is a router: probes start from a pod, node or host`);
      const target = parseTarget(t.to);
      if ("error" in target) return this.fail([...path, "to"], target.error);
      if (target.name.startsWith("svc/")) {
        if (!this.serviceState.has(target.name.slice(4)))
          this.fail([...path, "to"], `unknown service ${q(target.name.slice(4))}${after}`);
      } else if (this.names.get(target.name) === "router")
        this.fail([...path, "to"], `${target.name} is a router: probe one of its addresses instead`);
      else if (!this.names.has(target.name) && !isIpv4(target.name))
        this.fail(
          [...path, "to"],
          `unknown target ${q(target.name)}${after} (a pod, node or host name, an address, or svc/<name>)`,
        );
      if (
        t.protocol !== "icmp" &&
        target.port === undefined &&
        t.port === undefined &&
        !target.name.startsWith("svc/")
      )
        this.fail(
          [...path, "to"],
          `a ${t.protocol} probe needs a port: ${q(`${t.to}:<port>`)} or port: <port>`,
        );
      // A ping to "db:80" would report on db, not on port 80 (protocol defaults to icmp).
      if (t.protocol === "icmp" && (target.port !== undefined || t.port !== undefined))
        this.fail(
          [...path, target.port !== undefined ? "to" : "port"],
          `ICMP has no ports: add protocol: tcp or udp, or name no port`,
        );
      if (target.port !== undefined && t.port !== undefined && target.port !== t.port)
        this.fail([...path, "port"], `port ${t.port} contradicts the port in ${q(t.to)}`);
    });
  }
}

/** The namespaces every Kubernetes cluster starts with. */
const KUBERNETES_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"];

/**
 * The namespaces a policy may go into: declared, one a pod runs in (or will, by an event), or one
 * every cluster has. kubectl apply refuses any other (namespaces "x" not found), and a misspelt one
 * would silently select nothing.
 */
export function existingNamespaces(s: Scenario): Set<string> {
  return new Set([
    ...KUBERNETES_NAMESPACES,
    ...s.namespaces.map((n) => n.name),
    ...s.pods.map((p) => p.namespace),
    ...s.events.flatMap((e) => (e.action === "addPod" ? [e.pod.namespace] : [])),
  ]);
}

/** Why `namespace` is refused, in kubectl's words too; `undeclared` says where else it was not found. */
export const missingNamespace = (namespace: string, undeclared: string) =>
  `namespace ${q(namespace)} does not exist: no pod runs in it${undeclared} (kubectl apply says namespaces ${q(namespace)} not found)`;

/** Checks a scenario's meaning; every problem found, each with its path. */
export function checkScenario(s: Scenario): ScenarioIssue[] {
  return new Checker(s).run();
}
