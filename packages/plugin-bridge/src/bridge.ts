/**
 * The bridge CNI plugin, after the reference `bridge` plugin: a veth pair per pod, the container end
 * named CNI_IFNAME inside the pod's namespace, the host end ("veth" + 8 hex) enslaved to the node
 * bridge; addresses from host-local IPAM (delegated in-process); the gateway address on the bridge
 * with isGateway; a default route with isDefaultGateway. It acts only through the host API.
 */
import {
  CniError,
  CniErrorCode,
  LEGACY_VERSIONS,
  cniChainName,
  decodePrevResult,
  goUnmarshal,
  memoFrozen,
  type GoType,
  type CniHost,
  type CniParams,
  type CniPlugin,
  type CniResult,
  type PluginConfig,
} from "@podnet/cni";
import { fnv1a32, parseIpv4InterfaceAddress } from "@podnet/core";
import { hostLocalPlugin, MemoryIpamStore, type IpamStore } from "@podnet/ipam";
import {
  NetlinkError,
  appendRuleOnce,
  chainRules,
  parseAddrArgument,
  parseAddressArgument,
  parseRouteDst,
  type IptablesRule,
} from "@podnet/netlink";

export interface BridgeConfig extends PluginConfig {
  bridge?: string;
  isGateway?: boolean;
  isDefaultGateway?: boolean;
  mtu?: number;
  hairpinMode?: boolean;
  ipMasq?: boolean;
  ipam?: { type: string; dataDir?: string; [key: string]: unknown };
}

export interface BridgePluginOptions {
  /** The IPAM store of a network on a node; defaults to one in-memory store per (host, node, network). */
  ipamStore?(host: CniHost, network: string, dataDir: string): IpamStore;
  /** Reads the IPAM block's `resolvConf` (bounded in size and kind); without it the key is refused. */
  readFile?(path: string): string;
}

/** The bridge plugin's NetConf as the reference (1.1.1, plugins/main/bridge) decodes it: Go types, Go's words. */
const NET_CONF: GoType = {
  kind: "struct",
  name: "NetConf",
  goType: "main.NetConf",
  fields: {
    bridge: { kind: "string" },
    isGateway: { kind: "bool" },
    isDefaultGateway: { kind: "bool" },
    forceAddress: { kind: "bool" },
    ipMasq: { kind: "bool" },
    mtu: { kind: "int" },
    hairpinMode: { kind: "bool" },
    promiscMode: { kind: "bool" },
    vlan: { kind: "int" },
    ipam: { kind: "struct", name: "IPAM", goType: "types.IPAM", fields: { type: { kind: "string" } } },
  },
};

/** The config, refused as the reference refuses it when a key has the wrong type ("bridge": 5). */
export function loadBridgeConfig(config: PluginConfig): BridgeConfig {
  checkBridgeConfig(config);
  return config as BridgeConfig;
}

/** Type-checks a config as the reference's json.Unmarshal does; a frozen config only once (memoFrozen). */
const checkBridgeConfig = memoFrozen((config: PluginConfig): true => {
  try {
    goUnmarshal(config, NET_CONF);
  } catch (error) {
    throw new Error(`failed to load netconf: ${(error as Error).message}`);
  }
  // host-local is built in; the reference would exec the named plugin, which podnet never does.
  const ipam = (config as { ipam?: { type?: string } }).ipam;
  if (ipam && ipam.type !== "host-local")
    throw new CniError(
      CniErrorCode.INVALID_NETWORK_CONFIG,
      `ipam type ${JSON.stringify(ipam.type ?? "")} is not supported: podnet's bridge plugin has host-local built in`,
    );
  return true;
});

/** The reference plugin's masquerade chain: "CNI-" + 24 hex characters of sha512(network name + container ID). */
export function masqChain(network: string, containerId: string): string {
  return cniChainName(network, containerId);
}

function masqComment(network: string, containerId: string): string {
  return `name: "${network}" id: "${containerId}"`;
}

