import type { Netlink } from "@podnet/netlink";
import type { Attachment, CniResult } from "./schemas.js";

export type CniCommand = "ADD" | "DEL" | "CHECK" | "VERSION" | "GC" | "STATUS";

/** The CNI_* parameters of one invocation. */
export interface CniParams {
  containerId: string;
  netns: string;
  ifname: string;
  /** Raw CNI_ARGS ("K1=V1;K2=V2"), deprecated by the spec in favour of `args` in the config. */
  args: string;
  path: string[];
  /**
   * The host API's name for the namespace at CNI_NETNS, when the executable resolved the path itself
   * (any bind-mounted namespace file or /proc/PID/ns/net); otherwise a plugin takes NAME from
   * /run/netns/NAME or a bare name (the simulator's runtime names namespaces).
   */
  netnsName?: string;
  /**
   * The host the plugin runs on, and the host API to change it: the simulator's kernel or real Linux.
   * A CNI executable runs in the host's own namespace; in podnet's simulator the runtime names it.
   * IPAM plugins need none.
   */
  host?: CniHost;
}

export interface CniHost {
  netlink: Netlink;
  /** The namespace the plugin runs in (the node); CNI_NETNS is the container's. */
  ns: string;
}

/** The request config a plugin receives: its own keys plus what the runtime inserted (spec §3). */
export type PluginConfig = Record<string, unknown> & {
  cniVersion: string;
  name: string;
  type?: string;
  prevResult?: CniResult;
};

/**
 * A CNI plugin as podnet writes one: networking only. The protocol (environment, stdin, version
 * checks, error printing) belongs to the adapter (`runCniCommand`, `cniMain`), as skel does for the
 * reference plugins. Throwing a CniError picks the code; any other error is code 999.
 */
export interface CniPlugin {
  /** The "about" string, e.g. "CNI plugin podnet-ipam v0.1.0". */
  about: string;
  supportedVersions: readonly string[];
  add(params: CniParams, config: PluginConfig): Promise<CniResult>;
  /** Must succeed when there is nothing left to delete, and be repeatable (spec: DEL is idempotent). */
  del(params: CniParams, config: PluginConfig): Promise<void>;
  check(params: CniParams, config: PluginConfig): Promise<void>;
  /** 1.1: remove resources not in the list of valid attachments. */
  gc?(config: PluginConfig, validAttachments: Attachment[]): Promise<void>;
  /** 1.1: throw CniError 50/51 when the plugin cannot serve ADD. */
  status?(config: PluginConfig): Promise<void>;
}

/** Parses CNI_ARGS ("IgnoreUnknown=1;IP=10.1.2.3") into pairs, as libcni's LoadArgs splits them. */
export function parseCniArgs(args: string): [string, string][] {
  if (args === "") return [];
  return args.split(";").map((pair) => {
    const kv = pair.split("=");
    if (kv.length !== 2) throw new Error(`ARGS: invalid pair ${JSON.stringify(pair)}`);
    return [kv[0]!, kv[1]!];
  });
}
