import { describe, expect, it } from "vitest";
import { loadScenario, ScenarioError } from "../src/load.js";
import { loadManifests } from "../src/manifests.js";
import { ClusterRuntime } from "../src/runtime.js";
import { getProvider } from "@podnet/providers";

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
      'p.yaml:24:7: spec.ingress[0]: unknown key "form"',
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
      "s.yaml:9:80: networkPolicies[1].metadata.name: NetworkPolicy shop/p is defined twice (the first at s.yaml:8:80)",
    ]);
    expect(
      errorsOf(() =>
        loadScenario(scenario("manifests: [missing.yaml]\n"), "s.yaml", {}, () => {
          throw new Error("missing.yaml: cannot read the manifest file (ENOENT)");
        }),
      ),
    ).toEqual(["s.yaml:7:13: manifests[0]: missing.yaml: cannot read the manifest file (ENOENT)"]);
  });
  /** Two Services as `kubectl get service -o yaml` prints them, in a List (as `kubectl get services -o yaml`). */
  const exported = `apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Service
    metadata:
      annotations:
        kubectl.kubernetes.io/last-applied-configuration: |
          {"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"shop"}}
      creationTimestamp: "2026-11-20T10:00:00Z"
      labels: { app: web }
      name: web
      namespace: shop
      resourceVersion: "12345"
      uid: 0b7c1f8e-3c4d-4e5f-8a9b-0c1d2e3f4a5b
    spec:
      clusterIP: 10.96.0.20
      clusterIPs: [10.96.0.20]
      internalTrafficPolicy: Cluster
      ipFamilies: [IPv4]
      ipFamilyPolicy: SingleStack
      ports:
        - { name: http, port: 80, protocol: TCP, targetPort: 8080, appProtocol: http }
      selector: { tier: back }
      sessionAffinity: None
      type: ClusterIP
    status: { loadBalancer: {} }
  - apiVersion: v1
    kind: Service
    metadata: { name: web-np, namespace: shop }
    spec:
      type: NodePort
      clusterIP: 10.96.0.21
      clusterIPs: [10.96.0.21]
      externalTrafficPolicy: Cluster
      ports: [{ port: 80, targetPort: 8080, nodePort: 30080, protocol: TCP }]
      selector: { tier: back }
      sessionAffinity: ClientIP
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } }
    status: { loadBalancer: {} }
`;
  const withServices = (extra = "") =>
    scenario(`  - { name: web2, namespace: shop, node: n1, labels: { app: web, tier: back }, containers: [{ name: c, ports: [{ containerPort: 8080 }] }] }
manifests: [services.yaml]
${extra}`);
  const reading = (text: string) => () => ({ text, file: "dir/services.yaml" });

  it("reads Services as kubectl prints them, and they carry traffic as the scenario's own do", async () => {
    const s = loadScenario(withServices(), "dir/s.yaml", {}, reading(exported));
    expect(s.services).toEqual([
      {
        name: "web",
        namespace: "shop",
        type: "ClusterIP",
        clusterIP: "10.96.0.20",
        selector: { tier: "back" },
        ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "tcp" }],
        internalTrafficPolicy: "Cluster",
        sessionAffinity: "None",
      },
      {
        name: "web-np",
        namespace: "shop",
        type: "NodePort",
        clusterIP: "10.96.0.21",
        selector: { tier: "back" },
        ports: [{ name: "", port: 80, targetPort: 8080, protocol: "tcp", nodePort: 30080 }],
        externalTrafficPolicy: "Cluster",
        sessionAffinity: "ClientIP",
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } },
      },
    ]);
    const rt = await ClusterRuntime.build(s, getProvider("cbr0-host-gw"));
    await rt.runEvents();
    expect(rt.services.get("shop/web")!.endpoints).toEqual(["10.0.0.3"]);
    expect(rt.summary("web", "svc/web:80", { protocol: "tcp" }).outcome).toBe("reached");
    expect(rt.summary("web", "n1:30080", { protocol: "tcp" }).outcome).toBe("reached");
  });

  it("locates a manifest Service's mistakes in its manifest, the scenario's check included", () => {
    const errors = (text: string, extra = "") =>
      errorsOf(() => loadScenario(withServices(extra), "dir/s.yaml", {}, reading(text)));
    // The check's own findings, at the manifest's line and path.
    expect(errors(exported.replaceAll("10.96.0.20", "10.43.0.20"))).toEqual([
      "dir/services.yaml:17:18: items[0].spec.clusterIP: 10.43.0.20 is outside the service CIDR 10.96.0.0/12",
    ]);
    expect(errors(exported.replace("clusterIPs: [10.96.0.20]", "clusterIPs: [10.96.0.30]"))).toEqual([
      'dir/services.yaml:18:20: items[0].spec.clusterIPs[0]: "10.96.0.30" differs from clusterIP 10.96.0.20: the API server keeps clusterIPs[0] equal to it',
    ]);
    expect(
      errors(
        exported,
        "services: [{ name: web, namespace: shop, selector: { app: web }, ports: [{ port: 81 }] }]\n",
      ),
    ).toEqual([
      'dir/services.yaml:12:13: items[0].metadata.name: service "web" is defined twice (the first at dir/s.yaml:9:20)',
    ]);
    expect(errors(exported.replace("nodePort: 30080", "nodePort: 3008"))).toEqual([
      "dir/services.yaml:36:55: items[1].spec.ports[0].nodePort: 3008 is not a nodePort (30000-32767)",
    ]);
    // What podnet does not model, said at the field that asks for it, in the file's order (zod finds
    // the selector's absence after the families).
    const refused = errors(
      exported
        .replace("ipFamilies: [IPv4]", "ipFamilies: [IPv4, IPv6]")
        .replace("selector: { tier: back }\n      sessionAffinity: None", "sessionAffinity: None")
        .replace("clusterIPs: [10.96.0.21]", "clusterIPs: [10.96.0.21, fd00::21]"),
    );
    expect(refused).toEqual([
      "dir/services.yaml:17:7: items[0].spec.selector: required: a Service without a selector takes the endpoints its owner writes (EndpointSlices), which podnet does not read",
      "dir/services.yaml:20:19: items[0].spec.ipFamilies: IPv6 is not modelled: podnet's clusters are IPv4 only (dual-stack comes later)",
      "dir/services.yaml:33:32: items[1].spec.clusterIPs[1]: IPv6 is not modelled: podnet's clusters are IPv4 only (dual-stack comes later)",
    ]);
    // A Service is read from a scenario's manifests, not by policy diff's --with.
    expect(errorsOf(() => loadManifests(exported, "p.yaml"))).toEqual([
      'p.yaml:5:11: items[0].kind: "Service" is read from a scenario\'s manifests, not here (Namespace, NetworkPolicy, or a List of them)',
      'p.yaml:29:11: items[1].kind: "Service" is read from a scenario\'s manifests, not here (Namespace, NetworkPolicy, or a List of them)',
    ]);
  });
  it("refuses what a hostile or careless manifest holds, each at its line, never with a stack trace", () => {
    const one = (spec: string, metadata = "{ name: api }") =>
      `apiVersion: v1\nkind: Service\nmetadata: ${metadata}\nspec:\n  selector: { tier: back }\n  ports: [{ port: 80 }]\n${spec}`;
    // [the manifest, what the scenario's load says of it]
    const cases: [string, string][] = [
      // clusterIPs alone: checked as clusterIP is, and a mistake said at clusterIPs[0].
      [
        one("  clusterIPs: [garbage]\n"),
        '7:16: spec.clusterIPs[0]: "garbage" is not an IPv4 address, or None (a headless Service)',
      ],
      [
        one("  clusterIPs: [fd00::10]\n"),
        "7:16: spec.clusterIPs[0]: IPv6 is not modelled: podnet's clusters are IPv4 only (dual-stack comes later)",
      ],
      [
        one("  clusterIPs: [10.200.0.10]\n"),
        "7:16: spec.clusterIPs[0]: 10.200.0.10 is outside the service CIDR 10.96.0.0/12",
      ],
      // A Service's name as the scenario's (and the API server's) rule has it.
      [
        one("", "{ name: my.svc }"),
        '3:19: metadata.name: "my.svc" is not a valid Service name (a DNS-1035 label: lowercase letters, digits and "-", starting with a letter, at most 63)',
      ],
      // The API server's own Service, in every `kubectl get services -o yaml` of default.
      [
        "apiVersion: v1\nkind: Service\nmetadata: { name: kubernetes, namespace: default }\nspec: { clusterIP: 10.96.0.1, ports: [{ name: https, port: 443, targetPort: 6443 }] }\n",
        "4:7: spec.selector: required: a Service without a selector takes the endpoints its owner writes (EndpointSlices), which podnet does not read; this is the API server's own Service: leave it out of the file",
      ],
      // A policy in a namespace nothing declares, as the scenario's own is refused.
      [
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: a, namespace: ghost }\nspec: { podSelector: {} }\n",
        '3:33: metadata.namespace: namespace "ghost" does not exist: no pod runs in it and namespaces: does not declare it (kubectl apply says namespaces "ghost" not found)',
      ],
      // Shapes that are not manifests at all.
      [
        "- apiVersion: v1\n  kind: Service\n",
        "1:1: a manifest is a mapping (apiVersion:, kind:, metadata:, …), not a list",
      ],
      [
        "apiVersion: v1\nkind: List\nitems: [3]\n",
        "3:9: items[0]: a manifest is a mapping (apiVersion:, kind:, metadata:, …), not a number",
      ],
      [
        "name: np\nnodes: []\n",
        "1:1: kind: missing: this is a podnet scenario, not a Kubernetes manifest (give it as the scenario)",
      ],
      // (No line: the file as a whole.)
      ["# nothing here\n---\n", " holds no objects (kubectl apply: no objects passed to apply)"],
      // A type podnet does not model is said once, without what that type's fields would need.
      [
        one("  type: ExternalName\n  externalName: db.example.com\n").replace(
          "  ports: [{ port: 80 }]\n",
          "",
        ),
        "6:9: spec.type: ExternalName is not modelled (ClusterIP or NodePort): a LoadBalancer needs a cloud's load balancer, an ExternalName only a DNS answer",
      ],
    ];
    for (const [text, said] of cases)
      expect(errorsOf(() => loadScenario(withServices(), "dir/s.yaml", {}, reading(text)))).toEqual([
        `dir/services.yaml:${said}`,
      ]);
  });

  it("takes the bookkeeping kubectl and controllers leave, and reads each file once, within the envelope", () => {
    const kept = exported
      .replace(
        "      uid: 0b7c1f8e-3c4d-4e5f-8a9b-0c1d2e3f4a5b\n",
        `      uid: 0b7c1f8e-3c4d-4e5f-8a9b-0c1d2e3f4a5b
      finalizers: [service.kubernetes.io/load-balancer-cleanup]
      generateName: web-
      ownerReferences: [{ apiVersion: apps/v1, kind: Deployment, name: web, uid: x }]
      managedFields: [{ manager: kubectl, operation: Update }]
      selfLink: /api/v1/namespaces/shop/services/web
`,
      )
      .replace(
        "      sessionAffinity: None\n",
        "      sessionAffinity: None\n      trafficDistribution: PreferClose\n",
      );
    expect(loadScenario(withServices(), "s.yaml", {}, reading(kept)).services.map((x) => x.name)).toEqual([
      "web",
      "web-np",
    ]);
    // The same file twice (the reader knows it is one) is said as such, not as Services defined twice.
    const twice = withServices().replace(
      "manifests: [services.yaml]",
      "manifests: [services.yaml, ./services.yaml]",
    );
    expect(
      errorsOf(() =>
        loadScenario(twice, "s.yaml", {}, () => ({ text: exported, file: "services.yaml", id: "inode-1" })),
      ),
    ).toEqual(["s.yaml:8:28: manifests[1]: services.yaml is manifests[0] again: each file is read once"]);
    // Past 10,000 Services the file that passes the envelope is named, before anything is built.
    const many = `apiVersion: v1\nkind: List\nitems:\n${Array.from({ length: 10_000 }, (_, i) => `  - { apiVersion: v1, kind: Service, metadata: { name: s${i} }, spec: { selector: { a: b }, ports: [{ port: 80 }] } }`).join("\n")}\n`;
    const own = "services: [{ name: own, namespace: shop, selector: { app: web }, ports: [{ port: 81 }] }]\n";
    expect(
      errorsOf(() =>
        loadScenario(withServices(own), "s.yaml", {}, () => ({ text: many, file: "many.yaml" })),
      ),
    ).toEqual([
      "s.yaml:8:13: manifests[0]: many.yaml holds 10,000 Services: with the scenario's own and those of the files before it, 10,001 Services is beyond Kubernetes' envelope of 10,000 Services, which podnet supports",
    ]);
  });
});
