/**
 * kube-proxy's iptables mode, as data: the chains it writes for Services (KUBE-SERVICES →
 * KUBE-SVC-… → KUBE-SEP-… DNAT, statistic probabilities 1/(n−i), KUBE-MARK-MASQ and
 * KUBE-POSTROUTING), with its chain names (sha256 + base32, 16 characters) and comments.
 */
import { sha256 } from "@noble/hashes/sha2";
import { base32 } from "@scure/base";
import type { ChainDump, IptablesRule } from "@podnet/netlink";

export interface ServicePort {
  /** The port's name in the Service ("http"); empty for a single unnamed port. */
  name: string;
  port: number;
  targetPort: number;
  protocol: "tcp" | "udp";
  /** NodePort services also answer on every node's address at this port. */
  nodePort?: number;
}

export interface Service {
  namespace: string;
  name: string;
  clusterIP: string;
  ports: ServicePort[];
  /** Addresses of the ready pods the selector picks. */
  endpoints: string[];
}

export const MASQ_MARK = 0x4000;

/** "default/web:http", as kube-proxy's ServicePortName prints. */
export function servicePortName(service: Service, port: ServicePort): string {
  return `${service.namespace}/${service.name}${port.name ? `:${port.name}` : ""}`;
}

function hash16(text: string): string {
  return base32.encode(sha256(new TextEncoder().encode(text))).slice(0, 16);
}

export function serviceChain(service: Service, port: ServicePort): string {
  return `KUBE-SVC-${hash16(servicePortName(service, port) + port.protocol)}`;
}

export function endpointChain(service: Service, port: ServicePort, endpoint: string): string {
  return `KUBE-SEP-${hash16(servicePortName(service, port) + port.protocol + endpoint)}`;
}

const comment = (text: string) => ({ kind: "comment" as const, comment: text });

/** kube-proxy formats probabilities with %0.10f: 1/(n−i) for endpoint i of n. */
export function endpointProbability(i: number, n: number): number {
  return Number((1 / (n - i)).toFixed(10));
}

export interface ServiceTables {
  nat: ChainDump[];
  filter: ChainDump[];
  /** Rules jumping from the built-in chains into kube-proxy's. */
  hooks: { table: "nat" | "filter"; chain: string; rule: IptablesRule }[];
}

/** What one Service contributes: entries of the shared chains, and its own chains. */
interface ServiceParts {
  services: IptablesRule[];
  nodePorts: IptablesRule[];
  rejects: IptablesRule[];
  chains: [string, IptablesRule[]][];
}

/**
 * Each Service's rules, computed once per Service value (services are values: a change is a new
 * object) and cluster CIDR. With 10,000 Services a sync reuses 9,999 services' rule objects, so
 * comparing what a node holds with what it should hold is mostly comparing references.
 */
export class ServiceRuleCache {
  private readonly parts = new WeakMap<Service, { clusterCidr: string; parts: ServiceParts }>();
  private readonly tails = new Map<string, IptablesRule>();

  get(service: Service, clusterCidr: string): ServiceParts {
    const known = this.parts.get(service);
    if (known?.clusterCidr === clusterCidr) return known.parts;
    const parts = serviceParts(service, clusterCidr);
    this.parts.set(service, { clusterCidr, parts });
    return parts;
  }

