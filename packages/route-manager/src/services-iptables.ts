/**
 * kube-proxy's iptables mode, as data: the chains it writes for Services (KUBE-SERVICES →
 * KUBE-SVC-… → KUBE-SEP-… DNAT, statistic probabilities 1/(n−i), KUBE-MARK-MASQ and
 * KUBE-POSTROUTING), with its chain names (sha256 + base32, 16 characters) and comments.
 */
import { sha256 } from "@noble/hashes/sha2";
import { base32 } from "@scure/base";
import { sameRule, type ChainDump, type CtState, type IptablesRule, type NatTable } from "@podnet/netlink";
import {
  MASQ_MARK,
  compareServiceKeys,
  ServicePartsCache,
  portPlan,
  serviceKey,
  servicePortName,
  type Endpoint,
  type Service,
  type ServicePort,
} from "./services.js";

function hash16(text: string): string {
  return base32.encode(sha256(new TextEncoder().encode(text))).slice(0, 16);
}

/** The hash a Service port's chains share (KUBE-SVC-, KUBE-SVL-, KUBE-EXT-): made once per port. */
const portHash = (service: Service, port: ServicePort) =>
  hash16(servicePortName(service, port) + port.protocol);

export function serviceChain(service: Service, port: ServicePort): string {
  return `KUBE-SVC-${portHash(service, port)}`;
}

/** A NodePort's chain (kube-proxy's KUBE-EXT-…, the same hash as the Service port's KUBE-SVC-…). */
export function externalChain(service: Service, port: ServicePort): string {
  return `KUBE-EXT-${portHash(service, port)}`;
}

