import {
  Ipv4Prefix,
  MacGenerator,
  SeededRandom,
  formatIpv4,
  isIpv4Value,
  isMacValue,
  parseIpv4,
  type Ipv4InterfaceAddress,
} from "@podnet/core";
import {
  BUILTIN_CHAINS,
  KernelMessage,
  NetlinkError,
  fdbArguments,
  fdbDump,
  formatIptablesRule,
  formatIptablesSave,
  formatRouteDst,
  formatRouteSpec,
  neighArguments,
  neighDump,
  routeDump,
  saveOrder,
  type AddrDump,
  type BatchOp,
  type BatchResult,
  type ChainDump,
  type Errno,
  type FdbDump,
  type FdbEntry,
  type FdbSpec,
  type IptablesRule,
  type LayerEntries,
  type LayerHeld,
  type LinkChange,
  type LinkDump,
  type LinkSpec,
  type NatTable,
  type NftCommand,
  type NftFamily,
  type NftObject,
  NftMessage,
  formatNftCommand,
  type NeighDump,
  type NeighEntry,
  type NeighSpec,
  type Netlink,
  type RouteDump,
  type RouteEntry,
  type RouteGetEntry,
  type RouteSpec,
  type SysctlKey,
} from "@podnet/netlink";
import { PodnetError } from "@podnet/core";
import { SimLink } from "./link.js";
import { LOOPBACK, PMTU_EXPIRES, SimNamespace, type SimSocket } from "./namespace.js";
import type { Trace, TraceSummary } from "./trace.js";
import { walk, walkSummary, type SendOptions } from "./walk.js";
import { FlowCache, FlowRecording, frozen, portWatch } from "./flow-cache.js";
import { RoutePool, type SimRoute } from "./route-table.js";
import { VxlanFdb } from "./number-map.js";
import { SimLayers } from "./layers.js";

const IFNAME = /^[^\s/:]{1,15}$/;

export interface SimKernelOptions {
  /** Seeds MACs and `statistic --mode random`, so the same scenario gives the same traces. */
  seed?: number | string;
  /** Replay probes walked since the last change (default true; off, every probe is walked). */
  flowCache?: boolean;
  /**
   * Bridges with at least this many ports keep maps of who answers ARP behind which port; smaller
   * ones read the address behind each port, one by one, for each request (walk-devices.ts). Default 64; tests set
   * both ends to compare each way with walking every flooded copy.
   */
  arpIndexFrom?: number;
  /**
   * iptables chains with at least this many rules are read through an index of their `-d a.b.c.d/32`
   * rules (netfilter.ts); shorter ones rule by rule. Default 64; tests set both ends to compare.
   */
  chainIndexFrom?: number;
}

/** Host API methods that only read: the flow cache stays valid across them. */
const READS = new Set(["list", "get", "entries", "save"]);

/** A socket call refused (bind): EADDRINUSE, EADDRNOTAVAIL. */
export class SocketError extends PodnetError {}

/**
 * The command a refusal names, in iproute2 syntax. A function where building the text costs: the
 * route manager writes a million routes at 1,000 nodes and almost none is refused.
 */
type Command = string | (() => string);

function fail(errno: Errno, message: string, command: Command): never {
  throw new NetlinkError(errno, message, typeof command === "string" ? command : command());
}

/** A destination prefix from a program: a prefix value with its host bits clear. */
/** The device a `net.ipv4.conf.DEV.route_localnet` key names, when the namespace has it. */
function deviceLocalnet(ns: SimNamespace, key: SysctlKey): SimLink | undefined {
  const dev = /^net\.ipv4\.conf\.([^./]+)\.route_localnet$/.exec(key)?.[1];
  return dev === undefined ? undefined : ns.links.get(dev);
}

/** sysctl's words for a key /proc/sys does not have. */
function missingSysctl(key: SysctlKey, command: Command): never {
  return fail(
    "ENOENT",
    `sysctl: cannot stat /proc/sys/${String(key).replaceAll(".", "/")}: No such file or directory`,
    command,
  );
}

function isPrefixValue(value: unknown): value is Ipv4Prefix {
  const p = value as Ipv4Prefix | undefined;
  return (
    typeof p === "object" &&
    p !== null &&
    isIpv4Value(p.network) &&
    Number.isInteger(p.length) &&
    p.length >= 0 &&
    p.length <= 32 &&
    (p.network & p.mask) >>> 0 === p.network
  );
}

/**
 * An in-memory Linux network stack holding many namespaces: the state half of the simulator.
 * It implements the host API with the kernel's refusals; the packet walk (walk.ts) reads it.
 */
export class SimKernel implements Netlink {
  readonly namespaces = new Map<string, SimNamespace>();
  /** Every distinct route value of all namespaces, stored once (route-table.ts). */
  private readonly routePool = new RoutePool();
  readonly random: SeededRandom;
  private readonly seed: string;
  private nextIndex = 1;
  /**
   * Bumped by every change of devices, their state, addresses or namespaces: indexes derived from
   * the topology (a bridge's ARP index) are valid for one version.
   */
  topologyVersion = 0;
  /** Next ephemeral source port (Linux's default range is 32768-60999). */
  private nextPort = 32768;
  /**
   * The kernel's clock in seconds, for conntrack's timeouts: each send is one second after the last.
   * Without it every trace's connections were kept for ever, and once the ephemeral ports (ICMP
   * identifiers) came round again, after 28,232 sends, a new ping "continued" an old connection.
   */
  clock = 0;
  /**
   * Bumped by every host API call that may change state and by every learning during a walk (ARP,
   * FDB, path MTU): the flow cache replays what was walked at the same epoch only.
   */
  epoch = 0;
  /** Probes walked since the last change, replayed (flow-cache.ts); undefined when turned off. */
  private readonly flows: FlowCache | undefined;
  /** Probes answered by a replay, and walked. */
  readonly flowStats = { replayed: 0, walked: 0 };
  /** See `SimKernelOptions.arpIndexFrom`. */
  readonly arpIndexFrom: number;
  /** See `SimKernelOptions.chainIndexFrom`. */
  readonly chainIndexFrom: number;

