/**
 * The simulated kernel's neighbours (`ip neigh`) and forwarding databases (`bridge fdb`): a bridge's
 * and a VXLAN device's.
 */
import {
  KernelMessage,
  fdbArguments,
  fdbDump,
  neighArguments,
  neighDump,
  type FdbDump,
  type FdbEntry,
  type FdbSpec,
  type NeighDump,
  type NeighEntry,
  type NeighSpec,
} from "@podnet/netlink";
import type { SimKernel } from "./kernel.js";
import { fail, parseMac, parseAddress } from "./kernel-args.js";
import type { SimLink } from "./link.js";

// ---- neighbours and FDB -----------------------------------------------------------------

export const neighApi = (k: SimKernel) => ({
  replace: async (nsName: string, spec: NeighSpec) => replaceNeigh(k, nsName, spec),
  del: async (nsName: string, spec: Pick<NeighSpec, "dst" | "dev">) => deleteNeigh(k, nsName, spec),
  list: async (nsName: string, filter: { dst?: number; dev?: string } = {}): Promise<NeighDump[]> =>
    neighbourEntries(k, nsName, filter).map(neighDump),
  entries: async (nsName: string, filter: { dst?: number; dev?: string } = {}): Promise<NeighEntry[]> =>
    neighbourEntries(k, nsName, filter),
});

export function replaceNeigh(k: SimKernel, nsName: string, spec: NeighSpec): void {
  const command = () => `ip -n ${nsName} neigh replace ${neighArguments(spec).join(" ")}`;
  const ns = k.ns(nsName, command);
  const link = k.device(ns, spec.dev, command);
  const dst = parseAddress(spec.dst, command);
  ns.neighbours.set(
    ns.neighbourKey(link, dst),
    parseMac(spec.lladdr, command),
    (spec.state ?? "permanent") === "permanent",
  );
}

export function deleteNeigh(k: SimKernel, nsName: string, spec: Pick<NeighSpec, "dst" | "dev">): void {
  const command = () => `ip -n ${nsName} neigh del ${neighArguments(spec).join(" ")}`;
  const ns = k.ns(nsName, command);
  const key = ns.neighbourKey(k.device(ns, spec.dev, command), parseAddress(spec.dst, command));
  if (!ns.neighbours.delete(key)) fail("ENOENT", KernelMessage.noSuchFileOrDirectory, command);
}

export function neighbourEntries(
  k: SimKernel,
  nsName: string,
  filter: { dst?: number; dev?: string },
): NeighEntry[] {
  const ns = k.ns(nsName);
  const command = `ip -n ${nsName} neigh show`;
  const dev = filter.dev !== undefined ? k.device(ns, filter.dev, command) : undefined;
  const dst = filter.dst !== undefined ? parseAddress(filter.dst, command) : undefined;
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

export const fdbApi = (k: SimKernel) => ({
  append: async (nsName: string, spec: FdbSpec) => writeFdb(k, nsName, spec, "append"),
  replace: async (nsName: string, spec: FdbSpec) => writeFdb(k, nsName, spec, "replace"),
  del: async (nsName: string, spec: FdbSpec) => writeFdb(k, nsName, spec, "del"),
  list: async (nsName: string, filter: { dev?: string; mac?: number } = {}): Promise<FdbDump[]> =>
    fdbEntries(k, nsName, filter).map(fdbDump),
  entries: async (nsName: string, filter: { dev?: string; mac?: number } = {}): Promise<FdbEntry[]> =>
    fdbEntries(k, nsName, filter),
});

export function fdbEntries(k: SimKernel, nsName: string, filter: { dev?: string; mac?: number }): FdbEntry[] {
  const out: FdbEntry[] = [];
  const ns = k.ns(nsName);
  const command = `bridge -n ${nsName} fdb show`;
  const links =
    filter.dev !== undefined
      ? [k.device(ns, filter.dev, command)]
      : [...ns.links.values()].sort((a, b) => a.index - b.index);
  const only = filter.mac !== undefined ? parseMac(filter.mac, command) : undefined;
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

export function writeFdb(
  k: SimKernel,
  nsName: string,
  spec: FdbSpec,
  mode: "append" | "replace" | "del",
): void {
  const command = () => `bridge -n ${nsName} fdb ${mode} ${fdbArguments(spec).join(" ")}`;
  const link = k.device(k.ns(nsName, command), spec.dev, command);
  const mac = parseMac(spec.mac, command);
  if (link.vxlan && (spec.self ?? true)) {
    const dst = spec.dst !== undefined ? parseAddress(spec.dst, command) : undefined;
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
