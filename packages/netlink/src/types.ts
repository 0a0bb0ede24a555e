/**
 * The host API, after iproute2's verbs. Values going in are @podnet/core values (an IPv4 address is
 * a number, a prefix an Ipv4Prefix, a MAC a number), so two spellings of one address are one value
 * and a program that compares what it wants with what a host holds compares values. Text appears
 * only at the edges: the Linux backend's command arguments, the dumps in `ip -j` shape (`list`),
 * and the kernel's words in errors. Programs read typed entries (`entries`, `iptables.list`).
 *
 * IPv4 only: when IPv6 arrives it brings its own address and prefix types, told apart by `family`.
 */
import type { Ipv4, Ipv4InterfaceAddress, Ipv4Prefix, Mac } from "@podnet/core";
import type { NetlinkError } from "./errors.js";
import type { ChainDump, IptablesRule, NatTable } from "./iptables.js";
import type { NftCommand, NftFamily, NftObject } from "./nftables.js";

/** An address on the host API (IPv4 today). */
export type IpAddress = Ipv4;
/** A destination prefix on the host API; length 0 is iproute2's "default". */
export type IpPrefix = Ipv4Prefix;

export type LinkSpec =
  | { kind: "veth"; name: string; peer: { name: string; netns?: string }; mtu?: number; address?: Mac }
  | { kind: "bridge"; name: string; mtu?: number; address?: Mac }
  | { kind: "dummy"; name: string; mtu?: number; address?: Mac }
  | {
      kind: "vxlan";
      name: string;
      /** VXLAN network identifier (24 bits). */
      vni: number;
      /** Source address of the outer packets. */
      local?: IpAddress;
      /** UDP destination port; the kernel's default is 8472, IANA's 4789. */
      dstport?: number;
      /** Underlying device: the MTU defaults to its MTU − 50. */
      dev?: string;
      /** Learn remote MACs from received packets (flannel turns this off). */
      learning?: boolean;
      mtu?: number;
      address?: Mac;
    };

export type SysctlKey =
  | "net.ipv4.ip_forward"
  | "net.bridge.bridge-nf-call-iptables"
  /** Loopback addresses routed off lo (kube-proxy sets it for NodePorts on 127.0.0.1). */
  | "net.ipv4.conf.all.route_localnet"
  /** The same for one device (the portmap plugin sets its bridge's); the kernel ORs it with `all`. */
  | `net.ipv4.conf.${string}.route_localnet`;

export interface LinkChange {
  up?: boolean;
  mtu?: number;
  /** A bridge to enslave the link to, or null to release it (`nomaster`). */
  master?: string | null;
  /** Move the link into another namespace. */
  netns?: string;
  /** Bridge port hairpin mode (`bridge link set dev X hairpin on`). */
  hairpin?: boolean;
  address?: Mac;
}

export interface RouteSpec {
  /** The destination: a prefix, a host as its /32, or the default route as 0.0.0.0/0. */
  dst: IpPrefix;
  via?: IpAddress;
  dev?: string;
  onlink?: boolean;
  metric?: number;
  src?: IpAddress;
  scope?: "global" | "link" | "host";
}

export interface NeighSpec {
  dst: IpAddress;
  dev: string;
  lladdr: Mac;
  state?: "permanent" | "reachable" | "stale" | "noarp";
}

export interface FdbSpec {
  mac: Mac;
  dev: string;
  /** Remote VTEP address for a VXLAN device. */
  dst?: IpAddress;
  /** `self` programs the device's own table (VXLAN); otherwise the master bridge's. */
  self?: boolean;
  permanent?: boolean;
}

/** One entry of `ip -j link` (with `-d`: linkinfo). */
export interface LinkDump {
  ifindex: number;
  link_index?: number;
  ifname: string;
  flags: string[];
  mtu: number;
  master?: string;
  operstate: "UP" | "DOWN" | "UNKNOWN";
  link_type: "ether" | "loopback";
  address: string;
  linkinfo?: { info_kind: string; info_data?: Record<string, unknown>; info_slave_kind?: string };
}

