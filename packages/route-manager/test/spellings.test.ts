// Identity is value equality: however a wanted entry is spelled where it comes from (an upper-case
// VTEP MAC in flannel's annotation, a host route written without /32, "default" or 0.0.0.0/0), a
// resync finds it in place and writes nothing — never a delete and re-add that would leave a node's
// FDB empty in between.
import fc from "fast-check";
import type { NetworkProvider, NodeNetwork } from "@podnet/cni";
import { SeededRandom, formatIpv4, formatMac, type Ipv4Prefix, type Mac } from "@podnet/core";
import {
  parseAddressArgument,
  parseLinkAddress,
  parseRouteDst,
  type Netlink,
  type RouteSpec,
} from "@podnet/netlink";
import { cbr0HostGw, podSubnet } from "@podnet/provider-cbr0-host-gw";
import { BACKEND_DATA, overlay } from "@podnet/provider-overlay";
import { describe, expect, it } from "vitest";
import { RouteManager } from "../src/index.js";
import { CLUSTER, TestCluster } from "./cluster.js";

/** Text a person or another program might write for each value, chosen by `random`. */
class Speller {
  constructor(private readonly random: SeededRandom) {}

  private pick<T>(...choices: T[]): T {
    return choices[this.random.nextUint32() % choices.length]!;
  }

  mac(mac: Mac): string {
    return [...formatMac(mac)].map((c) => (this.pick(true, false) ? c.toUpperCase() : c)).join("");
  }

  prefix(p: Ipv4Prefix): string {
    if (p.length === 0) return this.pick("default", "0.0.0.0/0");
    if (p.length === 32) return this.pick(formatIpv4(p.network), `${formatIpv4(p.network)}/32`);
    return p.toString();
  }
}

/**
 * A provider whose entries pass through text on the way out, spelled at random and parsed back
 * at the edge as any user-facing input is, plus a host route per peer (to its pod gateway).
 */
function respelled(base: NetworkProvider, seed: number): NetworkProvider {
  const spell = new Speller(new SeededRandom(seed));
  const route = (r: RouteSpec): RouteSpec => ({
    ...r,
    dst: parseRouteDst(spell.prefix(r.dst)),
    ...(r.via !== undefined ? { via: parseAddressArgument(formatIpv4(r.via)) } : {}),
  });
  return {
    ...base,
    peerEntries(self, peer, cluster) {
      const e = base.peerEntries(self, peer, cluster);
      const gateway = podSubnet(peer).host(1);
      const host = { ...e.routes[0]!, dst: parseRouteDst(`${formatIpv4(gateway)}/32`) };
      return {
        routes: [...e.routes, host].map(route),
        neighbours: e.neighbours.map((n) => ({ ...n, lladdr: parseLinkAddress(spell.mac(n.lladdr)) })),
        fdb: e.fdb.map((f) => ({ ...f, mac: parseLinkAddress(spell.mac(f.mac)) })),
      };
    },
  };
}

/** Re-spells a node's published VTEP MAC, as another flannel version might publish it. */
function respellAnnotation(node: NodeNetwork, seed: number): void {
  const data = node.annotations[BACKEND_DATA];
  if (!data) return;
  const parsed = JSON.parse(data) as { VNI: number; VtepMAC: string };
  const spell = new Speller(new SeededRandom(seed));
  node.annotations[BACKEND_DATA] = JSON.stringify({
    ...parsed,
    VtepMAC: spell.mac(parseLinkAddress(parsed.VtepMAC)),
  });
}

/** The host API with every write recorded (reads pass through unrecorded). */
function recording(k: Netlink, writes: string[]): Netlink {
  // A layer's `adopt` records what the members hold and writes nothing, by contract.
  const reads = new Set(["list", "entries", "save", "get", "adopt"]);
  return new Proxy(k, {
    get(target, group: keyof Netlink) {
      const api = target[group] as unknown as Record<string, (...args: unknown[]) => unknown>;
      if (typeof api !== "object" || api === null) return api;
      return new Proxy(api, {
        get(inner, verb: string) {
          const call = inner[verb];
          if (typeof call !== "function") return call;
          return (...args: unknown[]) => {
            if (!reads.has(verb)) writes.push(`${String(group)}.${verb}`);
            return call.apply(inner, args);
          };
        },
      });
    },
  });
}

describe("a resync after a restart, with every value spelled differently", () => {
  for (const base of [overlay(), cbr0HostGw()]) {
    it(`${base.name}: finds every wanted entry in place and writes nothing`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.integer(), fc.integer(), async (first, second) => {
          const c = new TestCluster(respelled(base, first));
          await c.router("gw", [{ segment: "lan", cidr: "10.100.0.1/24" }]);
          for (const i of [0, 1, 2]) await c.addNode(`n${i}`, `10.100.0.${i + 2}/24`);
          const before = await c.tables();
          // The manager restarts: it adopts the nodes as published now and reads the kernel back.
          const writes: string[] = [];
          const restarted = new RouteManager({
            netlink: recording(c.k, writes),
            provider: respelled(base, second),
            cluster: CLUSTER,
          });
          for (const [i, node] of [...c.nodes.values()].entries()) {
            respellAnnotation(node, second + i);
            restarted.adopt(node);
          }
          const report = await restarted.resync();
          expect([report.added, report.removed, report.changed]).toEqual([0, 0, 0]);
          expect(writes).toEqual([]);
          expect(await c.tables()).toEqual(before);
        }),
        { numRuns: 20 },
      );
    }, 120_000);
  }
});
