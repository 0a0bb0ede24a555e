import { formatIpv4, type Ipv4Header } from "@podnet/core";
import { formatNftRule } from "@podnet/netlink";
import { cbr0HostGw } from "@podnet/provider-cbr0-host-gw";
import { overlay } from "@podnet/provider-overlay";
import { describe, expect, it } from "vitest";
import {
  NFT_TABLE,
  RouteManager,
  nftAffinitySet,
  nftEndpointChain,
  nftExternalChain,
  nftLocalChain,
  nftServiceChain,
  type ProxyName,
  type Service,
} from "../src/index.js";
import { CLUSTER, clusterWithService } from "./cluster.js";

describe("kube-proxy nftables mode's chain names", () => {
  it("names chains as kube-proxy does (the names in kube-proxy's own nftables tests)", () => {
    const svc: Service = {
      namespace: "ns1",
      name: "svc1",
      clusterIP: "172.30.0.41",
      ports: [],
      endpoints: [],
    };
    const p80 = { name: "p80", port: 80, targetPort: 80, protocol: "tcp" as const };
    expect(nftServiceChain(svc, p80)).toBe("service-ULMVA6XW-ns1/svc1/tcp/p80");
    expect(nftEndpointChain(svc, p80, { ip: "10.180.0.1", port: 80 })).toBe(
      "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80",
    );
    expect(nftLocalChain(svc, p80)).toBe("local-ULMVA6XW-ns1/svc1/tcp/p80");
    expect(nftExternalChain({ ...svc, namespace: "ns2", name: "svc2" }, p80)).toBe(
      "external-42NFTM6N-ns2/svc2/tcp/p80",
    );
  });
});

const clusterUnder = (proxy: ProxyName = "nftables", provider = cbr0HostGw()) =>
  clusterWithService(provider, proxy);

