/** The scenario check's API objects: Services, namespaces and NetworkPolicies. */
import { parseIpv4, quoteInput as q } from "@podnet/core";
import { serviceKey } from "@podnet/route-manager";
import { HEADLESS, type Scenario, type ServiceSpec } from "./schema.js";
import { plural, type CheckState, type Path } from "./check-state.js";

/** Namespaces and NetworkPolicies are named once each (a policy by namespace/name). */
export function checkPolicies(check: CheckState): void {
  const namespaces = new Map<string, number>();
  check.s.namespaces.forEach((ns, i) => {
    const first = namespaces.get(ns.name);
    if (first !== undefined)
      check.fail(["namespaces", i, "name"], `namespace ${ns.name} is defined twice`, [
        "namespaces",
        first,
        "name",
      ]);
    else namespaces.set(ns.name, i);
  });
  const policies = new Map<string, number>();
  check.s.networkPolicies.forEach((p, i) => {
    const key = `${p.metadata.namespace}/${p.metadata.name}`;
    const first = policies.get(key);
    if (first !== undefined)
      check.fail(["networkPolicies", i, "metadata", "name"], `NetworkPolicy ${key} is defined twice`, [
        "networkPolicies",
        first,
        "metadata",
        "name",
      ]);
    else policies.set(key, i);
    check.requireNamespace(["networkPolicies", i, "metadata", "namespace"], p.metadata.namespace);
  });
}

/** Another Service as a message about `svc` names it: by name in its namespace, namespace/name across. */
function other(key: string, svc: ServiceSpec): string {
  const slash = key.indexOf("/");
  return key.slice(0, slash) === svc.namespace ? key.slice(slash + 1) : key;
}

