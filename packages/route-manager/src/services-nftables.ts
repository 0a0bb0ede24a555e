/**
 * kube-proxy's nftables mode, as data: its own table `ip kube-proxy`; verdict maps from Service IP .
 * protocol . port (service-ips) and from protocol . NodePort (service-nodeports) to per-Service
 * chains; per-endpoint chains chosen by `numgen random mod N vmap`; masquerade marking through
 * mark-for-masquerade and the masquerading chain; Services without endpoints rejected through the
 * no-endpoint-services map in filter chains, and their NodePorts through no-endpoint-nodeports. Chain names are kube-proxy's: a hash (sha256, base32,
 * 8 characters) and the readable name, "service-ULMVA6XW-ns1/svc1/tcp/p80".
 */
import { sha256 } from "@noble/hashes/sha2";
import { base32 } from "@scure/base";
import type {
  NftChain,
  NftCommand,
  NftMap,
  NftMapElement,
  NftObject,
  NftOperand,
  NftRule,
  NftSet,
  NftStatement,
  NftVerdict,
} from "@podnet/netlink";
import { MASQ_MARK, portPlan, type Endpoint, type Service, type ServicePort } from "./services.js";

export const NFT_TABLE = "kube-proxy";
const T = { family: "ip", table: NFT_TABLE } as const;

function hash8(name: string): string {
  return base32.encode(sha256(new TextEncoder().encode(name))).slice(0, 8);
}

/** "ns1/svc1/tcp/p80": kube-proxy's readable part of a Service port's chain names. */
const portBase = (service: Service, port: ServicePort) =>
  `${service.namespace}/${service.name}/${port.protocol}/${port.name}`;

export function nftServiceChain(service: Service, port: ServicePort): string {
  const base = portBase(service, port);
  return `service-${hash8(base)}-${base}`;
}

export function nftExternalChain(service: Service, port: ServicePort): string {
  const base = portBase(service, port);
  return `external-${hash8(base)}-${base}`;
}

/** A port's chain over this node's endpoints, under a Local traffic policy. */
export function nftLocalChain(service: Service, port: ServicePort): string {
  const base = portBase(service, port);
  return `local-${hash8(base)}-${base}`;
}

/** An endpoint's session affinity set (kube-proxy's affinity-…, the endpoint chain's hash and name). */
export function nftAffinitySet(service: Service, port: ServicePort, endpoint: Endpoint): string {
  const base = `${portBase(service, port)}__${endpoint.ip}/${endpoint.port}`;
  return `affinity-${hash8(base)}-${base}`;
}

export function nftEndpointChain(service: Service, port: ServicePort, endpoint: Endpoint): string {
  const base = `${portBase(service, port)}__${endpoint.ip}/${endpoint.port}`;
  return `endpoint-${hash8(base)}-${base}`;
}

/** Service and endpoint chains have a "/" in their names; kube-proxy's fixed chains never do. */
export const isServiceChain = (name: string) => name.includes("/");

const mark = { meta: { key: "mark" as const } };
const jump = (target: string): NftVerdict => ({ jump: { target } });
const goto = (target: string): NftVerdict => ({ goto: { target } });
const rule = (chain: string, ...expr: NftStatement[]): NftRule => ({
  family: "ip",
  table: NFT_TABLE,
  chain,
  expr,
});
const ipField = (field: "saddr" | "daddr"): NftOperand => ({ payload: { protocol: "ip", field } });
const is = (left: NftOperand, right: string | number): NftStatement => ({ match: { op: "==", left, right } });
/** A match of an address against a prefix written "a.b.c.d/n": in it (`==`) or not (`!=`). */
const inCidr = (left: NftOperand, cidr: string, op: "==" | "!=" = "=="): NftStatement => {
  const [addr, len] = cidr.split("/");
  return { match: { op, left, right: { prefix: { addr: addr!, len: Number(len) } } } };
};
const l4proto: NftOperand = { meta: { key: "l4proto" } };
const dport: NftOperand = { payload: { protocol: "th", field: "dport" } };
const toServiceKey: NftOperand = { concat: [ipField("daddr"), l4proto, dport] };
const ctNew: NftStatement = { match: { op: "in", left: { ct: { key: "state" } }, right: "new" } };

const MARK_MASQ = "mark-for-masquerade";
const base = (name: string, type: "nat" | "filter", hook: NftChain["hook"], prio: number): NftChain => ({
  ...T,
  name,
  type,
  hook,
  prio,
  policy: "accept",
});
const chain = (name: string): NftChain => ({ ...T, name });