export interface AddrInfoDump {
  family: "inet";
  local: string;
  prefixlen: number;
  broadcast?: string;
  scope: "global" | "host" | "link";
  label: string;
}

/** One entry of `ip -j addr` (IPv4 only: inet6 entries of a real kernel are left out). */
export interface AddrDump extends LinkDump {
  addr_info: AddrInfoDump[];
}

/** One entry of `ip -j route` (table main). */
export interface RouteDump {
  dst: string;
  gateway?: string;
  dev: string;
  protocol?: string;
  scope?: string;
  prefsrc?: string;
  metric?: number;
  flags: string[];
}

/**
 * What `ip route get DST` answers: the route the kernel would use for one destination, the source
 * address it would pick, and what it has learned about the path.
 */
export interface RouteGetEntry {
  dst: IpAddress;
  /**
   * "local" for an address of this namespace (delivered through lo); "broadcast" for 255.255.255.255
   * and the broadcast address of a subnet on one of its devices that is up (never via a gateway).
   */
  type: "unicast" | "local" | "broadcast";
  gateway?: IpAddress;
  dev: string;
  prefsrc?: IpAddress;
  /** A path MTU learned from ICMP "fragmentation needed" (`cache expires 600sec mtu 1400`). */
  mtu?: number;
  /** Seconds until the learned path MTU is forgotten. */
  expires?: number;
}

/** One entry of `ip -j neigh`. */
export interface NeighDump {
  dst: string;
  dev: string;
  lladdr?: string;
  state: string[];
}

/** One entry of `bridge -j fdb show`. */
export interface FdbDump {
  mac: string;
  ifname: string;
  dst?: string;
  master?: string;
  flags: string[];
  state: string;
}

/** A route as a program reads it: RouteDump's facts as values. */
export interface RouteEntry {
  dst: IpPrefix;
  gateway?: IpAddress;
  dev: string;
  /** "kernel" for the connected routes the kernel adds itself. */
  protocol?: string;
  scope: "global" | "link" | "host";
  prefsrc?: IpAddress;
  metric: number;
  onlink: boolean;
  /** The device has no carrier. */
  linkdown: boolean;
}

/** A neighbour as a program reads it. */
export interface NeighEntry {
  dst: IpAddress;
  dev: string;
  lladdr?: Mac;
  /** NUD states as `ip -j neigh` prints them ("PERMANENT", "REACHABLE", …). */
  state: string[];
}

/** An FDB entry as a program reads it (`dev` is the port or VXLAN device, `ifname` in the dump). */
export interface FdbEntry {
  mac: Mac;
  dev: string;
  dst?: IpAddress;
  master?: string;
  flags: string[];
  state: string;
}

/** One write of a batch (`ip -batch`): the route manager programs a peer's entries in one call. */
export type BatchOp =
  | { op: "route.add" | "route.replace" | "route.del"; spec: RouteSpec }
  | { op: "neigh.replace"; spec: NeighSpec }
  | { op: "neigh.del"; spec: Pick<NeighSpec, "dst" | "dev"> }
  | { op: "fdb.append" | "fdb.replace" | "fdb.del"; spec: FdbSpec };

/** What a batch did: per write, in order, undefined when applied or the kernel's refusal. */
export type BatchResult = (NetlinkError | undefined)[];

/** What one owner puts in a layer: the entries every other member of the layer holds. */
export interface LayerEntries {
  routes: RouteSpec[];
  neighbours: NeighSpec[];
  fdb: FdbSpec[];
}

/** A layer as its members already hold it. */
export interface LayerHeld {
  owners: [owner: string, entries: LayerEntries][];
  members: [ns: string, owner: string][];
}

/** A member that does not hold an owner's entries, because the kernel refused one of them there. */
export interface LayerRefusal {
  ns: string;
  owner: string;
  /** The refused entry ("10.0.2.0/24 via 10.100.0.3 dev eth0", "neigh 10.244.2.0 lladdr …"). */
  entry: string;
  error: NetlinkError;
}

