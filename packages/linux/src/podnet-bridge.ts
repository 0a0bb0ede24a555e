/**
 * podnet-bridge, a CNI plugin executable: the bridge plugin every podnet provider attaches pods with,
 * acting on the real host through @podnet/linux (iproute2, iptables) from the namespace it runs in,
 * with host-local-compatible IPAM on disk. A drop-in for the reference `bridge` + `host-local` pair.
 */
import { cniMain } from "@podnet/cni/node";
import type { CniParams, CniPlugin, PluginConfig } from "@podnet/cni";
import { DiskIpamStore } from "@podnet/ipam/disk";
import { DEFAULT_DATA_DIR } from "@podnet/ipam";
import { bridgePlugin } from "@podnet/plugin-bridge";
import { LinuxNetlink } from "./netlink.js";
import { currentNamespace } from "./run-prefix.js";

const host = { netlink: new LinuxNetlink(), ns: currentNamespace() };
const inner = bridgePlugin({
  ipamStore: (_host, network, dataDir) => new DiskIpamStore(dataDir || DEFAULT_DATA_DIR, network),
});
const withHost = (params: CniParams): CniParams => ({ ...params, host });
const plugin: CniPlugin = {
  ...inner,
  about: "CNI plugin podnet-bridge",
  add: (params: CniParams, config: PluginConfig) => inner.add(withHost(params), config),
  del: (params: CniParams, config: PluginConfig) => inner.del(withHost(params), config),
  check: (params: CniParams, config: PluginConfig) => inner.check(withHost(params), config),
};

await cniMain(plugin);