/** A port's chain over this node's endpoints (KUBE-SVL-…, the same hash). */
export function localChain(service: Service, port: ServicePort): string {
  return `KUBE-SVL-${portHash(service, port)}`;
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
export interface ServiceParts {
  services: IptablesRule[];
  nodePorts: IptablesRule[];
  /**
   * filter KUBE-SERVICES: a ClusterIP without endpoints, rejected; one whose internalTrafficPolicy
   * is Local and has none on this node, dropped.
   */
  rejects: IptablesRule[];
  /**
   * filter KUBE-EXTERNAL-SERVICES: a NodePort without endpoints, rejected on the node; one whose
   * externalTrafficPolicy is Local and has none on this node, dropped.
   */
  externals: IptablesRule[];
  chains: [string, IptablesRule[]][];
}

/** Each Service's iptables rules, made once per Service value (and local variant). */
export class ServiceRuleCache extends ServicePartsCache<ServiceParts> {
  constructor() {
    super(serviceParts);
  }
}

/**
 * KUBE-SERVICES' last rule, sending what is addressed to the node itself (any of its addresses,
 * 127.0.0.1 included: `-m addrtype --dst-type LOCAL`) to KUBE-NODEPORTS, the same on every node. A
 * NodePort on 127.0.0.1 works as kube-proxy's default `--iptables-localhost-nodeports` makes it: the
 * proxy turns route_localnet on (`IptablesProxy.sync`), and the NodePort's KUBE-MARK-MASQ gives the
 * packet a source the endpoint can answer.
 */
const NODE_PORTS_RULE: IptablesRule = {
  matches: [
    comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain"),
    { kind: "addrtype", dstType: "LOCAL" },
  ],
  target: { kind: "jump", chain: "KUBE-NODEPORTS" },
};

/**
 * One Service's rules on a node (`node` matters only under a Local traffic policy), as kube-proxy's
 * syncProxyRules writes them: for each port, the ClusterIP's jump to its internal chain (KUBE-SVC, or
 * KUBE-SVL under internalTrafficPolicy: Local), the NodePort's to KUBE-EXT, the chains spreading
 * over endpoints, and filter rules for what has no endpoint to go to.
 */
function serviceParts(service: Service, clusterCidr: string, node: string | undefined): ServiceParts {
  const parts: ServiceParts = { services: [], nodePorts: [], rejects: [], externals: [], chains: [] };
  for (const port of service.ports) {
    const name = servicePortName(service, port);
    const proto = port.protocol;
    const toService = { destination: `${service.clusterIP}/32`, protocol: proto };
    const toNodePort = (why: string, target: IptablesRule["target"]): IptablesRule => ({
      protocol: proto,
      matches: [
        comment(`${name} ${why}`),
        { kind: "addrtype", dstType: "LOCAL" },
        { kind: proto, dport: port.nodePort },
      ],
      target,
    });
    const plan = portPlan(service, port, node);
    if (plan.all.length === 0) {
      // No endpoints: kube-proxy rejects in the filter table rather than letting the packet wander.
      parts.rejects.push({
        ...toService,
        matches: [comment(`${name} has no endpoints`), { kind: proto, dport: port.port }],
        target: { kind: "REJECT", rejectWith: "icmp-port-unreachable" },
      });
      // And its NodePort, on any of the node's own addresses, from INPUT and FORWARD.
      if (port.nodePort !== undefined)
        parts.externals.push(
          toNodePort("has no endpoints", { kind: "REJECT", rejectWith: "icmp-port-unreachable" }),
        );
      continue;
    }
    // sha256 per name was a tenth of a 10,000-Service full sync: one hash for the port's chains.
    const hash = portHash(service, port);
    const svc = `KUBE-SVC-${hash}`;
    const svl = `KUBE-SVL-${hash}`;
    // Traffic from outside the pod network to a ClusterIP is masqueraded, so that replies come back
    // through this node: the first rule of the chain the ClusterIP jumps to.
    const masquerade: IptablesRule = {
      source: `!${clusterCidr}`,
      ...toService,
      matches: [comment(`${name} cluster IP`), { kind: proto, dport: port.port }],
      target: { kind: "jump", chain: "KUBE-MARK-MASQ" },
    };
    const local = plan.local ?? [];
    if (plan.internalLocal && local.length === 0) {
      // Endpoints elsewhere only: the ClusterIP is dropped here (not rejected: it has endpoints).
      parts.rejects.push({
        ...toService,
        matches: [comment(`${name} has no local endpoints`), { kind: proto, dport: port.port }],
        target: { kind: "DROP" },
      });
    } else {
      parts.services.push({
        ...toService,
        matches: [comment(`${name} cluster IP`), { kind: proto, dport: port.port }],
        target: { kind: "jump", chain: plan.internalLocal ? svl : svc },
      });
    }
    const seps = new Map<string, IptablesRule[]>();
    const affinity = service.sessionAffinity;
    // Each endpoint's chain, and the rules of a chain spreading over `endpoints`: with session
    // affinity, first a jump for a client an endpoint's recent list holds (filed by its DNAT rule),
    // then the draw.
    const spread = (endpoints: readonly Endpoint[]): IptablesRule[] => {
      const n = endpoints.length;
      const sticky: IptablesRule[] = [];
      const draws = endpoints.map(({ ip, port: target }, i): IptablesRule => {
        const endpoint = `${ip}:${target}`;
        const sep = endpointChain(service, port, endpoint);
        const filed = affinity ? [{ kind: "recent" as const, mode: "set" as const, name: sep }] : [];
        seps.set(sep, [
          { source: `${ip}/32`, matches: [comment(name)], target: { kind: "jump", chain: "KUBE-MARK-MASQ" } },
          {
            protocol: proto,
            matches: [comment(name), ...filed, { kind: proto }],
            target: { kind: "DNAT", toDestination: endpoint },
          },
        ]);
        if (affinity)
          sticky.push({
            matches: [
              comment(`${name} -> ${endpoint}`),
              { kind: "recent", mode: "rcheck", name: sep, seconds: affinity.timeoutSeconds, reap: true },
            ],
            target: { kind: "jump", chain: sep },
          });
        return {
          matches: [
            comment(`${name} -> ${endpoint}`),
            ...(i < n - 1 ? [{ kind: "statistic" as const, probability: endpointProbability(i, n) }] : []),
          ],
          target: { kind: "jump", chain: sep },
        };
      });
      return [...sticky, ...draws];
    };
    const own: [string, IptablesRule[]][] = [];
    if (plan.cluster) own.push([svc, [...(plan.internalLocal ? [] : [masquerade]), ...spread(plan.cluster)]]);
    if (local.length) own.push([svl, [...(plan.internalLocal ? [masquerade] : []), ...spread(local)]]);
    parts.chains.push(...seps, ...own);
    if (port.nodePort === undefined) continue;
    // Since 1.24 a NodePort goes through the port's KUBE-EXT chain, where externalTrafficPolicy is
    // applied. Cluster: every packet is marked for masquerading (its endpoint may be on another node)
    // and goes on to KUBE-SVC. Local: a pod's or the node's own connection still goes to any endpoint
    // (the node's masqueraded); the rest only to this node's endpoints, keeping the client's address —
    // and where there are none, falls through untranslated to the DROP in KUBE-EXTERNAL-SERVICES.
    const ext = `KUBE-EXT-${hash}`;
    parts.nodePorts.push({
      protocol: proto,
      matches: [comment(name), { kind: proto, dport: port.nodePort }],
      target: { kind: "jump", chain: ext },
    });
    const external = `${name} external destinations`;
    const fromNode = { kind: "addrtype" as const, srcType: "LOCAL" as const };
    parts.chains.push([
      ext,
      plan.externalLocal
        ? [
            {
              source: clusterCidr,
              matches: [comment(`pod traffic for ${external}`)],
              target: { kind: "jump", chain: svc },
            },
            {
              matches: [comment(`masquerade LOCAL traffic for ${external}`), fromNode],
              target: { kind: "jump", chain: "KUBE-MARK-MASQ" },
            },
            {
              matches: [comment(`route LOCAL traffic for ${external}`), fromNode],
              target: { kind: "jump", chain: svc },
            },
            ...(local.length ? [{ target: { kind: "jump" as const, chain: svl } }] : []),
          ]
        : [
            {
              matches: [comment(`masquerade traffic for ${external}`)],
              target: { kind: "jump", chain: "KUBE-MARK-MASQ" },
            },
            { target: { kind: "jump", chain: svc } },
          ],
    ]);
    if (plan.externalLocal && local.length === 0)
      parts.externals.push(toNodePort("has no local endpoints", { kind: "DROP" }));
  }
  return parts;
}

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
 * The tables kube-proxy would write on a node for these services: the same on every node (NodePort
 * traffic is matched by `-m addrtype --dst-type LOCAL`, not by a node's address).
 */
export function serviceTables(
  services: Iterable<Service>,
  clusterCidr: string,
  cache = new ServiceRuleCache(),
  /** The node they are for: it matters only to Services with a Local traffic policy. */
  node?: string,
): ServiceTables {
  const sorted = [...services].sort((a, b) => compareServiceKeys(serviceKey(a), serviceKey(b)));
  return sortedServiceTables(
    sorted,
    sharedChains(sorted, clusterCidr, cache, node),
    clusterCidr,
    cache,
    node,
  );
}

/**
 * The entries every Service adds to kube-proxy's shared chains, in the Services' order: the same on
 * every node but for Services with a Local traffic policy.
 */
export interface SharedChains {
  /** nat KUBE-SERVICES without its last rule (the node's own NodePort jump). */
  services: IptablesRule[];
  nodePorts: IptablesRule[];
  /** filter KUBE-SERVICES. */
  rejects: IptablesRule[];
  /** filter KUBE-EXTERNAL-SERVICES. */
  externals: IptablesRule[];
}

export function sharedChains(
  sorted: readonly Service[],
  clusterCidr: string,
  cache: ServiceRuleCache,
  node?: string,
): SharedChains {
  const shared: SharedChains = { services: [], nodePorts: [], rejects: [], externals: [] };
  for (const service of sorted) {
    const parts = cache.get(service, clusterCidr, node);
    for (const r of parts.services) shared.services.push(r);
    for (const r of parts.nodePorts) shared.nodePorts.push(r);
    for (const r of parts.rejects) shared.rejects.push(r);
    for (const r of parts.externals) shared.externals.push(r);
  }
  return shared;
}

/** Whether two Service values contribute the same entries to the shared chains (absent: none). */
export function sameSharedEntries(a: ServiceParts | undefined, b: ServiceParts | undefined): boolean {
  const same = (x: IptablesRule[] = [], y: IptablesRule[] = []) =>
    x.length === y.length && x.every((r, i) => sameRule(r, y[i]!));
  return (
    same(a?.services, b?.services) &&
    same(a?.nodePorts, b?.nodePorts) &&
    same(a?.rejects, b?.rejects) &&
    same(a?.externals, b?.externals)
  );
}

/** The three shared chains as a node holds them: KUBE-SERVICES ends with the NodePort jump. */
export function nodeSharedChains(
  shared: SharedChains,
): { table: NatTable; name: string; rules: IptablesRule[] }[] {
  return [
    { table: "nat", name: "KUBE-SERVICES", rules: [...shared.services, NODE_PORTS_RULE] },
    { table: "nat", name: "KUBE-NODEPORTS", rules: shared.nodePorts },
    { table: "filter", name: "KUBE-SERVICES", rules: shared.rejects },
    { table: "filter", name: "KUBE-EXTERNAL-SERVICES", rules: shared.externals },
  ];
}

/** `serviceTables` for Services already in kube-proxy's order, with their shared entries. */
export function sortedServiceTables(
  sorted: readonly Service[],
  shared: SharedChains,
  clusterCidr: string,
  cache: ServiceRuleCache,
  node?: string,
): ServiceTables {
  const nat = new Map<string, IptablesRule[]>([
    ["KUBE-SERVICES", [...shared.services, NODE_PORTS_RULE]],
    ["KUBE-NODEPORTS", shared.nodePorts],
    ["KUBE-MARK-MASQ", MARK_MASQ],
    ["KUBE-POSTROUTING", POSTROUTING],
  ]);
  for (const service of sorted)
    for (const [name, rules] of cache.get(service, clusterCidr, node).chains) nat.set(name, rules);
  return {
    nat: [...nat].map(([name, rules]) => ({ name, rules })),
    filter: [
      { name: "KUBE-SERVICES", rules: shared.rejects },
      { name: "KUBE-EXTERNAL-SERVICES", rules: shared.externals },
      { name: "KUBE-FORWARD", rules: FORWARD },
      { name: "KUBE-FIREWALL", rules: FIREWALL },
      // Rules for LoadBalancer source ranges and health-check node ports: none without LoadBalancers.
      { name: "KUBE-PROXY-FIREWALL", rules: [] },
      { name: "KUBE-NODEPORTS", rules: [] },
    ],
    hooks: HOOKS,
  };
}

const ctstate = (...states: CtState[]) => ({ kind: "conntrack" as const, ctstate: states });

/**
 * filter KUBE-FORWARD: what conntrack calls INVALID is dropped (kube-proxy writes this unless
 * nf_conntrack_tcp_be_liberal is on; without nfacct, as here, with no counter), and forwarded traffic
 * kube-proxy marked for masquerading, or of a flow already accepted, is accepted whatever FORWARD
 * holds after (a DROP policy, as Docker sets).
 */
const FORWARD: IptablesRule[] = [
  { matches: [ctstate("INVALID")], target: { kind: "DROP" } },
  {
    matches: [comment("kubernetes forwarding rules"), { kind: "mark", value: MASQ_MARK, mask: MASQ_MARK }],
    target: { kind: "ACCEPT" },
  },
  {
    matches: [comment("kubernetes forwarding conntrack rule"), ctstate("RELATED", "ESTABLISHED")],
    target: { kind: "ACCEPT" },
  },
];

/**
 * filter KUBE-FIREWALL (kubelet's and, since 1.27, kube-proxy's): with route_localnet on for
 * localhost NodePorts, a packet from elsewhere to 127.0.0.0/8 would be taken; it is dropped unless it
 * belongs to a flow already accepted or a NodePort translated.
 */
const FIREWALL: IptablesRule[] = [
  {
    source: "!127.0.0.0/8",
    destination: "127.0.0.0/8",
    matches: [
      comment("block incoming localnet connections"),
      { ...ctstate("RELATED", "ESTABLISHED", "DNAT"), negated: true },
    ],
    target: { kind: "DROP" },
  },
];

const PORTALS: IptablesRule = {
  matches: [comment("kubernetes service portals")],
  target: { kind: "jump", chain: "KUBE-SERVICES" },
};

/** A filter jump for new connections only, as kube-proxy writes most of them. */
const newOnly = (chain: string, text: string): IptablesRule => ({
  matches: [ctstate("NEW"), comment(text)],
  target: { kind: "jump", chain },
});

/** filter's jump to KUBE-SERVICES (its rejects). */
const NEW_PORTALS = newOnly("KUBE-SERVICES", "kubernetes service portals");
/** New connections to a NodePort (from outside or from a pod) meet its no-endpoints REJECT here. */
const EXTERNAL_PORTALS = newOnly("KUBE-EXTERNAL-SERVICES", "kubernetes externally-visible service portals");
const LB_FIREWALL = newOnly("KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall");
const jump = (chain: string, text?: string): IptablesRule => ({
  ...(text ? { matches: [comment(text)] } : {}),
  target: { kind: "jump", chain },
});

/**
 * Rules jumping from the built-in chains into kube-proxy's, in the order they are ensured, each put
 * at the top of its chain when missing (`iptables -C || iptables -I`): kubelet's KUBE-FIREWALL
 * jumps first (kubelet starts before kube-proxy), then kube-proxy's list. A chain ends up holding
 * them in reverse, above whatever was there — a real node's INPUT reads KUBE-PROXY-FIREWALL,
 * KUBE-NODEPORTS, KUBE-EXTERNAL-SERVICES, KUBE-FIREWALL.
 */
const HOOKS: ServiceTables["hooks"] = [
  { table: "filter", chain: "INPUT", rule: jump("KUBE-FIREWALL") },
  { table: "filter", chain: "OUTPUT", rule: jump("KUBE-FIREWALL") },
  { table: "filter", chain: "INPUT", rule: EXTERNAL_PORTALS },
  { table: "filter", chain: "FORWARD", rule: EXTERNAL_PORTALS },
  { table: "filter", chain: "INPUT", rule: jump("KUBE-NODEPORTS", "kubernetes health check service ports") },
  { table: "filter", chain: "FORWARD", rule: NEW_PORTALS },
  { table: "filter", chain: "OUTPUT", rule: NEW_PORTALS },
  { table: "filter", chain: "FORWARD", rule: jump("KUBE-FORWARD", "kubernetes forwarding rules") },
  { table: "filter", chain: "INPUT", rule: LB_FIREWALL },
  { table: "filter", chain: "OUTPUT", rule: LB_FIREWALL },
  { table: "filter", chain: "FORWARD", rule: LB_FIREWALL },
  { table: "nat", chain: "OUTPUT", rule: PORTALS },
  { table: "nat", chain: "PREROUTING", rule: PORTALS },
  { table: "nat", chain: "POSTROUTING", rule: jump("KUBE-POSTROUTING", "kubernetes postrouting rules") },
];
