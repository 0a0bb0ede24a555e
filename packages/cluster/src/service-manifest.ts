/**
 * A `v1` Service object as `kubectl get service -o yaml` prints it, read into a scenario's Service:
 * the fields podnet models are the scenario's own (their schemas are shared, so a mistake reads the
 * same in either place); the fields the API server or a controller fills in (clusterIPs, ipFamilies,
 * status…) are taken when they say what podnet models — one IPv4 ClusterIP — and refused in words
 * when they ask for more.
 */
import { quoteInput as quoted } from "@podnet/core";
import { MetadataSchema } from "@podnet/policy";
import { z } from "zod";
import { ServiceSchema, isClusterIP, type ServiceSpec } from "./schema.js";

const spec = ServiceSchema.shape;
const ServicePortManifest = spec.ports.element.extend({
  /** A hint to implementations (http, h2c…): kube-proxy does not read it. */
  appProtocol: z.string().optional(),
});

const IPV6 = "IPv6 is not modelled: podnet's clusters are IPv4 only (dual-stack comes later)";

/** One of clusterIPs: an IPv4 address or None, as clusterIP; an IPv6 one is a second family. */
const ClusterIPsEntry = z.string().refine(isClusterIP, {
  error: (issue) =>
    String(issue.input).includes(":")
      ? IPV6
      : `${quoted(issue.input)} is not an IPv4 address, or None (a headless Service)`,
});

export const ServiceManifestSchema = z
  .strictObject({
    apiVersion: z.literal("v1"),
    kind: z.literal("Service"),
    // The Service's name as the scenario takes it (a DNS-1035 label), not any object's.
    metadata: MetadataSchema.extend({ name: spec.name }),
    spec: z
      .strictObject({
        type: spec.type,
        clusterIP: spec.clusterIP,
        /** The API server's copy of clusterIP, with a second family's address under dual-stack. */
        clusterIPs: z.array(ClusterIPsEntry).optional(),
        ipFamilies: z
          .array(z.enum(["IPv4", "IPv6"]))
          .refine((families) => !families.includes("IPv6"), { error: IPV6 })
          .optional(),
        ipFamilyPolicy: z
          .enum(["SingleStack", "PreferDualStack", "RequireDualStack"], {
            error: (issue) =>
              `${quoted(issue.input)} is not an IP family policy (SingleStack, PreferDualStack or RequireDualStack)`,
          })
          .refine((policy) => policy !== "RequireDualStack", { error: IPV6 })
          .optional(),
        // Optional in the API: a Service without one takes endpoints its owner writes by hand.
        selector: spec.selector.optional(),
        ports: z.array(ServicePortManifest).min(1),
        externalTrafficPolicy: spec.externalTrafficPolicy,
        internalTrafficPolicy: spec.internalTrafficPolicy,
        sessionAffinity: spec.sessionAffinity,
        sessionAffinityConfig: spec.sessionAffinityConfig,
        externalIPs: z
          .array(z.string())
          .max(0, {
            error:
              "externalIPs are not modelled: kube-proxy's rules for them would take traffic for addresses no node holds",
          })
          .optional(),
        // Every pod of a scenario is ready: publishing the unready ones changes nothing.
        publishNotReadyAddresses: z.boolean().optional(),
        // LoadBalancer Services only, and those are refused by type.
        allocateLoadBalancerNodePorts: z.boolean().optional(),
        // Routing by zone hints: podnet's nodes have no zones, so the EndpointSlice controller would set
        // no hints and kube-proxy would use every endpoint, as without it.
        trafficDistribution: z.string().optional(),
      })
      .superRefine((s, ctx) => {
        const ips = s.clusterIPs ?? [];
        // An IPv6 entry is refused on its own; two IPv4 ones are one family twice.
        if (ips.length > 1 && ips.every((ip) => !ip.includes(":")))
          ctx.addIssue({
            code: "custom",
            path: ["clusterIPs", 1],
            message:
              "a Service holds one ClusterIP per IP family (the API server: may not have more than one IP of each family)",
          });
        else if (ips.length === 1 && s.clusterIP !== undefined && ips[0] !== s.clusterIP)
          ctx.addIssue({
            code: "custom",
            path: ["clusterIPs", 0],
            message: `${quoted(ips[0])} differs from clusterIP ${s.clusterIP}: the API server keeps clusterIPs[0] equal to it`,
          });
      }),
    status: z.unknown().optional(),
  })
  .superRefine((service, ctx) => {
    if (service.spec.selector) return;
    // kubectl get services -o yaml in default always holds this one.
    const own = service.metadata.name === "kubernetes" && service.metadata.namespace === "default";
    ctx.addIssue({
      code: "custom",
      path: ["spec", "selector"],
      message: `required: a Service without a selector takes the endpoints its owner writes (EndpointSlices), which podnet does not read${own ? "; this is the API server's own Service: leave it out of the file" : ""}`,
    });
  });

/** The scenario's Service for a manifest's. */
export function serviceFromManifest(manifest: z.output<typeof ServiceManifestSchema>): ServiceSpec {
  const { metadata, spec: s } = manifest;
  const clusterIP = s.clusterIP ?? s.clusterIPs?.[0];
  return {
    name: metadata.name,
    namespace: metadata.namespace,
    type: s.type,
    ...(clusterIP !== undefined ? { clusterIP } : {}),
    selector: s.selector ?? {},
    ports: s.ports.map(({ appProtocol: _, ...port }) => port),
    ...(s.externalTrafficPolicy ? { externalTrafficPolicy: s.externalTrafficPolicy } : {}),
    ...(s.internalTrafficPolicy ? { internalTrafficPolicy: s.internalTrafficPolicy } : {}),
    ...(s.sessionAffinity ? { sessionAffinity: s.sessionAffinity } : {}),
    ...(s.sessionAffinityConfig !== undefined ? { sessionAffinityConfig: s.sessionAffinityConfig } : {}),
  };
}

/** A path in a scenario's Service (`ports[0].nodePort`) as the path in its manifest (`spec.ports[0].nodePort`). */
export const serviceManifestPath = (path: (string | number)[]): (string | number)[] =>
  path[0] === "name" || path[0] === "namespace" ? ["metadata", ...path] : ["spec", ...path];