  constructor(options: SimKernelOptions = {}) {
    this.seed = String(options.seed ?? "podnet");
    this.random = new SeededRandom(`${this.seed}/statistic`);
    this.flows = options.flowCache === false ? undefined : new FlowCache();
    this.arpIndexFrom = options.arpIndexFrom ?? 64;
    this.chainIndexFrom = options.chainIndexFrom ?? 64;
    const { netns, sysctl, link, addr, route, neigh, fdb, layer, iptables, nft } = this;
    for (const api of [netns, sysctl, link, addr, route, neigh, fdb, layer, iptables, nft])
      this.bumpOnChange(api);
  }

  /**
   * Every method of a host API group but its reads bumps `epoch`, before it runs and again when its
   * promise settles: a method added later is covered without anyone remembering the flow cache.
   */
  private bumpOnChange(api: object): void {
    const methods = api as Record<string, unknown>;
    for (const [name, method] of Object.entries(methods)) {
      if (typeof method !== "function" || READS.has(name)) continue;
      methods[name] = (...args: unknown[]) => {
        this.epoch++;
        const result: unknown = method(...args);
        if (result instanceof Promise) return result.finally(() => this.epoch++);
        this.epoch++;
        return result;
      };
    }
  }

  // ---- sockets and traffic ----------------------------------------------------------------

  /**
   * A process (`owner`, e.g. a container) listens in a namespace. Containers of one pod share its
   * namespace, so a second bind of a port fails with EADDRINUSE naming the container holding it.
   */
  listen(
    nsName: string,
    socket: { protocol: "tcp" | "udp"; port: number; address?: string; owner: string },
  ): void {
    this.epoch++;
    const ns = this.ns(nsName, `${socket.owner}: bind`);
    const address = socket.address === undefined ? 0 : parseIpv4(socket.address);
    const where = `${socket.owner}: bind ${formatIpv4(address)}:${socket.port}/${socket.protocol} in ${nsName}`;
    if (address !== 0 && !ns.localAddresses.has(address))
      throw new SocketError("EADDRNOTAVAIL", `${where}: Cannot assign requested address`);
    const holder = ns.sockets.find(
      (s) =>
        s.protocol === socket.protocol &&
        s.port === socket.port &&
        (s.address === 0 || address === 0 || s.address === address),
    );
    if (holder)
      throw new SocketError("EADDRINUSE", `${where}: Address already in use (held by ${holder.owner})`);
    ns.sockets.push({ protocol: socket.protocol, port: socket.port, address, owner: socket.owner });
  }

  close(nsName: string, socket: { protocol: "tcp" | "udp"; port: number; owner?: string }): void {
    this.epoch++;
    const ns = this.ns(nsName);
    const at = ns.sockets.findIndex(
      (s) =>
        s.protocol === socket.protocol &&
        s.port === socket.port &&
        (!socket.owner || s.owner === socket.owner),
    );
    if (at >= 0) ns.sockets.splice(at, 1);
  }

  sockets(nsName: string): readonly SimSocket[] {
    return this.ns(nsName).sockets;
  }

  /** Sends one packet (ping, TCP SYN or UDP datagram) and walks it and its answer, hop by hop. */
  send(options: SendOptions): Trace {
    return walk(this, options, this.nextSend(options));
  }

  /**
   * The same exchange as `send`, summarised (outcome, reason, hop count, the answer): answered from
   * the flow cache when it was walked since the last change, with the same effects on conntrack.
   */
  probe(options: SendOptions): TraceSummary {
    const port = this.nextSend(options);
    const flows = this.flows;
    // A chosen source port is a chosen conntrack tuple: not a flow to replay with another port.
    if (!flows || options.srcPort !== undefined) {
      this.flowStats.walked++;
      return frozen(walkSummary(this, options, port));
    }
    const epoch = this.epoch;
    const flow = flows.get(options, epoch);
    const replayed = flow && flows.replay(flow, port, this.clock);
    if (replayed) {
      this.flowStats.replayed++;
      return replayed;
    }
    this.flowStats.walked++;
    const rec = new FlowRecording();
    const drawn = this.random.position;
    portWatch.values = rec.ports;
    try {
      const summary = frozen(walkSummary(this, options, port, rec));
      if (this.epoch === epoch && this.random.position === drawn)
        flows.store(options, epoch, this.clock, port, rec, summary);
      return summary;
    } finally {
      portWatch.values = undefined;
    }
  }

  /** A send is one second after the last; its ephemeral port is the next in Linux's range, unless chosen. */
  private nextSend(options: SendOptions): number {
    this.clock++;
    const port = options.srcPort ?? this.nextPort;
    if (options.srcPort === undefined) this.nextPort = this.nextPort >= 60999 ? 32768 : this.nextPort + 1;
    return port;
  }

  // ---- lookups shared with the walk -------------------------------------------------------

  ns(name: string, command: Command = () => `ip -n ${name}`): SimNamespace {
    return this.namespaces.get(name) ?? fail("ENOENT", KernelMessage.netnsMissing(name), command);
  }

  device(ns: SimNamespace, name: string, command: Command): SimLink {
    return ns.links.get(name) ?? fail("ENODEV", KernelMessage.cannotFindDevice(name), command);
  }

  /** Creates namespaces and links synchronously; the async host API wraps these. */
  private createLink(
    ns: SimNamespace,
    name: string,
    kind: SimLink["kind"],
    mtu: number,
    address: number | undefined,
    command: string,
  ): SimLink {
    if (!IFNAME.test(name) || name === "." || name === "..") fail("EINVAL", KernelMessage.badIfname, command);
    if (ns.links.has(name)) fail("EEXIST", KernelMessage.fileExists, command);
    const mac =
      address !== undefined
        ? this.parseMac(address, command)
        : kind === "loopback"
          ? 0
          : new MacGenerator(`${this.seed}/${ns.name}/${name}`).next();
    const link = new SimLink(this.nextIndex++, name, ns, kind, mac, mtu);
    this.topologyVersion++;
    ns.links.set(name, link);
    return link;
  }

  // Values from programs are checked as the kernel checks netlink attributes: a number that is no
  // address is refused with iproute2's words for the text it would have been.

  private parseMac(value: number, command: Command): number {
    return isMacValue(value)
      ? value
      : fail("EINVAL", `Error: "${String(value)}" is not a valid link address.`, command);
  }

  private parseAddress(value: number, command: Command): number {
    return isIpv4Value(value)
      ? value
      : fail("EINVAL", `Error: inet address is expected rather than "${String(value)}".`, command);
  }

