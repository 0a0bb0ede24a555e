/**
 * networking.k8s.io/v1 NetworkPolicy as users write it, validated by zod with the API server's own
 * rules (selector operators and values, ipBlock excepts inside their CIDR, endPort only with a
 * numeric port), plus v1 Namespace for the labels namespace selectors read. Unknown fields are
 * errors, as everywhere in podnet; SCTP is refused in words, since no podnet backend carries it.
 */
import { Ipv4Prefix, isIpv4, parseIpv4, quoteInput as quoted } from "@podnet/core";
import { z } from "zod";

/** A DNS-1123 label or subdomain, as Kubernetes object names are. */
export const ObjectName = z.string().regex(/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, {
  error: (issue) =>
    `${quoted(issue.input)} is not a valid name (1 to 253 lowercase letters, digits, "-" and ".", starting and ending with a letter or digit)`,
});

/** A namespace's name: a DNS-1123 label (no "." as an object name may have). */
export const NamespaceName = z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, {
  error: (issue) =>
    `${quoted(issue.input)} is not a namespace name (a DNS label: up to 63 lowercase letters, digits and "-")`,
});

/** A label key's name, and a label value: up to 63 letters, digits, "-", "_" and ".", alphanumeric at both ends. */
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
/** A label key's optional prefix: a DNS subdomain of up to 253 characters. */
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const isLabelKey = (key: string) => {
  const slash = key.indexOf("/");
  return slash < 0
    ? LABEL_NAME.test(key)
    : DNS_SUBDOMAIN.test(key.slice(0, slash)) && LABEL_NAME.test(key.slice(slash + 1));
};

/** A label key as the API server takes it (`app`, `kubernetes.io/metadata.name`). */
export const LabelKey = z.string().refine(isLabelKey, {
  error: (issue) =>
    `${quoted(issue.input)} is not a label key (a name of up to 63 letters, digits, "-", "_" and ".", alphanumeric at both ends, after an optional DNS prefix and "/")`,
});

/** A label value: empty, or up to 63 letters, digits, "-", "_" and ".", alphanumeric at both ends. */
export const LabelValue = z.string().refine((v) => v === "" || LABEL_NAME.test(v), {
  error: (issue) =>
    `${quoted(issue.input)} is not a label value (up to 63 letters, digits, "-", "_" and ".", alphanumeric at both ends, or empty)`,
});

/** Labels, or a selector's matchLabels: keys and values as the API server checks them. */
export const Labels = z.record(LabelKey, LabelValue);
/**
 * Annotations: keys as label keys, values any text (kubectl's last-applied-configuration is a whole
 * object as JSON). Read, never used: a manifest exported from a cluster must load as it is.
 */
export const Annotations = z.record(LabelKey, z.string());

export const LabelSelectorRequirementSchema = z
  .strictObject({
    key: LabelKey,
    operator: z.enum(["In", "NotIn", "Exists", "DoesNotExist"]),
    values: z.array(LabelValue).optional(),
  })
  .superRefine((req, ctx) => {
    const has = (req.values?.length ?? 0) > 0;
    if ((req.operator === "In" || req.operator === "NotIn") && !has)
      ctx.addIssue({
        code: "custom",
        path: ["values"],
        message: `operator ${req.operator} needs at least one value`,
      });
    if ((req.operator === "Exists" || req.operator === "DoesNotExist") && has)
      ctx.addIssue({ code: "custom", path: ["values"], message: `operator ${req.operator} takes no values` });
  });

/**
 * An optional field as the API server reads it: `null` (what an empty YAML value such as `from:`
 * is) means absent, as Go's decoding leaves the field unset.
 */
const absentOrNull = <T extends z.ZodType>(schema: T) => nullAsAbsent(schema.optional());
/** `schema` reading `null` as absent (for one whose default stands in for it). */
const nullAsAbsent = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === null ? undefined : value), schema);

export const LabelSelectorSchema = z.strictObject({
  matchLabels: absentOrNull(Labels),
  matchExpressions: absentOrNull(z.array(LabelSelectorRequirementSchema)),
});