export function setService(check: CheckState, svc: ServiceSpec, path: Path): void {
  const existing = check.serviceState.get(svc.namespace, svc.name);
  // Its identity in the check's maps, as kube-proxy names it: `namespace/name`.
  const id = serviceKey(svc);
  if (existing && path[0] === "services")
    return check.fail([...path, "name"], `service ${q(svc.name)} is defined twice`, [
      ...existing.path,
      "name",
    ]);
  for (const np of existing?.nodePorts ?? []) check.nodePorts.delete(np);
  if (!existing && svc.clusterIP !== HEADLESS && check.serviceState.size + 1 > check.serviceCapacity)
    check.fail(
      [...path, "name"],
      `service ${svc.name} would be Service number ${check.serviceState.size + 1}, but the service CIDR ${check.services} holds only ${plural(check.serviceCapacity, "ClusterIP")}`,
    );
  let clusterIP = existing?.clusterIP;
  if (svc.clusterIP === HEADLESS || (existing?.clusterIP === HEADLESS && svc.clusterIP === undefined)) {
    // The API server's rules: None only for a ClusterIP Service, and never a change to or from it.
    if (svc.type === "NodePort")
      check.fail(
        [...path, "clusterIP"],
        `None (headless) is not for a NodePort Service: kube-proxy would have no ClusterIP to send it to (the API server: may not be set to 'None' for NodePort services)`,
      );
    else if (existing && existing.clusterIP !== HEADLESS)
      check.fail(
        [...path, "clusterIP"],
        `service ${svc.name} already has ClusterIP ${existing.clusterIP}; a ClusterIP cannot change (not to None either)`,
      );
    else clusterIP = HEADLESS;
  } else if (existing?.clusterIP === HEADLESS)
    check.fail(
      [...path, "clusterIP"],
      `service ${svc.name} is headless (clusterIP: None); a ClusterIP cannot change`,
    );
  else if (svc.clusterIP) {
    const ip = parseIpv4(svc.clusterIP);
    const holder = check.clusterIPs.get(svc.clusterIP);
    if (!check.services.contains(ip))
      check.fail([...path, "clusterIP"], `${svc.clusterIP} is outside the service CIDR ${check.services}`);
    else if (ip === check.services.network || ip === check.services.broadcast)
      check.fail(
        [...path, "clusterIP"],
        `${svc.clusterIP} is the network or broadcast address of the service CIDR ${check.services}`,
      );
    else if (ip === check.services.network + 1)
      check.fail(
        [...path, "clusterIP"],
        `${svc.clusterIP} is the kubernetes Service's: the API server takes the service CIDR's first address (Kubernetes refuses it: provided IP is already allocated)`,
      );
    // A refused change leaves the Service its ClusterIP: a later event is checked against that one.
    else if (existing?.clusterIP && existing.clusterIP !== svc.clusterIP)
      check.fail(
        [...path, "clusterIP"],
        `service ${svc.name} already has ClusterIP ${existing.clusterIP}; a ClusterIP cannot change`,
      );
    else if (holder !== undefined && holder !== id)
      check.fail(
        [...path, "clusterIP"],
        `${svc.clusterIP} is already service ${q(other(holder, svc))}'s ClusterIP${check.allocated.has(svc.clusterIP) ? " (the allocator gave it out)" : ""}`,
      );
    else {
      check.clusterIPs.set(svc.clusterIP, id);
      // The scenario's own Services' were reserved at the start; an event's is claimed now.
      if (!existing && path[0] === "events")
        check.drive(check.serviceIps, (a) => a.occupy(`${svc.clusterIP}/32`));
      clusterIP = svc.clusterIP;
    }
  } else if (!existing) {
    clusterIP = check.drive(check.serviceIps, (a) => a.allocateAddress());
    if (clusterIP) {
      check.clusterIPs.set(clusterIP, id);
      check.allocated.add(clusterIP);
    }
  }
  check.requireNamespace([...path, "namespace"], svc.namespace);
  if (svc.externalTrafficPolicy === "Local" && svc.type !== "NodePort")
    check.fail(
      [...path, "externalTrafficPolicy"],
      `Local needs type: NodePort (this policy is for traffic arriving at a NodePort)`,
    );
  // The API server's defaulting drops such a config without a word (validation would refuse it, but
  // never sees it): a scenario says so rather than ignore what its author meant to ask for.
  if (svc.sessionAffinityConfig && svc.sessionAffinity !== "ClientIP")
    check.fail(
      [...path, "sessionAffinityConfig"],
      `has no effect without sessionAffinity: ClientIP (the API server would drop it silently)`,
    );
  const seen = new Set<string>();
  const names = new Set<string>();
  const nodePorts: string[] = [];
  svc.ports.forEach((port, j) => {
    const key = `${port.port}/${port.protocol}`;
    if (seen.has(key))
      check.fail([...path, "ports", j, "port"], `service ${svc.name} already has port ${key}`);
    seen.add(key);
    // The API server's words: a port of a Service with several is named, each name once.
    if (svc.ports.length > 1 && !port.name)
      check.fail([...path, "ports", j, "name"], `required: a Service with several ports names each one`);
    else if (port.name && names.has(port.name))
      check.fail(
        [...path, "ports", j, "name"],
        `service ${svc.name} already has a port named ${q(port.name)}`,
      );
    names.add(port.name);
    if (port.nodePort === undefined) return;
    if (svc.type !== "NodePort")
      return check.fail([...path, "ports", j, "nodePort"], `a nodePort needs type: NodePort`);
    const np = `${port.nodePort}/${port.protocol}`;
    const holder = check.nodePorts.get(np);
    if (holder)
      check.fail(
        [...path, "ports", j, "nodePort"],
        `nodePort ${np} is already ${holder === id ? "another port" : `service ${q(other(holder, svc))}'s`}`,
      );
    else {
      check.nodePorts.set(np, id);
      nodePorts.push(np);
    }
  });
  check.serviceState.set(svc.namespace, svc.name, {
    ...(clusterIP ? { clusterIP } : {}),
    nodePorts,
    ports: svc.ports.map((p) => ({ name: p.name })),
    path: existing?.path ?? path,
  });
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