  private parseDst(value: Ipv4Prefix, command: Command): Ipv4Prefix {
    return isPrefixValue(value)
      ? value
      : fail("EINVAL", `Error: any valid prefix is expected rather than "${String(value)}".`, command);
  }

  // ---- namespaces and sysctls -------------------------------------------------------------

  readonly netns = {
    add: async (name: string) => {
      const command = `ip netns add ${name}`;
      if (this.namespaces.has(name)) fail("EEXIST", KernelMessage.netnsExists(name), command);
      const ns = new SimNamespace(name, this.routePool);
      this.namespaces.set(name, ns);
      this.createLink(ns, "lo", "loopback", 65536, undefined, command);
    },
    del: async (name: string) => {
      const ns =
        this.namespaces.get(name) ??
        fail("ENOENT", KernelMessage.netnsDelMissing(name), `ip netns del ${name}`);
      // Destroying a namespace destroys its devices; a veth takes its peer with it.
      this.layers.forget(ns);
      for (const link of [...ns.links.values()]) this.destroyLink(link);
      this.namespaces.delete(name);
    },
    list: async () => [...this.namespaces.keys()].sort(),
  };

  readonly sysctl = {
    set: async (nsName: string, key: SysctlKey, value: string) => {
      const command = `ip netns exec ${nsName} sysctl -w ${key}=${value}`;
      const ns = this.ns(nsName, command);
      if (value !== "0" && value !== "1")
        fail("EINVAL", `sysctl: setting key "${key}": Invalid argument`, command);
      if (key === "net.ipv4.ip_forward") ns.forwarding = value === "1";
      else if (key === "net.bridge.bridge-nf-call-iptables") ns.bridgeNfCallIptables = value === "1";
      else if (key === "net.ipv4.conf.all.route_localnet") ns.routeLocalnet = value === "1";
      else {
        const dev = deviceLocalnet(ns, key);
        if (!dev) return missingSysctl(key, command);
        if (value === "1") (ns.localnetDevices ??= new Set()).add(dev);
        else ns.localnetDevices?.delete(dev);
      }
    },
    get: async (nsName: string, key: SysctlKey) => {
      const ns = this.ns(nsName, `ip netns exec ${nsName} sysctl ${key}`);
      if (key === "net.ipv4.ip_forward") return ns.forwarding ? "1" : "0";
      if (key === "net.bridge.bridge-nf-call-iptables") return ns.bridgeNfCallIptables ? "1" : "0";
      if (key === "net.ipv4.conf.all.route_localnet") return ns.routeLocalnet ? "1" : "0";
      const dev = deviceLocalnet(ns, key);
      if (!dev) return missingSysctl(key, `sysctl ${key}`);
      return ns.localnetDevices?.has(dev) ? "1" : "0";
    },
  };

  // ---- links ------------------------------------------------------------------------------

  readonly link = {
    add: async (nsName: string, spec: LinkSpec) => this.addLink(nsName, spec),
    del: async (nsName: string, name: string) => {
      const command = `ip -n ${nsName} link del ${name}`;
      this.destroyLink(this.device(this.ns(nsName, command), name, command));
    },
    set: async (nsName: string, name: string, change: LinkChange) => this.setLink(nsName, name, change),
    list: async (nsName: string, filter: { dev?: string } = {}): Promise<LinkDump[]> =>
      this.listedLinks(nsName, filter).map((l) => this.dumpLink(l)),
  };

  /** The links a `link show` / `addr show` lists: all by index, or the one named (none if absent). */
  private listedLinks(nsName: string, filter: { dev?: string }): SimLink[] {
    const links = this.ns(nsName).links;
    if (filter.dev !== undefined) {
      const link = links.get(filter.dev);
      return link ? [link] : [];
    }
    return [...links.values()].sort((a, b) => a.index - b.index);
  }

  private addLink(nsName: string, spec: LinkSpec): void {
    const command = `ip -n ${nsName} link add ${spec.name} type ${spec.kind}`;
    const ns = this.ns(nsName, command);
    switch (spec.kind) {
      case "veth": {
        const peerNs = spec.peer.netns !== undefined ? this.ns(spec.peer.netns, command) : ns;
        if (!IFNAME.test(spec.peer.name)) fail("EINVAL", KernelMessage.badIfname, command);
        if (peerNs.links.has(spec.peer.name) || (peerNs === ns && spec.peer.name === spec.name))
          fail("EEXIST", KernelMessage.fileExists, command);
        const a = this.createLink(ns, spec.name, "veth", spec.mtu ?? 1500, spec.address, command);
        const b = this.createLink(peerNs, spec.peer.name, "veth", spec.mtu ?? 1500, undefined, command);
        a.peer = b;
        b.peer = a;
        return;
      }
      case "bridge": {
        const bridge = this.createLink(ns, spec.name, "bridge", spec.mtu ?? 1500, spec.address, command);
        bridge.ports = new Set();
        bridge.fdb = new Map();
        bridge.portMacs = new Map();
        return;
      }
      case "dummy":
        this.createLink(ns, spec.name, "dummy", spec.mtu ?? 1500, spec.address, command);
        return;
      case "vxlan": {
        if (!Number.isInteger(spec.vni) || spec.vni < 0 || spec.vni >= 2 ** 24)
          fail("EINVAL", `Error: argument "${spec.vni}" is wrong: invalid id`, command);
        const lower = spec.dev !== undefined ? this.device(ns, spec.dev, command) : undefined;
        const local = spec.local !== undefined ? this.parseAddress(spec.local, command) : undefined;
        // With a lower device the kernel sets MTU = lower MTU − 50 (the VXLAN overhead); without one it stays 1500.
        const vxlan = this.createLink(
          ns,
          spec.name,
          "vxlan",
          spec.mtu ?? (lower ? lower.mtu - 50 : 1500),
          spec.address,
          command,
        );
        vxlan.vxlan = {
          vni: spec.vni,
          local,
          dstport: spec.dstport ?? 8472,
          dev: spec.dev,
          learning: spec.learning ?? true,
          fdb: new VxlanFdb(),
        };
        return;
      }
    }
  }