/** Which tracked flows a `conntrack.delete` forgets. */
export interface ConntrackFilter {
  protocol: "tcp" | "udp";
  /** The original direction's destination port. */
  origDstPort: number;
}

export interface Netlink {
  netns: {
    add(name: string): Promise<void>;
    del(name: string): Promise<void>;
    list(): Promise<string[]>;
  };
  sysctl: {
    /**
     * `sysctl -w key=value` inside the namespace. Keys every backend supports:
     * net.ipv4.ip_forward ("0"/"1": route packets not addressed to this namespace) and
     * net.bridge.bridge-nf-call-iptables ("0"/"1": bridged IPv4 frames traverse iptables).
     */
    set(ns: string, key: SysctlKey, value: string): Promise<void>;
    get(ns: string, key: SysctlKey): Promise<string>;
  };
  link: {
    add(ns: string, spec: LinkSpec): Promise<void>;
    del(ns: string, name: string): Promise<void>;
    set(ns: string, name: string, change: LinkChange): Promise<void>;
    /**
     * `ip -j -d link show`, or with `dev` only that device (`ip link show dev NAME`; none when it
     * does not exist): a plugin reading its own device needs no dump of a node's every pod link.
     */
    list(ns: string, filter?: { dev?: string }): Promise<LinkDump[]>;
  };
  addr: {
    /**
     * Adds "address/len" to dev; on an up link the connected route appears, as the kernel does.
     * `broadcast: true` sets the subnet's broadcast address too (`ip addr add … brd +`), as the CNI
     * bridge plugin does.
     */
    add(
      ns: string,
      dev: string,
      address: Ipv4InterfaceAddress,
      options?: { broadcast?: boolean },
    ): Promise<void>;
    del(ns: string, dev: string, address: Ipv4InterfaceAddress): Promise<void>;
    /** `ip -j -d addr show`, or with `dev` only that device's (none when it does not exist). */
    list(ns: string, filter?: { dev?: string }): Promise<AddrDump[]>;
  };
  route: {
    add(ns: string, route: RouteSpec): Promise<void>;
    replace(ns: string, route: RouteSpec): Promise<void>;
    del(ns: string, route: RouteSpec): Promise<void>;
    /** `ip -j route`, or with `exact` only the routes to exactly that destination (`ip route show exact`). */
    list(ns: string, filter?: { exact?: IpPrefix }): Promise<RouteDump[]>;
    /** The same routes as values, in the same order. */
    entries(ns: string, filter?: { exact?: IpPrefix }): Promise<RouteEntry[]>;
    /** `ip route get DST`: refused with ENETUNREACH when no route leads there. */
    get(ns: string, dst: IpAddress): Promise<RouteGetEntry>;
  };
  neigh: {
    replace(ns: string, entry: NeighSpec): Promise<void>;
    del(ns: string, entry: Pick<NeighSpec, "dst" | "dev">): Promise<void>;
    /** `ip -j neigh`, optionally `show DST dev DEV`. */
    list(ns: string, filter?: { dst?: IpAddress; dev?: string }): Promise<NeighDump[]>;
    entries(ns: string, filter?: { dst?: IpAddress; dev?: string }): Promise<NeighEntry[]>;
  };
  fdb: {
    append(ns: string, entry: FdbSpec): Promise<void>;
    replace(ns: string, entry: FdbSpec): Promise<void>;
    del(ns: string, entry: FdbSpec): Promise<void>;
    /** `bridge -j fdb show`, optionally for one device and one MAC. */
    list(ns: string, filter?: { dev?: string; mac?: Mac }): Promise<FdbDump[]>;
    entries(ns: string, filter?: { dev?: string; mac?: Mac }): Promise<FdbEntry[]>;
  };
  /**
   * Applies many route, neighbour and FDB writes to one namespace in one call, as `ip -batch`
   * does: each write is tried in order, a refused one does not stop the rest, and the result says
   * which were refused and why.
   */
  batch(ns: string, ops: readonly BatchOp[]): Promise<BatchResult>;
  /**
   * Entries many namespaces hold alike — every node's routes, neighbours and FDB entries for its
   * peers — written once per owner instead of once per owner and namespace. A layer has owners (the
   * peers) and members (the nodes' namespaces, each belonging to one owner); a member holds every
   * other owner's entries, written as flannel writes them (`neigh replace`, `bridge fdb append`,
   * `route replace`), and an owner's entries whole or not at all: when the kernel refuses one of them
   * in a member, that member holds none of them (the refusal says which). Everything a layer does
   * is what those writes in each member would do, and every dump shows it: the Linux backend does
   * exactly those writes (`LayerFanout`); the simulator keeps entries once for all members, so a
   * cluster's per-peer state costs O(nodes), not O(nodes²).
   */
  layer: {
    /** `ns` becomes a member for `owner` and takes every other owner's entries. */
    attach(layer: string, ns: string, owner: string): Promise<LayerRefusal[]>;
    /** Replaces what `owner` puts in the layer: members drop its old entries and take the new. */
    set(layer: string, owner: string, entries: LayerEntries): Promise<LayerRefusal[]>;
    /** `ns` leaves the layer: later writes no longer reach it, and it keeps what it holds. */
    detach(layer: string, ns: string): Promise<void>;
    /**
     * Records a layer whose entries the members already hold (a manager that restarted, after it
     * checked every member's tables), writing nothing: owners with their entries, members with
     * their owners.
     */
    adopt(layer: string, held: LayerHeld): Promise<void>;
  };
  iptables: {
    newChain(ns: string, table: NatTable, chain: string): Promise<void>;
    /** Removes every rule of a chain (`-F`). */
    flush(ns: string, table: NatTable, chain: string): Promise<void>;
    deleteChain(ns: string, table: NatTable, chain: string): Promise<void>;
    append(ns: string, table: NatTable, chain: string, rule: IptablesRule): Promise<void>;
    /** Inserts at a 1-based position (`-I chain n`), default 1. */
    insert(ns: string, table: NatTable, chain: string, rule: IptablesRule, position?: number): Promise<void>;
    /** Deletes the first rule equal to `rule` (`-D chain rule`). */
    delete(ns: string, table: NatTable, chain: string, rule: IptablesRule): Promise<void>;
    /** `iptables-save -t table` text, counters zeroed. */
    save(ns: string, table: NatTable): Promise<string>;
    /**
     * The table's chains and rules as data, in iptables-save's order (built-ins first, then by
     * name); with `chain`, only that chain (none when it does not exist).
     */
    list(ns: string, table: NatTable, chain?: string): Promise<ChainDump[]>;
  };
  /** Connection tracking, as conntrack-tools' `conntrack` reads and changes it. */
  conntrack: {
    /**
     * `conntrack -D -f ipv4 -p PROTO --orig-port-dst PORT`: forgets the namespace's tracked IPv4
     * flows of that protocol whose original direction went to `port`, so their next packets are
     * classified anew and meet NAT rules added since; resolves to how many it deleted (0 when none).
     * A protocol other than tcp/udp or a port outside 1-65535 is refused (EINVAL) before anything
     * runs: conntrack itself reads "abc" or 70000 as some other port.
     */
    delete(ns: string, filter: ConntrackFilter): Promise<number>;
  };
  /** nftables, in libnftables' JSON shapes (nftables.ts). */
  nft: {
    /**
     * Applies the commands as one transaction (`nft -j -f -`): all of them, or — refused — none,
     * with nft's words ("Error: Could not process rule: No such file or directory").
     */
    run(ns: string, commands: readonly NftCommand[]): Promise<void>;
    /**
     * `nft -j list table FAMILY NAME` as objects without their handles, map elements in key order
     * (the kernel's hash order is not stable); refused with "Error: No such file or directory"
     * when the table does not exist.
     */
    list(ns: string, family: NftFamily, table: string): Promise<NftObject[]>;
  };
}
