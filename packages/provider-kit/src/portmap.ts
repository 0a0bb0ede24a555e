/**
 * hostPorts: the portmap plugin every provider chains after its bridge plugin, as flannel's CNI
 * config chains the reference portmap and Docker publishes ports.
 */
import {
  CniError,
  CniErrorCode,
  LEGACY_VERSIONS,
  cniChainName,
  decodePrevResult,
  goUnmarshal,
  type GoType,
  type CniHost,
  type CniParams,
  type CniResult,
  type CniPlugin,
  type PluginConfig,
} from "@podnet/cni";
import { formatIpv4, isIpv4, parseIpv4, parseIpv4InterfaceAddress, type Ipv4Prefix } from "@podnet/core";
import { MULTIPORT_MAX_PORTS, chainRules, sameRule, type IptablesRule } from "@podnet/netlink";

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol?: "tcp" | "udp";
  /**
   * The one node address the port answers on (Kubernetes' `hostIP`); unset or 0.0.0.0, every
   * address of the node. An IPv6 address publishes nothing for an IPv4 pod, as the reference skips it.
   */
  hostIP?: string;
}

/** The reference plugin's chains (their names are its contract with the node: never renamed). */
const TOP_DNAT = "CNI-HOSTPORT-DNAT";
const SET_MARK = "CNI-HOSTPORT-SETMARK";
const MARK_MASQ = "CNI-HOSTPORT-MASQ";
/** The reference's default mark bit: Kubernetes uses 14 and 15, Calico 20-31. */
const DEFAULT_MARK_BIT = 13;

interface PortmapConf {
  snat: boolean;
  markBit: number;
  mappings: PortMapping[];
}

const int: GoType = { kind: "int" };
const string: GoType = { kind: "string" };

/** The reference's PortMapConf as json.Unmarshal reads it (prevResult apart: decodePrevResult). */
const PORT_MAP_CONF: GoType = {
  kind: "struct",
  name: "PortMapConf",
  goType: "main.PortMapConf",
  fields: {
    snat: { kind: "bool" },
    conditionsV4: { kind: "slice", goType: "[]string", of: string },
    conditionsV6: { kind: "slice", goType: "[]string", of: string },
    masqAll: { kind: "bool" },
    markMasqBit: int,
    externalSetMarkChain: string,
    runtimeConfig: {
      kind: "struct",
      // An anonymous struct: Go names no type for its fields.
      name: "",
      goType: 'struct { PortMaps []main.PortMapEntry "json:\\"portMappings,omitempty\\"" }',
      fields: {
        portMappings: {
          kind: "slice",
          goType: "[]main.PortMapEntry",
          of: {
            kind: "struct",
            name: "PortMapEntry",
            goType: "main.PortMapEntry",
            fields: { hostPort: int, containerPort: int, protocol: string, hostIP: string },
          },
        },
      },
    },
  },
};

/** The protocols a mapping may name (kubelet sends them in lower case; iptables reads either). */
const PROTOCOLS = new Set(["tcp", "udp"]);

