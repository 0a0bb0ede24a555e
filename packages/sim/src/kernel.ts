import { MacGenerator, PodnetError, SeededRandom, formatIpv4, parseIpv4 } from "@podnet/core";
import { Draws } from "./draws.js";
import {
  KernelMessage,
  NetlinkError,
  type BatchOp,
  type BatchResult,
  type LayerEntries,
  type LayerHeld,
  type Netlink,
  type SysctlKey,
} from "@podnet/netlink";
import { checkIfname, checkKernelIfname, fail, parseMac, type Command } from "./kernel-args.js";
import { addrApi } from "./kernel-addresses.js";
import { destroyLink, linkApi } from "./kernel-links.js";
import { deleteNeigh, fdbApi, neighApi, replaceNeigh, writeFdb } from "./kernel-neighbours.js";
import { conntrackApi, iptablesApi, nftApi } from "./kernel-netfilter.js";
import { deleteRoute, routeApi, writeRoute } from "./kernel-routes.js";
import { SimLink } from "./link.js";
import { SimNamespace, type SimSocket } from "./namespace.js";
import type { Trace, TraceSummary } from "./trace.js";
import { walk, walkSummary, type SendOptions } from "./walk.js";
import { FlowCache, FlowRecording, frozen, portWatch } from "./flow-cache.js";
import { RoutePool } from "./route-table.js";
import { SimLayers } from "./layers.js";

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

/**
 * An in-memory Linux network stack holding many namespaces: the state half of the simulator.
 * It implements the host API with the kernel's refusals; the packet walk (walk.ts) reads it.
 */
export class SimKernel implements Netlink {
  readonly namespaces = new Map<string, SimNamespace>();
  /** Every distinct route value of all namespaces, stored once (route-table.ts). */
  private readonly routePool = new RoutePool();
  readonly random: Draws;
  /**
   * The source ports --random-fully draws (nf_nat's get_random_u16), from a stream of their own: a
   * masqueraded connection does not change which endpoint a later statistic rule picks.
   */
  readonly natRandom: SeededRandom;
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
    this.random = new Draws(`${this.seed}/statistic`);
    this.natRandom = new SeededRandom(`${this.seed}/nat`);
    this.flows = options.flowCache === false ? undefined : new FlowCache();
    this.arpIndexFrom = options.arpIndexFrom ?? 64;
    this.chainIndexFrom = options.chainIndexFrom ?? 64;
    const { netns, sysctl, link, addr, route, neigh, fdb, layer, iptables, nft, conntrack } = this;
    for (const api of [netns, sysctl, link, addr, route, neigh, fdb, layer, iptables, nft, conntrack])
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
    const port = this.nextSend(options);
    this.random.want(options.endpoint);
    try {
      return walk(this, options, port);
    } finally {
      this.random.want(undefined);
    }
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

  /** Creates a link synchronously (netns add, kernel-links.ts); the async host API wraps it. */
  createLink(
    ns: SimNamespace,
    name: string,
    kind: SimLink["kind"],
    mtu: number,
    address: number | undefined,
    command: string,
  ): SimLink {
    checkIfname(name, command);
    checkKernelIfname(name, command);
    if (ns.links.has(name)) fail("EEXIST", KernelMessage.fileExists, command);
    const mac =
      address !== undefined
        ? parseMac(address, command)
        : kind === "loopback"
          ? 0
          : new MacGenerator(`${this.seed}/${ns.name}/${name}`).next();
    const link = new SimLink(this.nextIndex++, name, ns, kind, mac, mtu);
    this.topologyVersion++;
    ns.links.set(name, link);
    return link;
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
      for (const link of [...ns.links.values()]) destroyLink(this, link);
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

  // ---- links, addresses, routes, neighbours and FDB (kernel-*.ts) ----------------------

  readonly link = linkApi(this);
  readonly addr = addrApi(this);
  readonly route = routeApi(this);
  readonly neigh = neighApi(this);
  readonly fdb = fdbApi(this);

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
        return writeRoute(this, nsName, op.spec, "add");
      case "route.replace":
        return writeRoute(this, nsName, op.spec, "replace");
      case "route.del":
        return deleteRoute(this, nsName, op.spec);
      case "neigh.replace":
        return replaceNeigh(this, nsName, op.spec);
      case "neigh.del":
        return deleteNeigh(this, nsName, op.spec);
      case "fdb.append":
        return writeFdb(this, nsName, op.spec, "append");
      case "fdb.replace":
        return writeFdb(this, nsName, op.spec, "replace");
      case "fdb.del":
        return writeFdb(this, nsName, op.spec, "del");
    }
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

  /** The layers' storage; devices going down and namespaces going away tell it (kernel-links.ts). */
  readonly layers = new SimLayers(this);
  readonly layer = {
    attach: (layer: string, ns: string, owner: string) => this.layers.attach(layer, ns, owner),
    set: (layer: string, owner: string, entries: LayerEntries) => this.layers.set(layer, owner, entries),
    detach: (layer: string, ns: string) => this.layers.detach(layer, ns),
    adopt: (layer: string, held: LayerHeld) => this.layers.adopt(layer, held),
  };

  // ---- iptables, nftables and conntrack (kernel-netfilter.ts) ----------------------------

  readonly iptables = iptablesApi(this);
  readonly nft = nftApi(this);
  readonly conntrack = conntrackApi(this);
}
