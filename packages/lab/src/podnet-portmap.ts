/**
 * podnet-portmap, a CNI plugin executable: published ports (the `portMappings` capability) as DNAT
 * rules on the node it runs on, chained after podnet-bridge in a lab's conflist. The plugin is the
 * providers' own (`portmapPlugin`, @podnet/provider-kit), acting on the real host through @podnet/linux.
 */
import { cniMain } from "@podnet/cni/node";
import type { CniParams, CniPlugin, PluginConfig } from "@podnet/cni";
import { LinuxNetlink, currentNamespace } from "@podnet/linux";
import { portmapPlugin } from "@podnet/provider-kit";

const host = { netlink: new LinuxNetlink(), ns: currentNamespace() };
const inner = portmapPlugin();
const withHost = (params: CniParams): CniParams => ({ ...params, host });
const plugin: CniPlugin = {
  ...inner,
  about: "CNI plugin podnet-portmap",
  add: (params: CniParams, config: PluginConfig) => inner.add(withHost(params), config),
  del: (params: CniParams, config: PluginConfig) => inner.del(withHost(params), config),
  check: (params: CniParams, config: PluginConfig) => inner.check(withHost(params), config),
};

await cniMain(plugin);
