/**
 * The cluster's Services as the API server keeps them: by name, each with a ClusterIP (pinned, kept
 * across changes, or the next free one, freed again on removal), found by ClusterIP or NodePort.
 */
import { NodeCidrAllocator } from "@podnet/ipam";
import { AFFINITY_TIMEOUT, type Service } from "@podnet/route-manager";
import { TargetError, allocate, claim } from "./allocation.js";
import { HEADLESS, type PodSpec, type ServiceSpec } from "./schema.js";
import { ServiceIndex } from "./service-ref.js";

/** A pod a Service's selector picks, as its endpoints are resolved: its address and containers. */
export interface SelectedPod {
  ip: string;
  spec: PodSpec;
}

/** One endpoint of a Service port: which pod, at which address and port, on which node. */
export interface PodEndpoint {
  pod: string;
  ip: string;
  port: number;
  node: string;
}

export interface ServiceState {
  spec: ServiceSpec;
  /** Its ClusterIP, or None: a headless Service, which kube-proxy skips (it has no address to serve). */
  clusterIP: string;
  /** The addresses of the pods the selector picks. */
  endpoints: string[];
  /** The node of each of `endpoints`, in its order. */
  endpointNodes: string[];
  /** For each of the spec's ports, in order, where its connections go. */
  portEndpoints: PodEndpoint[][];
}

/**
 * Where a Service port's connections go, as the EndpointSlice controller resolves it pod by pod
 * (FindPort): a numeric targetPort (the port itself when unset) on every selected pod; a named one on
 * each pod's container port of that name and protocol, a pod without one no endpoint of this port.
 */
export function resolvePort(port: ServiceSpec["ports"][number], pods: readonly SelectedPod[]): PodEndpoint[] {
  const target = port.targetPort ?? port.port;
  const endpoints: PodEndpoint[] = [];
  for (const { ip, spec } of pods) {
    let at: number | undefined = typeof target === "number" ? target : undefined;
    for (const c of spec.containers)
      for (const p of c.ports)
        if (at === undefined && p.name === target && p.protocol === port.protocol) at = p.containerPort;
    if (at !== undefined) endpoints.push({ pod: spec.name, ip, port: at, node: spec.node });
  }
  return endpoints;
}

/** Two resolutions alike: the same pods at the same addresses and ports, port by port. */
export const sameEndpoints = (a: readonly PodEndpoint[][], b: readonly PodEndpoint[][]) =>
  a.length === b.length &&
  a.every(
    (x, i) =>
      x.length === b[i]!.length &&
      x.every(
        (e, j) =>
          e.pod === b[i]![j]!.pod &&
          e.ip === b[i]![j]!.ip &&
          e.port === b[i]![j]!.port &&
          e.node === b[i]![j]!.node,
      ),
  );

export class ServiceTable {
  /** The Services by namespace and name. */
  readonly index = new ServiceIndex<ServiceState>();
  /**
   * `serviceOf`'s indexes: each probe with a port asks it, and a walk over 10,000 Services for each
   * of a matrix's 20,000 probes was a third of `podnet run` at that size. By ClusterIP (one each),
   * kept as Services are set and removed; by NodePort, made again after any change.
   */
  private readonly byClusterIP = new Map<string, ServiceState>();
  private byNodePort?: Map<number, ServiceState[]>;
  private readonly ips: NodeCidrAllocator;
  /** The scenario's own pinned ClusterIPs, reserved before its Services are set. */
  private readonly initialClusterIPs = new Set<string>();

  constructor(serviceCidr: string, initial: readonly ServiceSpec[]) {
    this.ips = NodeCidrAllocator.forServices(serviceCidr);
    for (const svc of initial)
      if (svc.clusterIP && svc.clusterIP !== HEADLESS) {
        this.ips.occupy(`${svc.clusterIP}/32`);
        this.initialClusterIPs.add(svc.clusterIP);
      }
  }