  private setLink(nsName: string, name: string, change: LinkChange): void {
    const command = `ip -n ${nsName} link set ${name}`;
    this.topologyVersion++;
    const ns = this.ns(nsName, command);
    // iproute2 resolves the master's name before anything else.
    if (typeof change.master === "string" && !ns.links.has(change.master))
      fail("ENODEV", KernelMessage.noSuchMaster(change.master), command);
    const link = this.device(ns, name, command);
    if (change.address !== undefined) {
      const bridge = link.master;
      if (bridge) this.release(link);
      link.mac = this.parseMac(change.address, command);
      if (bridge) this.enslave(bridge, link);
    }
    if (change.mtu !== undefined) {
      if (!Number.isInteger(change.mtu) || change.mtu < 68)
        fail("EINVAL", KernelMessage.mtuTooSmall, command);
      if (change.mtu > 65535) fail("EINVAL", "Error: mtu greater than device maximum.", command);
      link.mtu = change.mtu;
    }
    if (change.master !== undefined) {
      this.release(link);
      if (change.master !== null) {
        const bridge = this.device(ns, change.master, command);
        if (bridge.kind !== "bridge" || bridge === link)
          fail("EOPNOTSUPP", KernelMessage.notSupported, command);
        this.enslave(bridge, link);
      }
    }
    if (change.hairpin !== undefined) {
      if (!link.master)
        fail("EOPNOTSUPP", KernelMessage.notSupported, `bridge -n ${nsName} link set dev ${name} hairpin`);
      link.hairpin = change.hairpin;
    }
    if (change.netns !== undefined && change.netns !== nsName)
      this.moveLink(link, this.ns(change.netns, command), command);
    if (change.up !== undefined && change.up !== link.adminUp) {
      if (change.up) this.linkUp(link);
      else this.linkDown(link);
    }
  }

  private enslave(bridge: SimLink, port: SimLink): void {
    port.master = bridge;
    bridge.ports!.add(port);
    bridge.portMacs!.set(port.mac, (bridge.portMacs!.get(port.mac) ?? 0) + 1);
  }

  private release(port: SimLink): void {
    const bridge = port.master;
    if (!bridge) return;
    bridge.ports!.delete(port);
    const count = bridge.portMacs!.get(port.mac) ?? 0;
    if (count <= 1) bridge.portMacs!.delete(port.mac);
    else bridge.portMacs!.set(port.mac, count - 1);
    for (const [mac, entry] of bridge.fdb!) if (entry.port === port) bridge.fdb!.delete(mac);
    port.master = undefined;
  }

  private linkUp(link: SimLink): void {
    link.adminUp = true;
    link.ns.addressGeneration++;
    if (link.kind === "loopback" && !link.addresses.some((a) => a.address === 0x7f000001)) {
      // A namespace's lo has no address until it is brought up; then the kernel gives it 127.0.0.1/8.
      this.attachAddress(link, { address: 0x7f000001, prefix: LOOPBACK });
    }
    for (const a of link.addresses) this.addConnectedRoute(link, a);
  }

  private linkDown(link: SimLink): void {
    this.layers.deviceDown(link);
    link.adminUp = false;
    link.ns.addressGeneration++;
    // As the kernel does: a device going down takes every route through it and its neighbours along.
    link.ns.routes.removeWhere((r) => r.dev === link);
    for (const key of link.ns.neighbours.keys())
      if (Math.floor(key / 4294967296) === link.index) link.ns.neighbours.delete(key);
  }

  private moveLink(link: SimLink, target: SimNamespace, command: string): void {
    if (target.links.has(link.name)) fail("EEXIST", KernelMessage.fileExists, command);
    // Its inet settings are made anew in the namespace it joins.
    link.ns.localnetDevices?.delete(link);
    // Moving a device to another namespace brings it down and drops its addresses and routes.
    this.linkDown(link);
    this.release(link);
    for (const a of [...link.addresses]) this.detachAddress(link, a);
    link.ns.links.delete(link.name);
    link.ns = target;
    target.links.set(link.name, link);
  }

  private destroyLink(link: SimLink): void {
    if (!link.ns.links.has(link.name) || link.ns.links.get(link.name) !== link) return;
    this.topologyVersion++;
    link.ns.localnetDevices?.delete(link);
    this.linkDown(link);
    for (const a of [...link.addresses]) this.detachAddress(link, a);
    this.release(link);
    if (link.ports) for (const port of [...link.ports]) this.release(port);
    link.ns.links.delete(link.name);
    const peer = link.peer;
    link.peer = undefined;
    if (peer) {
      peer.peer = undefined;
      this.destroyLink(peer);
    }
  }

  private dumpLink(link: SimLink): LinkDump {
    const flags = link.kind === "loopback" ? ["LOOPBACK"] : ["BROADCAST", "MULTICAST"];
    if (link.adminUp) {
      if (!link.carrier) flags.unshift("NO-CARRIER");
      flags.push("UP");
      if (link.carrier) flags.push("LOWER_UP");
    }
    const dump: LinkDump = {
      ifindex: link.index,
      ifname: link.name,
      flags,
      mtu: link.mtu,
      operstate: !link.adminUp ? "DOWN" : link.kind === "veth" ? (link.carrier ? "UP" : "DOWN") : "UNKNOWN",
      link_type: link.kind === "loopback" ? "loopback" : "ether",
      address: link.macText,
    };
    if (link.peer) dump.link_index = link.peer.index;
    if (link.master) dump.master = link.master.name;
    if (link.kind !== "loopback") {
      dump.linkinfo = { info_kind: link.kind };
      if (link.vxlan) {
        const v = link.vxlan;
        dump.linkinfo.info_data = {
          id: v.vni,
          ...(v.local !== undefined ? { local: formatIpv4(v.local) } : {}),
          ...(v.dev !== undefined ? { link: v.dev } : {}),
          port: v.dstport,
          learning: v.learning,
        };
      }
      if (link.master) dump.linkinfo.info_slave_kind = "bridge";
    }
    return dump;
  }

  // ---- addresses --------------------------------------------------------------------------