/** "/run/netns/pod1" or "pod1" → "pod1": podnet's host API names namespaces. */
export function namespaceOf(netns: string): string {
  const name = netns.startsWith("/run/netns/") ? netns.slice("/run/netns/".length) : netns;
  // "/run/netns/" is a directory, not a namespace; "" would mean "the namespace the plugin runs in".
  if (name === "" || name.includes("/"))
    throw new CniError(
      CniErrorCode.INTERNAL,
      `failed to open netns ${JSON.stringify(netns)}: not a namespace`,
    );
  return name;
}

/** The refusal of a CNI_NETNS that is the node's own namespace, which no container has. */
export function ownNamespaceError(netns: string): CniError {
  return new CniError(
    CniErrorCode.INVALID_ENVIRONMENT_VARIABLES,
    `CNI_NETNS ${JSON.stringify(netns)} is the namespace the plugin runs in, not a container's`,
  );
}

/** The pod's namespace as the host API names it; never the node's own. */
function podNamespace(params: CniParams, host: CniHost): string {
  const name = params.netnsName ?? namespaceOf(params.netns);
  if (name === host.ns) throw ownNamespaceError(params.netns);
  return name;
}

/** The pod's namespace for a DEL, which may name none or one gone already: undefined then. */
function podNamespaceIfAny(params: CniParams, host: CniHost): string | undefined {
  if (params.netns === "" && params.netnsName === undefined) return undefined;
  try {
    return podNamespace(params, host);
  } catch {
    return undefined;
  }
}

/**
 * The host end's name: "veth" + 8 hex, derived from the attachment so reruns are reproducible; the
 * next attempt's when the name is taken (32 bits collide: two container IDs in some 100,000 share
 * one), so nothing may find the host end by its name alone — DEL and CHECK go by the pod end's peer.
 */
export function hostVethName(containerId: string, ifname: string, attempt = 0): string {
  const key = attempt ? `${containerId}/${ifname}/${attempt}` : `${containerId}/${ifname}`;
  return `veth${fnv1a32(key).toString(16).padStart(8, "0")}`;
}

/** Names tried before ADD gives up on a free host end name. */
const VETH_NAME_ATTEMPTS = 8;

/**
 * The host end of the pod's `ifname`: the veth in the node whose peer it is (each names the other's
 * index), under a name this attachment's ADD could have given it; undefined otherwise — a DEL whose
 * CNI_NETNS names some other pod's namespace, or one for a container never added, finds nothing.
 */
async function hostEndOf(host: CniHost, podNs: string | undefined, containerId: string, ifname: string) {
  if (podNs === undefined) return undefined;
  const pod = await linkNamed(host.netlink, podNs, ifname).catch((error: unknown) => {
    if (missing(error)) return undefined;
    throw error;
  });
  if (pod?.linkinfo?.info_kind !== "veth" || pod.link_index === undefined) return undefined;
  const names = new Set(
    Array.from({ length: VETH_NAME_ATTEMPTS }, (_, attempt) => hostVethName(containerId, ifname, attempt)),
  );
  return (await host.netlink.link.list(host.ns)).find(
    (l) =>
      l.ifindex === pod.link_index &&
      l.link_index === pod.ifindex &&
      l.linkinfo?.info_kind === "veth" &&
      names.has(l.ifname),
  );
}

function hostOf(params: CniParams): CniHost {
  if (!params.host)
    throw new CniError(
      CniErrorCode.INVALID_NETWORK_CONFIG,
      "bridge: no host to act on (the runtime must pass the node's host API)",
    );
  return params.host;
}

/** One device as `ip link show dev NAME` lists it: not a dump of the node's every pod link. */
async function linkNamed(netlink: CniHost["netlink"], ns: string, name: string) {
  return (await netlink.link.list(ns, { dev: name })).find((l) => l.ifname === name);
}

/** One device's addresses, as `ip addr show dev NAME` lists them. */
async function addressesOf(netlink: CniHost["netlink"], ns: string, name: string) {
  return (await netlink.addr.list(ns, { dev: name })).find((l) => l.ifname === name);
}

const missing = (error: unknown) =>
  error instanceof NetlinkError && (error.errno === "ENODEV" || error.errno === "ENOENT");