function prefixError(text: unknown): string | undefined {
  try {
    Ipv4Prefix.parse(String(text));
    return undefined;
  } catch (error) {
    return `${quoted(text)} is not an IPv4 CIDR (${(error as Error).message.replace(/^[^:]*: /, "")})`;
  }
}

/**
 * An ipBlock's CIDR as the API server takes it: host bits set are dropped (Go's ParseCIDR gives the
 * network; the API server warns at most), so "10.0.2.7/24" is 10.0.2.0/24.
 */
function networkOf(text: unknown): string | undefined {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(String(text));
  if (!m || !isIpv4(m[1]!) || Number(m[2]) > 32) return undefined;
  return new Ipv4Prefix(parseIpv4(m[1]!), Number(m[2])).toString();
}

const Cidr = z
  .string()
  .refine((text) => prefixError(text) === undefined || networkOf(text) !== undefined, {
    error: (issue) => prefixError(issue.input) ?? `${quoted(issue.input)} is not an IPv4 CIDR`,
  })
  .transform((text) => networkOf(text) ?? text);

export const IpBlockSchema = z
  .strictObject({ cidr: Cidr, except: absentOrNull(z.array(Cidr)) })
  .superRefine((block, ctx) => {
    // Zod runs this check even when a field's own check failed: a bad CIDR is that check's to report.
    if (prefixError(block.cidr) !== undefined) return;
    const outer = Ipv4Prefix.parse(block.cidr);
    for (const [i, text] of (block.except ?? []).entries()) {
      if (prefixError(text) !== undefined) continue;
      const inner = Ipv4Prefix.parse(text);
      if (!outer.containsPrefix(inner) || inner.length <= outer.length)
        ctx.addIssue({
          code: "custom",
          path: ["except", i],
          message: `${text} must be strictly within ${block.cidr}`,
        });
    }
  });

export const PeerSchema = z
  .strictObject({
    podSelector: absentOrNull(LabelSelectorSchema),
    namespaceSelector: absentOrNull(LabelSelectorSchema),
    ipBlock: absentOrNull(IpBlockSchema),
  })
  .superRefine((peer, ctx) => {
    const selectors = peer.podSelector !== undefined || peer.namespaceSelector !== undefined;
    if (peer.ipBlock && selectors)
      ctx.addIssue({
        code: "custom",
        path: ["ipBlock"],
        message: "ipBlock may not be combined with podSelector or namespaceSelector in one peer",
      });
    if (!peer.ipBlock && !selectors)
      ctx.addIssue({
        code: "custom",
        message: "a peer needs podSelector, namespaceSelector or ipBlock",
      });
  });

/** An IANA service name, as a named container port is (at most 15 characters, a letter in it). */
const PORT_NAME = /^(?=.{1,15}$)(?=.*[a-z])[a-z0-9]+(-[a-z0-9]+)*$/;

export const PortNameSchema = z.string().regex(PORT_NAME, {
  error: (issue) =>
    `${quoted(issue.input)} is not a port name (at most 15 lowercase letters, digits and "-", with a letter among them)`,
});

const portNumber = z
  .number()
  .int()
  .min(1, { error: (i) => `${quoted(i.input)} is not a port (1-65535)` })
  .max(65535, { error: (i) => `${quoted(i.input)} is not a port (1-65535)` });

export const PolicyPortSchema = z
  .strictObject({
    protocol: nullAsAbsent(
      z
        .string()
        .default("TCP")
        .superRefine((p, ctx) => {
          if (p === "SCTP")
            ctx.addIssue({
              code: "custom",
              message: "SCTP is not supported: no podnet backend carries SCTP (use TCP or UDP)",
            });
          else if (p !== "TCP" && p !== "UDP")
            ctx.addIssue({ code: "custom", message: `${quoted(p)} is not a protocol (TCP or UDP)` });
        })
        .transform((p) => p as "TCP" | "UDP"),
    ),
    port: absentOrNull(
      z.union([portNumber, PortNameSchema], {
        error: (issue) => `${quoted(issue.input)} is not a port (1-65535) or a port's name`,
      }),
    ),
    endPort: absentOrNull(portNumber),
  })
  .superRefine((port, ctx) => {
    if (port.endPort === undefined) return;
    if (typeof port.port !== "number")
      ctx.addIssue({ code: "custom", path: ["endPort"], message: "endPort needs a numeric port" });
    else if (port.endPort < port.port)
      ctx.addIssue({
        code: "custom",
        path: ["endPort"],
        message: `endPort ${port.endPort} is below port ${port.port}`,
      });
  });

