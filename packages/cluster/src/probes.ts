/**
 * What a probe's names stand for on a built cluster: its origin (a pod, one of its containers, a
 * node, a host), its target (a pod, node, host, Service or address, with a port), the Service a
 * target reaches through kube-proxy, and the request a backend sends.
 */
import { parseIpv4, quoteInput as q } from "@podnet/core";
import type { ProbeRequest } from "./backend.js";
import { TargetError } from "./allocation.js";
import type { ClusterRuntime, PodState, ProbeOptions } from "./runtime.js";
import type { PodEndpoint, ServiceState } from "./services.js";
import { noPortNamed, parseOrigin, parseTarget, routerSource, routerTarget } from "./target.js";
import { HEADLESS, headlessTarget } from "./schema.js";

export class ProbeTargets {
  private lastOrigin?: { from: string; pod: PodState; origin: { ns: string; owner: string } };

  constructor(private readonly runtime: ClusterRuntime) {}

  private isRouter(name: string): boolean {
    return this.runtime.spec.underlay.routers.some((r) => r.name === name);
  }

  /** Where a name points: a pod's, node's or host's namespace and address; a service's ClusterIP. */
  resolve(target: string): {
    address: string;
    ns?: string;
    port?: number;
    /** A Service's port named in the target: its protocol, which the probe takes unless told. */
    protocol?: "tcp" | "udp";
    kind: "pod" | "node" | "host" | "service" | "address";
  } {
    const parsed = parseTarget(target);
    if ("error" in parsed) throw new TargetError(parsed.error);
    const { name, port } = parsed;
    const withPort = <T extends object>(o: T) => (port !== undefined ? { ...o, port } : o);
    if (name.startsWith("svc/")) {
      const svc = this.runtime.service(name.slice(4));
      if ("error" in svc) throw new TargetError(svc.error);
      if (svc.clusterIP === HEADLESS)
        throw new TargetError(headlessTarget(name.slice(4), svc.endpoints.length));
      if (parsed.portName !== undefined) {
        const named = svc.spec.ports.find((p) => p.name === parsed.portName);
        if (!named) throw new TargetError(noPortNamed(name, parsed.portName, svc.spec.ports));
        return { address: svc.clusterIP, kind: "service", port: named.port, protocol: named.protocol };
      }
      return { address: svc.clusterIP, kind: "service", port: port ?? svc.spec.ports[0]!.port };
    }
    const pod = this.runtime.pods.get(name);
    if (pod) return withPort({ address: pod.ip, ns: name, kind: "pod" as const });
    const node = this.runtime.nodes.get(name);
    if (node) return withPort({ address: node.address, ns: name, kind: "node" as const });
    const host = this.runtime.hosts.get(name);
    if (host) return withPort({ address: host, ns: name, kind: "host" as const });
    try {
      parseIpv4(name);
      return withPort({ address: name, kind: "address" as const });
    } catch {
      if (this.isRouter(name)) throw new TargetError(routerTarget(name));
      throw new TargetError(
        `unknown target ${q(target)}: not a pod, node, host, svc/<name>[.<namespace>] or IPv4 address`,
      );
    }
  }

  /** The namespace and process a probe starts from: "web" (the pod), "web/nginx" (a container), a node or a host. */
  origin(from: string): { ns: string; owner?: string } {
    const { name, container } = parseOrigin(from);
    const pod = this.runtime.pods.get(name);
    // The last origin again, while the name still names the same pod: a matrix's row, a warm pair
    // (its owner text was a string made per probe).
    const last = this.lastOrigin;
    if (pod && last && last.pod === pod && last.from === from) return last.origin;
    if (pod) {
      // "web/" names no container: refused as the scenario file refuses it, not read as "web".
      if (container !== undefined && !pod.spec.containers.some((c) => c.name === container))
        throw new TargetError(
          `pod ${name} has no container ${q(container)} (containers: ${pod.spec.containers.map((c) => c.name).join(", ")})`,
        );
      const origin = Object.freeze({
        ns: name,
        owner: `${name}/${container ?? pod.spec.containers[0]!.name}`,
      });
      this.lastOrigin = { from, pod, origin };
      return origin;
    }
    if (container !== undefined && (this.runtime.nodes.has(name) || this.runtime.hosts.has(name)))
      throw new TargetError(`${name} is not a pod: it has no container ${q(container)}`);
    if (this.runtime.nodes.has(name) || this.runtime.hosts.has(name)) return { ns: name };
    if (this.isRouter(name)) throw new TargetError(routerSource(name));
    throw new TargetError(`unknown source ${q(from)}: not a pod, pod/container, node or host`);
  }

