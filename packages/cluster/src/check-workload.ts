/**
 * The scenario check's workload: nodes (listed, generated, added by events) with their pod subnets,
 * pods with their containers and hostPorts, and the timed events played forward in order.
 */
import { Ipv4Prefix, formatIpv4, parseIpv4, quoteInput as q } from "@podnet/core";
import { NodeCidrAllocator } from "@podnet/ipam";
import { policyKey } from "@podnet/policy";
import type { NodeSpec, PodSpec } from "./schema.js";
import { plural, type CheckState, type Path } from "./check-state.js";
import { onSegment } from "./check-network.js";
import { eachGenerated } from "./generate.js";
import { setService } from "./check-objects.js";

/** 127.0.0.1, where a hostPort may be published for the node's own processes alone. */
const LOOPBACK = 0x7f000001;

export function startAllocators(check: CheckState): void {
  if (!check.issues.length) {
    check.podSubnets = new NodeCidrAllocator(check.cluster, check.s.cluster.nodeMaskSize);
    check.serviceIps = NodeCidrAllocator.forServices(check.s.cluster.serviceCidr);
  }
  for (const n of check.s.nodes) if (n.podCidr) check.drive(check.podSubnets, (a) => a.occupy(n.podCidr!));
  for (const svc of check.s.services)
    if (svc.clusterIP) check.drive(check.serviceIps, (a) => a.occupy(`${svc.clusterIP}/32`));
}

export function addNode(check: CheckState, n: NodeSpec, path: Path, at?: string): void {
  if (!check.claim([...path, "name"], n.name, "node")) return;
  const address = onSegment(check, path, n.segment, n.address, n.name, "node");
  if (check.nodes.size + 1 > check.nodeCapacity)
    check.fail(
      [...path, "name"],
      `node ${n.name}${at ?? ""} would be node number ${check.nodes.size + 1}, but the cluster CIDR ${check.cluster} holds only ${plural(check.nodeCapacity, `/${check.s.cluster.nodeMaskSize} pod subnet`)}`,
    );
  if (n.podCidr) {
    const p = Ipv4Prefix.parse(n.podCidr);
    if (!check.cluster.containsPrefix(p) || p.length !== check.s.cluster.nodeMaskSize)
      check.fail(
        [...path, "podCidr"],
        `${p} is not a /${check.s.cluster.nodeMaskSize} inside the cluster CIDR ${check.cluster}`,
      );
    const other = check.podCidrs.get(p.toString());
    if (other)
      check.fail(
        [...path, "podCidr"],
        `${p} is already node ${q(other)}'s pod CIDR${check.allocated.has(p.toString()) ? " (the allocator gave it out)" : ""}`,
      );
    else {
      check.podCidrs.set(p.toString(), n.name);
      // The scenario's own nodes' subnets were reserved at the start; an event's is claimed now.
      if (at !== undefined) check.drive(check.podSubnets, (a) => a.occupy(p.toString()));
    }
  }
  const podCidr = n.podCidr
    ? Ipv4Prefix.parse(n.podCidr).toString()
    : check.drive(check.podSubnets, (a) => a.allocate().toString());
  if (podCidr && !n.podCidr) {
    check.podCidrs.set(podCidr, n.name);
    check.allocated.add(podCidr);
  }
  check.nodes.set(n.name, { ...(podCidr ? { podCidr } : {}), pods: 0, address: address ?? -1 });
}

/** Why the generate block cannot be made, if it cannot: its segment, its addresses, its names. */
function generateProblem(
  check: CheckState,
  g: NonNullable<CheckState["s"]["generate"]>,
): { path: Path; message: string } | undefined {
  const prefix = check.segments.get(g.segment);
  if (!prefix) return { path: ["generate", "segment"], message: `unknown segment ${q(g.segment)}` };
  const first = parseIpv4(g.firstAddress);
  const last = first + g.nodes - 1;
  if (!prefix.contains(first) || first === prefix.network || first === prefix.broadcast) {
    const why = !prefix.contains(first)
      ? `is outside segment ${q(g.segment)} (${prefix})`
      : `is the ${first === prefix.network ? "network" : "broadcast"} address of segment ${q(g.segment)} (${prefix}), no host's`;
    return { path: ["generate", "firstAddress"], message: `${g.firstAddress} ${why}` };
  }
  if (!prefix.contains(last) || last >= prefix.broadcast) {
    return {
      path: ["generate", "nodes"],
      message: `${g.nodes} nodes from ${g.firstAddress} do not fit in segment ${q(g.segment)} (${prefix}), which ends at ${formatIpv4(prefix.broadcast)}`,
    };
  }
  for (let i = 0; i < g.nodes; i++) {
    const name = `node-${i}`;
    const holder = check.names.get(name);
    if (holder) {
      return {
        path: ["generate", "nodes"],
        message: `generated node ${q(name)} is already the name of a ${holder}`,
      };
    }
    const taken = check.addresses.get(first + i);
    if (taken) {
      return {
        path: ["generate", "firstAddress"],
        message: `generated node ${name} would get ${formatIpv4(first + i)}, which is already ${taken}'s address`,
      };
    }
  }
  return undefined;
}

