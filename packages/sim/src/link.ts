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
 * A bridge's ports sorted for an ARP request's flood: the plain ports (a veth whose up peer is not
 * enslaved) by the local addresses of the namespace behind them, and every other port. A request
 * for X needs walking only through the plain ports behind which X is local and the others: no
 * other plain host can answer or change, so a 5,000-host segment resolves in O(1).
 */
export interface ArpIndex {
  version: number;
  byAddress: Map<number, SimLink[]>;
  others: SimLink[];
  /** Each port's place in the bridge's port order, so the walk keeps the kernel's flood order. */
  order: Map<SimLink, number>;
  /** How many ports have carrier (a flood goes only to those): counted once per topology version. */
  carriers: number;
  /** The first ports in order, all of them and those with carrier: what a flood's sentence names. */
  first: { all: SimLink[]; withCarrier: SimLink[] };
}

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
