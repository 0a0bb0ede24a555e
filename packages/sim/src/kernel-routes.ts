/**
 * The simulated kernel's main table (`ip route`): writes with the kernel's nexthop checks, deletes,
 * dumps and `route get`.
 */
import { Ipv4Prefix, formatIpv4 } from "@podnet/core";
import {
  KernelMessage,
  formatRouteDst,
  formatRouteSpec,
  routeDump,
  type RouteDump,
  type RouteEntry,
  type RouteGetEntry,
  type RouteSpec,
} from "@podnet/netlink";
import type { SimKernel } from "./kernel.js";
import { fail, parseAddress, parseDst } from "./kernel-args.js";
import type { SimLink } from "./link.js";
import { PMTU_EXPIRES, type SimNamespace } from "./namespace.js";
import type { SimRoute } from "./route-table.js";

// ---- routes -----------------------------------------------------------------------------

export const routeApi = (k: SimKernel) => ({
  add: async (nsName: string, spec: RouteSpec) => writeRoute(k, nsName, spec, "add"),
  replace: async (nsName: string, spec: RouteSpec) => writeRoute(k, nsName, spec, "replace"),
  del: async (nsName: string, spec: RouteSpec) => deleteRoute(k, nsName, spec),
  list: async (nsName: string, filter: { exact?: Ipv4Prefix } = {}): Promise<RouteDump[]> =>
    routesOf(k, nsName, filter).map(routeDump),
  entries: async (nsName: string, filter: { exact?: Ipv4Prefix } = {}): Promise<RouteEntry[]> =>
    routesOf(k, nsName, filter),
  get: async (nsName: string, dst: number): Promise<RouteGetEntry> => {
    const command = `ip -n ${nsName} route get ${formatIpv4(dst)}`;
    const ns = k.ns(nsName, command);
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
});

export function routesOf(k: SimKernel, nsName: string, filter: { exact?: Ipv4Prefix }): RouteEntry[] {
  const ns = k.ns(nsName);
  const exact = filter.exact;
  const values =
    exact === undefined
      ? ns.routes.allValues()
      : ns.routes.exactValues(
          parseDst(exact, () => `ip -n ${nsName} route show exact ${formatRouteDst(exact)}`),
        );
  return values.map((v) => routeEntryOf(v, ns.links.get(v.devName)!));
}

export function deleteRoute(k: SimKernel, nsName: string, spec: RouteSpec): void {
  const command = () => `ip -n ${nsName} route del ${formatRouteSpec(spec)}`;
  const ns = k.ns(nsName, command);
  const dst = parseDst(spec.dst, command);
  const dev = spec.dev !== undefined ? k.device(ns, spec.dev, command) : undefined;
  const via = spec.via !== undefined ? parseAddress(spec.via, command) : undefined;
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
export function writeRoute(k: SimKernel, nsName: string, spec: RouteSpec, mode: "add" | "replace"): void {
  const command = () => `ip -n ${nsName} route ${mode} ${formatRouteSpec(spec)}`;
  const ns = k.ns(nsName, command);
  const dst = parseDst(spec.dst, command);
  let dev = spec.dev !== undefined ? k.device(ns, spec.dev, command) : undefined;
  const gateway = spec.via !== undefined ? parseAddress(spec.via, command) : undefined;
  const metric = spec.metric ?? 0;
  if (gateway !== undefined) {
    if (spec.onlink) {
      if (!dev) fail("EINVAL", KernelMessage.onlinkNeedsDevice, command);
      if (!dev.adminUp) fail("ENETDOWN", KernelMessage.onlinkDeviceNotUp, command);
    } else {
      // The gateway must be reachable through a connected (scope link) route, on `dev` if given:
      // the kernel looks it up through that device only (two devices may hold one subnet).
      let via = ns.routes.lookup(gateway);
      if (dev && via && via.dev !== dev) via = lookupThrough(ns.routes, gateway, dev);
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
  const prefsrc = spec.src !== undefined ? parseAddress(spec.src, command) : undefined;
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

/** The longest-prefix route to `address` through `dev` (fib_check_nh's lookup with an output device). */
function lookupThrough(routes: SimNamespace["routes"], address: number, dev: SimLink): SimRoute | undefined {
  for (let length = 32; length >= 0; length--) {
    const through = routes.exact(new Ipv4Prefix(address, length)).filter((r) => r.dev === dev);
    if (through.length) return through.reduce((a, b) => (b.metric < a.metric ? b : a));
  }
  return undefined;
}

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
