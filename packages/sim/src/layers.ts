/**
 * The simulated kernel's layers (`Netlink.layer`): shared storage for the members whose tables
 * fit it (layer.ts), ordinary per-member writes (`LayerFanout`) for the others. A member is shared
 * when every entry the layer holds for it is one its kernel would accept unchanged: its devices
 * exist (and are up where the kernel asks), every gateway is on-link through a connected route,
 * and none of its own entries has the identity of a layer entry. Anything else — a write of its own
 * touching a layer entry, a layer device going down, a refusal — materialises it.
 */
import { isIpv4Value, isMacValue } from "@podnet/core";
import { LayerFanout, type LayerEntries, type LayerHeld, type LayerRefusal } from "@podnet/netlink";
import { SimLayer, type OwnerValues } from "./layer.js";
import type { SimLink } from "./link.js";
import type { SimNamespace } from "./namespace.js";
import type { SimKernel } from "./kernel.js";
import type { RouteValue } from "./route-table.js";

const canonical = (p: { network: number; length: number; mask: number }) =>
  isIpv4Value(p.network) && p.length >= 0 && p.length <= 32 && (p.network & p.mask) >>> 0 === p.network;

/**
 * An owner's entries as values every member can share, or undefined when they are not plain peer
 * entries (a route without a gateway, with a metric, source or scope; a neighbour that is not
 * permanent; an FDB entry on a bridge port): those go to every member as ordinary writes.
 */
function shareable(entries: LayerEntries): OwnerValues | undefined {
  const routes: RouteValue[] = [];
  for (const r of entries.routes) {
    if (r.via === undefined || !isIpv4Value(r.via) || !canonical(r.dst) || r.dev === undefined)
      return undefined;
    if ((r.metric ?? 0) !== 0 || r.src !== undefined || r.scope !== undefined) return undefined;
    routes.push({
      dst: r.dst,
      gateway: r.via,
      devName: r.dev,
      metric: 0,
      scope: "global",
      onlink: r.onlink === true,
    });
  }
  const neighbours: OwnerValues["neighbours"] = [];
  for (const n of entries.neighbours) {
    if ((n.state ?? "permanent") !== "permanent" || !isIpv4Value(n.dst) || !isMacValue(n.lladdr))
      return undefined;
    neighbours.push({ dev: n.dev, dst: n.dst, mac: n.lladdr });
  }
  const fdb: OwnerValues["fdb"] = [];
  for (const f of entries.fdb) {
    if (f.self === false || f.dst === undefined || !isIpv4Value(f.dst) || !isMacValue(f.mac))
      return undefined;
    fdb.push({ dev: f.dev, mac: f.mac, dst: f.dst });
  }
  return { routes, neighbours, fdb };
}

export class SimLayers {
  private readonly layers = new Map<string, SimLayer>();
  private readonly fanout: LayerFanout;

  constructor(private readonly kernel: SimKernel) {
    this.fanout = new LayerFanout((ns, ops) => kernel.batch(ns, ops));
  }

  private named(name: string): SimLayer {
    let layer = this.layers.get(name);
    if (!layer) this.layers.set(name, (layer = new SimLayer(name)));
    return layer;
  }

  async attach(name: string, nsName: string, owner: string): Promise<LayerRefusal[]> {
    const layer = this.named(name);
    const ns = this.kernel.ns(nsName, `ip -n ${nsName} -batch -`);
    const self = layer.ownerId(owner);
    // Already a shared member for this owner: its tables show every other owner's entries.
    if (ns.layer?.layer === layer && ns.layer.self === self) return [];
    if (!layer.fanoutOnly && !ns.layer && this.fitsLayer(ns, layer, self)) {
      this.share(ns, layer, self);
      return [];
    }
    return this.fanout.attach(name, nsName, owner);
  }

  async set(name: string, owner: string, entries: LayerEntries): Promise<LayerRefusal[]> {
    const layer = this.named(name);
    const id = layer.ownerId(owner);
    if (!layer.fanoutOnly) {
      const values = shareable(entries);
      if (!values || layer.collides(id, values)) this.dissolve(layer);
      else {
        // Who would not take the new entries alike leaves first, keeping what it saw before.
        for (const [nsName, self] of [...layer.shared]) {
          const ns = this.kernel.ns(nsName);
          if (self !== id && !this.fits(ns, [values])) this.materialise(ns);
          else if (values.fdb.length) this.viewVxlan(ns);
        }
        layer.replace(id, values);
      }
    }
    // The per-member path keeps every owner's entries, and writes to the members it holds.
    return this.fanout.set(name, owner, entries);
  }

