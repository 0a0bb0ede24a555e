/**
 * podnet-bridge, a CNI plugin executable: the bridge plugin every podnet provider attaches pods with,
 * acting on the real host through @podnet/linux (iproute2, iptables) from the namespace it runs in,
 * with host-local-compatible IPAM on disk. A drop-in for the reference `bridge` + `host-local` pair.
 */
import { cniMain } from "@podnet/cni/node";
import type { CniParams, CniPlugin, PluginConfig } from "@podnet/cni";
import { DiskIpamStore, readResolvConf } from "@podnet/ipam/disk";
import { DEFAULT_DATA_DIR } from "@podnet/ipam";
import { bridgePlugin, loadBridgeConfig } from "@podnet/plugin-bridge";
import { LinuxNetlink } from "./netlink.js";
import { checkNetnsPath, openSandbox } from "./netns-path.js";
import { currentNamespace } from "./run-prefix.js";

const host = { netlink: new LinuxNetlink(), ns: currentNamespace() };
const inner = bridgePlugin({
  ipamStore: (_host, network, dataDir) => new DiskIpamStore(dataDir || DEFAULT_DATA_DIR, network),
  readFile: readResolvConf,
});

/** Runs `fn` with the config and CNI_NETNS validated, and CNI_NETNS named for the host API, before anything is changed. */
async function inSandbox<T>(
  params: CniParams,
  config: PluginConfig,
  fn: (params: CniParams) => Promise<T>,
): Promise<T> {
  loadBridgeConfig(config);
  const sandbox = await openSandbox(params.netns);
  try {
    return await fn({ ...params, host, netnsName: sandbox.name });
  } finally {
    await sandbox.release();
  }
}

const plugin: CniPlugin = {
  ...inner,
  about: "CNI plugin podnet-bridge",
  // The config is read before CNI_NETNS is looked at, in the reference's order.
  add: (params: CniParams, config: PluginConfig) => inSandbox(params, config, (p) => inner.add(p, config)),
  check: (params: CniParams, config: PluginConfig) =>
    inSandbox(params, config, (p) => inner.check(p, config)),
  // DEL works from the host side only; a CNI_NETNS that is gone is fine, one that is not a
  // container's network namespace is refused before anything is released or deleted.
  del: async (params: CniParams, config: PluginConfig) => {
    loadBridgeConfig(config);
    if (params.netns) await checkNetnsPath(params.netns, false);
    await inner.del({ ...params, host }, config);
  },
};

await cniMain(plugin);