/** The plugin's own keys, refused the way the reference refuses them. */
function portmapConf(config: PluginConfig): PortmapConf {
  const fail = (message: string): never => {
    throw new CniError(CniErrorCode.INTERNAL, `failed to parse config: ${message}`);
  };
  let decoded: {
    snat?: boolean;
    markMasqBit?: number;
    runtimeConfig?: { portMappings?: (Partial<PortMapping> & { protocol?: string })[] };
  };
  try {
    decoded = goUnmarshal(config, PORT_MAP_CONF) as typeof decoded;
  } catch (error) {
    return fail(`failed to parse network configuration: ${(error as Error).message}`);
  }
  for (const key of ["conditionsV4", "conditionsV6", "externalSetMarkChain", "masqAll"])
    if (config[key] !== undefined && config[key] !== null && config[key] !== false)
      fail(`${key} is not supported by podnet's portmap`);
  const snat = decoded.snat ?? true;
  const markBit = decoded.markMasqBit ?? DEFAULT_MARK_BIT;
  if (markBit < 0 || markBit > 31) fail("MasqMarkBit must be between 0 and 31");
  // A null in the list is Go's zero mapping: ports 0, refused below in the reference's words.
  const mappings = (decoded.runtimeConfig?.portMappings ?? []).map((m, i): PortMapping => {
    const { hostPort = 0, containerPort = 0, hostIP } = m ?? {};
    if (containerPort <= 0) fail(`Invalid container port number: ${containerPort}`);
    if (hostPort <= 0) fail(`Invalid host port number: ${hostPort}`);
    // iptables would refuse these mid-ADD, a chain half written; said here, naming the mapping.
    if (containerPort > 65535) fail(`Invalid container port number: ${containerPort}`);
    if (hostPort > 65535) fail(`Invalid host port number: ${hostPort}`);
    const protocol = (m?.protocol || "tcp").toLowerCase();
    // Only the two the rules are written for: anything else reached iptables as text, where
    // "tcp -m comment …" became rule arguments and "TCP" a rule with no port match.
    if (!PROTOCOLS.has(protocol))
      fail(
        `portMappings[${i}]: protocol ${JSON.stringify(m?.protocol)} is not supported by podnet's portmap (tcp or udp)`,
      );
    // The reference takes an address it cannot parse for IPv6 and, for an IPv4 pod, skips the
    // mapping without a word: a typo would leave the port unpublished and no one told.
    if (hostIP !== undefined && hostIP !== "" && !(isIpv4(hostIP) || IPV6.test(hostIP)))
      fail(`Invalid host IP: ${JSON.stringify(hostIP)}`);
    return { hostPort, containerPort, protocol: protocol as "tcp" | "udp", ...(hostIP ? { hostIP } : {}) };
  });
  return { snat, markBit, mappings };
}

/** The previous result, refused in the reference's words when it is no result. */
function previousResult(config: PluginConfig): CniResult | undefined {
  try {
    return decodePrevResult(config.prevResult, "PortMapConf");
  } catch (error) {
    const message = (error as Error).message;
    throw new CniError(
      CniErrorCode.INTERNAL,
      `failed to parse config: ${message.startsWith("json:") ? `failed to parse network configuration: ${message}` : message}`,
    );
  }
}

/**
 * The container's IPv4 address and prefix from the previous result: the first IPv4 address on the
 * sandbox's interface `ifname` (host-side interfaces of the result are skipped, as the reference does).
 */