  /** A Service set: its ClusterIP taken (pinned, kept, or the next free one), over these pods. */
  set(spec: ServiceSpec, pods: readonly SelectedPod[]): ServiceState {
    const existing = this.index.get(spec.namespace, spec.name);
    if (spec.clusterIP === HEADLESS || (spec.clusterIP === undefined && existing?.clusterIP === HEADLESS)) {
      if (existing && existing.clusterIP !== HEADLESS)
        throw new TargetError(`service ${spec.name}: ClusterIP ${existing.clusterIP} cannot change to None`);
      const state: ServiceState = { ...this.selected(spec, pods), clusterIP: HEADLESS };
      this.index.set(spec.namespace, spec.name, state);
      this.byNodePort = undefined;
      return state;
    }
    if (existing?.clusterIP === HEADLESS)
      throw new TargetError(`service ${spec.name} is headless: its clusterIP cannot change`);
    if (spec.clusterIP !== undefined && spec.clusterIP !== existing?.clusterIP) {
      const holder = this.byClusterIP.get(spec.clusterIP);
      if (holder)
        throw new TargetError(
          `service ${spec.name}: clusterIP ${spec.clusterIP} is already service ${holder.spec.name}'s`,
        );
      if (!claim(this.ips, `${spec.clusterIP}/32`) && !this.initialClusterIPs.has(spec.clusterIP))
        throw new TargetError(`service ${spec.name}: clusterIP ${spec.clusterIP} is taken`);
    }
    const clusterIP =
      spec.clusterIP ??
      existing?.clusterIP ??
      allocate(this.ips, `service ${spec.name}: no ClusterIP left`, () => this.ips.allocateAddress());
    if (existing && existing.clusterIP !== clusterIP) this.ips.release(`${existing.clusterIP}/32`);
    const state: ServiceState = { ...this.selected(spec, pods), clusterIP };
    this.index.set(spec.namespace, spec.name, state);
    if (existing) this.byClusterIP.delete(existing.clusterIP);
    this.byClusterIP.set(clusterIP, state);
    this.byNodePort = undefined;
    return state;
  }

  /** What a Service's selector and ports pick among `pods`. */
  private selected(spec: ServiceSpec, pods: readonly SelectedPod[]): Omit<ServiceState, "clusterIP"> {
    return {
      spec,
      endpoints: pods.map((p) => p.ip),
      endpointNodes: pods.map((p) => p.spec.node),
      portEndpoints: spec.ports.map((p) => resolvePort(p, pods)),
    };
  }

  /**
   * A Service removed. Its ClusterIP is free again, as the API server's allocator frees it: a
   * scenario that sets and removes Services in turn would otherwise run out of addresses it no
   * longer uses.
   */
  remove(namespace: string, name: string): ServiceState | undefined {
    const state = this.index.get(namespace, name);
    if (!state) return undefined;
    this.index.delete(namespace, name);
    this.byNodePort = undefined;
    if (state.clusterIP === HEADLESS) return state;
    this.byClusterIP.delete(state.clusterIP);
    this.ips.release(`${state.clusterIP}/32`);
    return state;
  }

  atClusterIP(address: string): ServiceState | undefined {
    return this.byClusterIP.get(address);
  }

  /** The Services with a NodePort `port` (of any protocol). */
  atNodePort(port: number): readonly ServiceState[] {
    return (this.byNodePort ??= this.nodePortIndex()).get(port) ?? [];
  }

  private nodePortIndex(): Map<number, ServiceState[]> {
    const byNodePort = new Map<number, ServiceState[]>();
    for (const s of this.index.values())
      for (const p of s.spec.ports)
        if (p.nodePort !== undefined) byNodePort.set(p.nodePort, [...(byNodePort.get(p.nodePort) ?? []), s]);
    return byNodePort;
  }
}

/** How long a client keeps its endpoint after its last connection (sessionAffinity ClientIP), in seconds. */
export function affinitySeconds(spec: ServiceSpec): number | undefined {
  if (spec.sessionAffinity !== "ClientIP") return undefined;
  return spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? AFFINITY_TIMEOUT;
}

/** The Service as the route manager's proxy takes it. */
export function proxyService({
  spec,
  clusterIP,
  endpoints,
  endpointNodes,
  portEndpoints,
}: ServiceState): Service {
  const affinity = affinitySeconds(spec);
  // Where endpoints run matters only to the Local policies: other Services stay the same on every node.
  const local = spec.externalTrafficPolicy === "Local" || spec.internalTrafficPolicy === "Local";
  return {
    namespace: spec.namespace,
    name: spec.name,
    clusterIP,
    ports: spec.ports.map((p, i) => ({
      name: p.name,
      port: p.port,
      targetPort: p.targetPort ?? p.port,
      protocol: p.protocol,
      ...(p.nodePort ? { nodePort: p.nodePort } : {}),
      // A named targetPort's endpoints are each pod's own port; a numeric one's, every endpoint.
      ...(typeof p.targetPort === "string"
        ? {
            endpoints: portEndpoints[i]!.map(({ ip, port, node }) =>
              local ? { ip, port, node } : { ip, port },
            ),
          }
        : {}),
    })),
    endpoints,
    ...(affinity !== undefined ? { sessionAffinity: { timeoutSeconds: affinity } } : {}),
    ...(local
      ? {
          endpointNodes,
          externalTrafficPolicy: spec.externalTrafficPolicy ?? "Cluster",
          internalTrafficPolicy: spec.internalTrafficPolicy ?? "Cluster",
        }
      : {}),
  };
}