  /** KUBE-SERVICES' last rule, sending a node's own address to KUBE-NODEPORTS. */
  nodePortsRule(nodeAddress: string): IptablesRule {
    let rule = this.tails.get(nodeAddress);
    if (!rule) {
      rule = {
        destination: `${nodeAddress}/32`,
        matches: [comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain")],
        target: { kind: "jump", chain: "KUBE-NODEPORTS" },
      };
      this.tails.set(nodeAddress, rule);
    }
    return rule;
  }
}

function serviceParts(service: Service, clusterCidr: string): ServiceParts {
  const parts: ServiceParts = { services: [], nodePorts: [], rejects: [], chains: [] };
  for (const port of service.ports) {
    const name = servicePortName(service, port);
    const proto = port.protocol;
    const toService = { destination: `${service.clusterIP}/32`, protocol: proto };
    if (service.endpoints.length === 0) {
      // No endpoints: kube-proxy rejects in the filter table rather than letting the packet wander.
      parts.rejects.push({
        ...toService,
        matches: [comment(`${name} has no endpoints`), { kind: proto, dport: port.port }],
        target: { kind: "REJECT", rejectWith: "icmp-port-unreachable" },
      });
      continue;
    }
    const svc = serviceChain(service, port);
    parts.services.push({
      ...toService,
      matches: [comment(`${name} cluster IP`), { kind: proto, dport: port.port }],
      target: { kind: "jump", chain: svc },
    });
    const svcRules: IptablesRule[] = [
      // Traffic from outside the pod network to a ClusterIP is masqueraded, so replies come back through this node.
      {
        source: `!${clusterCidr}`,
        ...toService,
        matches: [comment(`${name} cluster IP`), { kind: proto, dport: port.port }],
        target: { kind: "jump", chain: "KUBE-MARK-MASQ" },
      },
    ];
    const sepChains: [string, IptablesRule[]][] = [];
    const n = service.endpoints.length;
    service.endpoints.forEach((ip, i) => {
      const endpoint = `${ip}:${port.targetPort}`;
      const sep = endpointChain(service, port, endpoint);
      svcRules.push({
        matches: [
          comment(`${name} -> ${endpoint}`),
          ...(i < n - 1 ? [{ kind: "statistic" as const, probability: endpointProbability(i, n) }] : []),
        ],
        target: { kind: "jump", chain: sep },
      });
      sepChains.push([
        sep,
        [
          { source: `${ip}/32`, matches: [comment(name)], target: { kind: "jump", chain: "KUBE-MARK-MASQ" } },
          {
            protocol: proto,
            matches: [comment(name), { kind: proto }],
            target: { kind: "DNAT", toDestination: endpoint },
          },
        ],
      ]);
    });
    parts.chains.push(...sepChains, [svc, svcRules]);
    if (port.nodePort !== undefined) {
      parts.nodePorts.push(
        {
          protocol: proto,
          matches: [comment(name), { kind: proto, dport: port.nodePort }],
          target: { kind: "jump", chain: "KUBE-MARK-MASQ" },
        },
        {
          protocol: proto,
          matches: [comment(name), { kind: proto, dport: port.nodePort }],
          target: { kind: "jump", chain: svc },
        },
      );
    }
  }
  return parts;
}

const byName = new Intl.Collator().compare;

const MARK_MASQ: IptablesRule[] = [{ target: { kind: "MARK", value: MASQ_MARK, mask: MASQ_MARK } }];
const POSTROUTING: IptablesRule[] = [
  {
    matches: [{ kind: "mark", value: MASQ_MARK, mask: MASQ_MARK, negated: true }],
    target: { kind: "RETURN" },
  },
  { target: { kind: "MARK", value: MASQ_MARK, mask: 0 } },
  {
    matches: [comment("kubernetes service traffic requiring SNAT")],
    target: { kind: "MASQUERADE", randomFully: true },
  },
];

/**
 * The tables kube-proxy would write on a node for these services. NodePort traffic is matched by
 * the node's own address (`nodeAddress`): kube-proxy uses `-m addrtype --dst-type LOCAL`, which
 * podnet's iptables model does not have, and on a node with one address the two agree.
 */
export function serviceTables(
  services: Iterable<Service>,
  clusterCidr: string,
  nodeAddress: string,
  cache = new ServiceRuleCache(),
): ServiceTables {
  const nat = new Map<string, IptablesRule[]>([
    ["KUBE-SERVICES", []],
    ["KUBE-NODEPORTS", []],
    ["KUBE-MARK-MASQ", MARK_MASQ],
    ["KUBE-POSTROUTING", POSTROUTING],
  ]);
  const filter = new Map<string, IptablesRule[]>([["KUBE-SERVICES", []]]);
  const sorted = [...services].sort((a, b) => byName(`${a.namespace}/${a.name}`, `${b.namespace}/${b.name}`));
  const natServices = nat.get("KUBE-SERVICES")!;
  const nodePorts = nat.get("KUBE-NODEPORTS")!;
  const rejects = filter.get("KUBE-SERVICES")!;
  for (const service of sorted) {
    const parts = cache.get(service, clusterCidr);
    natServices.push(...parts.services);
    nodePorts.push(...parts.nodePorts);
    rejects.push(...parts.rejects);
    for (const [name, rules] of parts.chains) nat.set(name, rules);
  }
  natServices.push(cache.nodePortsRule(nodeAddress));
  const portals = {
    matches: [comment("kubernetes service portals")],
    target: { kind: "jump" as const, chain: "KUBE-SERVICES" },
  };
  return {
    nat: [...nat].map(([name, rules]) => ({ name, rules })),
    filter: [...filter].map(([name, rules]) => ({ name, rules })),
    hooks: [
      { table: "nat", chain: "PREROUTING", rule: portals },
      { table: "nat", chain: "OUTPUT", rule: portals },
      {
        table: "nat",
        chain: "POSTROUTING",
        rule: {
          matches: [comment("kubernetes postrouting rules")],
          target: { kind: "jump", chain: "KUBE-POSTROUTING" },
        },
      },
      { table: "filter", chain: "FORWARD", rule: portals },
      { table: "filter", chain: "OUTPUT", rule: portals },
    ],
  };
}