  readonly addr = {
    add: async (
      nsName: string,
      dev: string,
      address: Ipv4InterfaceAddress,
      options: { broadcast?: boolean } = {},
    ) => {
      const command = () => `ip -n ${nsName} addr add ${cidrText(address)} dev ${dev}`;
      const link = this.device(this.ns(nsName, command), dev, command);
      const parsed = {
        ...this.parseInterfaceAddress(address, command),
        ...(options.broadcast ? { broadcast: true } : {}),
      };
      if (
        link.addresses.some((a) => a.address === parsed.address && a.prefix.length === parsed.prefix.length)
      ) {
        fail("EEXIST", KernelMessage.addressAlreadyAssigned, command);
      }
      this.attachAddress(link, parsed);
      if (link.adminUp) this.addConnectedRoute(link, parsed);
    },
    del: async (nsName: string, dev: string, address: Ipv4InterfaceAddress) => {
      const command = () => `ip -n ${nsName} addr del ${cidrText(address)} dev ${dev}`;
      const link = this.device(this.ns(nsName, command), dev, command);
      const parsed = this.parseInterfaceAddress(address, command);
      const found = link.addresses.find(
        (a) => a.address === parsed.address && a.prefix.length === parsed.prefix.length,
      );
      if (!found) fail("EADDRNOTAVAIL", KernelMessage.addressNotFound, command);
      this.detachAddress(link, found);
    },
    list: async (nsName: string, filter: { dev?: string } = {}): Promise<AddrDump[]> =>
      this.listedLinks(nsName, filter).map((link) => ({
        ...this.dumpLink(link),
        addr_info: link.addresses.map((a) => ({
          family: "inet" as const,
          local: formatIpv4(a.address),
          prefixlen: a.prefix.length,
          ...(a.broadcast && a.prefix.length < 31 ? { broadcast: formatIpv4(a.prefix.broadcast) } : {}),
          scope:
            link.kind === "loopback" && LOOPBACK.contains(a.address)
              ? ("host" as const)
              : ("global" as const),
          label: link.name,
        })),
      })),
  };

  private parseInterfaceAddress(value: Ipv4InterfaceAddress, command: Command): Ipv4InterfaceAddress {
    if (
      !isIpv4Value(value?.address) ||
      !Number.isInteger(value.prefix?.length) ||
      value.prefix.length < 0 ||
      value.prefix.length > 32
    )
      fail("EINVAL", `Error: any valid prefix is expected rather than "${cidrText(value)}".`, command);
    // The prefix is the address's own: a caller's prefix with another network is not trusted.
    return { address: value.address, prefix: new Ipv4Prefix(value.address, value.prefix.length) };
  }

  private attachAddress(link: SimLink, a: Ipv4InterfaceAddress): void {
    this.topologyVersion++;
    link.ns.addressGeneration++;
    link.addresses.push(a);
    if (!link.ns.localAddresses.has(a.address)) link.ns.localAddresses.set(a.address, link);
  }

  private detachAddress(link: SimLink, a: Ipv4InterfaceAddress): void {
    this.topologyVersion++;
    link.ns.addressGeneration++;
    link.addresses.splice(link.addresses.indexOf(a), 1);
    if (link.ns.localAddresses.get(a.address) === link) {
      link.ns.localAddresses.delete(a.address);
      for (const other of link.ns.links.values()) {
        if (other.addresses.some((x) => x.address === a.address))
          link.ns.localAddresses.set(a.address, other);
      }
    }
    if (!link.addresses.some((x) => x.prefix.equals(a.prefix))) {
      link.ns.routes.removeWhere((r) => r.dev === link && r.protocol === "kernel" && r.dst.equals(a.prefix));
    }
  }

  private addConnectedRoute(link: SimLink, a: Ipv4InterfaceAddress): void {
    // No prefix route for a /32 (flannel.1's 10.244.1.0/32) or for loopback's own range.
    if (a.prefix.length === 32 || link.kind === "loopback") return;
    const routes = link.ns.routes;
    if (routes.exact(a.prefix).some((r) => r.dev === link && r.protocol === "kernel")) return;
    routes.insert({
      dst: a.prefix,
      dev: link,
      metric: 0,
      protocol: "kernel",
      scope: "link",
      prefsrc: a.address,
      onlink: false,
    });
  }

  // ---- routes -----------------------------------------------------------------------------

  readonly route = {
    add: async (nsName: string, spec: RouteSpec) => this.writeRoute(nsName, spec, "add"),
    replace: async (nsName: string, spec: RouteSpec) => this.writeRoute(nsName, spec, "replace"),
    del: async (nsName: string, spec: RouteSpec) => this.deleteRoute(nsName, spec),
    list: async (nsName: string, filter: { exact?: Ipv4Prefix } = {}): Promise<RouteDump[]> =>
      this.routes(nsName, filter).map(routeDump),
    entries: async (nsName: string, filter: { exact?: Ipv4Prefix } = {}): Promise<RouteEntry[]> =>
      this.routes(nsName, filter),
    get: async (nsName: string, dst: number): Promise<RouteGetEntry> => {
      const command = `ip -n ${nsName} route get ${formatIpv4(dst)}`;
      const ns = this.ns(nsName, command);
      if (ns.isLocal(dst)) return { dst, type: "local", dev: "lo", prefsrc: dst };
      // The local table's broadcast routes come before the main table's.
      const subnet = ns.subnetBroadcast(dst);
      if (subnet) return { dst, type: "broadcast", dev: subnet.link.name, prefsrc: subnet.address };
      const route = ns.routes.lookup(dst) ?? fail("ENETUNREACH", KernelMessage.networkUnreachable, command);
      // 255.255.255.255 leaves by the route that matches it, as a broadcast: no gateway.
      if (dst === 0xffffffff)
        return {
          dst,
          type: "broadcast",
          dev: route.dev.name,
          prefsrc: ns.sourceFor(route, route.gateway ?? dst),
        };
      const entry: RouteGetEntry = { dst, type: "unicast", dev: route.dev.name };
      if (route.gateway !== undefined) entry.gateway = route.gateway;
      entry.prefsrc = ns.sourceFor(route, route.gateway ?? dst);
      const mtu = ns.learnedPathMtu(dst);
      if (mtu !== undefined) Object.assign(entry, { mtu, expires: PMTU_EXPIRES });
      return entry;
    },
  };

  private routes(nsName: string, filter: { exact?: Ipv4Prefix }): RouteEntry[] {
    const ns = this.ns(nsName);
    const exact = filter.exact;
    const values =
      exact === undefined
        ? ns.routes.allValues()
        : ns.routes.exactValues(
            this.parseDst(exact, () => `ip -n ${nsName} route show exact ${formatRouteDst(exact)}`),
          );
    return values.map((v) => routeEntryOf(v, ns.links.get(v.devName)!));
  }