  async detach(name: string, nsName: string): Promise<void> {
    const ns = this.kernel.namespaces.get(nsName);
    if (ns?.layer?.layer.name === name) this.materialise(ns);
    await this.fanout.detach(name, nsName);
  }

  /**
   * A layer its members already hold. Shared members of it stay shared; the storage keeps an
   * owner's entries when they are the same values, and otherwise the layer is written one by one.
   */
  async adopt(name: string, held: LayerHeld): Promise<void> {
    const layer = this.named(name);
    for (const [owner, entries] of held.owners) {
      const values = shareable(entries);
      if (!layer.fanoutOnly && !(values && layer.holds(layer.ownerId(owner), values))) this.dissolve(layer);
    }
    const fanoutMembers: [string, string][] = [];
    for (const [nsName, owner] of held.members) {
      const ns = this.kernel.ns(nsName);
      if (ns.layer?.layer === layer) {
        if (ns.layer.self === layer.ownerId(owner)) continue;
        this.materialise(ns);
      }
      fanoutMembers.push([nsName, owner]);
    }
    await this.fanout.adopt(name, { owners: held.owners, members: fanoutMembers });
  }

  /** A namespace is gone: it leaves every layer without anything to keep. */
  forget(ns: SimNamespace): void {
    ns.layer?.layer.shared.delete(ns.name);
    this.unview(ns);
    this.fanout.forget(ns.name);
  }

  private unview(ns: SimNamespace): void {
    ns.layer = undefined;
    ns.routes.shared = undefined;
    ns.neighbours.shared = undefined;
    for (const link of ns.links.values()) if (link.vxlan) link.vxlan.fdb.shared = undefined;
  }

  /** A device is going down (or away): the kernel drops its routes and neighbours, layer ones too. */
  deviceDown(link: SimLink): void {
    if (link.ns.layer?.layer.usesDevice(link.name)) this.materialise(link.ns);
  }

  /** True when the namespace would accept every one of these entries unchanged, as its own writes. */
  private fits(ns: SimNamespace, owners: Iterable<OwnerValues>): boolean {
    const devices = new Map<string, SimLink | undefined>();
    const device = (name: string) => {
      if (!devices.has(name)) devices.set(name, ns.links.get(name));
      return devices.get(name);
    };
    for (const values of owners) {
      for (const r of values.routes) {
        const dev = device(r.devName);
        if (!dev || ns.routes.holdsOwn(r.dst)) return false;
        if (r.onlink) {
          if (!dev.adminUp) return false;
          continue;
        }
        // fib_check_nh: the gateway must be reached through a connected route on this device.
        const via = ns.routes.lookup(r.gateway!);
        if (!via || via.gateway !== undefined || via.scope === "global" || via.dev !== dev) return false;
        if (ns.localAddresses.has(r.gateway!)) return false;
      }
      for (const n of values.neighbours) {
        const dev = device(n.dev);
        if (!dev || ns.neighbours.holdsOwn(ns.neighbourKey(dev, n.dst))) return false;
      }
      for (const f of values.fdb) {
        const dev = device(f.dev);
        if (!dev?.vxlan || dev.vxlan.fdb.holdsOwn(f.mac)) return false;
      }
    }
    return true;
  }

  /**
   * `fits` for every owner but `self` at once, without visiting every entry: each device the layer
   * names once, each of the member's own entries against the layer, and only the gateways the kernel
   * checks (host-gw's, not overlay's onlink routes). A device only `self`'s entries name is checked
   * too: the member is then written one by one, which is exact, only slower.
   */
  private fitsLayer(ns: SimNamespace, layer: SimLayer, self: number): boolean {
    for (const [name, use] of layer.deviceUses()) {
      const link = ns.links.get(name);
      if (!link || (use.onlink && !link.adminUp) || (use.fdb && !link.vxlan)) return false;
      if (use.fdb)
        for (const mac of link.vxlan!.fdb.ownKeys())
          if (layer.fdb(name, mac, self) !== undefined) return false;
    }
    for (const key of ns.routes.ownKeys()) if (layer.routeAt(key, self)) return false;
    const byIndex = new Map([...ns.links.values()].map((l) => [l.index, l.name]));
    for (const key of ns.neighbours.ownKeys()) {
      const dev = byIndex.get(Math.floor(key / 4294967296));
      if (dev !== undefined && layer.neighbour(dev, key % 4294967296, self) !== undefined) return false;
    }
    return this.gatewaysFit(ns, layer, self);
  }

