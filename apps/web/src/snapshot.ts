/** What the page draws of a built cluster, as plain data for the message to the page. */
import { affinitySeconds, clusterPolicies, outsideHosts, type ClusterRuntime } from "@podnet/cluster";
import { policyMatrix } from "@podnet/policy";
import type { PolicyTable, Snapshot } from "./protocol.js";

/** The policy matrix under the map's names: a pod is known by its name there, not namespace/name. */
function policyTable(rt: ClusterRuntime): PolicyTable {
  const compiled = clusterPolicies(rt);
  const m = policyMatrix(compiled, outsideHosts(rt));
  const names = new Map(compiled.pods.map((p) => [`${p.namespace}/${p.name}`, p.name]));
  const nameOf = (key: string) => names.get(key) ?? key;
  return {
    sources: m.sources.map((key) => ({ name: nameOf(key), label: key })),
    targets: m.targets.map((t) => ({
      name: nameOf(t.name),
      label: t.name,
      protocol: t.protocol,
      port: t.port,
    })),
    allowed: m.allowed,
  };
}

export async function snapshotOf(rt: ClusterRuntime): Promise<Snapshot> {
  const s = rt.spec;
  return {
    scenario: s.name,
    description: s.description,
    provider: rt.provider.name,
    proxy: rt.proxy,
    segments: s.underlay.segments.map((x) => ({ name: x.name, subnet: x.subnet })),
    routers: s.underlay.routers.map((r) => ({ name: r.name, interfaces: r.interfaces })),
    hosts: s.underlay.hosts.map((h) => ({ name: h.name, segment: h.segment, address: h.address })),
    nodes: await Promise.all(
      [...rt.nodes.values()].map(async (n) => ({
        name: n.name,
        segment: s.nodes.find((x) => x.name === n.name)?.segment ?? s.underlay.segments[0]!.name,
        address: n.address,
        ...(n.podCidr ? { podCidr: n.podCidr } : {}),
        devices: (await rt.k.addr.list(n.name)).map((l) => ({
          name: l.ifname,
          kind: l.linkinfo?.info_kind ?? l.link_type,
          addresses: l.addr_info.map((a) => `${a.local}/${a.prefixlen}`),
          ...(l.master ? { master: l.master } : {}),
          mtu: l.mtu,
        })),
      })),
    ),
    pods: [...rt.pods].map(([name, p]) => ({
      name,
      node: p.node,
      ip: p.ip,
      containers: p.spec.containers.map((c) => c.name),
      containerPorts: p.spec.containers.map((c) =>
        c.ports.map((x) => (x.protocol === "udp" ? `${x.containerPort}/UDP` : String(x.containerPort))),
      ),
      ports: p.spec.containers.flatMap((c) => c.ports.map((x) => x.containerPort)),
    })),
    services: [...rt.services.values()].map((x) => ({
      name: x.spec.name,
      namespace: x.spec.namespace,
      ref: rt.serviceRef(x),
      type: x.spec.type,
      clusterIP: x.clusterIP,
      ports: x.spec.ports.map((p, i) => ({
        ...(p.name ? { name: p.name } : {}),
        port: p.port,
        protocol: p.protocol === "udp" ? ("UDP" as const) : ("TCP" as const),
        ...(p.targetPort !== undefined ? { targetPort: p.targetPort } : {}),
        ...(p.nodePort !== undefined ? { nodePort: p.nodePort } : {}),
        // A named targetPort is resolved pod by pod: say how many pods it reached.
        ...(typeof p.targetPort === "string" ? { endpoints: x.portEndpoints[i]!.length } : {}),
      })),
      ...(x.spec.externalTrafficPolicy === "Local" ? { externalTrafficPolicy: "Local" as const } : {}),
      ...(x.spec.internalTrafficPolicy === "Local" ? { internalTrafficPolicy: "Local" as const } : {}),
      ...(affinitySeconds(x.spec) !== undefined ? { affinitySeconds: affinitySeconds(x.spec)! } : {}),
      // A selected pod is an endpoint only of the ports it resolves (all of them for numeric ones).
      endpoints: x.endpoints.filter((ip) => x.portEndpoints.some((port) => port.some((e) => e.ip === ip))),
    })),
    refusals: rt.manager.refusals,
    ...(rt.policyEngine.name !== "none" ? { policy: policyTable(rt) } : {}),
  };
}