/** kube-proxy's fixed part: base chains at the hooks, its helper chains, the maps and the set (empty). */
export interface NftFixed {
  chains: NftChain[];
  maps: NftMap[];
  sets: NftSet[];
  rules: NftRule[];
}

/**
 * The addresses NodePorts answer on: kube-proxy's default in nftables mode (`--nodeport-addresses
 * primary`) is the node's primary address, not every local one.
 */
export const NODEPORT_IPS = "nodeport-ips";

/**
 * The ClusterIPs in use: a packet to one of them still addressed to it after DNAT is to a port no
 * Service has there, and is rejected (cluster-ips-check).
 */
export const CLUSTER_IPS = "cluster-ips";

/**
 * The fixed part for a cluster whose Services take addresses from `serviceCidr`: a packet to an
 * address there that no Service holds is dropped, as kube-proxy does once it knows the CIDR.
 */
export function nftFixed(serviceCidr: string | undefined): NftFixed {
  const serviceKeyType: NftMap["type"] = ["ipv4_addr", "inet_proto", "inet_service"];
  return {
    maps: [
      { ...T, name: "no-endpoint-services", type: serviceKeyType, map: "verdict" },
      { ...T, name: "service-ips", type: serviceKeyType, map: "verdict" },
      { ...T, name: "service-nodeports", type: ["inet_proto", "inet_service"], map: "verdict" },
      { ...T, name: "no-endpoint-nodeports", type: ["inet_proto", "inet_service"], map: "verdict" },
      // LoadBalancer IPs with source ranges: kube-proxy writes the map, empty without them.
      { ...T, name: "firewall-ips", type: serviceKeyType, map: "verdict" },
    ],
    sets: [
      { ...T, name: CLUSTER_IPS, type: "ipv4_addr" },
      { ...T, name: NODEPORT_IPS, type: "ipv4_addr" },
    ],
    chains: [
      // kube-proxy 1.34's layout: the firewall check for LoadBalancer source ranges runs before
      // DNAT (dstnat − 10), the endpoint and ClusterIP checks at priority filter (0), after it — a
      // packet to a ClusterIP is checked for a port its Service has once the translation had its
      // chance. NAT at dstnat and srcnat.
      base("filter-prerouting-pre-dnat", "filter", "prerouting", -110),
      base("filter-input", "filter", "input", 0),
      base("filter-forward", "filter", "forward", 0),
      base("filter-output-pre-dnat", "filter", "output", -110),
      base("filter-output", "filter", "output", 0),
      base("nat-prerouting", "nat", "prerouting", -100),
      base("nat-output", "nat", "output", -100),
      base("nat-postrouting", "nat", "postrouting", 100),
      chain("firewall-check"),
      chain("service-endpoints-check"),
      chain("nodeport-endpoints-check"),
      chain("cluster-ips-check"),
      chain("reject-chain"),
      chain(MARK_MASQ),
      chain("masquerading"),
      chain("services"),
    ],
    rules: [
      rule("filter-prerouting-pre-dnat", ctNew, jump("firewall-check")),
      rule("filter-input", ctNew, jump("nodeport-endpoints-check")),
      rule("filter-input", ctNew, jump("service-endpoints-check")),
      rule("filter-forward", ctNew, jump("service-endpoints-check")),
      rule("filter-forward", ctNew, jump("cluster-ips-check")),
      rule("filter-output-pre-dnat", ctNew, jump("firewall-check")),
      rule("filter-output", ctNew, jump("service-endpoints-check")),
      rule("filter-output", ctNew, jump("cluster-ips-check")),
      rule("firewall-check", { vmap: { key: toServiceKey, data: "@firewall-ips" } }),
      rule("nat-prerouting", jump("services")),
      rule("nat-output", jump("services")),
      rule("nat-postrouting", jump("masquerading")),
      rule("service-endpoints-check", { vmap: { key: toServiceKey, data: "@no-endpoint-services" } }),
      // A NodePort without endpoints, on the addresses NodePorts answer on.
      rule(
        "nodeport-endpoints-check",
        { match: { op: "==", left: ipField("daddr"), right: `@${NODEPORT_IPS}` } },
        { vmap: { key: { concat: [l4proto, dport] }, data: "@no-endpoint-nodeports" } },
      ),
      rule("reject-chain", { reject: { type: "icmp", expr: "port-unreachable" } }),
      // "Reject traffic to invalid ports of ClusterIPs", "Drop traffic to unallocated ClusterIPs".
      rule(
        "cluster-ips-check",
        { match: { op: "==", left: ipField("daddr"), right: `@${CLUSTER_IPS}` } },
        { reject: { type: "icmp", expr: "port-unreachable" } },
      ),
      ...(serviceCidr
        ? [rule("cluster-ips-check", inCidr(ipField("daddr"), serviceCidr), { drop: null })]
        : []),
      rule(MARK_MASQ, { mangle: { key: mark, value: { "|": [mark, MASQ_MARK] } } }),
      rule(
        "masquerading",
        { match: { op: "==", left: { "&": [mark, MASQ_MARK] }, right: 0 } },
        { return: null },
      ),
      rule("masquerading", { mangle: { key: mark, value: { "^": [mark, MASQ_MARK] } } }),
      rule("masquerading", { masquerade: { flags: "fully-random" } }),
      rule("services", { vmap: { key: toServiceKey, data: "@service-ips" } }),
      // NodePorts: on the node's primary address (the nodeport-ips set), as kube-proxy's default.
      rule(
        "services",
        { match: { op: "==", left: ipField("daddr"), right: `@${NODEPORT_IPS}` } },
        { vmap: { key: { concat: [l4proto, dport] }, data: "@service-nodeports" } },
      ),
    ],
  };
}

