// A one-Service change is a partial sync: it reads and writes only that Service's chains and its
// entries in the shared ones. Whatever the sequence of changes, the nodes must end holding exactly
// what a full sync writes, so a full sync afterwards finds nothing to do.
import { cbr0HostGw } from "@podnet/provider-cbr0-host-gw";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { NFT_TABLE, PROXY_NAMES, type ProxyName, type Service } from "../src/index.js";
import { TestCluster } from "./cluster.js";

const NAMES = ["api", "db", "web", "Web", "cache", "a-b"];
const POOL = ["10.0.1.2", "10.0.1.3", "10.0.2.2", "10.0.2.3"];

const serviceValue = fc.record({
  name: fc.integer({ min: 0, max: NAMES.length - 1 }),
  ports: fc.uniqueArray(
    fc.record({
      port: fc.constantFrom(80, 443, 53),
      protocol: fc.constantFrom("tcp" as const, "udp" as const),
      nodePort: fc.option(fc.constantFrom(30080, 30443), { nil: undefined }),
    }),
    { maxLength: 2, selector: (p) => `${p.port}/${p.protocol}` },
  ),
  // Repeats allowed: docker-bridge's pods on different nodes share addresses, and so their chains.
  endpoints: fc.array(fc.constantFrom(...POOL), { maxLength: 4 }),
  // Where each endpoint runs, and the traffic policies that make a node's rules its own.
  nodes: fc.array(fc.constantFrom("node1", "node2"), { minLength: 4, maxLength: 4 }),
  external: fc.constantFrom(undefined, "Local" as const),
  internal: fc.constantFrom(undefined, "Local" as const),
  affinity: fc.constantFrom(undefined, 60, 10800),
});

type ServiceValue = typeof serviceValue extends fc.Arbitrary<infer T> ? T : never;

function service(
  v: Omit<ServiceValue, "nodes" | "external" | "internal" | "affinity"> & Partial<ServiceValue>,
): Service {
  const local = v.external ?? v.internal;
  return {
    namespace: "default",
    name: NAMES[v.name]!,
    clusterIP: `10.96.0.${10 + v.name}`,
    ports: v.ports.map((p) => ({
      name: `p${p.port}`,
      port: p.port,
      targetPort: p.port + 8000,
      protocol: p.protocol,
      ...(p.nodePort !== undefined ? { nodePort: p.nodePort + v.name } : {}),
    })),
    endpoints: v.endpoints,
    ...(v.affinity ? { sessionAffinity: { timeoutSeconds: v.affinity } } : {}),
    ...(local
      ? {
          endpointNodes: v.nodes!.slice(0, v.endpoints.length),
          externalTrafficPolicy: v.external ?? "Cluster",
          internalTrafficPolicy: v.internal ?? "Cluster",
        }
      : {}),
  };
}

/**
 * Every node's iptables tables, and its kube-proxy nftables table when it has one — as a set of
 * objects: nft lists chains in the order they were created, which a partial sync changes.
 */
async function saved(c: TestCluster, proxy: ProxyName): Promise<string[]> {
  const out: string[] = [];
  for (const node of c.nodes.keys()) {
    for (const table of ["nat", "filter"] as const) out.push(await c.k.iptables.save(node, table));
    if (proxy === "nftables")
      out.push(...(await c.k.nft.list(node, "ip", NFT_TABLE)).map((o) => JSON.stringify(o)).sort());
  }
  return out;
}

describe("a one-Service change (partial sync)", () => {
  it.each(PROXY_NAMES)(
    "%s: leaves every node holding what a full sync writes, whatever the changes",
    async (proxy) => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(serviceValue, { maxLength: 4 }),
          fc.array(
            fc.oneof(serviceValue, fc.record({ delete: fc.integer({ min: 0, max: NAMES.length - 1 }) })),
            {
              minLength: 1,
              maxLength: 10,
            },
          ),
          async (initial, ops) => {
            const c = new TestCluster(cbr0HostGw(), { proxy });
            await c.router("gw", [{ segment: "lan", cidr: "10.100.0.1/24" }]);
            await c.addNode("node1", "10.100.0.2/24");
            await c.manager.servicesReplaced(initial.map(service));
            await c.addNode("node2", "10.100.0.3/24");
            for (const op of ops) {
              if ("delete" in op) await c.manager.serviceDeleted("default", NAMES[op.delete]!);
              else await c.service(service(op));
            }
            const partial = await saved(c, proxy);
            const full = await c.manager.servicesReplaced([...c.manager.services.values()]);
            expect([full.added, full.removed, full.changed]).toEqual([0, 0, 0]);
            expect(await saved(c, proxy)).toEqual(partial);
            // And what a node that never saw the changes gets from a full sync alone.
            const fresh = new TestCluster(cbr0HostGw(), { proxy });
            await fresh.router("gw", [{ segment: "lan", cidr: "10.100.0.1/24" }]);
            await fresh.addNode("node1", "10.100.0.2/24");
            await fresh.addNode("node2", "10.100.0.3/24");
            await fresh.manager.servicesReplaced([...c.manager.services.values()]);
            if (proxy === "nftables") expect(await saved(fresh, proxy)).toEqual(partial);
          },
        ),
        { numRuns: 40 },
      );
    },
  );

  it("adds a Service among others with one rule in KUBE-SERVICES, not a rewrite of the chain", async () => {
    const c = new TestCluster(cbr0HostGw());
    await c.router("gw", [{ segment: "lan", cidr: "10.100.0.1/24" }]);
    await c.addNode("node1", "10.100.0.2/24");
    const tcp80 = [{ port: 80 as const, protocol: "tcp" as const, nodePort: undefined }];
    await c.manager.servicesReplaced(
      [0, 1, 3].map((name) => service({ name, ports: tcp80, endpoints: POOL })),
    );
    const added = await c.service(service({ name: 2, ports: tcp80, endpoints: POOL.slice(0, 1) }));
    // KUBE-SEP (2 rules), KUBE-SVC (MARK-MASQ jump + one endpoint), and one KUBE-SERVICES rule.
    expect(added.nodes.node1).toEqual({ added: 5, removed: 0, changed: 0 });
    const deleted = await c.manager.serviceDeleted("default", NAMES[2]!);
    expect(deleted.nodes.node1).toEqual({ added: 0, removed: 5, changed: 0 });
  });
});
