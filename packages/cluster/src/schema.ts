/**
 * The scenario file: a cluster described once — the underlay, nodes, pods made of containers,
 * services, traffic to probe, timed events — validated by zod at the edge. `scenarioJsonSchema()`
 * is what `podnet schema` prints for editors.
 */
import { Ipv4Prefix, isIpv4, quoteInput as quoted } from "@podnet/core";
import { PROXY_NAMES } from "@podnet/route-manager";
import { LabelsSchema, NamespaceName, NetworkPolicySchema, ObjectName, PortNameSchema } from "@podnet/policy";
import { z } from "zod";

const NAME = /^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/;

/**
 * Probes a scenario may list: each is walked and reported on by every run, and more than this many
 * are a generated list better made by the reachability matrix (200,000 took 1.9 GB to run).
 */
export const MAX_TRAFFIC = 10_000;

/** A headless Service's clusterIP. */
export const HEADLESS = "None";

/** What a Service's clusterIP may be written as: an IPv4 address, or None. */
export const isClusterIP = (text: string) => text === HEADLESS || isIpv4(text);

/** Why `svc/<name>` of a headless Service is no target: clients find its pods by DNS, not through it. */
export const headlessTarget = (name: string, endpoints?: number) =>
  `service ${name} is headless (clusterIP: None): it has no address, and kube-proxy holds nothing for it; its clients ask DNS, which answers with ${endpoints === 1 ? "its pod's address" : `its ${endpoints === undefined ? "" : `${endpoints} `}pods' addresses`}: send to a pod`;

export const Ipv4 = z
  .string()
  .refine(isIpv4, { error: (issue) => `${quoted(issue.input)} is not an IPv4 address` });

export const Cidr = z.string().refine(
  (text) => {
    try {
      Ipv4Prefix.parse(text);
      return true;
    } catch {
      return false;
    }
  },
  {
    error: (issue) => {
      try {
        Ipv4Prefix.parse(String(issue.input));
        return `${quoted(issue.input)} is not a CIDR`;
      } catch (error) {
        return `${quoted(issue.input)} is not a CIDR (${(error as Error).message.replace(/^[^:]*: /, "")})`;
      }
    },
  },
);

const Name = z.string().regex(NAME, {
  error: (issue) =>
    `${quoted(issue.input)} is not a valid name (1 to 63 lowercase letters, digits, "-" and ".", starting and ending with a letter or digit)`,
});
const inRange = (what: string, min: number, max: number) => {
  const error = (issue: { input?: unknown }) => `${quoted(issue.input)} is not ${what} (${min}-${max})`;
  // abort: a number both fractional (or past 2^53) and out of range is one mistake, said once.
  return z.number({ error }).int({ error, abort: true }).min(min, { error }).max(max, { error });
};
const Port = inRange("a port", 1, 65535);
/** tcp or udp; Kubernetes' spelling (TCP, UDP) is taken too, so that a Pod's or Service's ports paste as they are. */
const Protocol = z
  .enum(["tcp", "udp", "TCP", "UDP"], {
    error: (issue) =>
      `${quoted(issue.input)} is not a protocol (tcp or udp; TCP and UDP as Kubernetes writes them)`,
  })
  .transform((p) => p.toLowerCase() as "tcp" | "udp");

export const SegmentSchema = z.strictObject({
  // A segment is a bridge of that name in the underlay's namespace: Linux names devices in 15 bytes.
  name: Name.max(15, {
    error: (issue) =>
      `${quoted(issue.input)} is longer than 15 characters: a segment is a bridge in the underlay namespace, and Linux names a device in 15 at most`,
  }),
  subnet: Cidr,
  /** The address nodes on this segment route everything else through. */
  gateway: Ipv4.optional(),
  mtu: z.number().int().min(576).max(9216).default(1500),
});

export const RouterSchema = z.strictObject({
  name: Name,
  interfaces: z.array(z.strictObject({ segment: Name, address: Ipv4 })).min(1),
  /** Extra static routes on the router ("10.9.0.0/16 via 10.100.1.5"). */
  routes: z.array(z.strictObject({ dst: Cidr, via: Ipv4 })).default([]),
});

export const HostSchema = z.strictObject({
  name: Name,
  segment: Name,
  address: Ipv4,
  listen: z.array(z.strictObject({ port: Port, protocol: Protocol.default("tcp") })).default([]),
});

export const NodeSchema = z.strictObject({
  name: Name,
  segment: Name,
  address: Ipv4,
  /** Pinned pod subnet; otherwise the node CIDR allocator assigns one. */
  podCidr: Cidr.optional(),
});

export const ContainerSchema = z.strictObject({
  name: Name,
  ports: z
    .array(
      z.strictObject({
        /** A named port (an IANA service name) NetworkPolicy ports may refer to. */
        name: PortNameSchema.optional(),
        containerPort: Port,
        protocol: Protocol.default("tcp"),
        hostPort: Port.optional(),
        /**
         * The node address the hostPort answers on (Kubernetes' `hostIP`): the node's own address or
         * 127.0.0.1; unset or 0.0.0.0, every address of the node.
         */
        hostIP: Ipv4.optional(),
      }),
    )
    .default([]),
});