/** What one ADD added to the container's masquerade chain, for its undo. */
interface MasqAdded {
  chain: string;
  /** The chain did not exist before: undone, it goes whole. */
  made: boolean;
  postrouting: IptablesRule[];
}

/**
 * The reference plugin's per-container masquerade: traffic to the pod subnet passes, the rest is
 * masqueraded. One chain per network and container, shared by the container's interfaces (a second
 * interface's ADD finds it and adds what it lacks, as the reference's SetupIPMasq does).
 */
async function addMasq(
  host: CniHost,
  network: string,
  containerId: string,
  ips: readonly { address: string }[],
): Promise<MasqAdded> {
  const n = host.netlink;
  const chain = masqChain(network, containerId);
  const comment = { kind: "comment" as const, comment: masqComment(network, containerId) };
  const made = !(await n.iptables.list(host.ns, "nat", chain)).length;
  if (made) await n.iptables.newChain(host.ns, "nat", chain);
  const added: MasqAdded = { chain, made, postrouting: [] };
  for (const ip of ips) {
    const [address, length] = ip.address.split("/");
    const subnet = parseIpv4InterfaceAddress(`${address}/${length}`).prefix.toString();
    await appendRuleOnce(n, host.ns, "nat", chain, {
      destination: subnet,
      matches: [comment],
      target: { kind: "ACCEPT" },
    });
    await appendRuleOnce(n, host.ns, "nat", chain, {
      destination: "!224.0.0.0/4",
      matches: [comment],
      target: { kind: "MASQUERADE" },
    });
    const jump: IptablesRule = {
      source: `${address}/32`,
      matches: [comment],
      target: { kind: "jump", chain },
    };
    if (await appendRuleOnce(n, host.ns, "nat", "POSTROUTING", jump)) added.postrouting.push(jump);
  }
  return added;
}

/** Takes back what one ADD's `addMasq` added, and no more: another interface's rules stay. */
async function undoMasq(host: CniHost, added: MasqAdded): Promise<void> {
  for (const r of added.postrouting) await host.netlink.iptables.delete(host.ns, "nat", "POSTROUTING", r);
  if (added.made) {
    await host.netlink.iptables.flush(host.ns, "nat", added.chain);
    await host.netlink.iptables.deleteChain(host.ns, "nat", added.chain);
  }
}

async function removeMasq(host: CniHost, network: string, containerId: string): Promise<void> {
  const chain = masqChain(network, containerId);
  const comment = masqComment(network, containerId);
  const mine = (await chainRules(host.netlink, host.ns, "nat", "POSTROUTING")).filter(
    (r: IptablesRule) =>
      r.target.kind === "jump" &&
      r.target.chain === chain &&
      r.matches?.some((m) => m.kind === "comment" && m.comment === comment),
  );
  for (const r of mine) await host.netlink.iptables.delete(host.ns, "nat", "POSTROUTING", r);
  if ((await host.netlink.iptables.list(host.ns, "nat", chain)).length) {
    await host.netlink.iptables.flush(host.ns, "nat", chain);
    await host.netlink.iptables.deleteChain(host.ns, "nat", chain);
  }
}