/** What one Service contributes: elements of the shared maps, and its own chains with their rules. */
export interface NftServiceParts {
  serviceIps: NftMapElement[];
  nodePorts: NftMapElement[];
  noEndpoints: NftMapElement[];
  noEndpointNodePorts: NftMapElement[];
  /** Its ClusterIP, for the cluster-ips set. */
  clusterIps: string[];
  chains: [string, NftRule[]][];
  /** Session affinity's sets, one per endpoint: the clients it served, each for the timeout. */
  sets: NftSet[];
}

/**
 * One Service's part on a node (`node` matters only under a Local traffic policy): for each port, its
 * ClusterIP's element (to its service- chain, or local- under internalTrafficPolicy: Local), its
 * NodePort's (to external-), the chains spreading over endpoints, and the no-endpoint elements:
 * reject where it has none anywhere, drop where a Local policy finds none on this node.
 */
export function nftServiceParts(service: Service, clusterCidr: string, node?: string): NftServiceParts {
  const parts: NftServiceParts = {
    serviceIps: [],
    nodePorts: [],
    noEndpoints: [],
    noEndpointNodePorts: [],
    clusterIps: [service.clusterIP],
    chains: [],
    sets: [],
  };
  for (const port of service.ports) {
    const key = { concat: [service.clusterIP, port.protocol, port.port] };
    const nodePortKey = { concat: [port.protocol, port.nodePort!] };
    const plan = portPlan(service, port, node);
    if (plan.all.length === 0) {
      parts.noEndpoints.push([key, goto("reject-chain")]);
      if (port.nodePort !== undefined) parts.noEndpointNodePorts.push([nodePortKey, goto("reject-chain")]);
      continue;
    }
    // One hash for the port's chains (a sha256 per name was a tenth of a full sync).
    const base = portBase(service, port);
    const named = `${hash8(base)}-${base}`;
    const [svc, svl] = [`service-${named}`, `local-${named}`];
    const local = plan.local ?? [];
    if (plan.internalLocal && local.length === 0) parts.noEndpoints.push([key, { drop: null }]);
    else parts.serviceIps.push([key, goto(plan.internalLocal ? svl : svc)]);
    // Traffic from outside the pod network to a ClusterIP is masqueraded, so replies come back here
    // (since 1.34 without the port: the chain is the port's already). Only in the chain the ClusterIP
    // goes to.
    const masquerade = (chain: string) =>
      rule(
        chain,
        is(ipField("daddr"), service.clusterIP),
        inCidr(ipField("saddr"), clusterCidr, "!="),
        jump(MARK_MASQ),
      );
    // By address and port: two endpoints with one address (docker-bridge's pods on different nodes)
    // share a chain.
    const endpointChains = new Map<string, NftRule[]>();
    const affinitySets = new Map<string, NftSet>();
    const affinity = service.sessionAffinity;
    // Each endpoint's chain, and the rules of a chain spreading over `endpoints`: with session
    // affinity, first a goto for a client an endpoint's set holds (filled by its chain), then the draw.
    const spread = (chain: string, endpoints: readonly Endpoint[]): NftRule[] => {
      const sticky: NftRule[] = [];
      const names = endpoints.map((endpoint) => nftEndpointChain(service, port, endpoint));
      for (const [i, endpoint] of endpoints.entries()) {
        const name = names[i]!;
        // The endpoint chain's hash and name (nftAffinitySet).
        const set = affinity && name.replace(/^endpoint-/, "affinity-");
        endpointChains.set(name, [
          rule(name, is(ipField("saddr"), endpoint.ip), jump(MARK_MASQ)),
          ...(set ? [rule(name, { set: { op: "update", elem: ipField("saddr"), set: `@${set}` } })] : []),
          rule(name, is(l4proto, port.protocol), { dnat: { addr: endpoint.ip, port: endpoint.port } }),
        ]);
        if (!set) continue;
        affinitySets.set(set, {
          ...T,
          name: set,
          type: "ipv4_addr",
          flags: ["timeout"],
          timeout: affinity.timeoutSeconds,
        });
        sticky.push(rule(chain, is(ipField("saddr"), `@${set}`), goto(name)));
      }
      return [
        ...sticky,
        rule(chain, {
          vmap: {
            key: { numgen: { mode: "random", mod: endpoints.length, offset: 0 } },
            data: { set: names.map((name, i) => [i, goto(name)] as NftMapElement) },
          },
        }),
      ];
    };
    const own: [string, NftRule[]][] = [];
    if (plan.cluster)
      own.push([svc, [...(plan.internalLocal ? [] : [masquerade(svc)]), ...spread(svc, plan.cluster)]]);
    if (local.length)
      own.push([svl, [...(plan.internalLocal ? [masquerade(svl)] : []), ...spread(svl, local)]]);
    parts.chains.push(...endpointChains, ...own);
    parts.sets.push(...affinitySets.values());
    if (port.nodePort === undefined) continue;
    // externalTrafficPolicy: Cluster marks for masquerading and goes to the service chain; Local
    // short-circuits the pods' and the node's own traffic to it (the node's masqueraded) and sends
    // the rest to this node's endpoints only, or, with none, through untranslated to the drop in
    // no-endpoint-nodeports.
    const ext = `external-${named}`;
    parts.nodePorts.push([nodePortKey, goto(ext)]);
    const fromNode: NftStatement = {
      match: { op: "==", left: { fib: { result: "type", flags: ["saddr"] } }, right: "local" },
    };
    parts.chains.push([
      ext,
      plan.externalLocal
        ? [
            rule(ext, inCidr(ipField("saddr"), clusterCidr), goto(svc)),
            rule(ext, fromNode, jump(MARK_MASQ)),
            rule(ext, fromNode, goto(svc)),
            ...(local.length ? [rule(ext, goto(svl))] : []),
          ]
        : [rule(ext, jump(MARK_MASQ)), rule(ext, goto(svc))],
    ]);
    if (plan.externalLocal && local.length === 0)
      parts.noEndpointNodePorts.push([nodePortKey, { drop: null }]);
  }
  return parts;
}

/** The maps a Service has elements in, by the parts' field. */
export const NFT_MAPS = [
  ["serviceIps", "service-ips"],
  ["nodePorts", "service-nodeports"],
  ["noEndpoints", "no-endpoint-services"],
  ["noEndpointNodePorts", "no-endpoint-nodeports"],
] as const;

/** The commands that create kube-proxy's fixed part on a node that has none of it. */
export function nftFixedCommands(fixed: NftFixed): NftCommand[] {
  return [
    { add: { table: { family: "ip", name: NFT_TABLE } } },
    ...fixed.maps.map((map): NftCommand => ({ add: { map } })),
    ...fixed.sets.map((set): NftCommand => ({ add: { set } })),
    ...fixed.chains.map((c): NftCommand => ({ add: { chain: c } })),
    ...fixed.rules.map((r): NftCommand => ({ add: { rule: r } })),
  ];
}

/** The entries of a listed table a proxy is measured by: its rules and its maps' and sets' elements. */
export function nftEntryCount(objects: readonly NftObject[]): number {
  let n = 0;
  for (const o of objects)
    n +=
      "rule" in o ? 1 : "map" in o ? (o.map.elem?.length ?? 0) : "set" in o ? (o.set.elem?.length ?? 0) : 0;
  return n;
}
