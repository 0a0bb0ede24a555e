import { parseIpv4 } from "@podnet/core";
import { describe, expect, it } from "vitest";
import { compilePolicies, type PolicyPod } from "./compile.js";
import { NetworkPolicySchema, type NetworkPolicyInput } from "./schema.js";
import { connectionVerdict, explainVerdict } from "./verdict.js";

const pods: PolicyPod[] = [
  {
    name: "web",
    namespace: "shop",
    labels: { app: "web" },
    ip: parseIpv4("10.0.1.2"),
    ports: [{ name: "http", port: 8080, protocol: "tcp" }],
  },
  {
    name: "db",
    namespace: "shop",
    labels: { app: "db" },
    ip: parseIpv4("10.0.1.3"),
    ports: [{ name: "pg", port: 5432, protocol: "tcp" }],
  },
  { name: "probe", namespace: "ops", labels: { app: "probe" }, ip: parseIpv4("10.0.2.2"), ports: [] },
];
const np = (name: string, spec: NetworkPolicyInput["spec"]) =>
  NetworkPolicySchema.parse({
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name, namespace: "shop" },
    spec,
  });

describe("verdicts explain themselves", () => {
  const compiled = compilePolicies({
    pods,
    namespaces: [{ name: "ops", labels: { team: "ops" } }],
    policies: [
      np("db-from-web", {
        podSelector: { matchLabels: { app: "db" } },
        ingress: [{ from: [{ podSelector: { matchLabels: { app: "web" } } }], ports: [{ port: "pg" }] }],
      }),
      np("web-egress", {
        podSelector: { matchLabels: { app: "web" } },
        policyTypes: ["Egress"],
        egress: [{ to: [{ ipBlock: { cidr: "10.0.0.0/16", except: ["10.0.2.0/24"] } }] }],
      }),
    ],
  });

  it("names the policy and rule that allowed a connection, through a named port", () => {
    const v = connectionVerdict(compiled, { pod: 0 }, { pod: 1 }, "tcp", 5432);
    expect(v.allowed).toBe(true);
    expect(explainVerdict(v)).toEqual([
      "egress from shop/web: allowed by shop/web-egress egress[0]",
      "ingress to shop/db: allowed by shop/db-from-web ingress[0] ports[0]",
    ]);
  });

  it("names the policies that isolate a pod when none allows, and whether policyTypes were defaulted", () => {
    const v = connectionVerdict(compiled, { pod: 2 }, { pod: 1 }, "tcp", 5432);
    expect(v.allowed).toBe(false);
    expect(explainVerdict(v)).toEqual([
      "egress from ops/probe: allowed, no policy selects ops/probe for egress",
      "ingress to shop/db: denied by default: selected by shop/db-from-web (policyTypes defaulted include Ingress), and no rule of them allows it",
    ]);
  });

  it("defaults an empty policyTypes as the API server does: Ingress, and Egress with egress rules", () => {
    const empty = (spec: Partial<NetworkPolicyInput["spec"]>) =>
      compilePolicies({
        pods,
        namespaces: [{ name: "ops", labels: { team: "ops" } }],
        policies: [np("empty", { podSelector: {}, policyTypes: [], ...spec })],
      });
    const isolated = empty({});
    expect(connectionVerdict(isolated, { pod: 0 }, { pod: 1 }, "tcp", 5432).allowed).toBe(false);
    expect(explainVerdict(connectionVerdict(isolated, { pod: 0 }, { pod: 1 }, "tcp", 5432))).toEqual([
      "egress from shop/web: allowed, no policy selects shop/web for egress",
      "ingress to shop/db: denied by default: selected by shop/empty (policyTypes defaulted include Ingress), and no rule of them allows it",
    ]);
    const egress = empty({ egress: [{ to: [{ podSelector: { matchLabels: { app: "db" } } }] }] });
    expect(connectionVerdict(egress, { pod: 0 }, { pod: 2 }, "tcp", 80).allowed).toBe(false);
  });

  it("applies ipBlock excepts to pod addresses and to outside addresses", () => {
    expect(connectionVerdict(compiled, { pod: 0 }, { pod: 2 }, "tcp", 80).allowed).toBe(false);
    expect(connectionVerdict(compiled, { pod: 0 }, { ip: parseIpv4("10.0.9.9") }, "tcp", 80).allowed).toBe(
      true,
    );
    expect(connectionVerdict(compiled, { pod: 0 }, { ip: parseIpv4("8.8.8.8") }, "tcp", 80).allowed).toBe(
      false,
    );
  });
});