/**
 * Generated nodes and pods, checked against what is listed by name and address. A block that cannot
 * be made is said once, at its field; the names it would have made are then not "unknown" again
 * wherever pods, events or traffic use them (`CheckState.unmade`).
 */
export function expandGenerated(check: CheckState): void {
  const g = check.s.generate;
  if (!g) return;
  const problem = generateProblem(check, g);
  if (problem) {
    check.fail(problem.path, problem.message);
    check.unmade = g;
    return;
  }
  eachGenerated(
    g,
    (node) => addNode(check, node, ["generate", "nodes"]),
    (pod) => addPod(check, pod, ["generate", "podsPerNode"]),
  );
}

export function addPod(check: CheckState, p: PodSpec, path: Path, at?: string): void {
  if (!check.claim([...path, "name"], p.name, "pod")) return;
  const node = check.nodes.get(p.node);
  if (!node) {
    const known = [...check.nodes.keys()];
    if (!check.unmadeName(p.node))
      check.fail(
        [...path, "node"],
        `unknown node ${q(p.node)}${at ?? ""} (nodes: ${known.length > 8 ? `${known.slice(0, 8).join(", ")}, …` : known.join(", ") || "none"})`,
      );
  } else if (++node.pods > check.podCapacity)
    check.fail(
      [...path, "node"],
      `pod ${p.name} would be pod number ${node.pods} on ${p.node}, but a /${check.s.cluster.nodeMaskSize} pod subnet holds only ${plural(check.podCapacity, "pod")}`,
    );
  check.pods.set(p.name, p);
  const containers = new Map<string, number>();
  const ports = new Map<string, string>();
  const portNames = new Set<string>();
  p.containers.forEach((c, j) => {
    if (containers.has(c.name))
      check.fail([...path, "containers", j, "name"], `pod ${p.name} already has a container ${q(c.name)}`);
    containers.set(c.name, j);
    c.ports.forEach((port, k) => {
      const key = `${port.containerPort}/${port.protocol}`;
      const holder = ports.get(key);
      if (holder)
        check.fail(
          [...path, "containers", j, "ports", k],
          `port ${key} is already taken by container ${q(holder)}: the containers of a pod share one network namespace`,
        );
      ports.set(key, c.name);
      if (port.name !== undefined) {
        if (portNames.has(port.name))
          check.fail(
            [...path, "containers", j, "ports", k, "name"],
            `pod ${p.name} already has a port named ${q(port.name)}`,
          );
        portNames.add(port.name);
      }
      const at: Path = [...path, "containers", j, "ports", k];
      if (port.hostPort !== undefined) publish(check, p, node, port, at);
      else if (port.hostIP !== undefined)
        check.fail([...at, "hostIP"], `hostIP ${port.hostIP} needs a hostPort to publish`);
    });
  });
}

/**
 * A hostPort is one node's port: two pods may publish it only on different addresses (as
 * Kubernetes' scheduler holds it: 0.0.0.0 takes every address). Its hostIP must be an address the
 * node answers on — its own or 127.0.0.1 — or the rules would match nothing that arrives.
 */
export function publish(
  check: CheckState,
  p: PodSpec,
  node: { address: number } | undefined,
  port: PodSpec["containers"][number]["ports"][number],
  at: Path,
): void {
  const hostIP = port.hostIP === undefined ? 0 : parseIpv4(port.hostIP);
  if (node && hostIP !== 0 && hostIP !== LOOPBACK && hostIP !== node.address) {
    check.fail(
      [...at, "hostIP"],
      `hostIP ${port.hostIP} is not an address of node ${p.node} (${formatIpv4(node.address)}): the port would answer nowhere; use the node's address, 127.0.0.1 or 0.0.0.0`,
    );
    return;
  }
  const key = `${p.node} ${port.hostPort}/${port.protocol}`;
  const held = check.hostPorts.get(key) ?? [];
  const other = held.find((h) => h.hostIP === 0 || hostIP === 0 || h.hostIP === hostIP);
  if (other)
    check.fail(
      [...at, "hostPort"],
      `hostPort ${port.hostPort}/${port.protocol} on ${p.node}${hostIP ? ` (${port.hostIP})` : ""} is already published by pod ${q(other.pod)}${other.hostIP ? ` on ${formatIpv4(other.hostIP)}` : ""}`,
    );
  else check.hostPorts.set(key, [...held, { pod: p.name, hostIP }]);
}

