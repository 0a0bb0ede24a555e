import { Ipv4Prefix, parseIpv4 } from "@podnet/core";
import { formatIptablesRule } from "@podnet/netlink";
import { describe, expect, it } from "vitest";
import { PolicyLimitError, nodeChains, podChain, subtractPrefixes } from "./chains.js";
import { compilePolicies } from "./compile.js";
import { NetworkPolicySchema } from "./schema.js";

/** shop/db on n1 (its port "pg" is 5432) and shop/api on n2, under a policy that lets api into db on `ports`. */
function dbFromApi(ports: unknown[]) {
  const pod = (name: string, ip: string, node: string, named: { name: string; port: number }[]) => ({
    name,
    namespace: "shop",
    labels: { app: name },
    ip: parseIpv4(ip),
    node,
    ports: named.map((p) => ({ ...p, protocol: "tcp" as const })),
  });
  return compilePolicies({
    pods: [pod("db", "10.0.1.3", "n1", [{ name: "pg", port: 5432 }]), pod("api", "10.0.2.2", "n2", [])],
    namespaces: [],
    policies: [
      NetworkPolicySchema.parse({
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name: "db", namespace: "shop" },
        spec: {
          podSelector: { matchLabels: { app: "db" } },
          ingress: [{ from: [{ podSelector: { matchLabels: { app: "api" } } }], ports }],
        },
      }),
    ],
  });
}

describe("the iptables chains of a node", () => {
  it("covers a CIDR less its excepts with the fewest prefixes", () => {
    const p = (t: string) => Ipv4Prefix.parse(t);
    expect(subtractPrefixes(p("10.0.0.0/16"), [p("10.0.1.0/24")]).map(String)).toEqual(
      [
        "10.0.128.0/17",
        "10.0.64.0/18",
        "10.0.32.0/19",
        "10.0.16.0/20",
        "10.0.8.0/21",
        "10.0.4.0/22",
        "10.0.2.0/23",
        "10.0.0.0/24",
      ].sort((a, b) => p(a).network - p(b).network),
    );
    expect(subtractPrefixes(p("10.0.0.0/24"), [p("10.0.0.0/16")])).toEqual([]);
    expect(subtractPrefixes(p("10.0.0.0/24"), [p("10.1.0.0/24")]).map(String)).toEqual(["10.0.0.0/24"]);
  });

  it("jumps only for local isolated pods, returns on allowed peers and ports, drops at the end", () => {
    const compiled = dbFromApi([{ port: "pg" }, { port: 6000, endPort: 6010 }]);
    const text = (node: string) =>
      [...nodeChains(compiled, node)].map(([name, rules]) =>
        rules.map((r) => `-A ${name} ${formatIptablesRule(r)}`),
      );
    expect(text("n1").flat()).toEqual([
      '-A PODNET-NETPOL -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "established and related flows" -j RETURN',
      '-A PODNET-NETPOL -d 10.0.1.3/32 -m comment --comment "ingress of shop/db" -j PNP-I-308CAAC0',
      '-A PNP-I-308CAAC0 -s 10.0.2.2/32 -p tcp -m tcp --dport 5432 -m comment --comment "shop/db ingress[0]" -j RETURN',
      '-A PNP-I-308CAAC0 -s 10.0.2.2/32 -p tcp -m tcp --dport 6000:6010 -m comment --comment "shop/db ingress[0]" -j RETURN',
      '-A PNP-I-308CAAC0 -m comment --comment "default deny ingress of shop/db: selected by shop/db" -j DROP',
    ]);
    // api is isolated by nothing: its node holds only the conntrack rule.
    expect(text("n2").flat()).toHaveLength(1);
  });

  it("puts a peer's single ports of one protocol in multiport rules of up to 15, where the first was", () => {
    const tcp = Array.from({ length: 17 }, (_, i) => ({ port: 80 + i }));
    const compiled = dbFromApi([
      ...tcp.slice(0, 16),
      { port: 6000, endPort: 6010 },
      { protocol: "UDP", port: 53 },
      { port: 80 },
      tcp[16],
    ]);
    const rules = nodeChains(compiled, "n1").get(podChain("ingress", "shop/db"))!;
    const why = '-m comment --comment "shop/db ingress[0]" -j RETURN';
    expect(rules.map((r) => formatIptablesRule(r))).toEqual([
      `-s 10.0.2.2/32 -p tcp -m multiport --dports ${tcp
        .slice(0, 15)
        .map((p) => p.port)
        .join(",")} ${why}`,
      `-s 10.0.2.2/32 -p tcp -m multiport --dports 95,96 ${why}`,
      `-s 10.0.2.2/32 -p tcp -m tcp --dport 6000:6010 ${why}`,
      `-s 10.0.2.2/32 -p udp -m udp --dport 53 ${why}`,
      '-m comment --comment "default deny ingress of shop/db: selected by shop/db" -j DROP',
    ]);
  });

  it("refuses a node's chains past the engine's limit, before writing any", () => {
    // 520 pods on one node, each allowed in from every pod: 270,400 rules.
    const compiled = compilePolicies({
      pods: Array.from({ length: 520 }, (_, i) => ({
        name: `p${i}`,
        namespace: "default",
        labels: {},
        ip: parseIpv4(`10.0.${i >> 8}.${i & 255}`),
        node: "n1",
        ports: [],
      })),
      namespaces: [],
      policies: [
        NetworkPolicySchema.parse({
          apiVersion: "networking.k8s.io/v1",
          kind: "NetworkPolicy",
          metadata: { name: "all" },
          spec: { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] },
        }),
      ],
    });
    expect(() => nodeChains(compiled, "n1")).toThrow(PolicyLimitError);
    expect(() => nodeChains(compiled, "n1")).toThrow(
      /^node n1: the NetworkPolicies make at least 250,\d{3} iptables rules .* at most 250,000 per node: /,
    );
    // The other node holds none of those pods.
    expect(nodeChains(compiled, "n2").size).toBe(1);
  });
});