describe("the NetworkPolicy schema", () => {
  const errors = (spec: unknown) => {
    const r = NetworkPolicySchema.safeParse({
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: "p" },
      spec,
    });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };
  it("takes what the API server takes: no podSelector, nulls for absent fields, a CIDR with host bits", () => {
    const spec = (s: unknown) =>
      NetworkPolicySchema.parse({
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name: "p" },
        spec: s,
      }).spec;
    expect(spec({ ingress: [{ from: null, ports: null }] })).toEqual({ podSelector: {}, ingress: [{}] });
    expect(spec({ ingress: [{ ports: [{ protocol: null, port: null, endPort: null }] }] })).toEqual({
      podSelector: {},
      ingress: [{ ports: [{ protocol: "TCP" }] }],
    });
    expect(
      spec({ podSelector: null, egress: [{ to: [{ namespaceSelector: null, podSelector: {} }] }] }),
    ).toEqual({
      podSelector: {},
      egress: [{ to: [{ podSelector: {} }] }],
    });
    expect(
      spec({ egress: [{ to: [{ ipBlock: { cidr: "10.0.2.7/24", except: ["10.0.2.128/25"] } }] }] }).egress,
    ).toEqual([{ to: [{ ipBlock: { cidr: "10.0.2.0/24", except: ["10.0.2.128/25"] } }] }]);
  });

  it("refuses SCTP in words, endPort without a numeric port, excepts outside the CIDR and unknown fields", () => {
    expect(errors({ podSelector: {}, ingress: [{ ports: [{ protocol: "SCTP", port: 80 }] }] })).toEqual([
      "spec.ingress.0.ports.0.protocol: SCTP is not supported: no podnet backend carries SCTP (use TCP or UDP)",
    ]);
    expect(errors({ podSelector: {}, ingress: [{ ports: [{ port: "http", endPort: 90 }] }] })).toEqual([
      "spec.ingress.0.ports.0.endPort: endPort needs a numeric port",
    ]);
    expect(errors({ podSelector: {}, ingress: [{ ports: [{ port: true }] }] })).toEqual([
      "spec.ingress.0.ports.0.port: true is not a port (1-65535) or a port's name",
    ]);
    expect(
      errors({
        podSelector: {},
        egress: [{ to: [{ ipBlock: { cidr: "10.0.0.0/16", except: ["10.1.0.0/24"] } }] }],
      }),
    ).toEqual(["spec.egress.0.to.0.ipBlock.except.0: 10.1.0.0/24 must be strictly within 10.0.0.0/16"]);
    // A bad CIDR is its field's error, not an exception from the except check (it was one).
    const bad = (cidr: string, except?: string[]) =>
      errors({ podSelector: {}, egress: [{ to: [{ ipBlock: { cidr, ...(except ? { except } : {}) } }] }] });
    expect(bad("999.0.0.0/8")).toEqual([
      expect.stringMatching(
        /^spec\.egress\.0\.to\.0\.ipBlock\.cidr: "999\.0\.0\.0\/8" is not an IPv4 CIDR \(.+\)$/,
      ),
    ]);
    // Host bits set are the API server's warning, not a refusal: the network is meant.
    expect(bad("10.0.0.1/8", ["10.1.0.0/16"])).toEqual([]);
    expect(bad("10.0.0.0/8", ["banana", "10.1.0.0/16"])).toEqual([
      expect.stringMatching(/^spec\.egress\.0\.to\.0\.ipBlock\.except\.0: "banana" is not an IPv4 CIDR/),
    ]);
    expect(errors({ podSelector: {}, ingres: [] })[0]).toMatch(/Unrecognized key.*ingres/);
    expect(errors({ podSelector: { matchExpressions: [{ key: "a", operator: "In" }] } })).toEqual([
      "spec.podSelector.matchExpressions.0.values: operator In needs at least one value",
    ]);
  });
});
