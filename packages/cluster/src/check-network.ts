/** The scenario check's network: cluster and service CIDRs, the underlay's segments, routers and hosts, and the envelope. */
import { Ipv4Prefix, parseIpv4, quoteInput as q } from "@podnet/core";
import {
  CLUSTER_SUBNET_MAX_DIFF,
  SCENARIO_LIMITS,
  beyondEnvelope,
  type CheckState,
  type Path,
} from "./check-state.js";

/** kube-apiserver refuses an IPv4 service CIDR larger than a /12. */
const SERVICE_CIDR_MIN_LENGTH = 12;

export function checkCluster(check: CheckState): void {
  const { cluster, services } = check;
  const mask = check.s.cluster.nodeMaskSize;
  if (cluster.containsPrefix(services))
    check.fail(
      ["cluster", "serviceCidr"],
      `service CIDR ${services} is inside the cluster CIDR ${cluster}: ClusterIPs would collide with pod addresses`,
    );
  else if (cluster.overlaps(services))
    check.fail(["cluster", "serviceCidr"], `service CIDR ${services} overlaps the cluster CIDR ${cluster}`);
  if (services.length < SERVICE_CIDR_MIN_LENGTH)
    check.fail(
      ["cluster", "serviceCidr"],
      `service CIDR ${services} is larger than Kubernetes allows (at most a /${SERVICE_CIDR_MIN_LENGTH})`,
    );
  if (mask < cluster.length)
    check.fail(["cluster", "nodeMaskSize"], `/${mask} is larger than the cluster CIDR ${cluster}`);
  else if (mask - cluster.length > CLUSTER_SUBNET_MAX_DIFF)
    check.fail(
      ["cluster", "nodeMaskSize"],
      `/${mask} node subnets are more than ${CLUSTER_SUBNET_MAX_DIFF} bits smaller than the cluster CIDR ${cluster} (kube-controller-manager refuses that)`,
    );
}

export function checkUnderlay(check: CheckState): void {
  const { underlay } = check.s;
  underlay.segments.forEach((seg, i) => {
    const path = ["underlay", "segments", i];
    const prefix = Ipv4Prefix.parse(seg.subnet);
    if (check.segments.has(seg.name))
      check.fail([...path, "name"], `segment ${q(seg.name)} is defined twice`);
    for (const [other, p] of check.segments)
      if (p.overlaps(prefix))
        check.fail([...path, "subnet"], `${prefix} overlaps segment ${q(other)} (${p})`);
    for (const [what, p] of [
      ["cluster CIDR", check.cluster],
      ["service CIDR", check.services],
    ] as const)
      if (p.overlaps(prefix)) check.fail([...path, "subnet"], `${prefix} overlaps the ${what} ${p}`);
    if (prefix.length > 30)
      check.fail([...path, "subnet"], `${prefix} has no room for hosts (a segment needs a /30 or larger)`);
    if (seg.gateway) {
      const gw = parseIpv4(seg.gateway);
      if (!prefix.contains(gw))
        check.fail([...path, "gateway"], `${seg.gateway} is outside the segment's subnet ${prefix}`);
      else if (gw === prefix.network || gw === prefix.broadcast)
        check.fail([...path, "gateway"], `${seg.gateway} is the network or broadcast address of ${prefix}`);
    }
    if (!check.segments.has(seg.name)) check.segments.set(seg.name, prefix);
  });
  underlay.routers.forEach((r, i) => {
    check.claim(["underlay", "routers", i, "name"], r.name, "router");
    const on = new Set<string>();
    r.interfaces.forEach((nic, j) => {
      const path = ["underlay", "routers", i, "interfaces", j];
      if (on.has(nic.segment))
        check.fail(
          [...path, "segment"],
          `router ${r.name} already has an interface on segment ${q(nic.segment)}`,
        );
      on.add(nic.segment);
      onSegment(check, path, nic.segment, nic.address, r.name, "router");
    });
    const own = new Set(r.interfaces.map((nic) => nic.address));
    const destinations = new Set<string>();
    r.routes.forEach((route, j) => {
      const dst = Ipv4Prefix.parse(route.dst).toString();
      if (destinations.has(dst))
        check.fail(
          ["underlay", "routers", i, "routes", j, "dst"],
          `${r.name} already has a route to ${dst} (the kernel answers "File exists")`,
        );
      destinations.add(dst);
      const via = parseIpv4(route.via);
      const onLink = r.interfaces.some((nic) => check.segments.get(nic.segment)?.contains(via));
      if (own.has(route.via))
        check.fail(["underlay", "routers", i, "routes", j, "via"], `${route.via} is ${r.name}'s own address`);
      else if (!onLink)
        check.fail(
          ["underlay", "routers", i, "routes", j, "via"],
          `next hop ${route.via} is not on any segment ${r.name} is connected to (${r.interfaces.map((nic) => nic.segment).join(", ")}): the kernel refuses an off-link gateway`,
        );
    });
  });
  underlay.hosts.forEach((h, i) => {
    check.claim(["underlay", "hosts", i, "name"], h.name, "host");
    const sockets = new Set<string>();
    h.listen.forEach((l, j) => {
      const key = `${l.port}/${l.protocol}`;
      if (sockets.has(key))
        check.fail(["underlay", "hosts", i, "listen", j], `${h.name} already listens on ${key}`);
      sockets.add(key);
    });
    onSegment(check, ["underlay", "hosts", i], h.segment, h.address, h.name, "host");
  });
}