export const IngressRuleSchema = z.strictObject({
  from: absentOrNull(z.array(PeerSchema)),
  ports: absentOrNull(z.array(PolicyPortSchema)),
});

export const EgressRuleSchema = z.strictObject({
  to: absentOrNull(z.array(PeerSchema)),
  ports: absentOrNull(z.array(PolicyPortSchema)),
});

/** The metadata podnet reads, plus the fields kubectl and controllers commonly leave in a manifest. */
export const MetadataSchema = z.strictObject({
  name: ObjectName,
  namespace: NamespaceName.default("default"),
  labels: Labels.optional(),
  annotations: Annotations.optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.number().optional(),
  creationTimestamp: z.string().nullable().optional(),
  // The API server's and controllers' bookkeeping (`kubectl get -o yaml`, with --show-managed-fields,
  // of an object an operator owns): nothing in them changes the network.
  generateName: z.string().optional(),
  selfLink: z.string().optional(),
  finalizers: z.array(z.string()).optional(),
  ownerReferences: z.array(z.unknown()).optional(),
  managedFields: z.array(z.unknown()).optional(),
  deletionTimestamp: z.string().nullable().optional(),
  deletionGracePeriodSeconds: z.number().nullable().optional(),
});

export const NetworkPolicySchema = z.strictObject({
  apiVersion: z.literal("networking.k8s.io/v1"),
  kind: z.literal("NetworkPolicy"),
  metadata: MetadataSchema,
  spec: z.strictObject({
    // Optional in the API (kubernetes/kubernetes#131354): absent, it selects every pod of the namespace.
    podSelector: z.preprocess((value) => value ?? {}, LabelSelectorSchema),
    policyTypes: absentOrNull(z.array(z.enum(["Ingress", "Egress"]))),
    ingress: absentOrNull(z.array(IngressRuleSchema)),
    egress: absentOrNull(z.array(EgressRuleSchema)),
  }),
});

export const NamespaceSchema = z.strictObject({
  apiVersion: z.literal("v1"),
  kind: z.literal("Namespace"),
  metadata: MetadataSchema.omit({ namespace: true }).extend({ name: NamespaceName }),
  spec: z.strictObject({ finalizers: z.array(z.string()).optional() }).optional(),
  status: z.unknown().optional(),
});

export type LabelSelector = z.output<typeof LabelSelectorSchema>;
export type NetworkPolicy = z.output<typeof NetworkPolicySchema>;
export type NetworkPolicyInput = z.input<typeof NetworkPolicySchema>;
export type PolicyPeer = z.output<typeof PeerSchema>;
export type PolicyPort = z.output<typeof PolicyPortSchema>;
export type NamespaceManifest = z.output<typeof NamespaceSchema>;

/** The label every namespace carries since Kubernetes 1.21: selectors may name a namespace by it. */
export const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";

/**
 * policyTypes as the API server defaults them: Ingress always, Egress when the policy has egress
 * rules, also for an empty list (`len(PolicyTypes) == 0` in its defaulting: `policyTypes: []` is
 * not "no types"). Kept apart from the written value so explanations can say which applied.
 */
export function policyTypes(policy: NetworkPolicy): {
  ingress: boolean;
  egress: boolean;
  defaulted: boolean;
} {
  const written = policy.spec.policyTypes;
  if (written?.length)
    return { ingress: written.includes("Ingress"), egress: written.includes("Egress"), defaulted: false };
  return { ingress: true, egress: (policy.spec.egress?.length ?? 0) > 0, defaulted: true };
}

export const policyKey = (policy: NetworkPolicy) => `${policy.metadata.namespace}/${policy.metadata.name}`;
