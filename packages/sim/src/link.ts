import { formatMac, type Ipv4Prefix } from "@podnet/core";
import type { SimNamespace } from "./namespace.js";
import type { VxlanFdb } from "./number-map.js";

export type SimLinkKind = "loopback" | "veth" | "bridge" | "vxlan" | "dummy";

export interface SimAddress {
  address: number;
  prefix: Ipv4Prefix;
  /** Set with `brd +`: shown in dumps as the subnet's broadcast address. */
  broadcast?: boolean;
}

export interface BridgeFdbEntry {
  port: SimLink;
  /** Learned entries come from traffic; static ones from `bridge fdb`. */
  learned: boolean;
}

export interface VxlanConfig {
  vni: number;
  local?: number;
  dstport: number;
  dev?: string;
  learning: boolean;
  /** Remote VTEPs by inner MAC; the all-zeros MAC is the default (flood) list. */
  fdb: VxlanFdb;
}

/**
 * A bridge's ports as an ARP request's flood needs them, for one topology version. A request for X
 * needs walking only through the ports behind which X is local and the ports that are not plain
 * hosts (a veth whose peer is not enslaved): no other plain host can answer or change.
 */
export interface ArpIndex {
  version: number;
  /** The ports in the bridge's order (the kernel's flood order). */
  ports: SimLink[];
  /**
   * Per port, what the host behind it answers ARP for: its one address, or `ArpHost.OTHER` (not a
   * plain host: always walked), `ArpHost.NONE`, `ArpHost.SEVERAL` (its namespace is asked).
   */
  hosts: number[];
  /**
   * Bridges of `arpIndexFrom` ports or more: the plain ports by the addresses behind them, the
   * other ports, and each port's place in `ports`, so that a 5,000-host segment resolves in O(1).
   */
  large?: {
    byAddress: Map<number, SimLink[]>;
    others: SimLink[];
    order: Map<SimLink, number>;
  };
  /** How many ports have carrier (a flood goes only to those). */
  carriers: number;
  /** The first ports in order, all of them and those with carrier: what a flood's sentence names. */
  first: { all: SimLink[]; withCarrier: SimLink[] };
}

/** `ArpIndex.hosts` for a port that is not behind one address. */
export const ArpHost = { OTHER: -1, NONE: -2, SEVERAL: -3 } as const;

/** A network device in a namespace. Mutable: the kernel model changes it in place. */
export class SimLink {
  adminUp = false;
  master?: SimLink;
  peer?: SimLink;
  hairpin = false;
  readonly addresses: SimAddress[] = [];
  /** Bridges only: the ports and the forwarding database. */
  ports?: Set<SimLink>;
  fdb?: Map<number, BridgeFdbEntry>;
  /** Bridges only: its ports' own MACs (the kernel's "permanent local" FDB entries), for an O(1) check. */
  portMacs?: Map<number, number>;
  vxlan?: VxlanConfig;
  /** Bridges only: its MTU was set after it was made, so its ports' MTUs no longer set it. */
  mtuSetByUser?: boolean;
  /** Bridges only: who answers ARP behind which port, for one topology version (walk-devices.ts). */
  arpIndex?: ArpIndex;

  constructor(
    readonly index: number,
    public name: string,
    public ns: SimNamespace,
    readonly kind: SimLinkKind,
    public mac: number,
    public mtu: number,
  ) {}

  private macCache?: { mac: number; text: string };

  /** The MAC as dumps print it, formatted once per MAC: every link dump names every link's MAC. */
  get macText(): string {
    if (this.macCache?.mac !== this.mac) this.macCache = { mac: this.mac, text: formatMac(this.mac) };
    return this.macCache.text;
  }

  /** LOWER_UP: a veth has carrier only while its peer is up too. */
  get carrier(): boolean {
    if (!this.adminUp) return false;
    if (this.kind === "veth") return this.peer?.adminUp ?? false;
    return true;
  }
}