function containerAddress(prev: CniResult, ifname: string): { ip: string; prefix: Ipv4Prefix } | undefined {
  for (const ip of prev.ips ?? []) {
    const iface = ip.interface !== undefined ? prev.interfaces?.[ip.interface] : undefined;
    if (iface && (iface.name !== ifname || !iface.sandbox)) continue;
    if (!/^\d+\.\d+\.\d+\.\d+\//.test(ip.address)) continue;
    const { address, prefix } = parseIpv4InterfaceAddress(ip.address);
    return { ip: formatIpv4(address), prefix };
  }
  return undefined;
}

/** An IPv6 address's characters, with at least one colon (the reference skips what is IPv6). */
const IPV6 = /^(?=.*:)[0-9a-fA-F:.]+$/;

/**
 * The `-d` a mapping's rules carry: its hostIP unless unspecified; `null` for an IPv6 hostIP, which
 * an IPv4 container's rules leave out (the entry rule's ports still list it, as the reference's do).
 */
function hostDestination(m: PortMapping): string | undefined | null {
  if (m.hostIP === undefined || m.hostIP === "") return undefined;
  if (!isIpv4(m.hostIP)) return null;
  return parseIpv4(m.hostIP) === 0 ? undefined : m.hostIP;
}

const jump = (chain: string) => ({ kind: "jump" as const, chain });
const comment = (text: string) => ({ kind: "comment" as const, comment: text });
const markOf = (bit: number) => (1 << bit) >>> 0;

/** The per-container chain: for each mapping, mark hairpin and localhost traffic for SNAT, then DNAT. */
function dnatRules(conf: PortmapConf, container: { ip: string; prefix: Ipv4Prefix }): IptablesRule[] {
  const out: IptablesRule[] = [];
  for (const m of conf.mappings) {
    const protocol = m.protocol ?? "tcp";
    const destination = hostDestination(m);
    if (destination === null) continue;
    const base: Pick<IptablesRule, "protocol" | "matches" | "destination"> = {
      protocol,
      matches: [{ kind: protocol, dport: m.hostPort }],
      ...(destination ? { destination } : {}),
    };
    if (conf.snat) {
      // A pod of the subnet reaching a hostPort of its own node comes back through the bridge: without
      // SNAT the answer would go straight to it from an address it did not call.
      out.push({ ...base, source: container.prefix.toString(), target: jump(SET_MARK) });
      out.push({ ...base, source: "127.0.0.1", target: jump(SET_MARK) });
    }
    out.push({ ...base, target: { kind: "DNAT", toDestination: `${container.ip}:${m.containerPort}` } });
  }
  return out;
}

/** The rules in CNI-HOSTPORT-DNAT that send a mapping's ports to the container's chain. */
function entryRules(conf: PortmapConf, network: string, containerId: string, chain: string): IptablesRule[] {
  const out: IptablesRule[] = [];
  for (const protocol of ["tcp", "udp"] as const) {
    const ports = conf.mappings.filter((m) => (m.protocol ?? "tcp") === protocol).map((m) => m.hostPort);
    for (let i = 0; i < ports.length; i += MULTIPORT_MAX_PORTS)
      out.push({
        protocol,
        matches: [
          comment(`dnat name: "${network}" id: "${containerId}"`),
          { kind: "multiport", dports: ports.slice(i, i + MULTIPORT_MAX_PORTS) },
        ],
        target: jump(chain),
      });
  }
  return out;
}

/**
 * Rules as the reference's CHECK errors print them (Go's %s of its argument lists): in the order it
 * writes their arguments, `-s` after the port and the pod's own address/length as the hairpin source,
 * an entry rule without its `-j` (`chain`: the jump left out).
 */
function goRules(
  rules: IptablesRule[],
  container: { ip: string; prefix: Ipv4Prefix },
  chain?: string,
): string {
  const args = (r: IptablesRule) => {
    const out: string[] = [];
    for (const m of r.matches ?? []) {
      if (m.kind === "comment") out.push("-m", "comment", "--comment", m.comment);
      if (m.kind === "multiport")
        out.push("-m", "multiport", "-p", r.protocol!, "--destination-ports", m.dports.join(","));
      if (m.kind === "tcp" || m.kind === "udp") out.push("-p", r.protocol!, "--dport", String(m.dport));
    }
    if (r.destination) out.push("-d", r.destination);
    if (r.source)
      out.push("-s", r.source === "127.0.0.1" ? r.source : `${container.ip}/${container.prefix.length}`);
    const t = r.target;
    if (t.kind === "jump" && t.chain !== chain) out.push("-j", t.chain);
    if (t.kind === "DNAT") out.push("-j", "DNAT", "--to-destination", t.toDestination);
    return `[${out.join(" ")}]`;
  };
  return `[${rules.map(args).join(" ")}]`;
}

/** `iptables -N` unless the chain exists (the reference's EnsureChain). */
async function ensureChain(host: CniHost, chain: string): Promise<void> {
  if (!(await host.netlink.iptables.list(host.ns, "nat", chain)).length)
    await host.netlink.iptables.newChain(host.ns, "nat", chain);
}

/**
 * Appends each rule, or with `first` inserts it at the top, unless an equal rule is already there
 * (the reference's InsertUnique, rule by rule). The chain is read once for all of them: read again
 * per rule, a pod publishing 1,000 ports cost twice the reference's time (a process per read).
 */
async function insertUnique(
  host: CniHost,
  chain: string,
  rules: readonly IptablesRule[],
  first = false,
): Promise<void> {
  const held = await chainRules(host.netlink, host.ns, "nat", chain);
  for (const rule of rules) {
    if (held.some((r) => sameRule(r, rule))) continue;
    if (first) await host.netlink.iptables.insert(host.ns, "nat", chain, rule, 1);
    else await host.netlink.iptables.append(host.ns, "nat", chain, rule);
    held.push(rule);
  }
}

/** A chain with its rules, and the rules that lead to it from other chains (the reference's `chain`). */
async function setUp(
  host: CniHost,
  chain: string,
  rules: IptablesRule[],
  entries: { from: string[]; rules: IptablesRule[]; first?: boolean },
): Promise<void> {
  await ensureChain(host, chain);
  await insertUnique(host, chain, rules);
  for (const from of entries.from) await insertUnique(host, from, entries.rules, entries.first);
}

/** Removes the container's chain and every rule in CNI-HOSTPORT-DNAT that jumps to it; idempotent. */
async function tearDown(host: CniHost, chain: string): Promise<void> {
  const n = host.netlink;
  for (const r of await chainRules(n, host.ns, "nat", TOP_DNAT))
    if (r.target.kind === "jump" && r.target.chain === chain)
      await n.iptables.delete(host.ns, "nat", TOP_DNAT, r);
  if ((await n.iptables.list(host.ns, "nat", chain)).length) {
    await n.iptables.flush(host.ns, "nat", chain);
    await n.iptables.deleteChain(host.ns, "nat", chain);
  }
}

/**
 * Published ports (a container's hostPort) as a chained CNI plugin that leaves what the reference
 * `portmap` (containernetworking-plugins 1.1.1, the version Debian ships) leaves in the node's nat
 * table, rule for rule: `-m addrtype --dst-type LOCAL` in PREROUTING and OUTPUT jumps to
 * CNI-HOSTPORT-DNAT, which sends the container's host ports to a chain of its own (CNI-DN-…) that
 * DNATs them. So only packets addressed to the node itself are translated — a pod on another node
 * reaching some pod's port that happens to equal a hostPort is left alone — and the node's own
 * processes reach the port too. With `snat` (the default) a pod of the node's subnet, or 127.0.0.1,
 * reaching the port is marked and masqueraded in POSTROUTING, so the answer comes back the way the
 * question went; the bridge that routes to the container gets route_localnet, so 127.0.0.1 may leave
 * lo. Docker, flannel's CNI config and kubenet's hostport manager all publish ports this way.
 *
 * One difference on purpose: DEL removes the container's chain even when the runtime leaves
 * `portMappings` out of the DEL request (the reference then removes nothing and the rules stay).
 * The `podnet-portmap` executable (@podnet/lab) runs this plugin on a real node.
 */
export function portmapPlugin(): CniPlugin {
  return {
    about: "CNI plugin podnet portmap",
    supportedVersions: LEGACY_VERSIONS,
    async add(params: CniParams, config: PluginConfig) {
      const conf = portmapConf(config);
      const prev = previousResult(config);
      if (!prev) throw new CniError(CniErrorCode.INTERNAL, "must be called as chained plugin");
      const container = containerAddress(prev, params.ifname);
      if (!conf.mappings.length || !container) return prev;
      const host = params.host!;
      const mark = markOf(conf.markBit);
      if (conf.snat) {
        await setUp(
          host,
          SET_MARK,
          [
            {
              matches: [comment("CNI portfwd masquerade mark")],
              target: { kind: "MARK", value: mark, mask: mark },
            },
          ],
          { from: [], rules: [] },
        );
        // First in POSTROUTING: the bridge plugin's masquerade rules would otherwise see it first.
        await setUp(
          host,
          MARK_MASQ,
          [{ matches: [{ kind: "mark", value: mark, mask: mark }], target: { kind: "MASQUERADE" } }],
          {
            from: ["POSTROUTING"],
            rules: [{ matches: [comment("CNI portfwd requiring masquerade")], target: jump(MARK_MASQ) }],
            first: true,
          },
        );
      }
      await setUp(host, TOP_DNAT, [], {
        from: ["PREROUTING", "OUTPUT"],
        rules: [{ matches: [{ kind: "addrtype", dstType: "LOCAL" }], target: jump(TOP_DNAT) }],
      });
      const chain = cniChainName(config.name, params.containerId, "DN-");
      await setUp(host, chain, dnatRules(conf, container), {
        from: [TOP_DNAT],
        rules: entryRules(conf, config.name, params.containerId, chain),
      });
      // A UDP flow the node tracked before the port was published (a client sending to it while no
      // pod held it) would keep its old translation — none — for as long as it keeps sending: the
      // reference deletes such flows once the rules are in, and failures only inform.
      for (const m of conf.mappings)
        if ((m.protocol ?? "tcp") === "udp")
          await host.netlink.conntrack
            .delete(host.ns, { protocol: "udp", origDstPort: m.hostPort })
            .catch((error: Error) =>
              // On stderr, as the reference logs it: stdout is the CNI result.
              console.warn(
                `failed to delete stale UDP conntrack entries for port ${m.hostPort}: ${error.message}`,
              ),
            );
      if (conf.snat) {
        // 127.0.0.1 DNATed to the pod leaves by the device that routes to it (the pod's bridge).
        const route = await host.netlink.route.get(host.ns, parseIpv4(container.ip)).catch(() => undefined);
        if (route && route.type === "unicast")
          await host.netlink.sysctl.set(host.ns, `net.ipv4.conf.${route.dev}.route_localnet`, "1");
      }
      return prev;
    },
    async del(params: CniParams, config: PluginConfig) {
      await tearDown(params.host!, cniChainName(config.name, params.containerId, "DN-"));
    },
    async check(params: CniParams, config: PluginConfig) {
      const conf = portmapConf(config);
      const prev = previousResult(config);
      if (!prev) throw new CniError(CniErrorCode.INTERNAL, "Required prevResult missing");
      const container = containerAddress(prev, params.ifname);
      if (!conf.mappings.length || !container) return;
      const host = params.host!;
      const chain = cniChainName(config.name, params.containerId, "DN-");
      const missing = (what: string): never => {
        throw new CniError(CniErrorCode.INTERNAL, `could not check ipv4 dnat: ${what}`);
      };
      if (!(await host.netlink.iptables.list(host.ns, "nat", chain)).length)
        missing(`chain ${chain} not found in iptables table nat`);
      const held = await chainRules(host.netlink, host.ns, "nat", chain);
      const rules = dnatRules(conf, container);
      if (!rules.every((r) => held.some((h) => sameRule(h, r))))
        missing(`rule ${goRules(rules, container)} in chain ${chain} not found in table nat`);
      const entries = entryRules(conf, config.name, params.containerId, chain);
      const jumps = await chainRules(host.netlink, host.ns, "nat", TOP_DNAT);
      if (!entries.every((r) => jumps.some((h) => sameRule(h, r))))
        missing(`rule ${goRules(entries, container, chain)} in chain ${TOP_DNAT} not found in table nat`);
    },
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
      // A pod publishing nothing passes its result through unchanged, as the plugin would: not
      // decoded again (the result is the plugin's own, in this process), which was a twentieth of
      // building 150,000 pods.
      const mappings = (config.runtimeConfig as { portMappings?: unknown } | undefined)?.portMappings;
      if (mappings === undefined || (Array.isArray(mappings) && !mappings.length)) return result;
      return portmap.add(params, { ...config, prevResult: result });
    },
    async del(params: CniParams, config: PluginConfig) {
      await portmap.del(params, config);
      await plugin.del(params, config);
    },
  };
}
