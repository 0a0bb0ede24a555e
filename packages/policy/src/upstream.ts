/**
 * The cases of the Kubernetes NetworkPolicy e2e suite (test/e2e/network/netpol/network_policy.go)
 * as data: its model (namespaces x, y, z with pods a, b, c, each serving TCP and UDP on 80 and 81
 * under the port names serve-80-tcp …), each case's policies and its expected truth table. Pinned
 * from upstream's expectations, for the compiled engine's tests and for the scenario tests that
 * run them on the simulator and on the kernel. Loopback cells are not compared, as upstream.
 */
import type { NetworkPolicyInput } from "./schema.js";
import type { PolicyProtocol } from "./compile.js";

export const UPSTREAM_NAMESPACES = ["x", "y", "z"] as const;
export const UPSTREAM_PODS = ["a", "b", "c"] as const;
export const UPSTREAM_PORTS = [80, 81] as const;
export const UPSTREAM_PROTOCOLS: readonly PolicyProtocol[] = ["tcp", "udp"];

export interface UpstreamPeer {
  ns: string;
  pod: string;
}

export interface UpstreamProbe {
  protocol: PolicyProtocol;
  port: number;
}

export interface UpstreamCase {
  /** The upstream test's name. */
  name: string;
  /** Policies, built from the pods' addresses (the ipBlock cases name a pod's IP). */
  policies: (ip: (peer: UpstreamPeer) => string) => NetworkPolicyInput[];
  probes: UpstreamProbe[];
  /** The expected verdict of a new connection, for every ordered pair of distinct pods. */
  expect: (from: UpstreamPeer, to: UpstreamPeer, probe: UpstreamProbe) => boolean;
}

type Spec = NetworkPolicyInput["spec"];
const policy = (namespace: string, name: string, spec: Spec): NetworkPolicyInput => ({
  apiVersion: "networking.k8s.io/v1",
  kind: "NetworkPolicy",
  metadata: { name, namespace },
  spec,
});
const pod = (name: string) => ({ matchLabels: { pod: name } });
const ns = (name: string) => ({ matchLabels: { "kubernetes.io/metadata.name": name } });
const is = (p: UpstreamPeer, namespace: string, name?: string) =>
  p.ns === namespace && (name === undefined || p.pod === name);
const TCP80: UpstreamProbe = { protocol: "tcp", port: 80 };
const TCP81: UpstreamProbe = { protocol: "tcp", port: 81 };
const UDP80: UpstreamProbe = { protocol: "udp", port: 80 };
const UDP81: UpstreamProbe = { protocol: "udp", port: 81 };

/** The /16 around an address: upstream's "allow" mask for the except-clause cases. */
const slash16 = (ip: string) => `${ip.split(".").slice(0, 2).join(".")}.0.0/16`;

/** The pods of upstream's model as scenario pods: named "<ns>-<pod>", labelled pod=<pod>. */
export function upstreamPods(): { name: string; namespace: string; labels: Record<string, string> }[] {
  return UPSTREAM_NAMESPACES.flatMap((namespace) =>
    UPSTREAM_PODS.map((p) => ({ name: `${namespace}-${p}`, namespace, labels: { pod: p } })),
  );
}

/** Each upstream pod serves TCP and UDP on 80 and 81, under names like serve-80-tcp. */
export const UPSTREAM_CONTAINER_PORTS = UPSTREAM_PORTS.flatMap((port) =>
  UPSTREAM_PROTOCOLS.map((protocol) => ({ name: `serve-${port}-${protocol}`, port, protocol })),
);

/** x/a may send to y/b's address only. */
const allowServer = (ip: (peer: UpstreamPeer) => string) =>
  policy("x", "allow-client-a-via-cidr-egress-rule", {
    podSelector: pod("a"),
    policyTypes: ["Egress"],
    egress: [{ to: [{ ipBlock: { cidr: `${ip({ ns: "y", pod: "b" })}/32` } }] }],
  });

/** x/a may send anywhere in y/b's /16 except to y/b itself. */
const exceptServer = (ip: (peer: UpstreamPeer) => string) =>
  policy("x", "deny-client-a-via-except-cidr-egress-rule", {
    podSelector: pod("a"),
    policyTypes: ["Egress"],
    egress: [
      {
        to: [
          {
            ipBlock: {
              cidr: slash16(ip({ ns: "y", pod: "b" })),
              except: [`${ip({ ns: "y", pod: "b" })}/32`],
            },
          },
        ],
      },
    ],
  });

