/**
 * The runtime side: executing a .conflist against in-process plugins, as libcni does for
 * executables. ADD runs the plugins in order, each getting the previous result as prevResult; DEL
 * runs them in reverse with the final ADD result; CHECK runs forward with it (spec §3).
 */
import type { CniParams, CniPlugin, PluginConfig } from "./plugin.js";
import type { CniResult, NetConfList } from "./schemas.js";

export interface CniRuntimeParams extends Omit<CniParams, "args" | "path" | "host"> {
  args?: string;
  /** Capability arguments the runtime offers (portMappings, ipRanges, mac, ...). */
  capabilityArgs?: Record<string, unknown>;
  host?: CniParams["host"];
}

export type PluginRegistry = (type: string) => CniPlugin | undefined;

/**
 * The request config for one plugin of a list: cniVersion and name inserted, `capabilities` replaced
 * by a `runtimeConfig` holding the capability args the plugin declared, prevResult when given.
 */
export function requestConfig(
  list: NetConfList,
  index: number,
  prevResult: CniResult | undefined,
  capabilityArgs: Record<string, unknown> = {},
): PluginConfig {
  const { capabilities, ...plugin } = list.plugins[index]!;
  const runtimeConfig = Object.fromEntries(
    Object.entries(capabilityArgs).filter(([key]) => capabilities?.[key]),
  );
  const config: PluginConfig = { ...plugin, cniVersion: list.cniVersion, name: list.name };
  if (Object.keys(runtimeConfig).length) config.runtimeConfig = runtimeConfig;
  if (prevResult) config.prevResult = prevResult;
  return config;
}

function resolve(list: NetConfList, registry: PluginRegistry): CniPlugin[] {
  return list.plugins.map((p) => {
    const plugin = registry(p.type);
    if (!plugin) throw new Error(`failed to find plugin ${JSON.stringify(p.type)} in path`);
    return plugin;
  });
}

const params = (p: CniRuntimeParams): CniParams => ({
  containerId: p.containerId,
  netns: p.netns,
  ifname: p.ifname,
  args: p.args ?? "",
  path: [],
  ...(p.host ? { host: p.host } : {}),
});

export async function addNetworkList(
  list: NetConfList,
  runtime: CniRuntimeParams,
  registry: PluginRegistry,
): Promise<CniResult> {
  const plugins = resolve(list, registry);
  let prev: CniResult | undefined;
  for (const [i, plugin] of plugins.entries())
    prev = await plugin.add(params(runtime), requestConfig(list, i, prev, runtime.capabilityArgs));
  return prev!;
}

export async function delNetworkList(
  list: NetConfList,
  runtime: CniRuntimeParams,
  registry: PluginRegistry,
  finalResult?: CniResult,
): Promise<void> {
  const plugins = resolve(list, registry);
  for (let i = plugins.length - 1; i >= 0; i--)
    await plugins[i]!.del(params(runtime), requestConfig(list, i, finalResult, runtime.capabilityArgs));
}

export async function checkNetworkList(
  list: NetConfList,
  runtime: CniRuntimeParams,
  registry: PluginRegistry,
  finalResult: CniResult,
): Promise<void> {
  if (list.disableCheck) return;
  const plugins = resolve(list, registry);
  for (const [i, plugin] of plugins.entries())
    await plugin.check(params(runtime), requestConfig(list, i, finalResult, runtime.capabilityArgs));
}