export function removePod(check: CheckState, name: string): void {
  const p = check.pods.get(name);
  if (!p) return;
  check.pods.delete(name);
  check.names.delete(name);
  const node = check.nodes.get(p.node);
  if (node) node.pods--;
  for (const c of p.containers)
    for (const port of c.ports)
      if (port.hostPort !== undefined) {
        const key = `${p.node} ${port.hostPort}/${port.protocol}`;
        const held = check.hostPorts.get(key)?.filter((h) => h.pod !== name) ?? [];
        if (held.length) check.hostPorts.set(key, held);
        else check.hostPorts.delete(key);
      }
}

/** Plays the events forward in the order the runtime runs them (by time, then as listed). */
export function playEvents(check: CheckState): void {
  const order = check.s.events.map((e, i) => ({ e, i })).sort((a, b) => a.e.at - b.e.at || a.i - b.i);
  const policies = new Set([...check.s.networkPolicies.map(policyKey), ...check.manifests.policies]);
  for (const { e, i } of order) {
    const path: Path = ["events", i];
    const at = ` at ${e.at}`;
    switch (e.action) {
      case "addNode":
        addNode(check, e.node, [...path, "node"], at);
        break;
      case "removeNode": {
        const node = check.nodes.get(e.node);
        if (!node) {
          if (!check.unmadeName(e.node)) check.fail([...path, "node"], `no node ${q(e.node)} to remove${at}`);
          break;
        }
        for (const [name, p] of check.pods) if (p.node === e.node) removePod(check, name);
        check.nodes.delete(e.node);
        check.names.delete(e.node);
        check.addresses.delete(node.address);
        if (node.podCidr) {
          check.podCidrs.delete(node.podCidr);
          check.allocated.delete(node.podCidr);
          check.drive(check.podSubnets, (a) => a.release(node.podCidr!));
        }
        break;
      }
      case "addPod":
        addPod(check, e.pod, [...path, "pod"], at);
        break;
      case "removePod":
        if (!check.pods.has(e.pod)) {
          if (!check.unmadeName(e.pod)) check.fail([...path, "pod"], `no pod ${q(e.pod)} to remove${at}`);
        } else removePod(check, e.pod);
        break;
      case "setService":
        setService(check, e.service, [...path, "service"]);
        break;
      case "removeService": {
        // kubectl delete service's words: the name alone when one namespace holds it.
        const held = check.serviceState.namespacesOf(e.service);
        const found = check.serviceState.named(e.service, e.namespace);
        if ("error" in found) {
          if (e.namespace !== undefined)
            check.fail(
              [...path, "namespace"],
              `no service ${q(e.service)} in namespace ${e.namespace} to remove${at}${held.length ? ` (${e.service} is in ${held.join(" and ")})` : ""}`,
            );
          else if (!held.length)
            check.fail([...path, "service"], `no service ${q(e.service)} to remove${at}`);
          else
            check.fail(
              [...path, "service"],
              `service ${q(e.service)} is in namespaces ${held.join(" and ")}${at}: say which to remove with ${held.map((n) => `namespace: ${n}`).join(" or ")}`,
            );
          break;
        }
        const svc = found.value;
        for (const np of svc.nodePorts) check.nodePorts.delete(np);
        if (svc.clusterIP) {
          check.clusterIPs.delete(svc.clusterIP);
          check.allocated.delete(svc.clusterIP);
          check.drive(check.serviceIps, (a) => a.release(`${svc.clusterIP}/32`));
        }
        check.serviceState.delete(found.namespace, e.service);
        break;
      }
      case "setNetworkPolicy":
        check.requireNamespace(
          [...path, "networkPolicy", "metadata", "namespace"],
          e.networkPolicy.metadata.namespace,
        );
        policies.add(policyKey(e.networkPolicy));
        break;
      case "removeNetworkPolicy": {
        const key = `${e.networkPolicy.namespace}/${e.networkPolicy.name}`;
        if (!policies.delete(key))
          check.fail([...path, "networkPolicy", "name"], `no NetworkPolicy ${key} to remove${at}`);
        break;
      }
    }
  }
}
