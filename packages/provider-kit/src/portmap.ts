/**
 * hostPorts: the portmap plugin every provider chains after its bridge plugin, as flannel's CNI
 * config chains the reference portmap and Docker publishes ports.
 */
import {
  CniError,
  CniErrorCode,
  LEGACY_VERSIONS,
  type CniParams,
  type CniResult,
  type CniPlugin,
  type PluginConfig,
} from "@podnet/cni";
import { chainRules, type IptablesRule } from "@podnet/netlink";

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol?: "tcp" | "udp";
}

const commentFor = (containerId: string) => `podnet published port of ${containerId}`;

function publishedPortRules(
  nic: string,
  podIp: string,
  containerId: string,
  mappings: PortMapping[],
): IptablesRule[] {
  return mappings.map((m) => ({
    inInterface: nic,
    protocol: m.protocol ?? "tcp",
    matches: [
      { kind: "comment", comment: commentFor(containerId) },
      { kind: m.protocol ?? "tcp", dport: m.hostPort },
    ],
    target: { kind: "DNAT", toDestination: `${podIp}:${m.containerPort}` },
  }));
}

/**
 * Published ports (a container's hostPort) as a chained CNI plugin, the way the reference `portmap`
 * plugin works, which Docker, flannel's CNI config and kubenet's hostport manager all provide: it
 * reads the `portMappings` capability and the pod's address from the previous plugin's result, and
 * adds one DNAT rule per mapping on the node. DEL finds the rules by their comment, so it works after
 * the pod is gone. The `podnet-portmap` executable (@podnet/lab) runs this plugin on a real node.
 */
export function portmapPlugin(): CniPlugin {
  return {
    about: "CNI plugin podnet portmap",
    supportedVersions: LEGACY_VERSIONS,
    async add(params: CniParams, config: PluginConfig) {
      const prev = config.prevResult as CniResult | undefined;
      if (!prev)
        throw new CniError(
          CniErrorCode.INVALID_NETWORK_CONFIG,
          "portmap must be chained after a plugin that gives the pod an address",
        );
      const mappings =
        (config.runtimeConfig as { portMappings?: PortMapping[] } | undefined)?.portMappings ?? [];
      const podIp = prev.ips?.[0]?.address.split("/")[0];
      if (podIp && mappings.length) {
        for (const r of publishedPortRules(String(config.nic ?? "eth0"), podIp, params.containerId, mappings))
          await params.host!.netlink.iptables.append(params.host!.ns, "nat", "PREROUTING", r);
      }
      return prev;
    },
    async del(params: CniParams) {
      const host = params.host!;
      const mine = (await chainRules(host.netlink, host.ns, "nat", "PREROUTING")).filter((r) =>
        r.matches?.some((m) => m.kind === "comment" && m.comment === commentFor(params.containerId)),
      );
      for (const r of mine) await host.netlink.iptables.delete(host.ns, "nat", "PREROUTING", r);
    },
    async check() {},
  };
}

/**
 * A plugin with the portmap plugin chained after it, as one in-process plugin (the conflist a node's
 * runtime would run: the pod's network, then its published ports). ADD runs them in order, DEL in
 * reverse, as libcni does.
 */
export function withPortmap(plugin: CniPlugin, about: string): CniPlugin {
  const portmap = portmapPlugin();
  return {
    ...plugin,
    about,
    async add(params: CniParams, config: PluginConfig) {
      const result = await plugin.add(params, config);
      return portmap.add(params, { ...config, prevResult: result });
    },
    async del(params: CniParams, config: PluginConfig) {
      await portmap.del(params, config);
      await plugin.del(params, config);
    },
  };
}