export const UPSTREAM_CASES: UpstreamCase[] = [
  {
    name: "should support a 'default-deny-ingress' policy",
    policies: () => [policy("x", "deny-ingress", { podSelector: {}, policyTypes: ["Ingress"] })],
    probes: [TCP80],
    expect: (_from, to) => !is(to, "x"),
  },
  {
    name: "should support a 'default-deny-all' policy",
    policies: () => [policy("x", "deny-all", { podSelector: {}, policyTypes: ["Ingress", "Egress"] })],
    probes: [TCP80, TCP81],
    expect: (from, to) => !is(to, "x") && !is(from, "x"),
  },
  {
    name: "should enforce policy to allow traffic from pods within server namespace based on PodSelector",
    policies: () => [
      policy("x", "x-a-allows-x-b", {
        podSelector: pod("a"),
        ingress: [{ from: [{ podSelector: pod("b") }] }],
      }),
    ],
    probes: [TCP80],
    expect: (from, to) => !is(to, "x", "a") || is(from, "x", "b"),
  },
  {
    name: "should enforce policy to allow ingress traffic for a target",
    policies: () => [
      policy("x", "deny-ingress-via-label-selector", { podSelector: pod("a"), policyTypes: ["Ingress"] }),
      policy("x", "allow-all-to-a", { podSelector: pod("a"), ingress: [{}] }),
    ],
    probes: [TCP80],
    expect: () => true,
  },
  {
    name: "should enforce policy to allow ingress traffic from pods in all namespaces",
    policies: () => [
      policy("x", "allow-from-another-ns", {
        podSelector: pod("a"),
        ingress: [{ from: [{ namespaceSelector: {} }] }],
      }),
    ],
    probes: [TCP80],
    expect: () => true,
  },
  {
    name: "should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector",
    policies: () => [
      policy("x", "allow-client-a-via-ns-selector", {
        podSelector: pod("a"),
        ingress: [{ from: [{ namespaceSelector: ns("y") }] }],
      }),
    ],
    probes: [TCP80],
    expect: (from, to) => !is(to, "x", "a") || is(from, "y"),
  },
  {
    name: "should enforce policy based on PodSelector with MatchExpressions",
    policies: () => [
      policy("x", "x-a-allows-x-b", {
        podSelector: pod("a"),
        ingress: [
          { from: [{ podSelector: { matchExpressions: [{ key: "pod", operator: "In", values: ["b"] }] } }] },
        ],
      }),
    ],
    probes: [TCP80],
    expect: (from, to) => !is(to, "x", "a") || is(from, "x", "b"),
  },
  {
    name: "should enforce policy based on NamespaceSelector with MatchExpressions",
    policies: () => [
      policy("x", "allow-ns-y-match-selector", {
        podSelector: pod("a"),
        ingress: [
          {
            from: [
              {
                namespaceSelector: {
                  matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: ["y"] }],
                },
              },
            ],
          },
        ],
      }),
    ],
    probes: [TCP80],
    expect: (from, to) => !is(to, "x", "a") || is(from, "y"),
  },
  {
    name: "should enforce policy based on PodSelector or NamespaceSelector",
    policies: () => [
      policy("x", "allow-ns-y-match-selector", {
        podSelector: pod("a"),
        ingress: [
          {
            from: [
              {
                namespaceSelector: {
                  matchExpressions: [
                    { key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["x"] },
                  ],
                },
              },
              { podSelector: pod("b") },
            ],
          },
        ],
      }),
    ],
    probes: [TCP80],
    expect: (from, to) => !is(to, "x", "a") || !is(from, "x", "c"),
  },
  {
    name: "should enforce policy based on PodSelector and NamespaceSelector",
    policies: () => [
      policy("x", "allow-ns-y-podselector-and-nsselector", {
        podSelector: pod("a"),
        ingress: [
          {
            from: [
              {
                namespaceSelector: {
                  matchExpressions: [
                    { key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["x"] },
                  ],
                },
                podSelector: pod("b"),
              },
            ],
          },
        ],
      }),
    ],
    probes: [TCP80],
    expect: (from, to) => !is(to, "x", "a") || is(from, "y", "b") || is(from, "z", "b"),
  },
  {
    name: "should enforce policy based on Multiple PodSelectors and NamespaceSelectors",
    policies: () => [
      policy("x", "allow-z-ns-podselector-and-nsselector", {
        podSelector: pod("a"),
        ingress: [
          {
            from: [
              {
                namespaceSelector: {
                  matchExpressions: [
                    { key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["x"] },
                  ],
                },
                podSelector: { matchExpressions: [{ key: "pod", operator: "In", values: ["b", "c"] }] },
              },
            ],
          },
        ],
      }),
    ],
    probes: [TCP80],
    expect: (from, to) => !is(to, "x", "a") || (!is(from, "x") && from.pod !== "a"),
  },
  {
    name: "should enforce policy based on any PodSelectors",
    policies: () => [
      policy("x", "allow-x-b-and-x-c", {
        podSelector: pod("a"),
        ingress: [{ from: [{ podSelector: pod("b") }, { podSelector: pod("c") }] }],
      }),
    ],
    probes: [TCP80],
    expect: (from, to) => !is(to, "x", "a") || is(from, "x", "b") || is(from, "x", "c"),
  },
  {
    name: "should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector",
    policies: () => [
      policy("x", "allow-ns-y-pod-a-via-namespace-pod-selector", {
        podSelector: pod("a"),
        ingress: [{ from: [{ namespaceSelector: ns("y"), podSelector: pod("a") }] }],
      }),
    ],
    probes: [TCP80],
    expect: (from, to) => !is(to, "x", "a") || is(from, "y", "a"),
  },
  {
    name: "should enforce policy based on Ports",
    policies: () => [
      policy("x", "allow-ingress-on-port-81-ns-x", {
        podSelector: pod("a"),
        ingress: [{ from: [{ namespaceSelector: ns("y") }], ports: [{ port: 81, protocol: "TCP" }] }],
      }),
    ],
    probes: [TCP80, TCP81],
    expect: (from, to, probe) => !is(to, "x", "a") || (probe.port === 81 && is(from, "y")),
  },
  {
    name: "should enforce multiple, stacked policies with overlapping podSelectors",
    policies: () => [
      policy("x", "allow-ingress-on-port-80", {
        podSelector: pod("a"),
        ingress: [{ from: [{ namespaceSelector: ns("y") }], ports: [{ port: 80 }] }],
      }),
      policy("x", "allow-ingress-on-port-81", {
        podSelector: pod("a"),
        ingress: [{ from: [{ namespaceSelector: ns("y") }], ports: [{ port: 81 }] }],
      }),
    ],
    probes: [TCP80, TCP81],
    expect: (from, to) => !is(to, "x", "a") || is(from, "y"),
  },
  {
    name: "should support allow-all policy",
    policies: () => [policy("x", "allow-all", { podSelector: {}, ingress: [{}] })],
    probes: [TCP80, TCP81],
    expect: () => true,
  },
  {
    name: "should allow ingress access on one named port",
    policies: () => [
      policy("x", "allow-all", { podSelector: {}, ingress: [{ ports: [{ port: "serve-81-tcp" }] }] }),
    ],
    probes: [TCP80, TCP81],
    expect: (_from, to, probe) => !is(to, "x") || probe.port === 81,
  },
  {
    name: "should allow ingress access from namespace on one named port",
    policies: () => [
      policy("x", "allow-client-in-ns-y-on-named-port", {
        podSelector: {},
        ingress: [{ from: [{ namespaceSelector: ns("y") }], ports: [{ port: "serve-80-tcp" }] }],
      }),
    ],
    probes: [TCP80, TCP81],
    expect: (from, to, probe) => !is(to, "x") || (probe.port === 80 && is(from, "y")),
  },
  {
    name: "should allow egress access on one named port",
    policies: () => [
      policy("x", "allow-egress", {
        podSelector: {},
        policyTypes: ["Egress"],
        egress: [{ ports: [{ port: "serve-80-udp", protocol: "UDP" }] }],
      }),
    ],
    probes: [UDP80, UDP81],
    expect: (from, _to, probe) => !is(from, "x") || probe.port === 80,
  },
  {
    name: "should deny ingress from pods on other namespaces",
    policies: () => [
      policy("x", "deny-empty-policy", { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] }),
    ],
    probes: [TCP80],
    expect: (from, to) => !is(to, "x") || is(from, "x"),
  },
  {
    name: "should deny egress from pods based on PodSelector",
    policies: () => [policy("x", "deny-egress-pod-a", { podSelector: pod("a"), policyTypes: ["Egress"] })],
    probes: [TCP80],
    expect: (from) => !is(from, "x", "a"),
  },
  {
    name: "should deny egress from all pods in a namespace",
    policies: () => [policy("x", "deny-egress-ns-x", { podSelector: {}, policyTypes: ["Egress"] })],
    probes: [TCP80],
    expect: (from) => !is(from, "x"),
  },
  {
    name: "should work with Ingress, Egress specified together",
    policies: () => [
      policy("x", "allow-client-a-via-pod-selector", {
        podSelector: pod("a"),
        policyTypes: ["Ingress", "Egress"],
        ingress: [{ from: [{ podSelector: pod("b") }] }],
        egress: [{ ports: [{ port: 80 }] }],
      }),
    ],
    probes: [TCP80, TCP81],
    expect: (from, to, probe) =>
      (!is(to, "x", "a") || is(from, "x", "b")) && (!is(from, "x", "a") || probe.port === 80),
  },
  {
    name: "should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector",
    policies: () => [
      policy("x", "allow-to-ns-y-pod-a", {
        podSelector: pod("a"),
        policyTypes: ["Egress"],
        egress: [{ to: [{ namespaceSelector: ns("y"), podSelector: pod("a") }] }],
      }),
    ],
    probes: [TCP80],
    expect: (from, to) => !is(from, "x", "a") || is(to, "y", "a"),
  },
  {
    name: "should enforce ingress policy allowing any port traffic to a server on a specific protocol",
    policies: () => [
      policy("x", "allow-ingress-by-proto", {
        podSelector: pod("a"),
        ingress: [{ ports: [{ protocol: "TCP" }] }],
      }),
    ],
    probes: [TCP80, TCP81, UDP80],
    expect: (_from, to, probe) => !is(to, "x", "a") || probe.protocol === "tcp",
  },
  {
    name: "should enforce multiple ingress policies with ingress allow-all policy taking precedence",
    policies: () => [
      policy("x", "allow-client-a-via-ns-selector-80", {
        podSelector: pod("a"),
        ingress: [{ ports: [{ port: 80 }] }],
      }),
      policy("x", "allow-all", { podSelector: pod("a"), ingress: [{}] }),
    ],
    probes: [TCP81],
    expect: () => true,
  },
  {
    name: "should enforce multiple egress policies with egress allow-all policy taking precedence",
    policies: () => [
      policy("x", "allow-egress-port-80", {
        podSelector: pod("a"),
        policyTypes: ["Egress"],
        egress: [{ ports: [{ port: 80 }] }],
      }),
      policy("x", "allow-egress-all", { podSelector: pod("a"), policyTypes: ["Egress"], egress: [{}] }),
    ],
    probes: [TCP81],
    expect: () => true,
  },
  {
    name: "should allow egress access to server in CIDR block",
    policies: (ip) => [allowServer(ip)],
    probes: [TCP80],
    expect: (from, to) => !is(from, "x", "a") || is(to, "y", "b"),
  },
  {
    name: "should enforce except clause while egress access to server in CIDR block",
    policies: (ip) => [exceptServer(ip)],
    probes: [TCP80],
    expect: (from, to) => !is(from, "x", "a") || !is(to, "y", "b"),
  },
  {
    name: "should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed",
    policies: (ip) => [exceptServer(ip), allowServer(ip)],
    probes: [TCP80],
    expect: () => true,
  },
  {
    name: "should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector",
    policies: () => [
      policy("x", "allow-egress-to-b", {
        podSelector: pod("a"),
        policyTypes: ["Egress"],
        egress: [{ to: [{ podSelector: pod("b") }] }],
      }),
      policy("x", "deny-ingress-to-b", { podSelector: pod("b"), policyTypes: ["Ingress"] }),
    ],
    probes: [TCP80],
    expect: (from, to) => !is(to, "x", "b") && (!is(from, "x", "a") || is(to, "x", "b")),
  },
  {
    name: "should not allow access by TCP when a policy specifies only UDP",
    policies: () => [
      policy("x", "allow-only-udp-ingress-on-port-81", {
        podSelector: pod("a"),
        ingress: [{ from: [{ namespaceSelector: {} }], ports: [{ port: 81, protocol: "UDP" }] }],
      }),
    ],
    probes: [TCP81, UDP81],
    expect: (_from, to, probe) => !is(to, "x", "a") || probe.protocol === "udp",
  },
  {
    name: "should enforce policy to allow ingress traffic from pods in all namespaces with endPort",
    policies: () => [
      policy("x", "allow-ingress-port-range", {
        podSelector: pod("a"),
        ingress: [
          { from: [{ namespaceSelector: ns("y") }], ports: [{ port: 80, endPort: 81, protocol: "TCP" }] },
        ],
      }),
    ],
    probes: [TCP80, TCP81, UDP80],
    expect: (from, to, probe) => !is(to, "x", "a") || (probe.protocol === "tcp" && is(from, "y")),
  },
];

/**
 * podnet's own cases on upstream's model, beside upstream's (not from its suite): shapes of the
 * iptables engine's chains that no upstream case makes, checked the same way on the simulator and
 * on the kernel.
 */
export const OWN_CASES: UpstreamCase[] = [
  {
    name: "a rule's single ports of one protocol are one multiport rule",
    policies: () => [
      policy("x", "allow-ingress-on-ports-80-81", {
        podSelector: pod("a"),
        ingress: [{ from: [{ namespaceSelector: ns("y") }], ports: [{ port: 80 }, { port: 81 }] }],
      }),
    ],
    probes: [TCP80, TCP81, UDP80],
    expect: (from, to, probe) => !is(to, "x", "a") || (probe.protocol === "tcp" && is(from, "y")),
  },
];
