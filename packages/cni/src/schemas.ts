/**
 * CNI 1.0.0 / 1.1.0 types as zod schemas, for what crosses a process boundary (config on stdin,
 * result on stdout); unknown keys are kept, as the spec requires. Exported as `@podnet/cni/schemas`
 * so that the main entry (and podnet-ipam) loads no schema library: zod is an optional peer.
 */
import { z } from "zod";
import type * as T from "./types.js";

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export const DnsSchema = z.looseObject({
  nameservers: z.array(z.string()).optional(),
  domain: z.string().optional(),
  search: z.array(z.string()).optional(),
  options: z.array(z.string()).optional(),
});

export const RouteSchema = z.looseObject({
  dst: z.string(),
  gw: z.string().optional(),
  // 1.1.0
  mtu: z.number().int().optional(),
  advmss: z.number().int().optional(),
  priority: z.number().int().optional(),
  table: z.number().int().optional(),
  scope: z.number().int().optional(),
});

export const InterfaceSchema = z.looseObject({
  name: z.string(),
  mac: z.string().optional(),
  sandbox: z.string().optional(),
  mtu: z.number().int().optional(),
  socketPath: z.string().optional(),
  pciID: z.string().optional(),
});

export const IpConfigSchema = z.looseObject({
  address: z.string(),
  gateway: z.string().optional(),
  /** Index into `interfaces`; absent in the abbreviated result of an IPAM plugin. */
  interface: z.number().int().nonnegative().optional(),
});

export const ResultSchema = z.looseObject({
  cniVersion: z.string(),
  interfaces: z.array(InterfaceSchema).optional(),
  ips: z.array(IpConfigSchema).optional(),
  routes: z.array(RouteSchema).optional(),
  dns: DnsSchema.optional(),
});

export const ErrorResultSchema = z.looseObject({
  cniVersion: z.string().optional(),
  code: z.number().int(),
  msg: z.string(),
  details: z.string().optional(),
});

export const IpamConfigSchema = z.looseObject({ type: z.string() });

/** One plugin's configuration as the runtime hands it over (spec §3): list keys inserted. */
export const NetConfSchema = z.looseObject({
  cniVersion: z.string().optional(),
  name: z.string().regex(NAME, "must start with a letter or digit, then letters, digits, _ . -").optional(),
  type: z.string().regex(/^[^/\\]+$/, "a binary name, without / or \\"),
  capabilities: z.record(z.string(), z.boolean()).optional(),
  runtimeConfig: z.record(z.string(), z.unknown()).optional(),
  args: z.record(z.string(), z.unknown()).optional(),
  ipMasq: z.boolean().optional(),
  ipam: IpamConfigSchema.optional(),
  dns: DnsSchema.optional(),
  prevResult: ResultSchema.optional(),
});

/** A .conflist: the only form of network configuration since spec 1.0.0. */
export const NetConfListSchema = z.looseObject({
  cniVersion: z.string(),
  cniVersions: z.array(z.string()).optional(),
  name: z.string().regex(NAME, "must start with a letter or digit, then letters, digits, _ . -"),
  disableCheck: z.boolean().optional(),
  disableGC: z.boolean().optional(),
  plugins: z.array(NetConfSchema.omit({ cniVersion: true, name: true, prevResult: true })).min(1),
});

export const VersionResultSchema = z.object({
  cniVersion: z.string(),
  supportedVersions: z.array(z.string()),
});

/** GC's list of still-valid attachments: the spec text says cni.dev/attachments, libcni sends cni.dev/valid-attachments. */
export const AttachmentSchema = z.object({ containerID: z.string(), ifname: z.string() });

export type * from "./types.js";

// Compile-time: each schema parses to exactly the interface in types.ts (either one changing alone
// is a type error here).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;
export type SchemasMatchTypes = [
  Assert<Same<z.infer<typeof DnsSchema>, T.Dns>>,
  Assert<Same<z.infer<typeof RouteSchema>, T.CniRoute>>,
  Assert<Same<z.infer<typeof InterfaceSchema>, T.CniInterface>>,
  Assert<Same<z.infer<typeof IpConfigSchema>, T.IpConfig>>,
  Assert<Same<z.infer<typeof ResultSchema>, T.CniResult>>,
  Assert<Same<z.infer<typeof ErrorResultSchema>, T.ErrorResult>>,
  Assert<Same<z.infer<typeof NetConfSchema>, T.NetConf>>,
  Assert<Same<z.infer<typeof NetConfListSchema>, T.NetConfList>>,
  Assert<Same<z.infer<typeof AttachmentSchema>, T.Attachment>>,
];
