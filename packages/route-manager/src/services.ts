/**
 * Services as kube-proxy sees them: each port's endpoints (as its EndpointSlices say them, a named
 * targetPort resolved pod by pod) and its traffic policies, which decide which endpoints a node
 * sends to (kube-proxy's CategorizeEndpoints). Both proxies (services-iptables.ts,
 * services-nftables.ts) write rules from this.
 */

/** Where a Service port's connections go: a pod's address and port, and the node it runs on. */
export interface Endpoint {
  ip: string;
  port: number;
  /** The endpoint's node (EndpointSlice's nodeName): an endpoint without one is never local. */
  node?: string;
}

export interface ServicePort {
  /** The port's name in the Service ("http"); empty for a single unnamed port. */
  name: string;
  port: number;
  /** A number, or the name of a container port (Kubernetes' named targetPort). */
  targetPort: number | string;
  protocol: "tcp" | "udp";
  /** NodePort services also answer on every node's address at this port. */
  nodePort?: number;
  /**
   * This port's own endpoints, as the EndpointSlice controller resolves a named targetPort: each
   * selected pod at its container port of that name and protocol, and a pod without one not an
   * endpoint of this port. Unset for a numeric targetPort: every endpoint, at that port.
   */
  endpoints?: readonly Endpoint[];
}

export interface Service {
  namespace: string;
  name: string;
  clusterIP: string;
  ports: ServicePort[];
  /** Addresses of the ready pods the selector picks. */
  endpoints: string[];
  /** The node of each of `endpoints`, in its order: what the Local traffic policies need. */
  endpointNodes?: readonly string[];
  /**
   * `Local`: a NodePort sends only to the endpoints on the node it arrived at, and does not
   * masquerade (the endpoint sees the client's address); a node without one drops it.
   */
  externalTrafficPolicy?: "Cluster" | "Local";
  /** `Local`: a ClusterIP reaches only the endpoints on the client's node; without one it is dropped. */
  internalTrafficPolicy?: "Cluster" | "Local";
  /**
   * `sessionAffinity: ClientIP`: a client's connections keep going to the endpoint its first one
   * went to, until `timeoutSeconds` pass without one (Kubernetes' default 10800).
   */
  sessionAffinity?: { timeoutSeconds: number };
}

/** Kubernetes' default sessionAffinityConfig.clientIP.timeoutSeconds: three hours. */
export const AFFINITY_TIMEOUT = 10800;

/**
 * Where a Service port sends connections, as kube-proxy reads its EndpointSlices. A named targetPort
 * nobody resolved has none (kube-proxy would see no slice for it).
 */
export function portEndpoints(service: Service, port: ServicePort): readonly Endpoint[] {
  if (port.endpoints) return port.endpoints;
  const target = port.targetPort;
  if (typeof target !== "number") return [];
  const nodes = service.endpointNodes;
  return service.endpoints.map((ip, i) =>
    nodes?.[i] !== undefined ? { ip, port: target, node: nodes[i] } : { ip, port: target },
  );
}

/** Which endpoints one node's rules for a Service port send to. */
export interface PortPlan {
  /** Every endpoint of the port: with none, the port is rejected everywhere. */
  all: readonly Endpoint[];
  /** A ClusterIP goes to this node's endpoints only (internalTrafficPolicy: Local). */
  internalLocal: boolean;
  /** The NodePort goes to this node's endpoints only (externalTrafficPolicy: Local). */
  externalLocal: boolean;
  /**
   * What the Service's cluster-wide chain spreads over (every endpoint); absent when nothing uses
   * that chain (a ClusterIP-only port under internalTrafficPolicy: Local).
   */
  cluster?: readonly Endpoint[];
  /** This node's endpoints, when a Local policy applies to the port. */
  local?: readonly Endpoint[];
}

/**
 * kube-proxy's CategorizeEndpoints for one port on one node: the cluster-wide endpoints serve the
 * ClusterIP under the Cluster policy and, for an externally reachable port, the pods' and the node's
 * own traffic to the NodePort (the short-circuits); the local ones serve whichever is Local.
 */
export function portPlan(service: Service, port: ServicePort, node: string | undefined): PortPlan {
  const all = portEndpoints(service, port);
  const internalLocal = service.internalTrafficPolicy === "Local";
  const externalLocal = service.externalTrafficPolicy === "Local" && port.nodePort !== undefined;
  const plan: PortPlan = { all, internalLocal, externalLocal };
  if (!internalLocal || port.nodePort !== undefined) plan.cluster = all;
  if (internalLocal || externalLocal) plan.local = all.filter((e) => e.node !== undefined && e.node === node);
  return plan;
}

/** Whether a Service's rules may differ from node to node (a Local policy that applies). */
export const hasLocalPolicy = (service: Service): boolean =>
  service.internalTrafficPolicy === "Local" ||
  (service.externalTrafficPolicy === "Local" && service.ports.some((p) => p.nodePort !== undefined));

/**
 * What tells one node's rules for a Service from another's: its endpoints under the Local policies,
 * "" on every node when none applies. Nodes with the same variant share one computed set of rules.
 */
export function localVariant(service: Service, node: string | undefined): string {
  if (!hasLocalPolicy(service)) return "";
  return service.ports
    .map((p) => (portPlan(service, p, node).local ?? []).map((e) => `${e.ip}:${e.port}`).join(","))
    .join("|");
}

export const MASQ_MARK = 0x4000;

/** "default/web:http", as kube-proxy's ServicePortName prints. */
export function servicePortName(service: Service, port: ServicePort): string {
  return `${service.namespace}/${service.name}${port.name ? `:${port.name}` : ""}`;
}

/** "default/web": a Service's identity. */
export const serviceKey = (service: { namespace: string; name: string }) =>
  `${service.namespace}/${service.name}`;

/** Records `service` in `services`; returns the value it replaces. */
export function recordService(services: Map<string, Service>, service: Service): Service | undefined {
  const key = serviceKey(service);
  const before = services.get(key);
  services.set(key, service);
  return before;
}

/** Removes a Service from `services`; returns the value it had. */
export function removeService(
  services: Map<string, Service>,
  namespace: string,
  name: string,
): Service | undefined {
  const key = serviceKey({ namespace, name });
  const before = services.get(key);
  services.delete(key);
  return before;
}

/** kube-proxy writes Services in the order of their names. */
export const compareServiceKeys = new Intl.Collator().compare;

/**
 * A proxy's rules for each Service, made once per Service value (Services are values: a change is a
 * new object), cluster CIDR and local variant. With 10,000 Services a sync reuses 9,999 Services'
 * rule objects, so comparing what a node holds with what it should hold is mostly comparing
 * references; under a Local policy, nodes with the same local endpoints share theirs.
 */
export class ServicePartsCache<P> {
  private readonly parts = new WeakMap<
    Service,
    { clusterCidr: string; shared?: P; variants?: Map<string, P> }
  >();

  constructor(
    private readonly make: (service: Service, clusterCidr: string, node: string | undefined) => P,
  ) {}

  /** The rules for `service` on `node` (any node's, when no Local policy applies). */
  get(service: Service, clusterCidr: string, node?: string): P {
    let known = this.parts.get(service);
    if (known?.clusterCidr !== clusterCidr) {
      known = { clusterCidr };
      this.parts.set(service, known);
    }
    if (!hasLocalPolicy(service)) return (known.shared ??= this.make(service, clusterCidr, node));
    const variant = localVariant(service, node);
    const variants = (known.variants ??= new Map());
    let parts = variants.get(variant);
    if (!parts) variants.set(variant, (parts = this.make(service, clusterCidr, node)));
    return parts;
  }
}