export const PodSchema = z.strictObject({
  name: Name,
  /** The pod's Kubernetes namespace: what NetworkPolicy selectors see. Pod names stay unique cluster-wide. */
  namespace: NamespaceName.default("default"),
  node: Name,
  labels: LabelsSchema.default({}),
  containers: z
    .array(ContainerSchema)
    .min(1)
    .default([{ name: "app", ports: [] }]),
});

/** A Service's name: a DNS-1035 label, as the API server requires (a name that can be a DNS label). */
const ServiceName = z.string().regex(/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/, {
  error: (issue) =>
    `${quoted(issue.input)} is not a valid Service name (a DNS-1035 label: lowercase letters, digits and "-", starting with a letter, at most 63)`,
});
/** A Service port's name: empty, or a DNS-1123 label (it names rules and chains). */
const ServicePortName = z.string().regex(/^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)?$/, {
  error: (issue) =>
    `${quoted(issue.input)} is not a valid port name (a DNS-1123 label: lowercase letters, digits and "-", at most 63)`,
});

/** A Service's traffic policy; unset is Cluster, as the API server defaults it. */
const TrafficPolicy = z
  .enum(["Cluster", "Local"], {
    error: (issue) => `${quoted(issue.input)} is not a traffic policy (Cluster or Local)`,
  })
  .optional();

export const ServiceSchema = z.strictObject({
  name: ServiceName,
  namespace: NamespaceName.default("default"),
  type: z
    .enum(["ClusterIP", "NodePort"], {
      error: (issue) =>
        issue.input === "LoadBalancer" || issue.input === "ExternalName"
          ? `${issue.input} is not modelled (ClusterIP or NodePort): a LoadBalancer needs a cloud's load balancer, an ExternalName only a DNS answer`
          : `${quoted(issue.input)} is not a Service type (ClusterIP or NodePort)`,
    })
    .default("ClusterIP"),
  /** An address in the service CIDR, or None: a headless Service (no address; kube-proxy skips it). */
  clusterIP: z
    .string()
    .refine(isClusterIP, {
      error: (issue) => `${quoted(issue.input)} is not an IPv4 address, or None (a headless Service)`,
    })
    .optional(),
  selector: LabelsSchema,
  /**
   * Local: a NodePort sends only to endpoints on the node it arrived at, keeping the client's
   * address (no masquerade); a node without one drops the connection. NodePort Services only.
   */
  externalTrafficPolicy: TrafficPolicy,
  /** Local: a ClusterIP reaches only endpoints on the client's own node; without one it is dropped. */
  internalTrafficPolicy: TrafficPolicy,
  /** ClientIP: a client's connections stay with the endpoint its first one reached (None: each draws). */
  sessionAffinity: z
    .enum(["None", "ClientIP"], {
      error: (issue) => `${quoted(issue.input)} is not a session affinity (None or ClientIP)`,
    })
    .optional(),
  /**
   * How long a client stays with its endpoint after its last connection: 1 to 86400 s. Each level
   * may be left out or null, as the API server takes it: its defaulting gives 10800.
   */
  sessionAffinityConfig: z
    .strictObject({
      clientIP: z
        .strictObject({ timeoutSeconds: inRange("a timeout in seconds", 1, 86400).nullish() })
        .nullish(),
    })
    .nullish(),
  ports: z
    .array(
      z.strictObject({
        name: ServicePortName.default(""),
        port: Port,
        /** A number, or a container port's name: each selected pod's port of that name and protocol. */
        targetPort: z
          .union([Port, PortNameSchema], {
            error: (issue) => `${quoted(issue.input)} is not a port (1-65535) or a container port's name`,
          })
          .optional(),
        protocol: Protocol.default("tcp"),
        nodePort: inRange("a nodePort", 30000, 32767).optional(),
      }),
    )
    .min(1),
});

export const ProbeSchema = z.strictObject({
  /** A pod ("web"), a container ("web/nginx"), a node or a host. */
  from: z.string(),
  /** A pod, node or host name, an address, or "svc/<name>[.<namespace>]"; ":port" may follow. */
  to: z.string(),
  protocol: z
    .enum(["icmp", "tcp", "udp", "ICMP", "TCP", "UDP"], {
      error: (issue) => `${quoted(issue.input)} is not a protocol (icmp, tcp or udp; or ICMP, TCP, UDP)`,
    })
    .default("icmp")
    .transform((p) => p.toLowerCase() as "icmp" | "tcp" | "udp"),
  port: Port.optional(),
  size: z.number().int().min(0).max(65000).optional(),
});

