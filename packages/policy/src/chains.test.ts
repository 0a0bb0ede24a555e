import { Ipv4Prefix, parseIpv4 } from "@podnet/core";
import { formatIptablesRule } from "@podnet/netlink";
import { describe, expect, it } from "vitest";
import { nodeChains, subtractPrefixes } from "./chains.js";
import { compilePolicies } from "./compile.js";
import { NetworkPolicySchema } from "./schema.js";

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
    const compiled = compilePolicies({
      pods: [
        {
          name: "db",
          namespace: "shop",
          labels: { app: "db" },
          ip: parseIpv4("10.0.1.3"),
          node: "n1",
          ports: [{ name: "pg", port: 5432, protocol: "tcp" }],
        },
        {
          name: "api",
          namespace: "shop",
          labels: { app: "api" },
          ip: parseIpv4("10.0.2.2"),
          node: "n2",
          ports: [],
        },
      ],
      namespaces: [],
      policies: [
        NetworkPolicySchema.parse({
          apiVersion: "networking.k8s.io/v1",
          kind: "NetworkPolicy",
          metadata: { name: "db", namespace: "shop" },
          spec: {
            podSelector: { matchLabels: { app: "db" } },
            ingress: [
              {
                from: [{ podSelector: { matchLabels: { app: "api" } } }],
                ports: [{ port: "pg" }, { port: 6000, endPort: 6010 }],
              },
            ],
          },
        }),
      ],
    });
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
});