export function bridgePlugin(options: BridgePluginOptions = {}): CniPlugin {
  // Reservations belong to the host (on a real node they are files on its disk), so the default
  // stores hang off the host API instance: two simulated clusters never share addresses.
  const stores = new WeakMap<object, Map<string, IpamStore>>();
  const storeFor =
    options.ipamStore ??
    ((host: CniHost, network: string, _dataDir: string) => {
      let perHost = stores.get(host.netlink);
      if (!perHost) stores.set(host.netlink, (perHost = new Map()));
      const key = `${host.ns}/${network}`;
      let store = perHost.get(key);
      if (!store) perHost.set(key, (store = new MemoryIpamStore()));
      return store;
    });
  const ipamFor = (host: CniHost) =>
    hostLocalPlugin({
      openStore: (network, dataDir) => storeFor(host, network, dataDir),
      ...(options.readFile ? { readFile: options.readFile } : {}),
    });

  async function ensureBridge(host: CniHost, conf: BridgeConfig, name: string): Promise<string> {
    let bridge = await linkNamed(host.netlink, host.ns, name);
    if (bridge && bridge.linkinfo?.info_kind !== "bridge")
      throw new Error(`${name} already exists but is not a bridge`);
    if (!bridge) {
      try {
        await host.netlink.link.add(host.ns, {
          kind: "bridge",
          name,
          ...((conf.mtu ?? 0) > 0 ? { mtu: conf.mtu } : {}),
        });
        await host.netlink.link.set(host.ns, name, { up: true });
      } catch (error) {
        // The kernel's words alone ("mtu greater than device maximum") do not say what failed.
        throw new Error(`failed to create bridge ${JSON.stringify(name)}: ${(error as Error).message}`);
      }
      bridge = (await linkNamed(host.netlink, host.ns, name))!;
    }
    return bridge.address;
  }

  return {
    about: "CNI plugin podnet bridge",
    supportedVersions: LEGACY_VERSIONS,

    async add(params: CniParams, config: PluginConfig): Promise<CniResult> {
      const host = hostOf(params);
      const conf = loadBridgeConfig(config);
      const n = host.netlink;
      const podNs = podNamespace(params, host);
      const bridgeName = conf.bridge ?? "cni0";
      if (!conf.ipam)
        throw new CniError(CniErrorCode.INVALID_NETWORK_CONFIG, "bridge: an ipam block is required");
      if (await linkNamed(n, podNs, params.ifname)) {
        throw new Error(`container veth name provided (${params.ifname}) already exists`);
      }
      // Addresses before links (the reference makes the bridge and veth first): a bad IPAM block —
      // its config, resolvConf or dataDir — is refused before anything on the node changes.
      const ipamResult = await ipamFor(host).add(params, conf);
      let hostVeth = hostVethName(params.containerId, params.ifname);
      let vethMade = false;
      let masq: MasqAdded | undefined;
      try {
        const bridgeMac = await ensureBridge(host, conf, bridgeName);
        // The pair is made under the first free derived host name: a taken one is "File exists"
        // (the pod's own name is known free), answered by the next name, not looked for first.
        for (let attempt = 1; ; attempt++) {
          try {
            await n.link.add(podNs, {
              kind: "veth",
              name: params.ifname,
              peer: { name: hostVeth, netns: host.ns },
              ...((conf.mtu ?? 0) > 0 ? { mtu: conf.mtu } : {}),
            });
            break;
          } catch (error) {
            const taken = error instanceof NetlinkError && error.errno === "EEXIST";
            if (!taken || !(await linkNamed(n, host.ns, hostVeth))) throw error;
            if (attempt === VETH_NAME_ATTEMPTS)
              throw new Error(`no free host veth name for ${params.containerId}/${params.ifname}`);
            hostVeth = hostVethName(params.containerId, params.ifname, attempt);
          }
        }
        vethMade = true;
        await n.link.set(host.ns, hostVeth, { master: bridgeName, up: true });
        if (conf.hairpinMode) await n.link.set(host.ns, hostVeth, { hairpin: true });
        const ips = ipamResult.ips ?? [];
        // The IPAM result is CNI's JSON text: parsed here, at the edge, with iproute2's refusals.
        for (const ip of ips)
          await n.addr.add(podNs, params.ifname, parseAddrArgument(ip.address), { broadcast: true });
        await n.link.set(podNs, params.ifname, { up: true });
        const routes = [...(ipamResult.routes ?? [])];
        const gateway = ips[0]?.gateway;
        if (conf.isDefaultGateway && gateway && !routes.some((r) => r.dst === "0.0.0.0/0" && r.gw))
          routes.push({ dst: "0.0.0.0/0", gw: gateway });
        // A route without gw goes via the address's gateway, as the reference plugin installs it.
        for (const r of routes) {
          const via = r.gw ?? gateway;
          await n.route.replace(podNs, {
            dst: parseRouteDst(r.dst),
            ...(via !== undefined ? { via: parseAddressArgument(via) } : {}),
            dev: params.ifname,
          });
        }
        if ((conf.isGateway || conf.isDefaultGateway) && gateway) {
          const prefix = ips[0]!.address.split("/")[1];
          const onBridge = (await addressesOf(n, host.ns, bridgeName))?.addr_info ?? [];
          if (!onBridge.some((a) => a.local === gateway))
            await n.addr.add(host.ns, bridgeName, parseAddrArgument(`${gateway}/${prefix}`), {
              broadcast: true,
            });
          await n.sysctl.set(host.ns, "net.ipv4.ip_forward", "1");
        }
        if (conf.ipMasq) masq = await addMasq(host, conf.name, params.containerId, ips);
        const hostLink = (await linkNamed(n, host.ns, hostVeth))!;
        const podLink = (await linkNamed(n, podNs, params.ifname))!;
        return {
          cniVersion: "1.0.0",
          interfaces: [
            { name: bridgeName, mac: bridgeMac },
            { name: hostVeth, mac: hostLink.address },
            { name: params.ifname, mac: podLink.address, sandbox: params.netns },
          ],
          ips: ips.map((ip) => ({ ...ip, interface: 2 })),
          routes,
          dns: ipamResult.dns ?? {},
        };
      } catch (error) {
        // Undo what this ADD did before failing (the spec's rule for delegated plugins).
        await ipamFor(host)
          .del(params, conf)
          .catch(() => undefined);
        if (masq) await undoMasq(host, masq).catch(() => undefined);
        if (vethMade) await n.link.del(podNs, params.ifname).catch(() => undefined);
        throw error;
      }
    },

    async del(params: CniParams, config: PluginConfig): Promise<void> {
      const host = hostOf(params);
      const conf = loadBridgeConfig(config);
      // IPAM is released even when the namespace is gone; DEL may repeat and must then succeed.
      if (conf.ipam) await ipamFor(host).del(params, conf);
      // The masquerade chain is found by its comment, not through the (possibly gone) link's address:
      // the reference plugin leaks it when the netns is already deleted; this one does not.
      if (conf.ipMasq) await removeMasq(host, conf.name, params.containerId);
      // Only the pair this plugin made goes: the pod's interface and its peer in the node (as the
      // reference finds it); deleting the host end takes the pod end too. Gone with its namespace,
      // the pair needs nothing more.
      const hostEnd = await hostEndOf(
        host,
        podNamespaceIfAny(params, host),
        params.containerId,
        params.ifname,
      );
      if (hostEnd)
        await host.netlink.link.del(host.ns, hostEnd.ifname).catch((error: unknown) => {
          if (!missing(error)) throw error;
        });
    },

    async check(params: CniParams, config: PluginConfig): Promise<void> {
      const host = hostOf(params);
      const conf = loadBridgeConfig(config);
      let prev: CniResult | undefined;
      try {
        prev = decodePrevResult(conf.prevResult, "NetConf");
      } catch (error) {
        const message = (error as Error).message;
        throw new CniError(
          CniErrorCode.INTERNAL,
          message.startsWith("json:") ? `failed to load netconf: ${message}` : message,
        );
      }
      if (!prev) throw new CniError(CniErrorCode.INVALID_NETWORK_CONFIG, "bridge: CHECK needs prevResult");
      const podNs = podNamespace(params, host);
      const link = await addressesOf(host.netlink, podNs, params.ifname);
      if (!link) throw new Error(`Failed to find container interface ${params.ifname}`);
      for (const ip of prev.ips ?? []) {
        const [address, length] = ip.address.split("/");
        if (!link.addr_info.some((a) => a.local === address && a.prefixlen === Number(length)))
          throw new Error(`${params.ifname} lacks address ${ip.address}`);
      }
      const hostLink = await hostEndOf(host, podNs, params.containerId, params.ifname);
      if (!hostLink || hostLink.master !== (conf.bridge ?? "cni0"))
        throw new Error(
          `${params.ifname}'s host end ${hostLink?.ifname ?? "(none in the node)"} is not attached to ${conf.bridge ?? "cni0"}`,
        );
      if (conf.ipam) await ipamFor(host).check(params, conf);
    },
  };
}
