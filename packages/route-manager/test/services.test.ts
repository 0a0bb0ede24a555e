import { formatIpv4, type Ipv4Header } from "@podnet/core";
import { cbr0HostGw } from "@podnet/provider-cbr0-host-gw";
import { overlay } from "@podnet/provider-overlay";
import { describe, expect, it } from "vitest";
import {
  PROXY_NAMES,
  endpointChain,
  endpointProbability,
  externalChain,
  serviceChain,
  type Service,
} from "../src/index.js";
import { clusterWithService } from "./cluster.js";

describe("kube-proxy's chain names and probabilities", () => {
  it("names chains as kube-proxy does (values seen in real clusters' iptables-save)", () => {
    const port = (name: string, protocol: "tcp" | "udp", p: number) => ({
      name,
      port: p,
      targetPort: p,
      protocol,
    });
    expect(
      serviceChain(
        { namespace: "default", name: "kubernetes", clusterIP: "10.96.0.1", ports: [], endpoints: [] },
        port("https", "tcp", 443),
      ),
    ).toBe("KUBE-SVC-NPX46M4PTMTKRN6Y");
    expect(
      serviceChain(
        { namespace: "kube-system", name: "kube-dns", clusterIP: "10.96.0.10", ports: [], endpoints: [] },
        port("dns-tcp", "tcp", 53),
      ),
    ).toBe("KUBE-SVC-ERIFXISQEP7F7OF4");
    expect(
      serviceChain(
        { namespace: "kube-system", name: "kube-dns", clusterIP: "10.96.0.10", ports: [], endpoints: [] },
        port("dns", "udp", 53),
      ),
    ).toBe("KUBE-SVC-TCOU7JCQXEZGVUNU");
  });

  it("names a NodePort's KUBE-EXT chain by the Service port's hash (a real node's iptables-save)", () => {
    // `default/nginx`, one unnamed TCP port: KUBE-SVC-2CMXP7HKUVJN7L6M and KUBE-EXT-2CMXP7HKUVJN7L6M on a
    // kind cluster's node (MetalLB walkthrough, 2024).
    const nginx = { namespace: "default", name: "nginx", clusterIP: "10.96.0.20", ports: [], endpoints: [] };
    const port = { name: "", port: 80, targetPort: 80, protocol: "tcp" as const, nodePort: 30606 };
    expect([serviceChain(nginx, port), externalChain(nginx, port)]).toEqual([
      "KUBE-SVC-2CMXP7HKUVJN7L6M",
      "KUBE-EXT-2CMXP7HKUVJN7L6M",
    ]);
  });

  it("gives endpoint i of n the probability 1/(n−i), as %0.10f", () => {
    expect([0, 1, 2].map((i) => endpointProbability(i, 3))).toEqual([0.3333333333, 0.5, 1]);
  });
});