  private deleteRoute(nsName: string, spec: RouteSpec): void {
    const command = () => `ip -n ${nsName} route del ${formatRouteSpec(spec)}`;
    const ns = this.ns(nsName, command);
    const dst = this.parseDst(spec.dst, command);
    const dev = spec.dev !== undefined ? this.device(ns, spec.dev, command) : undefined;
    const via = spec.via !== undefined ? this.parseAddress(spec.via, command) : undefined;
    const victim = ns.routes
      .exact(dst)
      .find(
        (r) =>
          (spec.metric === undefined || r.metric === spec.metric) &&
          (!dev || r.dev === dev) &&
          (via === undefined || r.gateway === via),
      );
    if (!victim) fail("ESRCH", KernelMessage.noSuchProcess, command);
    ns.routes.remove(victim);
  }

  /** The kernel's nexthop validation (fib_check_nh): a gateway must be on-link unless `onlink` says so. */
  private writeRoute(nsName: string, spec: RouteSpec, mode: "add" | "replace"): void {
    const command = () => `ip -n ${nsName} route ${mode} ${formatRouteSpec(spec)}`;
    const ns = this.ns(nsName, command);
    const dst = this.parseDst(spec.dst, command);
    let dev = spec.dev !== undefined ? this.device(ns, spec.dev, command) : undefined;
    const gateway = spec.via !== undefined ? this.parseAddress(spec.via, command) : undefined;
    const metric = spec.metric ?? 0;
    if (gateway !== undefined) {
      if (spec.onlink) {
        if (!dev) fail("EINVAL", KernelMessage.onlinkNeedsDevice, command);
        if (!dev.adminUp) fail("ENETDOWN", KernelMessage.onlinkDeviceNotUp, command);
      } else {
        // The gateway must be reachable through a connected (scope link) route, on `dev` if given.
        const via = ns.routes.lookup(gateway);
        if (
          !via ||
          via.gateway !== undefined ||
          via.scope === "global" ||
          ns.localAddresses.has(gateway) ||
          (dev && via.dev !== dev)
        ) {
          fail("EINVAL", KernelMessage.invalidGateway, command);
        }
        dev = via.dev;
      }
    } else {
      if (!dev) fail("ENODEV", "RTNETLINK answers: No such device", command);
      if (!dev.adminUp) fail("ENETDOWN", KernelMessage.nexthopDeviceNotUp, command);
    }
    const prefsrc = spec.src !== undefined ? this.parseAddress(spec.src, command) : undefined;
    if (prefsrc !== undefined && !ns.localAddresses.has(prefsrc))
      fail("EINVAL", "Error: Invalid prefsrc address.", command);
    const existing = ns.routes.exactValues(dst).find((r) => r.metric === metric);
    if (existing) {
      if (mode === "add") fail("EEXIST", KernelMessage.fileExists, command);
      ns.routes.removeValue(existing);
    }
    const route: SimRoute = {
      dst,
      dev: dev!,
      metric,
      scope: spec.scope ?? (gateway !== undefined ? "global" : "link"),
      onlink: spec.onlink === true && gateway !== undefined,
    };
    if (gateway !== undefined) route.gateway = gateway;
    if (prefsrc !== undefined) route.prefsrc = prefsrc;
    ns.routes.insert(route);
  }

  // ---- neighbours and FDB -----------------------------------------------------------------

  readonly neigh = {
    replace: async (nsName: string, spec: NeighSpec) => this.replaceNeigh(nsName, spec),
    del: async (nsName: string, spec: Pick<NeighSpec, "dst" | "dev">) => this.deleteNeigh(nsName, spec),
    list: async (nsName: string, filter: { dst?: number; dev?: string } = {}): Promise<NeighDump[]> =>
      this.neighbours(nsName, filter).map(neighDump),
    entries: async (nsName: string, filter: { dst?: number; dev?: string } = {}): Promise<NeighEntry[]> =>
      this.neighbours(nsName, filter),
  };

  private replaceNeigh(nsName: string, spec: NeighSpec): void {
    const command = () => `ip -n ${nsName} neigh replace ${neighArguments(spec).join(" ")}`;
    const ns = this.ns(nsName, command);
    const link = this.device(ns, spec.dev, command);
    const dst = this.parseAddress(spec.dst, command);
    ns.neighbours.set(
      ns.neighbourKey(link, dst),
      this.parseMac(spec.lladdr, command),
      (spec.state ?? "permanent") === "permanent",
    );
  }

  private deleteNeigh(nsName: string, spec: Pick<NeighSpec, "dst" | "dev">): void {
    const command = () => `ip -n ${nsName} neigh del ${neighArguments(spec).join(" ")}`;
    const ns = this.ns(nsName, command);
    const key = ns.neighbourKey(this.device(ns, spec.dev, command), this.parseAddress(spec.dst, command));
    if (!ns.neighbours.delete(key)) fail("ENOENT", KernelMessage.noSuchFileOrDirectory, command);
  }

  // ---- batches ----------------------------------------------------------------------------

  /** `ip -batch`: every write tried in order, refusals collected rather than stopping the rest. */
  async batch(nsName: string, ops: readonly BatchOp[]): Promise<BatchResult> {
    this.epoch++;
    return ops.map((op) => {
      try {
        this.apply(nsName, op);
        return undefined;
      } catch (error) {
        if (error instanceof NetlinkError) return error;
        throw error;
      }
    });
  }

  private apply(nsName: string, op: BatchOp): void {
    switch (op.op) {
      case "route.add":
        return this.writeRoute(nsName, op.spec, "add");
      case "route.replace":
        return this.writeRoute(nsName, op.spec, "replace");
      case "route.del":
        return this.deleteRoute(nsName, op.spec);
      case "neigh.replace":
        return this.replaceNeigh(nsName, op.spec);
      case "neigh.del":
        return this.deleteNeigh(nsName, op.spec);
      case "fdb.append":
        return this.writeFdb(nsName, op.spec, "append");
      case "fdb.replace":
        return this.writeFdb(nsName, op.spec, "replace");
      case "fdb.del":
        return this.writeFdb(nsName, op.spec, "del");
    }
  }

