/**
 * The host API, after iproute2's verbs. Every value crossing it is text in iproute2's own notation
 * ("10.0.1.1/24", "96:fe:d6:d5:45:cf"), so the Linux backend can hand it to `ip` unchanged and the
 * simulator can be compared with a kernel by its dumps.
 */
import type { IptablesRule, NatTable } from "./iptables.js";

export type LinkSpec =
  | { kind: "veth"; name: string; peer: { name: string; netns?: string }; mtu?: number; address?: string }
  | { kind: "bridge"; name: string; mtu?: number; address?: string }
  | { kind: "dummy"; name: string; mtu?: number; address?: string }
  | {
      kind: "vxlan";
      name: string;
      /** VXLAN network identifier (24 bits). */
      vni: number;
      /** Source address of the outer packets. */
      local?: string;
      /** UDP destination port; the kernel's default is 8472, IANA's 4789. */
      dstport?: number;
      /** Underlying device: the MTU defaults to its MTU − 50. */
      dev?: string;
      /** Learn remote MACs from received packets (flannel turns this off). */
      learning?: boolean;
      mtu?: number;
      address?: string;
    };

export type SysctlKey = "net.ipv4.ip_forward" | "net.bridge.bridge-nf-call-iptables";

export interface LinkChange {
  up?: boolean;
  mtu?: number;
  /** A bridge to enslave the link to, or null to release it (`nomaster`). */
  master?: string | null;
  /** Move the link into another namespace. */
  netns?: string;
  /** Bridge port hairpin mode (`bridge link set dev X hairpin on`). */
  hairpin?: boolean;
  address?: string;
}

export interface RouteSpec {
  /** "10.0.2.0/24", a host "10.0.2.5", or "default". */
  dst: string;
  via?: string;
  dev?: string;
  onlink?: boolean;
  metric?: number;
  src?: string;
  scope?: "global" | "link" | "host";
}

export interface NeighSpec {
  dst: string;
  dev: string;
  lladdr: string;
  state?: "permanent" | "reachable" | "stale" | "noarp";
}

export interface FdbSpec {
  mac: string;
  dev: string;
  /** Remote VTEP address for a VXLAN device. */
  dst?: string;
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
    list(ns: string): Promise<LinkDump[]>;
  };
  addr: {
    /**
     * Adds "address/len" to dev; on an up link the connected route appears, as the kernel does.
     * `broadcast: true` sets the subnet's broadcast address too (`ip addr add … brd +`), as the CNI
     * bridge plugin does.
     */
    add(ns: string, dev: string, cidr: string, options?: { broadcast?: boolean }): Promise<void>;
    del(ns: string, dev: string, cidr: string): Promise<void>;
    list(ns: string): Promise<AddrDump[]>;
  };
  route: {
    add(ns: string, route: RouteSpec): Promise<void>;
    replace(ns: string, route: RouteSpec): Promise<void>;
    del(ns: string, route: RouteSpec): Promise<void>;
    /** `ip -j route`, or with `exact` only the routes to exactly that destination (`ip route show exact`). */
    list(ns: string, filter?: { exact?: string }): Promise<RouteDump[]>;
  };
  neigh: {
    replace(ns: string, entry: NeighSpec): Promise<void>;
    del(ns: string, entry: Pick<NeighSpec, "dst" | "dev">): Promise<void>;
    /** `ip -j neigh`, optionally `show DST dev DEV`. */
    list(ns: string, filter?: { dst?: string; dev?: string }): Promise<NeighDump[]>;
  };
  fdb: {
    append(ns: string, entry: FdbSpec): Promise<void>;
    replace(ns: string, entry: FdbSpec): Promise<void>;
    del(ns: string, entry: FdbSpec): Promise<void>;
    /** `bridge -j fdb show`, optionally for one device and one MAC. */
    list(ns: string, filter?: { dev?: string; mac?: string }): Promise<FdbDump[]>;
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
  };
}

/** A route spec as iproute2 writes it: "10.0.2.0/24 via 10.100.0.3 dev eth0 onlink metric 100". */
export function formatRouteSpec(spec: RouteSpec): string {
  return [
    spec.dst,
    spec.via && `via ${spec.via}`,
    spec.dev && `dev ${spec.dev}`,
    spec.onlink && "onlink",
    spec.metric !== undefined && `metric ${spec.metric}`,
  ]
    .filter(Boolean)
    .join(" ");
}
