import { describe, expect, it } from "vitest";
import { loadScenario, ScenarioError } from "../src/load.js";
import { loadManifests } from "../src/manifests.js";

const scenario = (extra: string) => `name: np
underlay:
  segments: [{ name: lan, subnet: 192.168.50.0/24 }]
nodes: [{ name: n1, segment: lan, address: 192.168.50.2 }]
pods:
  - { name: web, namespace: shop, node: n1, labels: { app: web } }
${extra}`;

const manifest = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: { team: shop }
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-all
  namespace: shop
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
`;

const errorsOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    if (error instanceof ScenarioError) return error.message.split("\n");
    throw error;
  }
  return [];
};

describe("Kubernetes objects in scenarios", () => {
  it("reads namespaces, policies and multi-document manifest files as written", () => {
    const s = loadScenario(scenario("manifests: [policies.yaml]\n"), "dir/s.yaml", {}, (path, from) => {
      expect([path, from]).toEqual(["policies.yaml", "dir/s.yaml"]);
      return { text: manifest, file: "dir/policies.yaml" };
    });
    expect(s.pods[0]!.namespace).toBe("shop");
    expect(s.namespaces).toEqual([{ name: "shop", labels: { team: "shop" } }]);
    expect(s.networkPolicies.map((p) => p.metadata.name)).toEqual(["deny-all"]);
  });

  it("lets events remove a manifest's policy and set one in a namespace only a manifest declares", () => {
    const quiet = `${manifest}---
apiVersion: v1
kind: Namespace
metadata: { name: quiet }
`;
    const events = `manifests: [policies.yaml]
events:
  - { at: 1, action: removeNetworkPolicy, networkPolicy: { name: deny-all, namespace: shop } }
  - at: 2
    action: setNetworkPolicy
    networkPolicy:
      apiVersion: networking.k8s.io/v1
      kind: NetworkPolicy
      metadata: { name: p, namespace: quiet }
      spec: { podSelector: {} }
  - { at: 3, action: removeNetworkPolicy, networkPolicy: { name: nope, namespace: shop } }
`;
    const read = () => ({ text: quiet, file: "policies.yaml" });
    expect(errorsOf(() => loadScenario(scenario(events), "s.yaml", {}, read))).toEqual([
      "s.yaml:17:66: events[2].networkPolicy.name: no NetworkPolicy shop/nope to remove at 3",
    ]);
    const fine = loadScenario(scenario(events.split("  - { at: 3")[0]!), "s.yaml", {}, read);
    expect(fine.networkPolicies.map((p) => p.metadata.name)).toEqual(["deny-all"]);
    // A manifest that cannot be read is said, not the events that name what it holds.
    expect(
      errorsOf(() =>
        loadScenario(scenario(events), "s.yaml", {}, () => {
          throw new Error("policies.yaml: no such file");
        }),
      ),
    ).toEqual(["s.yaml:7:13: manifests[0]: policies.yaml: no such file"]);
  });

  it("locates unknown fields, bad values and unsupported kinds in the manifest file", () => {
    const bad = `${manifest}---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: p2, namespace: shop }
spec:
  podSelector: {}
  ingress:
    - ports:
        - { protocol: SCTP, port: 80 }
      form: []
---
apiVersion: v1
kind: Pod
metadata: { name: x }
---
apiVersion: v1
metadata: { name: y }
`;
    expect(errorsOf(() => loadManifests(bad, "p.yaml"))).toEqual([
      "p.yaml:23:23: spec.ingress[0].ports[0].protocol: SCTP is not supported: no podnet backend carries SCTP (use TCP or UDP)",
      'p.yaml:24:13: spec.ingress[0]: unknown key "form"',
      'p.yaml:27:7: kind: "Pod" is not read by podnet (Namespace, NetworkPolicy, or a List of them)',
      "p.yaml:30:1: kind: missing: a manifest names its kind (Namespace, NetworkPolicy, or a List of them)",
    ]);
  });

  it("reads what kubectl leaves in an exported manifest, and takes namespace names as the API server does", () => {
    // Annotations hold any text (kubectl's last-applied-configuration is JSON); they were read as
    // label values and the manifest was refused.
    const exported = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: p
  namespace: shop
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: |
      {"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"p"}}
spec: { podSelector: {} }
---
apiVersion: v1
kind: Namespace
metadata: { name: a.b.c }
`;
    expect(errorsOf(() => loadManifests(exported, "p.yaml"))).toEqual([
      'p.yaml:13:19: metadata.name: "a.b.c" is not a namespace name (a DNS label: up to 63 lowercase letters, digits and "-")',
    ]);
    expect(loadManifests(exported.replace("a.b.c", "shop"), "p.yaml").policies).toHaveLength(1);
  });

  it("locates policy errors inside the scenario, and duplicates", () => {
    const policy = `networkPolicies:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: { name: p, namespace: shop }
    spec: { podSelector: { matchLabels: { app: web } }, egress: [{ ports: [{ port: 80, endPort: 70 }] }] }
`;
    expect(errorsOf(() => loadScenario(scenario(policy), "s.yaml"))).toEqual([
      "s.yaml:11:97: networkPolicies[0].spec.egress[0].ports[0].endPort: endPort 70 is below port 80",
    ]);
    const twice = scenario(`networkPolicies:
  - { apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: { name: p, namespace: shop }, spec: { podSelector: {} } }
  - { apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: { name: p, namespace: shop }, spec: { podSelector: {} } }
`);
    expect(errorsOf(() => loadScenario(twice, "s.yaml"))).toEqual([
      "s.yaml:9:80: networkPolicies[1].metadata.name: NetworkPolicy shop/p is defined twice",
    ]);
    expect(
      errorsOf(() =>
        loadScenario(scenario("manifests: [missing.yaml]\n"), "s.yaml", {}, () => {
          throw new Error("missing.yaml: cannot read the manifest file (ENOENT)");
        }),
      ),
    ).toEqual(["s.yaml:7:13: manifests[0]: missing.yaml: cannot read the manifest file (ENOENT)"]);
  });
});