  private neighbours(nsName: string, filter: { dst?: number; dev?: string }): NeighEntry[] {
    const ns = this.ns(nsName);
    const command = `ip -n ${nsName} neigh show`;
    const dev = filter.dev !== undefined ? this.device(ns, filter.dev, command) : undefined;
    const dst = filter.dst !== undefined ? this.parseAddress(filter.dst, command) : undefined;
    const table = ns.neighbours;
    const entry = (key: number, link: SimLink): NeighEntry => ({
      dst: key % 4294967296,
      dev: link.name,
      lladdr: table.mac(key)!,
      state: [table.permanent(key) ? "PERMANENT" : "REACHABLE"],
    });
    // One probe when both are given: the table is keyed by (device, address).
    if (dev && dst !== undefined) {
      const key = ns.neighbourKey(dev, dst);
      return table.mac(key) !== undefined ? [entry(key, dev)] : [];
    }
    const byIndex = new Map([...ns.links.values()].map((l) => [l.index, l]));
    return table
      .sortedKeys()
      .filter(
        (key) =>
          (!dev || Math.floor(key / 4294967296) === dev.index) &&
          (dst === undefined || key % 4294967296 === dst),
      )
      .map((key) => entry(key, byIndex.get(Math.floor(key / 4294967296))!));
  }

  readonly fdb = {
    append: async (nsName: string, spec: FdbSpec) => this.writeFdb(nsName, spec, "append"),
    replace: async (nsName: string, spec: FdbSpec) => this.writeFdb(nsName, spec, "replace"),
    del: async (nsName: string, spec: FdbSpec) => this.writeFdb(nsName, spec, "del"),
    list: async (nsName: string, filter: { dev?: string; mac?: number } = {}): Promise<FdbDump[]> =>
      this.fdbEntries(nsName, filter).map(fdbDump),
    entries: async (nsName: string, filter: { dev?: string; mac?: number } = {}): Promise<FdbEntry[]> =>
      this.fdbEntries(nsName, filter),
  };

  private fdbEntries(nsName: string, filter: { dev?: string; mac?: number }): FdbEntry[] {
    const out: FdbEntry[] = [];
    const ns = this.ns(nsName);
    const command = `bridge -n ${nsName} fdb show`;
    const links =
      filter.dev !== undefined
        ? [this.device(ns, filter.dev, command)]
        : [...ns.links.values()].sort((a, b) => a.index - b.index);
    const only = filter.mac !== undefined ? this.parseMac(filter.mac, command) : undefined;
    for (const link of links) {
      if (link.vxlan) {
        const entries: Iterable<[number, readonly number[]]> =
          only === undefined ? link.vxlan.fdb.entries() : [[only, link.vxlan.fdb.get(only) ?? []]];
        for (const [mac, dsts] of entries)
          for (const dst of dsts) out.push({ mac, dev: link.name, dst, flags: ["self"], state: "permanent" });
      }
      for (const [mac, entry] of link.fdb ?? []) {
        if (only !== undefined && mac !== only) continue;
        out.push({
          mac,
          dev: entry.port.name,
          master: link.name,
          flags: [],
          state: entry.learned ? "" : "static",
        });
      }
    }
    return out;
  }

  private writeFdb(nsName: string, spec: FdbSpec, mode: "append" | "replace" | "del"): void {
    const command = () => `bridge -n ${nsName} fdb ${mode} ${fdbArguments(spec).join(" ")}`;
    const link = this.device(this.ns(nsName, command), spec.dev, command);
    const mac = this.parseMac(spec.mac, command);
    if (link.vxlan && (spec.self ?? true)) {
      const dst = spec.dst !== undefined ? this.parseAddress(spec.dst, command) : undefined;
      const list = link.vxlan.fdb.get(mac) ?? [];
      if (mode === "del") {
        const remaining = dst === undefined ? [] : list.filter((d) => d !== dst);
        if (remaining.length === list.length) fail("ENOENT", KernelMessage.noSuchFileOrDirectory, command);
        if (remaining.length) link.vxlan.fdb.set(mac, remaining);
        else link.vxlan.fdb.delete(mac);
        return;
      }
      if (dst === undefined) fail("EINVAL", "RTNETLINK answers: Invalid argument", command);
      // The kernel accepts appending a destination that is already there, and changes nothing.
      if (mode === "append") {
        if (!list.includes(dst)) link.vxlan.fdb.set(mac, [...list, dst]);
      } else link.vxlan.fdb.set(mac, [dst]);
      return;
    }
    const bridge = link.master;
    if (!bridge) fail("EOPNOTSUPP", KernelMessage.notSupported, command);
    if (mode === "del") {
      if (bridge.fdb!.get(mac)?.port !== link) fail("ENOENT", KernelMessage.noSuchFileOrDirectory, command);
      bridge.fdb!.delete(mac);
      return;
    }
    if (mode === "append" && bridge.fdb!.has(mac) && !bridge.fdb!.get(mac)!.learned)
      fail("EEXIST", KernelMessage.fileExists, command);
    bridge.fdb!.set(mac, { port: link, learned: false });
  }

  /**
   * How many routes, permanent neighbours and remote VXLAN FDB entries a namespace holds — what its
   * dumps would list — counted without listing: a layer's entries are counted by the layer, so the
   * control-plane metrics of a 5,000-node cluster do not build 75 million entries to count them.
   */
  tableSizes(nsName: string): { routes: number; permanentNeighbours: number; remoteFdb: number } {
    const ns = this.ns(nsName);
    let remoteFdb = ns.layer ? ns.layer.layer.entryCounts(ns.layer.self).fdb : 0;
    for (const link of ns.links.values()) if (link.vxlan) remoteFdb += link.vxlan.fdb.ownRemoteCount();
    return { routes: ns.routes.size, permanentNeighbours: ns.neighbours.permanentCount(), remoteFdb };
  }

  // ---- layers -----------------------------------------------------------------------------

  private readonly layers = new SimLayers(this);
  readonly layer = {
    attach: (layer: string, ns: string, owner: string) => this.layers.attach(layer, ns, owner),
    set: (layer: string, owner: string, entries: LayerEntries) => this.layers.set(layer, owner, entries),
    detach: (layer: string, ns: string) => this.layers.detach(layer, ns),
    adopt: (layer: string, held: LayerHeld) => this.layers.adopt(layer, held),
  };

  // ---- iptables ---------------------------------------------------------------------------