describe("Services, kube-proxy style", () => {
  for (const provider of [cbr0HostGw(), overlay()]) {
    it(`${provider.name}: a ClusterIP is DNAT-ed to one of its endpoints and the answer is un-NAT-ed`, async () => {
      const { c, endpoints } = await clusterWithService(provider);
      const trace = c.k.send({ from: "client", to: "10.96.0.10", protocol: "tcp", port: 80 });
      expect(trace.outcome).toBe("reached");
      expect(endpoints).toContain(trace.deliveredTo!.address);
      expect(trace.deliveredTo!.port).toBe(8080);
      const dnat = trace.hops.find((h) => h.event === "nat" && h.direction === "request")!;
      expect(dnat.detail).toMatch(
        /^nat PREROUTING: DNAT 10\.96\.0\.10:80 → 10\.0\.\d\.\d:8080 by -A PREROUTING .*-j KUBE-SERVICES → -A KUBE-SERVICES -d 10\.96\.0\.10\/32 .*-j KUBE-SVC-\w{16} → .* → -A KUBE-SEP-\w{16} -p tcp .*-j DNAT/,
      );
      const answer = trace.hops.filter((h) => h.ns === "client" && h.event === "deliver").at(-1)!;
      expect(formatIpv4((answer.packet.headers[0] as Ipv4Header).src)).toBe("10.96.0.10"); // un-DNAT-ed
    });
  }

  it("reaches an endpoint on the same node: the bridged answer is un-NAT-ed by br_netfilter", async () => {
    const { c, web, endpoints } = await clusterWithService();
    await c.service({ ...web, endpoints: [endpoints[0]!] });
    const trace = c.k.send({ from: "client", to: "10.96.0.10", protocol: "tcp", port: 80 });
    expect(trace.outcome).toBe("reached");
    expect(trace.deliveredTo!.ns).toBe("web-a");
    expect(
      trace.hops.some(
        (h) =>
          h.direction === "reply" && h.ns === "node1" && h.event === "nat" && h.detail.includes("un-DNAT"),
      ),
    ).toBe(true);
  });

  // Under either proxy: statistic probabilities (iptables) or numgen random (nftables).
  it.each(PROXY_NAMES)("%s: spreads connections over the endpoints", async (proxy) => {
    const { c, endpoints } = await clusterWithService(cbr0HostGw(), proxy);
    const seen = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const t = c.k.send({ from: "client", to: "10.96.0.10", protocol: "tcp", port: 80 });
      seen.set(t.deliveredTo!.address, (seen.get(t.deliveredTo!.address) ?? 0) + 1);
    }
    for (const ip of endpoints) expect(seen.get(ip)).toBeGreaterThan(60); // ≈ 100 each
  });

  it.each(PROXY_NAMES)(
    "%s: sends a named targetPort's connections to each endpoint's own port, and rejects one no pod resolved",
    async (proxy) => {
      const { c, web, endpoints } = await clusterWithService(cbr0HostGw(), proxy);
      const other = await c.addPod("node1", "web-d", { listen: [9090] });
      // As the cluster resolves "http": web-a at 8080, web-d at 9090; "admin" on no pod.
      await c.service({
        ...web,
        ports: [
          {
            name: "http",
            port: 80,
            targetPort: "http",
            protocol: "tcp",
            endpoints: [
              { ip: endpoints[0]!, port: 8080 },
              { ip: other, port: 9090 },
            ],
          },
          { name: "admin", port: 81, targetPort: "admin", protocol: "tcp" },
        ],
        endpoints: [...endpoints, other],
      });
      const seen = new Set<string>();
      for (let i = 0; i < 100; i++) {
        const t = c.k.send({ from: "client", to: "10.96.0.10", protocol: "tcp", port: 80 });
        expect(t.outcome).toBe("reached");
        seen.add(`${t.deliveredTo!.address}:${t.deliveredTo!.port}`);
      }
      expect([...seen].sort()).toEqual([`${endpoints[0]}:8080`, `${other}:9090`].sort());
      const admin = c.k.send({ from: "client", to: "10.96.0.10", protocol: "tcp", port: 81 });
      expect([admin.outcome, admin.reason]).toEqual([
        "unreachable",
        proxy === "iptables"
          ? expect.stringMatching(/"default\/web:admin has no endpoints"/)
          : "rejected by node1: ip kube-proxy reject-chain: reject",
      ]);
    },
  );

  it.each(PROXY_NAMES)(
    "%s: answers on every node's address at the NodePort, masquerading the outside client",
    async (proxy) => {
      const { c, endpoints } = await clusterWithService(cbr0HostGw(), proxy);
      const trace = c.k.send({ from: "outside", to: "10.100.0.3", protocol: "tcp", port: 30080 });
      expect(trace.outcome).toBe("reached");
      expect(endpoints).toContain(trace.deliveredTo!.address);
      const delivered = trace.hops.find((h) => h.event === "deliver" && h.direction === "request")!;
      expect(formatIpv4((delivered.packet.headers[0] as Ipv4Header).src)).not.toBe("10.100.0.50");
      const masquerade = proxy === "iptables" ? "-j MASQUERADE --random-fully" : "masquerade fully-random";
      expect(trace.hops.some((h) => h.detail.includes(masquerade))).toBe(true);
      if (proxy !== "iptables") return;
      // The way a real node (kube-proxy 1.24 and later) holds a NodePort: KUBE-NODEPORTS → KUBE-EXT-…
      // (marks for masquerading) → KUBE-SVC-…, as a kind node's `iptables-save` shows it.
      const ext = "KUBE-EXT-CDGGSHYLG3RE2FKL";
      expect(
        (await c.k.iptables.save("node2", "nat"))
          .split("\n")
          .filter((l) => l.includes("KUBE-EXT-") || l.startsWith("-A KUBE-NODEPORTS")),
      ).toEqual([
        `:${ext} - [0:0]`,
        `-A ${ext} -m comment --comment "masquerade traffic for default/web:http external destinations" -j KUBE-MARK-MASQ`,
        `-A ${ext} -j ${ext.replace("EXT", "SVC")}`,
        `-A KUBE-NODEPORTS -p tcp -m comment --comment "default/web:http" -m tcp --dport 30080 -j ${ext}`,
      ]);
      const dnat = trace.hops.find((h) => h.event === "nat" && h.direction === "request")!;
      expect(dnat.detail).toContain(`-j KUBE-NODEPORTS → -A KUBE-NODEPORTS -p tcp`);
      expect(dnat.detail).toContain(
        `-j KUBE-MARK-MASQ → -A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000 → -A ${ext} -j KUBE-SVC-`,
      );
    },
  );

  it.each(PROXY_NAMES)(
    "%s: rejects connections to a service without endpoints, naming the rule",
    async (proxy) => {
      const { c } = await clusterWithService(cbr0HostGw(), proxy);
      await c.service({
        namespace: "default",
        name: "empty",
        clusterIP: "10.96.0.11",
        ports: [{ name: "http", port: 80, targetPort: 80, protocol: "tcp" }],
        endpoints: [],
      });
      const trace = c.k.send({ from: "client", to: "10.96.0.11", protocol: "tcp", port: 80 });
      expect(trace.outcome).toBe("unreachable");
      expect(trace.reason).toBe(
        proxy === "iptables"
          ? 'rejected by node1: -A KUBE-SERVICES -d 10.96.0.11/32 -p tcp -m comment --comment "default/empty:http has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable'
          : "rejected by node1: ip kube-proxy reject-chain: reject",
      );
    },
  );

  it.each(PROXY_NAMES)(
    "%s: rejects a NodePort without endpoints on the node, from outside, a pod and the node itself, until it has one",
    async (proxy) => {
      const { c, web } = await clusterWithService(cbr0HostGw(), proxy);
      await c.service({ ...web, endpoints: [] });
      const reason =
        proxy === "iptables"
          ? 'rejected by node2: -A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "default/web:http has no endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 30080 -j REJECT --reject-with icmp-port-unreachable'
          : "rejected by node2: ip kube-proxy reject-chain: reject";
      // node2 to its own address: out and back in through lo, still a NEW connection at INPUT.
      for (const from of ["outside", "client", "node2"]) {
        const trace = c.k.send({ from, to: "10.100.0.3", protocol: "tcp", port: 30080 });
        expect(trace.outcome).toBe("unreachable");
        expect(trace.reason).toBe(reason);
      }
      // The filter hooks and fixed chains as a real node holds them (an EKS worker's `iptables -S`,
      // 2026, whose KUBE-FORWARD counts its INVALID drops with nfacct; kube-proxy writes the plain
      // rule where it cannot), kubelet's KUBE-FIREWALL jumps ensured first, kube-proxy's above.
      if (proxy === "iptables")
        expect(
          (await c.k.iptables.save("node2", "filter"))
            .split("\n")
            .filter((l) => /^(:KUBE-|-A (INPUT|FORWARD|OUTPUT|KUBE-FORWARD|KUBE-FIREWALL) )/.test(l)),
        ).toEqual([
          ":KUBE-EXTERNAL-SERVICES - [0:0]",
          ":KUBE-FIREWALL - [0:0]",
          ":KUBE-FORWARD - [0:0]",
          ":KUBE-NODEPORTS - [0:0]",
          ":KUBE-PROXY-FIREWALL - [0:0]",
          ":KUBE-SERVICES - [0:0]",
          '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
          '-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
          '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
          "-A INPUT -j KUBE-FIREWALL",
          '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
          '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
          '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
          '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
          '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
          '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
          "-A OUTPUT -j KUBE-FIREWALL",
          '-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
          "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
          '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
          '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        ]);
      // Endpoints again: the reject is gone, the NodePort answers.
      await c.service(web);
      expect(c.k.send({ from: "outside", to: "10.100.0.3", protocol: "tcp", port: 30080 }).outcome).toBe(
        "reached",
      );
    },
  );

  it.each(PROXY_NAMES)(
    "%s: externalTrafficPolicy Local sends a NodePort to the node's own endpoints, keeping the client's address, and drops it where there are none",
    async (proxy) => {
      const { c, web, endpoints } = await clusterWithService(cbr0HostGw(), proxy);
      // web-a on node1, web-b and web-c on node2.
      const local: Service = {
        ...web,
        endpointNodes: ["node1", "node2", "node2"],
        externalTrafficPolicy: "Local",
      };
      await c.service(local);
      for (const [node, address, mine] of [
        ["node1", "10.100.0.2", endpoints.slice(0, 1)],
        ["node2", "10.100.0.3", endpoints.slice(1)],
      ] as const) {
        const seen = new Set<string>();
        for (let i = 0; i < 30; i++) {
          const t = c.k.send({ from: "outside", to: address, protocol: "tcp", port: 30080 });
          expect(t.outcome).toBe("reached");
          seen.add(t.deliveredTo!.address);
          const taken = t.hops.find((h) => h.event === "deliver" && h.direction === "request")!;
          expect([node, formatIpv4((taken.packet.headers[0] as Ipv4Header).src)]).toEqual([
            node,
            "10.100.0.50",
          ]);
        }
        expect([...seen].sort()).toEqual([...mine].sort());
      }
      // web-a gone: node1 has none of its own, and drops what comes from outside to its NodePort.
      await c.service({ ...local, endpoints: endpoints.slice(1), endpointNodes: ["node2", "node2"] });
      const dropped = c.k.send({ from: "outside", to: "10.100.0.2", protocol: "tcp", port: 30080 });
      expect([dropped.outcome, dropped.reason]).toEqual([
        "dropped",
        proxy === "iptables"
          ? 'dropped by filter INPUT: -A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "default/web:http has no local endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 30080 -j DROP (at node1)'
          : "dropped by filter INPUT: ip kube-proxy nodeport-endpoints-check: ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports (tcp . 30080 : drop) (at node1)",
      ]);
      // A pod on node1 and node1 itself still get through node1's NodePort, to node2's endpoints.
      for (const from of ["client", "node1"]) {
        const t = c.k.send({ from, to: "10.100.0.2", protocol: "tcp", port: 30080 });
        expect([from, t.outcome, endpoints.slice(1).includes(t.deliveredTo?.address ?? "")]).toEqual([
          from,
          "reached",
          true,
        ]);
      }
      // node2 still answers; the node's rules are its own.
      expect(c.k.send({ from: "outside", to: "10.100.0.3", protocol: "tcp", port: 30080 }).outcome).toBe(
        "reached",
      );
    },
  );

  it.each(PROXY_NAMES)(
    "%s: internalTrafficPolicy Local keeps a ClusterIP on the client's node, dropped where it has no endpoint",
    async (proxy) => {
      const { c, web, endpoints } = await clusterWithService(cbr0HostGw(), proxy);
      await c.addPod("node2", "far");
      await c.service({ ...web, endpointNodes: ["node1", "node2", "node2"], internalTrafficPolicy: "Local" });
      for (let i = 0; i < 20; i++) {
        const near = c.k.send({ from: "client", to: "10.96.0.10", protocol: "tcp", port: 80 });
        expect(near.deliveredTo?.address).toBe(endpoints[0]);
        const there = c.k.send({ from: "far", to: "10.96.0.10", protocol: "tcp", port: 80 });
        expect(endpoints.slice(1)).toContain(there.deliveredTo?.address);
      }
      // node1's only endpoint gone: its pods' connections are dropped (not refused: endpoints exist).
      await c.service({
        ...web,
        endpoints: endpoints.slice(1),
        endpointNodes: ["node2", "node2"],
        internalTrafficPolicy: "Local",
      });
      const t = c.k.send({ from: "client", to: "10.96.0.10", protocol: "tcp", port: 80 });
      expect([t.outcome, t.reason]).toEqual([
        "dropped",
        proxy === "iptables"
          ? 'dropped by filter FORWARD: -A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "default/web:http has no local endpoints" -m tcp --dport 80 -j DROP (at node1)'
          : "dropped by filter FORWARD: ip kube-proxy service-endpoints-check: ip daddr . meta l4proto . th dport vmap @no-endpoint-services (10.96.0.10 . tcp . 80 : drop) (at node1)",
      ]);
    },
  );

  it("writes externalTrafficPolicy Local's chains as kube-proxy does (upstream's TestOnlyLocalNodePorts)", async () => {
    // One endpoint here (10.0.1.2 on node1), one elsewhere: KUBE-EXT short-circuits pod and node
    // traffic to KUBE-SVC (both endpoints) and sends the rest to KUBE-SVL (this node's).
    const { c, web, endpoints } = await clusterWithService();
    await c.service({
      ...web,
      endpoints: endpoints.slice(0, 2),
      endpointNodes: ["node1", "node2"],
      externalTrafficPolicy: "Local",
    });
    const [svc, ext, svl] = ["SVC", "EXT", "SVL"].map((k) => `KUBE-${k}-CDGGSHYLG3RE2FKL`);
    const lines = (await c.k.iptables.save("node1", "nat"))
      .split("\n")
      .filter((l) => /^-A KUBE-(NODEPORTS|EXT|SVC|SVL)/.test(l))
      .map((l) => l.replace(/KUBE-SEP-\w+/, "KUBE-SEP-…"));
    expect(lines).toEqual([
      `-A ${ext} -s 10.0.0.0/16 -m comment --comment "pod traffic for default/web:http external destinations" -j ${svc}`,
      `-A ${ext} -m comment --comment "masquerade LOCAL traffic for default/web:http external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ`,
      `-A ${ext} -m comment --comment "route LOCAL traffic for default/web:http external destinations" -m addrtype --src-type LOCAL -j ${svc}`,
      `-A ${ext} -j ${svl}`,
      `-A KUBE-NODEPORTS -p tcp -m comment --comment "default/web:http" -m tcp --dport 30080 -j ${ext}`,
      `-A ${svc} ! -s 10.0.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ`,
      `-A ${svc} -m comment --comment "default/web:http -> ${endpoints[0]}:8080" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-…`,
      `-A ${svc} -m comment --comment "default/web:http -> ${endpoints[1]}:8080" -j KUBE-SEP-…`,
      `-A ${svl} -m comment --comment "default/web:http -> ${endpoints[0]}:8080" -j KUBE-SEP-…`,
    ]);
  });

  it.each(PROXY_NAMES)(
    "%s: sessionAffinity ClientIP keeps a client on one endpoint until its timeout passes",
    async (proxy) => {
      const { c, web, endpoints } = await clusterWithService(cbr0HostGw(), proxy);
      await c.addPod("node2", "far");
      await c.service({ ...web, sessionAffinity: { timeoutSeconds: 30 } });
      const seen = (from: string, n: number) => {
        const at = new Set<string>();
        for (let i = 0; i < n; i++) {
          const t = c.k.send({ from, to: "10.96.0.10", protocol: "tcp", port: 80 });
          expect(t.outcome).toBe("reached");
          at.add(t.deliveredTo!.address);
        }
        return [...at];
      };
      // Each client keeps its endpoint, connection after connection (each send is a second later).
      for (const from of ["client", "far", "client"]) expect(seen(from, 12)).toHaveLength(1);
      // Once 30 seconds pass without a connection from it, a client draws again: over several
      // rounds, it lands elsewhere (3 endpoints: all ten rounds on one by chance is 1 in 20,000).
      const rounds = new Set<string>();
      for (let round = 0; round < 10; round++) {
        for (let i = 0; i < 31; i++) c.k.send({ from: "outside", to: "10.100.0.9", protocol: "icmp" });
        rounds.add(seen("client", 1)[0]!);
      }
      expect(rounds.size).toBeGreaterThan(1);
      expect(endpoints).toEqual(expect.arrayContaining([...rounds]));
      // Without affinity, one client's connections spread.
      await c.service(web);
      expect(seen("client", 30).length).toBeGreaterThan(1);
    },
  );

  it("writes sessionAffinity's rules as kube-proxy does: a recent list per endpoint, checked before the draw", async () => {
    const { c, web, endpoints } = await clusterWithService();
    await c.service({ ...web, endpoints: endpoints.slice(0, 2), sessionAffinity: { timeoutSeconds: 10800 } });
    const svc = "KUBE-SVC-CDGGSHYLG3RE2FKL";
    const lines = (await c.k.iptables.save("node1", "nat"))
      .split("\n")
      .filter((l) => l.startsWith(`-A ${svc}`) || (/^-A KUBE-SEP-/.test(l) && l.includes("DNAT")));
    const sep = (i: number) => endpointChain(web, web.ports[0]!, `${endpoints[i]}:8080`);
    expect(lines).toEqual(
      [
        `-A ${sep(0)} -p tcp -m comment --comment "default/web:http" -m recent --set --name ${sep(0)} --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination ${endpoints[0]}:8080`,
        `-A ${sep(1)} -p tcp -m comment --comment "default/web:http" -m recent --set --name ${sep(1)} --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination ${endpoints[1]}:8080`,
        `-A ${svc} ! -s 10.0.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ`,
        `-A ${svc} -m comment --comment "default/web:http -> ${endpoints[0]}:8080" -m recent --rcheck --seconds 10800 --reap --name ${sep(0)} --mask 255.255.255.255 --rsource -j ${sep(0)}`,
        `-A ${svc} -m comment --comment "default/web:http -> ${endpoints[1]}:8080" -m recent --rcheck --seconds 10800 --reap --name ${sep(1)} --mask 255.255.255.255 --rsource -j ${sep(1)}`,
        `-A ${svc} -m comment --comment "default/web:http -> ${endpoints[0]}:8080" -m statistic --mode random --probability 0.50000000000 -j ${sep(0)}`,
        `-A ${svc} -m comment --comment "default/web:http -> ${endpoints[1]}:8080" -j ${sep(1)}`,
      ].sort((a, b) =>
        a.split(" ")[1]! < b.split(" ")[1]! ? -1 : a.split(" ")[1]! > b.split(" ")[1]! ? 1 : 0,
      ),
    );
  });

  it("lets NodePort traffic and accepted flows through a FORWARD that drops the rest (KUBE-FORWARD)", async () => {
    // Docker sets FORWARD's policy to DROP; a DROP after kube-proxy's jumps does the same. What
    // kube-proxy marked for masquerading (a NodePort's connection) and what belongs to an accepted
    // flow (its answers) is accepted first; a pod's own new connection through the node is not.
    const { c, web, endpoints } = await clusterWithService();
    const local = endpoints.slice(1); // web-b and web-c, on node2
    await c.service({ ...web, endpoints: local });
    for (const node of ["node1", "node2"])
      await c.k.iptables.append(node, "filter", "FORWARD", { target: { kind: "DROP" } });
    for (let i = 0; i < 20; i++) {
      const t = c.k.send({ from: "outside", to: "10.100.0.3", protocol: "tcp", port: 30080 });
      expect([t.outcome, local.includes(t.deliveredTo?.address ?? "")]).toEqual(["reached", true]);
    }
    const direct = c.k.send({ from: "client", to: local[0]!, protocol: "tcp", port: 8080 });
    expect([direct.outcome, direct.reason]).toEqual([
      "dropped",
      "dropped by filter FORWARD: -A FORWARD -j DROP (at node1)",
    ]);
  });

  it("rewrites only what changed when endpoints change, and removes a deleted service's chains", async () => {
    const { c, web, endpoints, report } = await clusterWithService();
    expect(report.added).toBeGreaterThan(0);
    const unchanged = await c.service(web);
    expect([unchanged.added, unchanged.removed, unchanged.changed]).toEqual([0, 0, 0]);
    const shrunk = await c.service({ ...web, endpoints: endpoints.slice(0, 2) });
    // Per node: KUBE-SVC rewritten (4 rules → 3), and KUBE-SEP of the gone endpoint flushed (2 rules).
    expect(shrunk.nodes.node1).toEqual({ added: 3, removed: 6, changed: 0 });
    expect(await c.k.iptables.save("node1", "nat")).not.toContain(`${endpoints[2]}:8080`);
    await c.manager.serviceDeleted("default", "web");
    const nat = await c.k.iptables.save("node2", "nat");
    expect(nat).not.toMatch(/KUBE-SVC-|KUBE-SEP-/);
    expect(nat).toContain(":KUBE-SERVICES - [0:0]");
  });
});
