// flannel's undo: a peer's neighbour, FDB entry and route are written together, and when one of them
// is refused the others are removed again, so no node is left holding half a peer (a route to a VTEP
// nobody answers for, or a neighbour with no route). A host API that refuses the Nth write, swept over
// every write of a join, must leave every peer whole or absent, and the next resync must finish it.
import type { NetworkProvider, NodeNetwork } from "@podnet/cni";
import { LayerFanout, NetlinkError, type BatchResult, type Netlink } from "@podnet/netlink";
import { cbr0HostGw } from "@podnet/provider-cbr0-host-gw";
import { overlay } from "@podnet/provider-overlay";
import type { SimKernel } from "@podnet/sim";
import { describe, expect, it } from "vitest";
import { TestCluster } from "./cluster.js";

/**
 * The simulator, except that its `failAt`-th route/neighbour/FDB write is refused (EPERM) while
 * armed. Layers are written member by member through the failing batch, as on Linux.
 */
class FailingHost {
  writes = 0;
  failAt = 0;
  armed = true;

  wrap(k: SimKernel): Netlink {
    // The fan-out calls back into `host` only later, once it exists.
    const layer = new LayerFanout((ns, ops) => host.batch(ns, ops));
    const host: Netlink = new Proxy(k, {
      get: (target, prop, receiver) => {
        if (prop === "layer") return layer;
        if (prop !== "batch") {
          const value = Reflect.get(target, prop, receiver) as unknown;
          return typeof value === "function" ? (value as () => unknown).bind(target) : value;
        }
        return async (ns: string, ops: Parameters<Netlink["batch"]>[1]): Promise<BatchResult> => {
          const results: BatchResult = [];
          for (const op of ops) {
            if (this.armed && ++this.writes === this.failAt)
              results.push(
                new NetlinkError(
                  "EPERM",
                  "RTNETLINK answers: Operation not permitted",
                  `${op.op} (injected)`,
                ),
              );
            else results.push(...(await target.batch(ns, [op])));
          }
          return results;
        };
      },
    });
    return host;
  }
}

const nodes = [
  ["n1", "10.100.0.2/24", "10.0.1.0/24"],
  ["n2", "10.100.0.3/24", "10.0.2.0/24"],
  ["n3", "10.100.0.4/24", "10.0.3.0/24"],
] as const;

async function build(provider: NetworkProvider) {
  const c = new TestCluster(provider);
  for (const [name, cidr, podCidr] of nodes) await c.addNode(name, cidr, { podCidr });
  return c;
}

/** How much of `peer` node `self` holds: all of its entries, none, or some (half-programmed). */
async function held(
  c: TestCluster,
  self: NodeNetwork,
  peer: NodeNetwork,
): Promise<"whole" | "absent" | "half"> {
  const want = c.provider.peerEntries(self, peer, c.cluster);
  const present = [
    ...(await Promise.all(
      want.routes.map(async (r) =>
        (await c.k.route.entries(self.ns, { exact: r.dst })).some((h) => h.gateway === r.via),
      ),
    )),
    ...(await Promise.all(
      want.neighbours.map(async (e) =>
        (await c.k.neigh.entries(self.ns, { dst: e.dst, dev: e.dev })).some((h) => h.lladdr === e.lladdr),
      ),
    )),
    ...(await Promise.all(
      want.fdb.map(async (f) =>
        (await c.k.fdb.entries(self.ns, { dev: f.dev, mac: f.mac })).some((h) => h.dst === f.dst),
      ),
    )),
  ];
  return present.every(Boolean) ? "whole" : present.some(Boolean) ? "half" : "absent";
}

async function peerStates(c: TestCluster) {
  const out: string[] = [];
  for (const self of c.nodes.values())
    for (const peer of c.nodes.values())
      if (self !== peer) out.push(`${self.name}→${peer.name} ${await held(c, self, peer)}`);
  return out;
}

describe("a peer is programmed whole or not at all (flannel's undo)", () => {
  for (const provider of [overlay(), cbr0HostGw()]) {
    // A join of the third node writes each peer's entries on n3, then n3's on n1 and on n2.
    const writes = provider.name === "overlay" ? 12 : 4;
    for (let failAt = 1; failAt <= writes; failAt++) {
      it(`${provider.name}: the join's write ${failAt} of ${writes} is refused`, async () => {
        const scratch = await build(provider);
        const host = new FailingHost();
        const c = new TestCluster(provider, { managerHost: (k) => host.wrap(k) });
        for (const [name, cidr, podCidr] of nodes.slice(0, 2)) await c.addNode(name, cidr, { podCidr });
        host.writes = 0;
        host.failAt = failAt;
        const [name, cidr, podCidr] = nodes[2];
        const report = await c.addNode(name, cidr, { podCidr });
        expect(report!.refused).toHaveLength(1);
        expect(report!.refused[0]!.reason).toMatch(/^Operation not permitted/);
        const states = await peerStates(c);
        expect(states.filter((s) => s.endsWith("half"))).toEqual([]);
        expect(states.filter((s) => s.endsWith("absent"))).toHaveLength(1);
        // The next resync, on a host that no longer refuses, completes the peer: the tables are a
        // from-scratch build's, and one more resync finds nothing to do.
        host.armed = false;
        const repaired = await c.manager.resync();
        expect(repaired.refused).toEqual([]);
        expect(repaired.added).toBe(provider.name === "overlay" ? 3 : 1);
        expect(await peerStates(c)).toEqual(await peerStates(scratch));
        expect(await c.tables()).toEqual(await scratch.tables());
        const again = await c.manager.resync();
        expect([again.added, again.removed, again.changed]).toEqual([0, 0, 0]);
      });
    }
  }
});