  readonly iptables = {
    newChain: async (nsName: string, table: NatTable, chain: string) => {
      const command = `iptables -t ${table} -N ${chain}`;
      const chains = this.ns(nsName, command).tables[table];
      if (chains.has(chain)) fail("EEXIST", KernelMessage.iptablesChainExists, command);
      chains.set(chain, []);
    },
    flush: async (nsName: string, table: NatTable, chain: string) => {
      const command = `iptables -t ${table} -F ${chain}`;
      const rules = this.chain(nsName, table, chain, command);
      this.ns(nsName, command).countRules(table, rules, -1);
      rules.length = 0;
    },
    deleteChain: async (nsName: string, table: NatTable, chain: string) => {
      const command = `iptables -t ${table} -X ${chain}`;
      const chains = this.ns(nsName, command).tables[table];
      const rules = this.chain(nsName, table, chain, command);
      if (BUILTIN_CHAINS[table].includes(chain))
        fail("EINVAL", "iptables: Invalid argument. Run `dmesg' for more information.", command);
      const referenced = (this.ns(nsName, command).jumps[table].get(chain) ?? 0) > 0;
      // iptables-nft refuses both a referenced and a non-empty chain with the same words.
      if (referenced || rules.length) fail("EBUSY", KernelMessage.chainBusy(chain), command);
      chains.delete(chain);
    },
    append: async (nsName: string, table: NatTable, chain: string, rule: IptablesRule) => {
      const command = () => `iptables -t ${table} -A ${chain} ${formatIptablesRule(rule)}`;
      this.checkRule(nsName, table, chain, rule, command);
      this.chain(nsName, table, chain, command).push(rule);
      this.ns(nsName, command).countRules(table, [rule], 1);
    },
    insert: async (nsName: string, table: NatTable, chain: string, rule: IptablesRule, position = 1) => {
      const command = () => `iptables -t ${table} -I ${chain} ${position} ${formatIptablesRule(rule)}`;
      this.checkRule(nsName, table, chain, rule, command);
      const rules = this.chain(nsName, table, chain, command);
      if (position < 1 || position > rules.length + 1)
        fail("EINVAL", "iptables: Index of insertion too big.", command);
      rules.splice(position - 1, 0, rule);
      this.ns(nsName, command).countRules(table, [rule], 1);
    },
    delete: async (nsName: string, table: NatTable, chain: string, rule: IptablesRule) => {
      const text = formatIptablesRule(rule);
      const command = `iptables -t ${table} -D ${chain} ${text}`;
      const rules = this.chain(nsName, table, chain, command);
      // Rules with different targets never print alike: only the others are compared as text.
      const target = jumpTarget(rule);
      const at = rules.findIndex(
        (r) =>
          r.target.kind === rule.target.kind && jumpTarget(r) === target && formatIptablesRule(r) === text,
      );
      if (at < 0) fail("ENOENT", KernelMessage.iptablesBadRule, command);
      this.ns(nsName, command).countRules(table, rules.splice(at, 1), -1);
    },
    save: async (nsName: string, table: NatTable) => formatIptablesSave(table, this.chains(nsName, table)),
    list: async (nsName: string, table: NatTable, chain?: string): Promise<ChainDump[]> => {
      const policy = (c: ChainDump): ChainDump =>
        BUILTIN_CHAINS[table].includes(c.name) ? { ...c, policy: "ACCEPT" } : c;
      if (chain === undefined) return saveOrder(table, this.chains(nsName, table)).map(policy);
      // One chain by name, as `iptables -S CHAIN` reads it: no copy of a 60,000-chain table.
      const rules = this.ns(nsName).tables[table].get(chain);
      return rules ? [policy({ name: chain, rules: [...rules] })] : [];
    },
  };

  // ---- nftables ----------------------------------------------------------------------------

  readonly nft = {
    run: async (nsName: string, commands: readonly NftCommand[]) => {
      const command = () => (commands.length ? formatNftCommand(commands[0]!) : "nft -j -f");
      this.ns(nsName, command).nft.apply(commands);
    },
    list: async (nsName: string, family: NftFamily, table: string): Promise<NftObject[]> =>
      this.ns(nsName, `nft list table ${family} ${table}`).nft.list(table) ??
      fail("ENOENT", NftMessage.noSuchFile, `nft list table ${family} ${table}`),
  };

  /** A table's chains; rules are copied, so a reader cannot change the kernel's. */
  private chains(nsName: string, table: NatTable): ChainDump[] {
    return [...this.ns(nsName).tables[table]].map(([name, rules]) => ({ name, rules: [...rules] }));
  }

  private chain(nsName: string, table: NatTable, chain: string, command: Command): IptablesRule[] {
    return (
      this.ns(nsName, command).tables[table].get(chain) ??
      fail("ENOENT", KernelMessage.iptablesNoChain, command)
    );
  }

  private checkRule(
    nsName: string,
    table: NatTable,
    chain: string,
    rule: IptablesRule,
    command: Command,
  ): void {
    const t = rule.target.kind;
    if (table === "nat" && (t === "DROP" || t === "REJECT")) {
      fail(
        "EINVAL",
        `The "nat" table is not intended for filtering, the use of ${t} is therefore inhibited.`,
        command,
      );
    }
    if (table === "filter" && (t === "DNAT" || t === "SNAT" || t === "MASQUERADE")) {
      fail("EINVAL", `RULE_APPEND failed (Invalid argument): rule in chain ${chain}`, command);
    }
    if (rule.target.kind === "jump") this.chain(nsName, table, rule.target.chain, command);
  }
}

const jumpTarget = (r: IptablesRule) => (r.target.kind === "jump" ? r.target.chain : undefined);

/** A route as a program reads it. */
function routeEntryOf(r: Omit<SimRoute, "dev">, dev: SimLink): RouteEntry {
  const entry: RouteEntry = {
    dst: r.dst,
    dev: dev.name,
    scope: r.scope,
    metric: r.metric,
    onlink: r.onlink,
    linkdown: !dev.carrier,
  };
  if (r.gateway !== undefined) entry.gateway = r.gateway;
  if (r.protocol) entry.protocol = r.protocol;
  if (r.prefsrc !== undefined) entry.prefsrc = r.prefsrc;
  return entry;
}

/** A route as `ip -j route` prints it (same key order): /32 destinations bare, 0/0 as "default". */
export function dumpRoute(r: SimRoute): RouteDump {
  return routeDump(routeEntryOf(r, r.dev));
}

/** "10.0.1.1/24", for the command a refusal names. */
function cidrText(a: Ipv4InterfaceAddress): string {
  return `${formatIpv4(a.address)}/${a.prefix?.length}`;
}