  /**
   * fib_check_nh for every other owner's gateway at once: each must be reached through a connected
   * route on its route's device, and must not be one of the member's own addresses. The member's own
   * routes cut the address space into intervals on which the longest match is one route, so one
   * lookup per interval and a binary search per device answer for all the gateways in it (a
   * 5,000-node host-gw node checked 5,000 gateways one lookup each).
   */
  private gatewaysFit(ns: SimNamespace, layer: SimLayer, self: number): boolean {
    const { byDevice, gatewayless } = layer.gatewaysByDevice();
    if (gatewayless) return false; // not a plain peer entry: written one by one, which is exact
    if (!byDevice.size) return true;
    for (const address of ns.localAddresses.keys())
      for (const g of byDevice.values()) if (otherOwnerIn(g, address, address + 1, self)) return false;
    const cuts = new Set([0, 2 ** 32]);
    for (const key of ns.routes.ownKeys()) {
      const length = key % 64;
      const network = (key - length) / 64;
      cuts.add(network).add(network + 2 ** (32 - length));
    }
    const bounds = [...cuts].sort((a, b) => a - b);
    for (let i = 0; i + 1 < bounds.length; i++) {
      const via = ns.routes.lookup(bounds[i]!);
      const connected = via && via.gateway === undefined && via.scope !== "global" ? via.dev.name : undefined;
      for (const [dev, g] of byDevice)
        if (dev !== connected && otherOwnerIn(g, bounds[i]!, bounds[i + 1]!, self)) return false;
    }
    return true;
  }

  private share(ns: SimNamespace, layer: SimLayer, self: number): void {
    const conflict = () => this.materialise(ns);
    ns.layer = { layer, self };
    layer.shared.set(ns.name, self);
    ns.routes.shared = { layer, self, conflict };
    ns.neighbours.shared = {
      layer,
      self,
      conflict,
      // The layer names a handful of devices: finding an index among them beats keeping a map in step.
      deviceName: (index) => {
        for (const name of layer.neighbourDeviceNames()) if (ns.links.get(name)?.index === index) return name;
        return undefined;
      },
      deviceIndex: (name) => ns.links.get(name)?.index,
    };
    this.viewVxlan(ns);
  }

  /** The member's VXLAN devices read the layer's FDB entries for their names (also ones created later). */
  private viewVxlan(ns: SimNamespace): void {
    const view = ns.layer!;
    for (const link of ns.links.values())
      if (link.vxlan && !link.vxlan.fdb.shared)
        link.vxlan.fdb.shared = { ...view, dev: link.name, conflict: () => this.materialise(ns) };
  }

  /** The member keeps what it sees as its own entries and is written one by one from now on. */
  private materialise(ns: SimNamespace): void {
    const view = ns.layer;
    if (!view) return;
    ns.layer = undefined;
    ns.routes.materialise();
    ns.neighbours.materialise();
    for (const link of ns.links.values()) link.vxlan?.fdb.materialise();
    view.layer.shared.delete(ns.name);
    this.fanout.adoptMember(view.layer.name, ns.name, view.layer.ownerName(view.self));
  }

  /** Every member is written one by one from now on. */
  private dissolve(layer: SimLayer): void {
    for (const nsName of [...layer.shared.keys()]) this.materialise(this.kernel.ns(nsName));
    layer.clear();
    layer.fanoutOnly = true;
  }
}

/** Whether a gateway in [from, to) belongs to an owner other than `self`. */
function otherOwnerIn(
  g: { gateways: Float64Array; owners: Int32Array },
  from: number,
  to: number,
  self: number,
) {
  let lo = 0;
  let hi = g.gateways.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (g.gateways[mid]! < from) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < g.gateways.length && g.gateways[i]! < to; i++) if (g.owners[i] !== self) return true;
  return false;
}