  /** The probe request for `from` → `to`: names resolved, namespaces mapped to this backend. */
  request(from: string, to: string, options: ProbeOptions): ProbeRequest {
    const source = this.origin(from);
    // A pod named without a port, the commonest target, is looked up directly (resolve's parse and
    // result were a tenth of a replayed probe's time).
    const pod = to.includes(":") ? undefined : this.runtime.pods.get(to);
    const target = pod
      ? { address: pod.ip, ns: to, kind: "pod" as const, port: undefined }
      : this.resolve(to);
    const port = options.port ?? target.port;
    // Unsaid, a Service's port is probed with its own protocol (a DNS Service's 53 is UDP's).
    const protocol =
      options.protocol ??
      target.protocol ??
      (target.kind !== "service" && target.port === undefined
        ? "icmp"
        : target.kind === "pod"
          ? "tcp"
          : (this.serviceOf(to, port)?.protocol ?? "tcp"));
    // No port of its own to assume: a probe that guessed 80 would report on a port nobody named.
    if (port === undefined && protocol !== "icmp")
      throw new TargetError(`a ${protocol} probe needs a port: ${q(`${to}:<port>`)}`);
    // Nor one to drop unsaid: ICMP has no ports, and a ping "to db:80" reports on db, not on :80.
    // (A Service named without one stands for its first port: pinging its ClusterIP is fine.)
    if (protocol === "icmp" && (options.port !== undefined || to.includes(":")))
      throw new TargetError(`${q(to)}: ICMP has no ports; probe tcp or udp, or name no port`);
    // Built field by field, not spread: a request per trace, and spreads of conditional literals
    // were a tenth of a warm pair's trace.
    const request: ProbeRequest = { fromNs: this.runtime.ns(source.ns), to: target.address, protocol };
    if (source.owner) request.owner = source.owner;
    if (port !== undefined) request.port = port;
    if (options.size !== undefined) request.size = options.size;
    if (options.dontFragment !== undefined) request.dontFragment = options.dontFragment;
    if (options.ttl !== undefined) request.ttl = options.ttl;
    if (options.srcPort !== undefined) request.srcPort = options.srcPort;
    // Only a pod target makes arriving elsewhere wrong: a node or host may forward (a published port).
    if (target.ns && target.kind === "pod") request.expectNs = this.runtime.ns(target.ns);
    if (target.kind === "pod" && port !== undefined) request.expectOwner = this.listener(target.ns!, port);
    // Services answer on ports only.
    const service = port === undefined ? undefined : this.serviceExpectation(to, port, protocol).service;
    if (service ?? options.service) request.service = service ?? options.service;
    return request;
  }

  /**
   * The Service a target reaches through kube-proxy — `svc/<name>`, a ClusterIP, or a node's
   * NodePort — with the endpoints of the port it reaches: pods its selector picks (by selector, not
   * by address: under docker-bridge an endpoint's address is another pod's too), each at its port.
   */
  serviceOf(
    to: string,
    port = this.resolve(to).port,
    /** Only a Service port of this protocol; any, the first listed, when unsaid. */
    protocol?: "tcp" | "udp" | "icmp",
  ): { service: ServiceState; endpoints: PodEndpoint[]; protocol: "tcp" | "udp" } | undefined {
    const target = this.resolve(to);
    if (port === undefined || protocol === "icmp") return undefined;
    const toNode =
      target.kind === "node" || [...this.runtime.nodes.values()].some((n) => n.address === target.address);
    // A node's address is never a ClusterIP (the check keeps the service CIDR off the underlay), so
    // the Service is the ClusterIP's or the NodePort's, the first of its ports that matches.
    const candidates = toNode
      ? this.runtime.serviceTable.atNodePort(port)
      : [this.runtime.serviceTable.atClusterIP(target.address)];
    for (const service of candidates)
      if (service)
        for (const [i, p] of service.spec.ports.entries())
          if (
            (protocol === undefined || p.protocol === protocol) &&
            (toNode ? p.nodePort === port : p.port === port)
          )
            return { service, endpoints: service.portEndpoints[i]!, protocol: p.protocol };
    return undefined;
  }

  /**
   * For a trace through one chosen endpoint (`podnet trace --endpoint`): the Service port the
   * connection reaches (with the protocol the probe would take) and pod `endpoint` among its
   * endpoints. Which of them the packet's node draws from — all, or its own under a Local traffic
   * policy, depending on where the packet comes from — is the walk's to find out.
   */
  endpointOf(
    to: string,
    protocol: "icmp" | "tcp" | "udp" | undefined,
    endpoint: string,
  ): { endpoint: PodEndpoint; service: ServiceState; ref: string } {
    const target = this.resolve(to);
    const found = this.serviceOf(to, undefined, protocol ?? target.protocol);
    if (!found) {
      const any = this.serviceOf(to, undefined, undefined);
      if (any && protocol)
        throw new TargetError(
          `svc/${this.runtime.serviceRef(any.service)} has no ${protocol} port ${target.port} (its ports: ${any.service.spec.ports.map((p) => `${p.name ? `${p.name} ` : ""}${p.port}/${p.protocol}`).join(", ")})`,
        );
      throw new TargetError(
        `${q(to)} is not a Service's port, so there is no endpoint to choose (a Service is svc/<name>[:port], its ClusterIP or a node's NodePort)`,
      );
    }
    const port = found.service.spec.ports.find(
      (p) => p.protocol === found.protocol && (p.port === target.port || p.nodePort === target.port),
    );
    const ref = `svc/${this.runtime.serviceRef(found.service)}${found.service.spec.ports.length > 1 && port ? `:${port.name ?? port.port}` : ""}`;
    const chosen = found.endpoints.find((e) => e.pod === endpoint);
    if (!chosen)
      throw new TargetError(
        `${q(endpoint)} is not an endpoint of ${ref} (endpoints: ${found.endpoints.map((e) => e.pod).join(", ") || "none"})`,
      );
    return { endpoint: chosen, service: found.service, ref };
  }

  private serviceExpectation(
    to: string,
    port: number,
    protocol: ProbeRequest["protocol"],
  ): Pick<ProbeRequest, "service"> {
    const found = this.serviceOf(to, port, protocol);
    if (!found) return {};
    return {
      service: {
        name: this.runtime.serviceRef(found.service),
        endpointNs: found.endpoints.map((e) => this.runtime.ns(e.pod)),
        owners: found.endpoints.flatMap((e) => this.listener(e.pod, e.port) ?? []),
      },
    };
  }

  /** Which container of pod `name` listens on `port` (its owner name), if any. */
  private listener(name: string, port: number): string | undefined {
    const pod = this.runtime.pods.get(name);
    const c = pod?.spec.containers.find((c) => c.ports.some((p) => p.containerPort === port));
    return c ? `${name}/${c.name}` : undefined;
  }
}