describe("Services through kube-proxy's nftables mode", () => {
  for (const provider of [cbr0HostGw(), overlay()]) {
    it(`${provider.name}: a ClusterIP is DNAT-ed by a map lookup, the trace naming table, chains and verdicts`, async () => {
      const { c, endpoints } = await clusterUnder("nftables", provider);
      expect(await c.k.iptables.save("node1", "nat")).not.toContain("KUBE-");
      const trace = c.k.send({ from: "client", to: "10.96.0.10", protocol: "tcp", port: 80 });
      expect(trace.outcome).toBe("reached");
      expect(endpoints).toContain(trace.deliveredTo!.address);
      expect(trace.deliveredTo!.port).toBe(8080);
      const dnat = trace.hops.find((h) => h.event === "nat" && h.direction === "request")!;
      expect(dnat.detail).toMatch(
        /^nat PREROUTING: DNAT 10\.96\.0\.10:80 → 10\.0\.\d\.\d:8080 by ip kube-proxy nat-prerouting: jump services → ip kube-proxy services: ip daddr \. meta l4proto \. th dport vmap @service-ips \(10\.96\.0\.10 \. tcp \. 80 : goto service-\w{8}-default\/web\/tcp\/http\) → ip kube-proxy service-\w{8}-default\/web\/tcp\/http: numgen random mod 3 vmap \{ 0 : goto endpoint-.* \} \(\d : goto endpoint-\w{8}-default\/web\/tcp\/http__10\.0\.\d\.\d\/8080\) → ip kube-proxy endpoint-\w{8}-default\/web\/tcp\/http__10\.0\.\d\.\d\/8080: meta l4proto tcp dnat to 10\.0\.\d\.\d:8080$/,
      );
      const answer = trace.hops.filter((h) => h.ns === "client" && h.event === "deliver").at(-1)!;
      expect(formatIpv4((answer.packet.headers[0] as Ipv4Header).src)).toBe("10.96.0.10");
    });
  }

  it("writes kube-proxy 1.34's base chains, and a table of another layout anew at a node's first sync", async () => {
    const { c, web } = await clusterUnder();
    const bases = async (ns: string) =>
      (await c.k.nft.list(ns, "ip", NFT_TABLE)).flatMap((o) =>
        "chain" in o && o.chain.hook ? [`${o.chain.name} ${o.chain.hook} ${o.chain.prio}`] : [],
      );
    const wanted = [
      "filter-prerouting-pre-dnat prerouting -110",
      "filter-input input 0",
      "filter-forward forward 0",
      "filter-output-pre-dnat output -110",
      "filter-output output 0",
      "nat-prerouting prerouting -100",
      "nat-output output -100",
      "nat-postrouting postrouting 100",
    ];
    expect(await bases("node1")).toEqual(wanted);
    // node1 keeps a base chain of kube-proxy 1.32's layout (an older podnet wrote it).
    const old = { family: "ip", table: NFT_TABLE, name: "filter-output-post-dnat" } as const;
    await c.k.nft.run("node1", [
      { add: { chain: { ...old, type: "filter", hook: "output", prio: -90, policy: "accept" } } },
      { add: { rule: { family: "ip", table: NFT_TABLE, chain: old.name, expr: [{ accept: null }] } } },
    ]);
    // A new proxy (podnet started again) rewrites node1's table at its first sync, not node2's.
    const manager = new RouteManager({
      netlink: c.k,
      provider: c.provider,
      cluster: CLUSTER,
      proxy: "nftables",
    });
    for (const node of c.nodes.values()) manager.adopt(node);
    const report = await manager.servicesReplaced([web]);
    expect(await bases("node1")).toEqual(wanted);
    expect(report.nodes.node1!.removed).toBeGreaterThan(0);
    expect([report.nodes.node2?.added ?? 0, report.nodes.node2?.removed ?? 0]).toEqual([0, 0]);
    expect(c.k.send({ from: "client", to: "10.96.0.10", protocol: "tcp", port: 80 }).outcome).toBe("reached");
    const resync = await manager.resync();
    expect([resync.added, resync.removed]).toEqual([0, 0]);
  });

  it("writes externalTrafficPolicy Local as kube-proxy's nftables proxier does: short-circuits, then this node's endpoints or a drop", async () => {
    const { c, web, endpoints } = await clusterUnder();
    await c.service({
      ...web,
      endpoints: endpoints.slice(0, 2),
      endpointNodes: ["node1", "node2"],
      externalTrafficPolicy: "Local",
    });
    const port = web.ports[0]!;
    const [svc, ext, local] = [
      nftServiceChain(web, port),
      nftExternalChain(web, port),
      nftLocalChain(web, port),
    ];
    const rules = async (node: string, chain: string) =>
      (await c.k.nft.list(node, "ip", NFT_TABLE)).flatMap((o) =>
        "rule" in o && o.rule.chain === chain ? [formatNftRule(o.rule)] : [],
      );
    expect(await rules("node1", ext)).toEqual([
      `ip saddr 10.0.0.0/16 goto ${svc}`,
      "fib saddr type local jump mark-for-masquerade",
      `fib saddr type local goto ${svc}`,
      `goto ${local}`,
    ]);
    expect(await rules("node1", local)).toEqual([
      `numgen random mod 1 vmap { 0 : goto ${nftEndpointChain(web, port, { ip: endpoints[0]!, port: 8080 })} }`,
    ]);
    // node2's own endpoint gone: its external chain ends at the short-circuits, and the NodePort drops.
    await c.service({
      ...web,
      endpoints: endpoints.slice(0, 1),
      endpointNodes: ["node1"],
      externalTrafficPolicy: "Local",
    });
    expect((await rules("node2", ext)).length).toBe(3);
    const noEndpoint = (await c.k.nft.list("node2", "ip", NFT_TABLE)).flatMap((o) =>
      "map" in o && o.map.name === "no-endpoint-nodeports" ? (o.map.elem ?? []) : [],
    );
    expect(noEndpoint).toEqual([[{ concat: ["tcp", 30080] }, { drop: null }]]);
  });

  it("writes sessionAffinity as kube-proxy's nftables proxier does: a set per endpoint, filled by its chain, looked up before the draw", async () => {
    const { c, web, endpoints } = await clusterUnder();
    const two = { ...web, endpoints: endpoints.slice(0, 2), sessionAffinity: { timeoutSeconds: 10800 } };
    await c.service(two);
    const port = web.ports[0]!;
    const ep = (i: number) => ({ ip: endpoints[i]!, port: 8080 });
    const [svc, e0, s0, s1] = [
      nftServiceChain(web, port),
      nftEndpointChain(web, port, ep(0)),
      nftAffinitySet(web, port, ep(0)),
      nftAffinitySet(web, port, ep(1)),
    ];
    expect(s0).toBe(e0.replace("endpoint-", "affinity-"));
    const listed = async () => await c.k.nft.list("node1", "ip", NFT_TABLE);
    const rules = async (chain: string) =>
      (await listed()).flatMap((o) => ("rule" in o && o.rule.chain === chain ? [formatNftRule(o.rule)] : []));
    const sets = async () =>
      (await listed()).flatMap((o) => ("set" in o && o.set.name.startsWith("affinity-") ? [o.set] : []));
    expect((await rules(svc)).slice(1)).toEqual([
      `ip saddr @${s0} goto ${e0}`,
      `ip saddr @${s1} goto ${nftEndpointChain(web, port, ep(1))}`,
      expect.stringMatching(/^numgen random mod 2 vmap/),
    ]);
    expect(await rules(e0)).toEqual([
      `ip saddr ${endpoints[0]} jump mark-for-masquerade`,
      `update @${s0} { ip saddr }`,
      `meta l4proto tcp dnat to ${endpoints[0]}:8080`,
    ]);
    const set = { family: "ip", table: NFT_TABLE, type: "ipv4_addr", size: 65535, flags: ["timeout"] };
    expect(await sets()).toEqual([
      { ...set, name: s0, timeout: 10800 },
      { ...set, name: s1, timeout: 10800 },
    ]);
    // A client connecting is filed in its endpoint's set.
    const t = c.k.send({ from: "client", to: "10.96.0.10", protocol: "tcp", port: 80 });
    const filed = (await sets()).find((x) => x.elem?.length)!;
    expect([filed.elem, filed.name === (t.deliveredTo!.address === endpoints[0] ? s0 : s1)]).toEqual([
      ["10.0.1.3"],
      true,
    ]);
    // A new timeout changes the sets'; an endpoint gone takes its set; no affinity, no sets.
    await c.service({ ...two, sessionAffinity: { timeoutSeconds: 60 } });
    expect((await sets()).map((x) => x.timeout)).toEqual([60, 60]);
    await c.service({ ...two, endpoints: endpoints.slice(0, 1), sessionAffinity: { timeoutSeconds: 60 } });
    expect((await sets()).map((x) => x.name)).toEqual([s0]);
    await c.service(web);
    expect(await sets()).toEqual([]);
  });

  it("writes only what changed: a map element and a Service's chains; a deleted Service leaves nothing", async () => {
    const { c, web, endpoints, report } = await clusterUnder();
    expect(report.added).toBeGreaterThan(0);
    const unchanged = await c.service(web);
    expect([unchanged.added, unchanged.removed, unchanged.changed]).toEqual([0, 0, 0]);
    const shrunk = await c.service({ ...web, endpoints: endpoints.slice(0, 2) });
    // Per node: the service chain rewritten (2 rules → 2), the gone endpoint's chain flushed (2 rules).
    expect(shrunk.nodes.node1).toEqual({ added: 2, removed: 4, changed: 0 });
    const resync = await c.manager.resync();
    expect([resync.added, resync.removed]).toEqual([0, 0]);
    await c.manager.serviceDeleted("default", "web");
    const listed = await c.k.nft.list("node2", "ip", NFT_TABLE);
    expect(listed.filter((o) => "chain" in o && o.chain.name.includes("/"))).toEqual([]);
    expect(listed.filter((o) => "map" in o && o.map.elem)).toEqual([]);
  });

  it("rejects a ClusterIP's other ports and drops unallocated ClusterIPs, from a pod and from the node (cluster-ips-check)", async () => {
    const { c, web } = await clusterUnder();
    const probe = (from: string, to: string, port: number) => {
      const t = c.k.send({ from, to, protocol: "tcp", port });
      return `${t.outcome}: ${t.reason}`;
    };
    // Port 80 is the Service's; 81 is not, and nothing translates it: filter-forward (a pod's packet)
    // or filter-output (the node's own, after nat-output had its chance) rejects it.
    expect(probe("client", "10.96.0.10", 80)).toMatch(/^reached/);
    expect(probe("node1", "10.96.0.10", 80)).toMatch(/^reached/);
    // (A port unreachable: the trace's "unreachable" is ECONNREFUSED to the socket.)
    const rejected =
      "unreachable: rejected by node1: ip kube-proxy cluster-ips-check: ip daddr @cluster-ips reject";
    expect(probe("client", "10.96.0.10", 81)).toBe(rejected);
    expect(probe("node1", "10.96.0.10", 81)).toBe(rejected);
    const path = c.k.send({ from: "client", to: "10.96.0.10", protocol: "tcp", port: 81 }).hops;
    expect(path.find((h) => h.event === "filter")!.detail).toBe(
      "filter FORWARD: ip kube-proxy cluster-ips-check: ip daddr @cluster-ips reject",
    );
    // An address of the service CIDR no Service holds is dropped without a word.
    expect(probe("client", "10.96.0.99", 80)).toBe(
      "dropped: dropped by filter FORWARD: ip kube-proxy cluster-ips-check: ip daddr 10.96.0.0/16 drop (at node1)",
    );
    // A deleted Service's address is unallocated again; a new one's is in the set at once.
    await c.manager.serviceDeleted("default", "web");
    expect(probe("client", "10.96.0.10", 80)).toMatch(/^dropped: dropped by filter FORWARD/);
    await c.service({ ...web, clusterIP: "10.96.0.11" });
    expect(probe("client", "10.96.0.11", 80)).toMatch(/^reached/);
    expect(probe("client", "10.96.0.11", 81)).toMatch(/^unreachable: rejected by node1/);
    expect(probe("client", "10.96.0.10", 80)).toMatch(/^dropped/);
  });

  it("answers a NodePort on the node's primary address only, as kube-proxy's nodeport-ips set (iptables: on every local one)", async () => {
    const { c } = await clusterUnder();
    const listed = await c.k.nft.list("node2", "ip", NFT_TABLE);
    expect(listed.filter((o) => "set" in o)).toEqual([
      {
        set: { family: "ip", table: NFT_TABLE, name: "cluster-ips", type: "ipv4_addr", elem: ["10.96.0.10"] },
      },
      {
        set: {
          family: "ip",
          table: NFT_TABLE,
          name: "nodeport-ips",
          type: "ipv4_addr",
          elem: ["10.100.0.3"],
        },
      },
    ]);
    const primary = c.k.send({ from: "client", to: "10.100.0.3", protocol: "tcp", port: 30080 });
    expect(primary.outcome).toBe("reached");
    expect(primary.deliveredTo!.port).toBe(8080);
    // node2's cbr0 address is local to node2 too, but not a NodePort address: nothing DNATs it, and
    // node2 itself, which has no listener on 30080, answers with a RST.
    const bridge = c.k.send({ from: "client", to: "10.0.2.1", protocol: "tcp", port: 30080 });
    expect([bridge.outcome, bridge.deliveredTo?.ns]).toEqual(["refused", "node2"]);
    // iptables mode differs, as kube-proxy's does: `-m addrtype --dst-type LOCAL` takes every address
    // of the node (its nodePortAddresses default), the cbr0 one too.
    const { c: ipt } = await clusterUnder("iptables");
    const viaBridge = ipt.k.send({ from: "client", to: "10.0.2.1", protocol: "tcp", port: 30080 });
    expect([viaBridge.outcome, viaBridge.deliveredTo?.port]).toEqual(["reached", 8080]);
    // A resync finds the set as it should be; a node whose set lost its element gets it back.
    expect([(await c.manager.resync()).added]).toEqual([0]);
    await c.k.nft.run("node2", [
      { delete: { element: { family: "ip", table: NFT_TABLE, name: "nodeport-ips", elem: ["10.100.0.3"] } } },
    ]);
    expect(c.k.send({ from: "client", to: "10.100.0.3", protocol: "tcp", port: 30080 }).outcome).toBe(
      "refused",
    );
    expect((await c.manager.resync()).added).toBe(1);
    expect(c.k.send({ from: "client", to: "10.100.0.3", protocol: "tcp", port: 30080 }).outcome).toBe(
      "reached",
    );
  });

  it("costs a first packet the same rule evaluations at 10 and at 1,000 Services; iptables' grow", async () => {
    const cost: Record<string, number[]> = {};
    for (const proxy of ["nftables", "iptables"] as const) {
      const { c, web } = await clusterUnder(proxy);
      for (const count of [10, 1_000]) {
        await c.manager.servicesReplaced([
          web,
          ...Array.from({ length: count }, (_, i): Service => ({
            ...web,
            name: `svc${i}`,
            clusterIP: `10.97.${i >> 8}.${i & 255}`,
            ports: [{ ...web.ports[0]!, nodePort: undefined }],
          })),
        ]);
        const node = c.k.namespaces.get("node1")!;
        const before = node.ruleEvaluations;
        // svc9 / svc999: the name sorting last, whose rule iptables' KUBE-SERVICES reaches last.
        const last = count === 10 ? "10.97.0.9" : "10.97.3.231";
        const trace = c.k.send({ from: "client", to: last, protocol: "tcp", port: 80 });
        expect(trace.outcome).toBe("reached");
        (cost[proxy] ??= []).push(node.ruleEvaluations - before);
      }
    }
    expect(cost.nftables![0]).toBe(cost.nftables![1]);
    expect(cost.iptables![1]! - cost.iptables![0]!).toBeGreaterThan(900);
  });
});