export const EventSchema = z.discriminatedUnion("action", [
  z.strictObject({ at: z.number().nonnegative(), action: z.literal("addNode"), node: NodeSchema }),
  z.strictObject({ at: z.number().nonnegative(), action: z.literal("removeNode"), node: Name }),
  z.strictObject({ at: z.number().nonnegative(), action: z.literal("addPod"), pod: PodSchema }),
  z.strictObject({ at: z.number().nonnegative(), action: z.literal("removePod"), pod: Name }),
  z.strictObject({ at: z.number().nonnegative(), action: z.literal("setService"), service: ServiceSchema }),
  /** `kubectl delete service <name> [-n <namespace>]`: the only Service of the name when no namespace is said. */
  z.strictObject({
    at: z.number().nonnegative(),
    action: z.literal("removeService"),
    service: ServiceName,
    namespace: NamespaceName.optional(),
  }),
  /** `kubectl apply` of one NetworkPolicy: a policy with its namespace/name is replaced. */
  z.strictObject({
    at: z.number().nonnegative(),
    action: z.literal("setNetworkPolicy"),
    networkPolicy: NetworkPolicySchema,
  }),
  /** `kubectl delete networkpolicy <name> -n <namespace>`. */
  z.strictObject({
    at: z.number().nonnegative(),
    action: z.literal("removeNetworkPolicy"),
    networkPolicy: z.strictObject({ name: ObjectName, namespace: NamespaceName.default("default") }),
  }),
]);

/** Kubernetes' documented envelope (nodes, pods, Services), which podnet takes as its own limit. */
export const SCENARIO_LIMITS = { nodes: 5_000, pods: 150_000, services: 10_000 } as const;

export const plural = (n: number, one: string, many = `${one}s`) =>
  `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;

/** Why `count` nodes, pods or Services are refused, in the one wording the schema and the check share. */
export const beyondEnvelope = (count: number, kind: "node" | "pod" | "Service") =>
  `${plural(count, kind)} is beyond Kubernetes' envelope of ${plural(SCENARIO_LIMITS[`${kind.toLowerCase()}s` as keyof typeof SCENARIO_LIMITS], kind)}, which podnet supports`;

/** Large clusters are described, not listed: `nodes` nodes on one segment, `podsPerNode` pods each. */
export const GeneratorSchema = z.strictObject({
  // The envelope's bound here too, so an editor using `podnet schema` refuses what podnet refuses.
  nodes: z
    .number()
    .int()
    .min(1)
    .max(SCENARIO_LIMITS.nodes, { error: (issue) => beyondEnvelope(Number(issue.input), "node") }),
  podsPerNode: z.number().int().min(0).max(250),
  segment: Name,
  /** First node address; the rest follow in order. */
  firstAddress: Ipv4,
  labels: LabelsSchema.default({ app: "generated" }),
});

/** A namespace's labels, for NetworkPolicy namespace selectors (kubernetes.io/metadata.name is implied). */
export const NamespaceSpecSchema = z.strictObject({
  name: NamespaceName,
  labels: LabelsSchema.default({}),
});

export const ScenarioSchema = z.strictObject({
  name: Name,
  description: z.string().default(""),
  /** kube-proxy's mode for the Services: its iptables chains (the default) or its nftables table. */
  proxy: z.enum(PROXY_NAMES).optional(),
  cluster: z
    .strictObject({
      clusterCidr: Cidr.default("10.0.0.0/16"),
      nodeMaskSize: z.number().int().min(8).max(30).default(24),
      serviceCidr: Cidr.default("10.96.0.0/12"),
    })
    .prefault({}),
  underlay: z.strictObject({
    segments: z.array(SegmentSchema).min(1),
    routers: z.array(RouterSchema).default([]),
    hosts: z.array(HostSchema).default([]),
  }),
  nodes: z.array(NodeSchema).default([]),
  generate: GeneratorSchema.optional(),
  pods: z.array(PodSchema).default([]),
  services: z.array(ServiceSchema).default([]),
  namespaces: z.array(NamespaceSpecSchema).default([]),
  /** networking.k8s.io/v1 NetworkPolicy objects, exactly as `kubectl apply` takes them. */
  networkPolicies: z.array(NetworkPolicySchema).default([]),
  /**
   * Kubernetes manifest files (multi-document YAML: Namespace and NetworkPolicy objects), relative
   * to the scenario file; their objects join `namespaces` and `networkPolicies`.
   */
  manifests: z.array(z.string().min(1)).default([]),
  traffic: z
    .array(ProbeSchema)
    .max(MAX_TRAFFIC, {
      error: (issue) =>
        `${(issue.input as unknown[]).length.toLocaleString("en-US")} probes: a scenario lists at most ${MAX_TRAFFIC.toLocaleString("en-US")} (the reachability matrix checks every pair without a list)`,
    })
    .default([]),
  events: z.array(EventSchema).default([]),
});

export type Scenario = z.output<typeof ScenarioSchema>;
export type ScenarioInput = z.input<typeof ScenarioSchema>;
export type NodeSpec = z.output<typeof NodeSchema>;
export type PodSpec = z.output<typeof PodSchema>;
export type ServiceSpec = z.output<typeof ServiceSchema>;
export type ProbeSpec = z.output<typeof ProbeSchema>;
export type EventSpec = z.output<typeof EventSchema>;
export type NamespaceSpec = z.output<typeof NamespaceSpecSchema>;

/** The JSON Schema editors use to complete and check scenario files. */
export function scenarioJsonSchema(): Record<string, unknown> {
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "podnet scenario",
    ...z.toJSONSchema(ScenarioSchema, { io: "input" }),
  };
}
