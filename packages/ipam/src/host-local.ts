import { formatIpv4 } from "@podnet/core";
import {
  CniError,
  ALL_VERSIONS,
  type Attachment,
  type CniParams,
  type CniPlugin,
  type CniResult,
  type Dns,
  type PluginConfig,
} from "@podnet/cni";
import { RangeSetAllocator } from "./allocator.js";
import { loadHostLocalConfig, type HostLocalConfig } from "./config.js";
import { rangeSetContains } from "./range.js";
import type { IpamStore } from "./store.js";

export interface HostLocalOptions {
  /** The store of one network (host-local keeps one directory per network name). */
  openStore(network: string, dataDir: string): IpamStore;
  /** Reads a resolv.conf for the `resolvConf` key, bounded in size and kind; without it the key is refused. */
  readFile?(path: string): string;
}

/** resolv.conf → CNI DNS, as host-local parses it (nameserver, domain, search, options lines). */
export function parseResolvConf(text: string): Dns {
  const dns: Dns = {};
  for (const line of text.split("\n")) {
    const fields = line.trim().split(/\s+/);
    const [key, ...values] = fields;
    if (!key || key.startsWith("#") || key.startsWith(";")) continue;
    if (key === "nameserver" && values[0]) (dns.nameservers ??= []).push(values[0]);
    else if (key === "domain" && values[0]) dns.domain = values[0];
    else if (key === "search") dns.search = values;
    else if (key === "options") (dns.options ??= []).push(...values);
  }
  return dns;
}

/**
 * The host-local IPAM plugin, behaving as the reference one does (same results, same errors,
 * same round-robin), over any store. It also speaks CNI 1.1.0: GC releases reservations of
 * attachments that no longer exist, STATUS reports a full range set as code 50.
 */
export function hostLocalPlugin(options: HostLocalOptions): CniPlugin {
  const open = (conf: HostLocalConfig) => {
    const store = options.openStore(conf.name, conf.dataDir);
    return { store, allocators: conf.ranges.map((set, i) => new RangeSetAllocator(set, store, i)) };
  };
  const allocators = (config: PluginConfig, args: string) => open(loadHostLocalConfig(config, args));

  return {
    about: "CNI plugin podnet-ipam (host-local compatible)",
    supportedVersions: ALL_VERSIONS,

    async add(params: CniParams, config: PluginConfig): Promise<CniResult> {
      const conf = loadHostLocalConfig(config, params.args);
      let dns: Dns = {};
      // host-local reads resolvConf before it opens the data directory; errors come in that order.
      if (conf.resolvConf) {
        if (!options.readFile) throw new Error(`resolvConf ${conf.resolvConf}: no file system here`);
        dns = parseResolvConf(options.readFile(conf.resolvConf));
      }
      const { allocators: list } = open(conf);
      const requested = new Set(conf.requestedIps);
      const done: RangeSetAllocator[] = [];
      const ips: { address: string; gateway: string }[] = [];
      const releaseAll = async () => {
        for (const a of done) await a.release(params.containerId, params.ifname).catch(() => undefined);
      };
      for (const [i, allocator] of list.entries()) {
        const mine = [...requested].find((ip) => rangeSetContains(allocator.rangeSet, ip));
        if (mine !== undefined) requested.delete(mine);
        try {
          const got = await allocator.get(params.containerId, params.ifname, mine);
          done.push(allocator);
          ips.push({
            address: `${formatIpv4(got.address)}/${got.range.subnet.length}`,
            gateway: formatIpv4(got.range.gateway),
          });
        } catch (error) {
          await releaseAll();
          throw new Error(`failed to allocate for range ${i}: ${(error as Error).message}`);
        }
      }
      if (requested.size) {
        await releaseAll();
        throw new Error(`failed to allocate all requested IPs: ${[...requested].map(formatIpv4).join(" ")}`);
      }
      return { cniVersion: "1.0.0", ips, ...(conf.routes ? { routes: conf.routes } : {}), dns };
    },

    async del(params: CniParams, config: PluginConfig): Promise<void> {
      const { allocators: list } = allocators(config, params.args);
      const errors: string[] = [];
      for (const allocator of list)
        await allocator
          .release(params.containerId, params.ifname)
          .catch((e: Error) => errors.push(e.message));
      if (errors.length) throw new Error(errors.join(";"));
    },

    async check(params: CniParams, config: PluginConfig): Promise<void> {
      const { store } = allocators(config, params.args);
      const found = await store.withLock(() => store.findById(params.containerId, params.ifname));
      if (!found)
        throw new Error(`host-local: Failed to find address added by container ${params.containerId}`);
    },

    async gc(config: PluginConfig, valid: Attachment[]): Promise<void> {
      const { store } = allocators(config, "");
      const keep = new Set(valid.map((a) => `${a.containerID}\r\n${a.ifname}`));
      await store.withLock(() => {
        for (const entry of store.entries())
          if (!keep.has(`${entry.id}\r\n${entry.ifname}`)) store.release(entry.address);
      });
    },

    async status(config: PluginConfig): Promise<void> {
      const { allocators: list } = allocators(config, "");
      for (const [i, allocator] of list.entries()) {
        const free = await allocator.store.withLock(() => allocator.free());
        if (free === 0) throw new CniError(50, `range set ${i} has no free addresses`);
      }
    },
  };
}