/** False when the scenario is beyond the envelope: nothing else is worth expanding then. */
export function checkEnvelope(check: CheckState): boolean {
  const g = check.s.generate;
  const addedNodes = check.s.events.filter((e) => e.action === "addNode").length;
  const addedPods = check.s.events.filter((e) => e.action === "addPod").length;
  const nodes = check.s.nodes.length + (g?.nodes ?? 0) + addedNodes;
  const pods = check.s.pods.length + (g ? g.nodes * g.podsPerNode : 0) + addedPods;
  const services = new Set([
    ...check.s.services.map((svc) => svc.name),
    ...check.s.events.flatMap((e) => (e.action === "setService" ? [e.service.name] : [])),
  ]).size;
  const where: Path = g ? ["generate", "nodes"] : ["nodes"];
  let ok = true;
  if (nodes > SCENARIO_LIMITS.nodes) {
    check.fail(where, beyondEnvelope(nodes, "node"));
    ok = false;
  }
  if (pods > SCENARIO_LIMITS.pods) {
    check.fail(g ? ["generate", "podsPerNode"] : ["pods"], beyondEnvelope(pods, "pod"));
    ok = false;
  }
  if (services > SCENARIO_LIMITS.services) check.fail(["services"], beyondEnvelope(services, "Service"));
  return ok;
}

export function onSegment(
  check: CheckState,
  path: Path,
  segment: string,
  address: string,
  owner: string,
  kind: "router" | "host" | "node",
): number | undefined {
  const prefix = check.segments.get(segment);
  if (!prefix) {
    check.fail(
      [...path, "segment"],
      `unknown segment ${q(segment)} (segments: ${[...check.segments.keys()].join(", ")})`,
    );
    return undefined;
  }
  const ip = parseIpv4(address);
  if (!prefix.contains(ip))
    check.fail([...path, "address"], `${address} is outside its segment ${q(segment)} (${prefix})`);
  else if (ip === prefix.network || ip === prefix.broadcast)
    check.fail([...path, "address"], `${address} is the network or broadcast address of ${prefix}`);
  // Every other machine on the segment routes through its gateway, and the kernel refuses a
  // gateway that is one of the machine's own addresses: only a router may hold it.
  const gateway = check.s.underlay.segments.find((seg) => seg.name === segment)?.gateway;
  if (kind !== "router" && gateway === address)
    check.fail(
      [...path, "address"],
      `${address} is segment ${q(segment)}'s gateway: only a router's interface may hold it`,
    );
  const holder = check.addresses.get(ip);
  if (holder) {
    check.fail([...path, "address"], `${address} is already ${holder}'s address`);
    return undefined;
  }
  check.addresses.set(ip, owner);
  return ip;
}
