/**
 * CNI 1.0.0 / 1.1.0 types as plain interfaces, so the package's main entry needs no schema library;
 * the zod schemas that parse them are in `@podnet/cni/schemas`, checked at compile time to infer
 * exactly these types. Open objects (`[key: string]: unknown`): the spec keeps unknown keys.
 */

export interface Dns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
  [key: string]: unknown;
}

export interface CniRoute {
  dst: string;
  gw?: string;
  // 1.1.0
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
  [key: string]: unknown;
}

export interface CniInterface {
  name: string;
  mac?: string;
  sandbox?: string;
  mtu?: number;
  socketPath?: string;
  pciID?: string;
  [key: string]: unknown;
}

export interface IpConfig {
  address: string;
  gateway?: string;
  /** Index into `interfaces`; absent in the abbreviated result of an IPAM plugin. */
  interface?: number;
  [key: string]: unknown;
}

export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: IpConfig[];
  routes?: CniRoute[];
  dns?: Dns;
  [key: string]: unknown;
}

export interface ErrorResult {
  cniVersion?: string;
  code: number;
  msg: string;
  details?: string;
  [key: string]: unknown;
}

/** A plugin's entry in a .conflist: its own keys (the list supplies cniVersion and name). */
export interface PluginNetConf {
  type: string;
  capabilities?: Record<string, boolean>;
  runtimeConfig?: Record<string, unknown>;
  args?: Record<string, unknown>;
  ipMasq?: boolean;
  ipam?: { type: string; [key: string]: unknown };
  dns?: Dns;
  [key: string]: unknown;
}

/** One plugin's configuration as the runtime hands it over (spec §3): list keys inserted. */
export interface NetConf extends PluginNetConf {
  cniVersion?: string;
  name?: string;
  prevResult?: CniResult;
}

/** A .conflist: the only form of network configuration since spec 1.0.0. */
export interface NetConfList {
  cniVersion: string;
  cniVersions?: string[];
  name: string;
  disableCheck?: boolean;
  disableGC?: boolean;
  plugins: PluginNetConf[];
  [key: string]: unknown;
}

/** GC's list of still-valid attachments. */
export interface Attachment {
  containerID: string;
  ifname: string;
}
