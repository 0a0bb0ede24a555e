// The runtime's verdicts and life cycle on the simulator: what a probe is called, when a Service was
// really reached, and a node that leaves and comes back with its pods.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { policyEngine } from "@podnet/policy";
import { getProvider } from "@podnet/providers";
import { describe, expect, it } from "vitest";
import {
  ClusterRuntime,
  MATRIX_SAMPLES,
  ScenarioError,
  ScenarioSchema,
  TargetError,
  controlPlaneMetrics,
  loadScenario,
  pathMetrics,
  reachability,
  requestTranslated,
  runScenario,
  withProxy,
} from "../src/index.js";

/** A scenario's YAML after its name: two nodes on one segment, routed out by a gateway. */
const TWO_NODES_ROUTED = `cluster: { serviceCidr: 10.96.0.0/16 }
underlay:
  segments: [{ name: lan, subnet: 10.100.0.0/24, gateway: 10.100.0.1 }]
  routers: [{ name: gw, interfaces: [{ segment: lan, address: 10.100.0.1 }] }]
nodes:
  - { name: node1, segment: lan, address: 10.100.0.2 }
  - { name: node2, segment: lan, address: 10.100.0.3 }
`;

const bundled = (name: string) => {
  const file = join(__dirname, "..", "..", "..", "scenarios", `${name}.yaml`);
  return loadScenario(readFileSync(file, "utf8"), file);
};

describe("the runtime", () => {
  it("frees a removed Service's ClusterIP, and refuses addresses and subnets already handed out", async () => {
    const scenario = loadScenario(
      `name: churn-ips
cluster: { clusterCidr: 10.0.0.0/16, nodeMaskSize: 24, serviceCidr: 10.96.0.0/29 }
underlay: { segments: [{ name: lan, subnet: 10.100.0.0/24 }] }
nodes: [{ name: node1, segment: lan, address: 10.100.0.2 }]
services: [{ name: web, selector: { app: web }, ports: [{ port: 80 }] }]
`,
      "churn-ips.yaml",
    );
    const runtime = await ClusterRuntime.build(scenario, getProvider("cbr0-host-gw"));
    const web = runtime.services.get("default/web")!.clusterIP;
    // A /29 holds five ClusterIPs: set and removed in turn, ten Services never run out.
    const service = (name: string, clusterIP?: string) => ({
      name,
      namespace: "default",
      type: "ClusterIP" as const,
      selector: { app: name },
      ports: [{ name: "", port: 80, protocol: "tcp" as const }],
      ...(clusterIP ? { clusterIP } : {}),
    });
    for (let i = 0; i < 10; i++) {
      await runtime.setService(service(`s${i}`));
      await runtime.removeService(`s${i}`);
    }
    for (let i = 0; i < 4; i++) await runtime.setService(service(`t${i}`));
    await expect(runtime.setService(service("t4"))).rejects.toThrow(
      new TargetError("service t4: no ClusterIP left in 10.96.0.0/29 (8 of 8 in use)"),
    );
    await expect(runtime.setService(service("other", web))).rejects.toThrow(
      new TargetError(`service other: clusterIP ${web} is already service web's`),
    );
    await expect(runtime.setService(service("outside", "10.97.0.1"))).rejects.toThrow(TargetError);
    await expect(
      runtime.addNode({ name: "node3", segment: "lan", address: "10.100.0.4", podCidr: "10.0.0.0/24" }),
    ).rejects.toThrow(new TargetError("node node3: podCidr 10.0.0.0/24 is already node node1's"));
    expect(runtime.nodes.has("node3")).toBe(false);
  });

  it("selects a Service's endpoints in its own namespace, and none for an empty selector", async () => {
    const runtime = await ClusterRuntime.build(bundled("two-nodes"), getProvider("overlay"));
    const set = async (namespace: string, selector: Record<string, string>) => {
      await runtime.setService({
        name: "probe",
        namespace,
        type: "ClusterIP",
        selector,
        ports: [{ name: "", port: 80, protocol: "tcp" }],
      });
      return runtime.services.get(`${namespace}/probe`)!.endpoints;
    };
    expect(await set("default", { app: "db" })).toEqual([runtime.pods.get("db")!.ip]);
    expect(await set("other", { app: "db" })).toEqual([]);
    expect(await set("default", {})).toEqual([]);
  });

  it("keeps Services of one name in two namespaces apart: svc/<name>.<namespace>, and removal by namespace", async () => {
    const text = (traffic: string, events = "") => `name: twins
${TWO_NODES_ROUTED}pods:
  - { name: client, node: node1 }
  - { name: shop-web, namespace: shop, node: node1, labels: { app: web }, containers: [{ name: c, ports: [{ containerPort: 80 }] }] }
  - { name: prod-web, namespace: prod, node: node2, labels: { app: web }, containers: [{ name: c, ports: [{ containerPort: 80 }] }] }
services:
  - { name: web, namespace: shop, selector: { app: web }, ports: [{ port: 80 }] }
  - { name: web, namespace: prod, selector: { app: web }, ports: [{ port: 80 }] }
  - { name: api, namespace: prod, selector: { app: web }, ports: [{ port: 80 }] }
traffic:
${traffic}${events}`;
    const errors = (t: string, events?: string) => {
      try {
        loadScenario(text(t, events), "twins.yaml");
        return [];
      } catch (error) {
        return (error as Error).message.split("\n");
      }
    };
    expect(errors("  - { from: client, to: svc/web, protocol: tcp }\n")).toEqual([
      'twins.yaml:18:25: traffic[0].to: service "web" is in namespaces shop, prod: name one as web.shop or web.prod',
    ]);
    expect(errors("  - { from: client, to: svc/web.dev, protocol: tcp }\n")).toEqual([
      'twins.yaml:18:25: traffic[0].to: unknown service "web.dev": web is in namespaces shop, prod, not dev',
    ]);
    expect(errors("  - { from: client, to: svc/web., protocol: tcp }\n")).toEqual([
      'twins.yaml:18:25: traffic[0].to: "web.": no namespace after the "." (svc/<name>.<namespace>)',
    ]);
    expect(
      errors(
        "  - { from: client, to: svc/api, protocol: tcp }\n",
        "events:\n  - { at: 1, action: removeService, service: web }\n",
      ),
    ).toEqual([
      'twins.yaml:20:46: events[0].service: service "web" is in namespaces shop and prod at 1: say which to remove with namespace: shop or namespace: prod',
    ]);

    const scenario = loadScenario(
      text(
        "  - { from: client, to: svc/web.shop, protocol: tcp }\n  - { from: client, to: svc/web.prod, protocol: tcp }\n  - { from: client, to: svc/api, protocol: tcp }\n",
      ),
      "twins.yaml",
    );
    const runtime = await ClusterRuntime.build(scenario, getProvider("cbr0-host-gw"));
    expect([...runtime.services.keys()]).toEqual(["shop/web", "prod/web", "prod/api"]);
    // Each Service selects the pods of its own namespace only, and each is traced to them.
    const shop = runtime.services.get("shop/web")!;
    const prod = runtime.services.get("prod/web")!;
    expect([shop.endpoints, prod.endpoints]).toEqual([
      [runtime.pods.get("shop-web")!.ip],
      [runtime.pods.get("prod-web")!.ip],
    ]);
    expect(shop.clusterIP).not.toBe(prod.clusterIP);
    for (const [to, pod] of [
      ["svc/web.shop", "shop-web"],
      ["svc/web.prod", "prod-web"],
      ["svc/api", "prod-web"],
    ] as const) {
      const trace = runtime.trace("client", to, { protocol: "tcp" });
      expect([to, trace.outcome, trace.deliveredTo?.ns]).toEqual([to, "reached", runtime.ns(pod)]);
    }
    expect(() => runtime.trace("client", "svc/web", { protocol: "tcp" })).toThrow(
      'service "web" is in namespaces shop, prod: name one as web.shop or web.prod',
    );
    // The matrix names the twins so that each cell can be traced again as written.
    const cells = reachability(runtime).filter((c) => c.kind === "pod→service" && c.from === "client");
    expect(cells.map((c) => `${c.to} ${c.outcome}`)).toEqual([
      "svc/web.shop:80 reached",
      "svc/web.prod:80 reached",
      "svc/api:80 reached",
    ]);
    // run's report names each pod's and Service's namespace.
    const { result } = await runScenario(scenario, getProvider("cbr0-host-gw"));
    expect(result.pods.map((p) => `${p.namespace}/${p.name}`)).toEqual([
      "default/client",
      "shop/shop-web",
      "prod/prod-web",
    ]);
    expect(result.services.map((x) => `${x.namespace}/${x.name}`)).toEqual([
      "shop/web",
      "prod/web",
      "prod/api",
    ]);
    // Removed by namespace, the other is left, and the bare name is enough again.
    await runtime.removeService("web", "shop");
    expect([...runtime.services.keys()]).toEqual(["prod/web", "prod/api"]);
    expect(runtime.trace("client", "svc/web", { protocol: "tcp" }).deliveredTo?.ns).toBe(
      runtime.ns("prod-web"),
    );
    await expect(runtime.removeService("web", "shop")).rejects.toThrow('unknown service "web.shop"');
  });

  it("counts what a pod's coming and going makes kube-proxy write, and leaves a policy's chains to its line", async () => {
    const scenario = loadScenario(
      `name: churn
${TWO_NODES_ROUTED}pods:
  - { name: client, node: node1 }
  - { name: web1, node: node1, labels: { app: web } }
services:
  - { name: web, selector: { app: web }, ports: [{ port: 80 }] }
events:
  - { at: 1, action: addPod, pod: { name: web2, node: node2, labels: { app: web } } }
  - { at: 2, action: addPod, pod: { name: other, node: node2 } }
  - { at: 3, action: removePod, pod: web1 }
  - { at: 4, action: setNetworkPolicy, networkPolicy: { apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: { name: deny }, spec: { podSelector: {} } } }
`,
      "churn.yaml",
    );
    const runtime = await ClusterRuntime.build(scenario, getProvider("cbr0-host-gw"), {
      policy: policyEngine("iptables"),
    });
    const reports = await runtime.runEvents();
    // web2 joins web's endpoints and web1 leaves them: each node's KUBE-SVC chain and an endpoint's
    // KUBE-SEP chain change; a pod no Service selects changes nothing of kube-proxy's.
    const counts = reports.map((r) => r.report && [r.report.added, r.report.removed]);
    expect(counts[0]![0]).toBeGreaterThan(0);
    expect(counts[1]).toBeUndefined();
    expect(counts[2]![1]).toBeGreaterThan(0);
    expect(Object.keys(reports[0]!.report!.nodes).sort()).toEqual(["node1", "node2"]);
    expect(reports[3]!.policy!.written).toBeGreaterThan(0);
    const { events } = await controlPlaneMetrics(runtime);
    expect(events.map((e) => e.counted)).toEqual([true, true, true, false]);
    expect(events[0]!.added).toBe(reports[0]!.report!.added);
  });

  it("counts a ping over the pod MTU as the fragments that cross the wires", async () => {
    const scenario = loadScenario(
      `name: small-mtu
${TWO_NODES_ROUTED.replace("gateway: 10.100.0.1 }", "gateway: 10.100.0.1, mtu: 1400 }")}pods:
  - { name: a, node: node1 }
  - { name: b, node: node2 }
`,
      "mtu.yaml",
    );
    const runtime = await ClusterRuntime.build(scenario, getProvider("overlay"));
    const path = (await pathMetrics(runtime))!;
    expect(path.podMtu).toBe(1350);
    const [small, , large] = path.wire;
    expect([small!.podFrames, small!.underlayFrames]).toEqual([1, 1]);
    // 1400 bytes of payload are a 1428-byte packet: two fragments from the pod, each wrapped in VXLAN
    // (50 bytes more), no frame over the link's MTU and its Ethernet header.
    expect([large!.podFrames, large!.underlayFrames]).toEqual([2, 2]);
    expect(large!.podFrame).toBe(1428 + 20 + 2 * 14);
    expect(large!.underlayFrame).toBe(large!.podFrame + 2 * 50);
  });

  it("notes a named targetPort that none of the Service's pods has", async () => {
    const text = (targetPort: string) => `name: named-port
${TWO_NODES_ROUTED}pods:
  - { name: web, node: node1, labels: { app: web }, containers: [{ name: c, ports: [{ name: http, containerPort: 8080 }] }] }
services:
  - { name: web, selector: { app: web }, ports: [{ port: 80, targetPort: ${targetPort} }] }
`;
    const notes = async (targetPort: string) =>
      (await runScenario(loadScenario(text(targetPort), "n.yaml"), getProvider("overlay"))).result.notes ??
      [];
    expect(await notes("http")).toEqual([]);
    expect(await notes("htp")).toEqual([
      'svc/web port 80/TCP names targetPort "htp", which its one selected pod does not have (a container port of that name and protocol): the port has no endpoints',
    ]);
  });

  it("takes a Service's port by its name, svc/<name>:<port name>, with that port's protocol", async () => {
    const text = (to: string, extra = "") => `name: dns
${TWO_NODES_ROUTED}pods:
  - { name: client, node: node1 }
  - name: coredns
    node: node2
    labels: { app: dns }
    containers: [{ name: c, ports: [{ containerPort: 53, protocol: UDP }, { containerPort: 53, protocol: TCP }] }]
services:
  - name: kube-dns
    selector: { app: dns }
    ports: [{ name: dns, port: 53, protocol: UDP }, { name: dns-tcp, port: 53, protocol: TCP }]
traffic:
  - { from: client, to: ${to}${extra} }
`;
    const errors = (to: string, extra?: string) => {
      try {
        loadScenario(text(to, extra), "dns.yaml");
        return [];
      } catch (error) {
        return (error as Error).message.split("\n").map((l) => l.replace(/^dns\.yaml:\d+:\d+: /, ""));
      }
    };
    expect(errors("svc/kube-dns:dns-tcp, protocol: tcp")).toEqual([]);
    expect(errors("svc/kube-dns:dsn, protocol: udp")).toEqual([
      'traffic[0].to: svc/kube-dns has no port named "dsn" (its ports: dns, dns-tcp)',
    ]);
    expect(errors("svc/kube-dns:dns")).toEqual([
      "traffic[0].to: ICMP has no ports: add protocol: tcp or udp, or name no port",
    ]);
    expect(errors("svc/kube-dns:dns, protocol: udp", ", port: 53")).toEqual([
      'traffic[0].port: port 53 and the port "dns" in "svc/kube-dns:dns": name one',
    ]);
    // Only a Service's ports have names here: a pod's target takes a number.
    expect(errors("coredns:dns, protocol: udp")).toEqual([
      'traffic[0].to: "dns" in "coredns:dns" is not a port (1-65535)',
    ]);
    const runtime = await ClusterRuntime.build(
      loadScenario(text("svc/kube-dns:dns, protocol: udp"), "dns.yaml"),
      getProvider("overlay"),
    );
    const l4 = (to: string) => runtime.trace("client", to).hops[0]!.packet.headers.at(-1)!.kind;
    expect([l4("svc/kube-dns:dns"), l4("svc/kube-dns:dns-tcp")]).toEqual(["udp", "tcp"]);
    expect(runtime.trace("client", "svc/kube-dns:dns-tcp").outcome).toBe("reached");
    expect(() => runtime.trace("client", "svc/kube-dns:dsn")).toThrow('svc/kube-dns has no port named "dsn"');
  });

  it("names each scenario probe by the path it takes", async () => {
    const single = (await runScenario(bundled("single-pod"), getProvider("overlay"))).result;
    expect(single.probes.map((p) => `${p.from} → ${p.to}: ${p.kind}`)).toEqual([
      "web/sidecar → 127.0.0.1:80: pod→itself (localhost)",
    ]);
    const two = (await runScenario(bundled("two-nodes"), getProvider("cbr0-host-gw"))).result;
    expect(two.probes.map((p) => `${p.to}: ${p.kind}`)).toEqual([
      "db: pod→pod (across nodes)",
      "db:80: pod→pod (across nodes)",
      "node2:8080: pod→node",
      "outside: pod→outside",
    ]);
  });

  it("counts a Service as reached only when one of its endpoints answered", async () => {
    // docker-bridge: web's 172.17.0.3 on node2 is other's address on node1, so the DNAT-ed
    // connection is bridged to other, which refuses it: not the Service. (One endpoint, so no
    // random choice decides it.)
    const scenario = loadScenario(
      `name: wrong-pod
${TWO_NODES_ROUTED}pods:
  - { name: client, node: node1 }
  - { name: other, node: node1 }
  - { name: filler, node: node2 }
  - { name: web, node: node2, labels: { app: web }, containers: [{ name: web, ports: [{ containerPort: 8080 }] }] }
services:
  - { name: web, clusterIP: 10.96.0.10, selector: { app: web }, ports: [{ name: http, port: 80, targetPort: 8080 }] }
traffic:
  - { from: client, to: svc/web, protocol: tcp }
`,
      "wrong-pod.yaml",
    );
    const { result } = await runScenario(scenario, getProvider("docker-bridge"));
    const web = result.probes.find((p) => p.to === "svc/web")!;
    expect(web).toMatchObject({ kind: "pod→service", outcome: "wrong-destination", reached: false });
    expect(web.reason).toMatch(/^reached other, which is not an endpoint of svc\/web \(endpoints: web\)/);
    const ok = (await runScenario(scenario, getProvider("overlay"))).result;
    expect(ok.probes.find((p) => p.to === "svc/web")).toMatchObject({ outcome: "reached", reached: true });
  });

  it("resolves a named targetPort pod by pod, as the EndpointSlice controller does", async () => {
    // "http" is 8080 on web1 and 9090 on web2; web3 has no "http" over TCP (its "http" is UDP), so it
    // is no endpoint of port 80, but is the one endpoint of port 81 ("metrics").
    const scenario = loadScenario(
      `name: named-target
${TWO_NODES_ROUTED}pods:
  - { name: client, node: node1 }
  - { name: web1, node: node1, labels: { app: web }, containers: [{ name: a, ports: [{ name: http, containerPort: 8080 }] }] }
  - { name: web2, node: node2, labels: { app: web }, containers: [{ name: a, ports: [{ name: http, containerPort: 9090 }] }] }
  - { name: web3, node: node2, labels: { app: web }, containers: [{ name: a, ports: [{ name: http, containerPort: 53, protocol: udp }, { name: metrics, containerPort: 7070 }] }] }
services:
  - name: web
    clusterIP: 10.96.0.10
    selector: { app: web }
    ports: [{ name: http, port: 80, targetPort: http }, { name: metrics, port: 81, targetPort: metrics }]
traffic:
  - { from: client, to: "svc/web:80", protocol: tcp }
  - { from: client, to: "svc/web:81", protocol: tcp }
events:
  - { at: 1, action: removePod, pod: web1 }
`,
      "named-target.yaml",
    );
    for (const proxy of ["iptables", "nftables"] as const) {
      const runtime = await ClusterRuntime.build(withProxy(scenario, proxy), getProvider("cbr0-host-gw"));
      const at = (port: number) =>
        runtime.serviceOf("svc/web", port, "tcp")!.endpoints.map((e) => `${e.pod}:${e.port}`);
      expect(at(80)).toEqual(["web1:8080", "web2:9090"]);
      expect(at(81)).toEqual(["web3:7070"]);
      const owners = new Set<string>();
      for (let i = 0; i < 60; i++) {
        const probe = runtime.summary("client", "svc/web:80", { protocol: "tcp" });
        expect(probe.outcome).toBe("reached");
        owners.add(`${probe.deliveredTo!.owner}:${probe.deliveredTo!.port}`);
      }
      expect([...owners].sort()).toEqual(["web1/a:8080", "web2/a:9090"]);
      expect(runtime.summary("client", "svc/web:81", { protocol: "tcp" }).deliveredTo?.owner).toBe("web3/a");
      await runtime.runEvents();
      expect(at(80)).toEqual(["web2:9090"]);
      const { result } = await runScenario(withProxy(scenario, proxy), getProvider("cbr0-host-gw"));
      expect(result.probes.map((p) => [p.to, p.outcome])).toEqual([
        ["svc/web:80", "reached"],
        ["svc/web:81", "reached"],
      ]);
    }
  });

  it("fails a refused probe, over TCP and UDP alike, whoever refused it", async () => {
    // b listens on 5432/tcp and 53/udp only: the other ports refuse (a RST, a port unreachable), and
    // a Service without endpoints is refused by kube-proxy's REJECT. None of these took a connection.
    const scenario = loadScenario(
      `name: refused
cluster: { serviceCidr: 10.96.0.0/16 }
underlay:
  segments: [{ name: lan, subnet: 10.100.0.0/24, gateway: 10.100.0.1 }]
  routers: [{ name: gw, interfaces: [{ segment: lan, address: 10.100.0.1 }] }]
nodes: [{ name: node1, segment: lan, address: 10.100.0.2 }]
pods:
  - { name: a, node: node1 }
  - { name: b, node: node1, labels: { app: b }, containers: [{ name: b, ports: [{ containerPort: 5432 }, { containerPort: 53, protocol: udp }] }] }
services:
  - { name: none, clusterIP: 10.96.0.20, selector: { app: nobody }, ports: [{ name: p, port: 80 }] }
traffic:
  - { from: a, to: "b:5432", protocol: tcp }
  - { from: a, to: "b:53", protocol: udp }
  - { from: a, to: "b:5433", protocol: tcp }
  - { from: a, to: "b:54", protocol: udp }
  - { from: a, to: svc/none, protocol: tcp }
`,
      "refused.yaml",
    );
    const { result } = await runScenario(scenario, getProvider("cbr0-host-gw"));
    expect(result.probes.map((p) => [p.to, p.protocol, p.outcome, p.reached])).toEqual([
      ["b:5432", "tcp", "reached", true],
      ["b:53", "udp", "reached", true],
      ["b:5433", "tcp", "refused", false],
      ["b:54", "udp", "refused", false],
      ["svc/none", "tcp", "refused", false],
    ]);
    expect(result.reachability.find((c) => c.to === "svc/none:80")).toMatchObject({
      outcome: "refused",
      reached: false,
    });
  });

  it("fails a Service probe that one endpoint refuses some of the time, and says how often", async () => {
    // web listens on the targetPort, web2 does not: kube-proxy sends about half the connections to
    // web2. One draw would pass or fail by chance; 8 per endpoint meet both but once in ~3,000.
    const scenario = (web2Port: number) =>
      loadScenario(
        `name: half
${TWO_NODES_ROUTED}pods:
  - { name: client, node: node1 }
  - { name: web, node: node1, labels: { app: web }, containers: [{ name: c, ports: [{ containerPort: 8080 }] }] }
  - { name: web2, node: node2, labels: { app: web }, containers: [{ name: c, ports: [{ containerPort: ${web2Port} }] }] }
services:
  - { name: web, clusterIP: 10.96.0.10, selector: { app: web }, ports: [{ name: http, port: 80, targetPort: 8080 }] }
traffic:
  - { from: client, to: svc/web, protocol: tcp }
`,
        "half.yaml",
      );
    const half = (await runScenario(scenario(9090), getProvider("cbr0-host-gw"))).result;
    const probe = half.probes[0]!;
    expect([probe.outcome, probe.reached]).toEqual(["refused", false]);
    expect(probe.reason).toMatch(
      /^connection refused: RST from 10\.0\.1\.2:8080 \(web2: no listener\) \((\d+) of 16 connections: kube-proxy picks an endpoint at random for each\)$/,
    );
    const count = Number(/\((\d+) of 16/.exec(probe.reason)![1]);
    expect(count).toBeGreaterThan(0);
    expect(count).toBeLessThan(16);
    expect(half.reachability.find((c) => c.from === "client" && c.to === "svc/web:80")).toMatchObject({
      outcome: "refused",
      reached: false,
    });
    const whole = (await runScenario(scenario(8080), getProvider("cbr0-host-gw"))).result;
    expect(whole.probes[0]).toMatchObject({ outcome: "reached", reached: true });
  });

  it("probes a Service's port with its protocol: a UDP Service in the matrix, by default, and at a NodePort", async () => {
    const scenario = loadScenario(
      `name: udp-service
cluster: { serviceCidr: 10.96.0.0/16 }
underlay: { segments: [{ name: lan, subnet: 10.100.0.0/24 }] }
nodes:
  - { name: node1, segment: lan, address: 10.100.0.2 }
  - { name: node2, segment: lan, address: 10.100.0.3 }
pods:
  - { name: a, node: node1 }
  - { name: b, node: node2, labels: { app: dns }, containers: [{ name: dns, ports: [{ containerPort: 53, protocol: udp }] }] }
services:
  - name: dns
    type: NodePort
    selector: { app: dns }
    ports: [{ port: 53, protocol: udp, nodePort: 30053 }]
`,
      "udp-service.yaml",
    );
    const { runtime, result } = await runScenario(scenario, getProvider("overlay"));
    // It was probed with TCP, found nothing listening and called the Service unreachable.
    expect(result.reachability.filter((c) => c.kind === "pod→service")).toMatchObject([
      { from: "a", to: "svc/dns:53", protocol: "udp", outcome: "reached", reached: true },
      { from: "b", to: "svc/dns:53", protocol: "udp", outcome: "reached", reached: true },
    ]);
    expect((await runtime.probe("a", "svc/dns")).outcome).toBe("reached");
    expect((await runtime.probe("a", "node2:30053")).outcome).toBe("reached");
    // TCP to the UDP NodePort is no Service's: the node refuses it (it read as the Service, wrongly reached).
    const tcp = await runtime.probe("a", "node2:30053", { protocol: "tcp" });
    expect(tcp.outcome).toBe("refused");
  });

  it("refuses an underlay or service CIDR inside docker-bridge's 172.17.0.0/16, which every node's pods take", async () => {
    const scenario = (segment: string, services = "10.96.0.0/16") =>
      loadScenario(
        `name: docker-range
cluster: { serviceCidr: ${services} }
underlay: { segments: [{ name: lan, subnet: ${segment} }] }
nodes: [{ name: node1, segment: lan, address: ${segment.replace(/0\/\d+$/, "2")} }]
pods: [{ name: a, node: node1 }]
`,
        "docker-range.yaml",
      );
    // Pod a was given 172.17.0.2, node1's own address, and a ping "reached" it without leaving a.
    await expect(
      ClusterRuntime.build(scenario("172.17.0.0/24"), getProvider("docker-bridge")),
    ).rejects.toThrow(
      new TargetError(
        'segment "lan" 172.17.0.0/24 overlaps 172.17.0.0/16, the range docker-bridge gives the pods of every node: move it out of that range, or choose another provider',
      ),
    );
    await expect(
      ClusterRuntime.build(scenario("10.100.0.0/24", "172.17.128.0/20"), getProvider("docker-bridge")),
    ).rejects.toThrow(/^the service CIDR 172\.17\.128\.0\/20 overlaps 172\.17\.0\.0\/16/);
    // Read for the provider, the scenario is refused at the field, as every other mistake is.
    const text = `name: docker-range
cluster: { serviceCidr: 172.17.128.0/20 }
underlay: { segments: [{ name: lan, subnet: 172.17.0.0/24 }] }
nodes: [{ name: node1, segment: lan, address: 172.17.0.2 }]
`;
    expect(() => loadScenario(text, "d.yaml", {}, undefined, [getProvider("docker-bridge")])).toThrow(
      new ScenarioError("d.yaml", [
        {
          path: ["underlay", "segments", 0, "subnet"],
          message:
            'segment "lan" 172.17.0.0/24 overlaps 172.17.0.0/16, the range docker-bridge gives the pods of every node: move it out of that range, or choose another provider',
          line: 3,
          column: 45,
        },
        {
          path: ["cluster", "serviceCidr"],
          message:
            "the service CIDR 172.17.128.0/20 overlaps 172.17.0.0/16, the range docker-bridge gives the pods of every node: move it out of that range, or choose another provider",
          line: 2,
          column: 25,
        },
      ]).message,
    );
    expect(loadScenario(text, "d.yaml", {}, undefined, [getProvider("overlay")]).name).toBe("docker-range");
    // Providers that hand out the cluster CIDR take the same underlay.
    const overlay = await ClusterRuntime.build(scenario("172.17.0.0/24"), getProvider("overlay"));
    expect((await overlay.probe("a", "node1")).outcome).toBe("reached");
  });

  it("lets a node leave and rejoin: its pods' addresses were released through CNI DEL", async () => {
    const scenario = loadScenario(
      readFileSync(join(__dirname, "..", "..", "..", "scenarios", "two-nodes.yaml"), "utf8") +
        `events:
  - { at: 1, action: removeNode, node: node2 }
  - { at: 2, action: addNode, node: { name: node2, segment: lan, address: 10.100.0.3, podCidr: 10.0.2.0/24 } }
  - { at: 3, action: addPod, pod: { name: db, node: node2, containers: [{ name: postgres, ports: [{ containerPort: 80 }] }] } }
`,
      "rejoin.yaml",
    );
    for (const p of ["docker-bridge", "cbr0-host-gw", "overlay"]) {
      const { result } = await runScenario(scenario, getProvider(p));
      const db = result.pods.find((pod) => pod.name === "db")!;
      // host-local hands out addresses round robin: the node kept its reservations' history.
      expect({ p, db: db.ip }).toEqual({ p, db: p === "docker-bridge" ? "172.17.0.3" : "10.0.2.3" });
      expect(result.controlPlane.events.map((e) => e.description)).toEqual([
        "node node2 leaves",
        "node node2 joins",
        "pod db starts on node2",
      ]);
    }
  });
});

describe("published ports", () => {
  it("are published by every bundled provider's chained portmap; run notes a provider without one", async () => {
    const twoNodes = bundled("two-nodes");
    for (const name of ["docker-bridge", "cbr0-host-gw", "cbr0-host-gw-gateway", "overlay"]) {
      const { result } = await runScenario(twoNodes, getProvider(name));
      expect(result.notes).toBeUndefined();
      expect(result.probes.find((p) => p.to === "node2:8080")).toMatchObject({ reached: true });
    }
    // A provider whose CNI chain has no portmap: the hostPort reaches nothing, and run says why.
    const base = getProvider("overlay");
    const bare = {
      ...base,
      podNetworkConfig: (...args: Parameters<typeof base.podNetworkConfig>) => {
        const { capabilities: _none, ...config } = base.podNetworkConfig(...args);
        return config;
      },
    };
    const { result } = await runScenario(twoNodes, bare);
    expect(result.notes).toEqual([
      "db/postgres's hostPort 8080 is not published: overlay's CNI chain has no portmap plugin (tcp node2:8080 reaches nothing)",
    ]);
    expect(result.probes.find((p) => p.to === "node2:8080")).toMatchObject({ outcome: "refused" });
  });
});

describe("names longer than a device name", () => {
  it("give nodes sharing their first 15 characters underlay ports of their own", async () => {
    const scenario = loadScenario(
      `name: long-names
cluster: { clusterCidr: 10.0.0.0/16, nodeMaskSize: 24, serviceCidr: 10.96.0.0/24 }
underlay: { segments: [{ name: lan, subnet: 10.100.0.0/24 }] }
nodes:
  - { name: kubernetes-worker-1, segment: lan, address: 10.100.0.2 }
  - { name: kubernetes-worker-2, segment: lan, address: 10.100.0.3 }
pods:
  - { name: a, node: kubernetes-worker-1 }
  - { name: b, node: kubernetes-worker-2 }
`,
      "long-names.yaml",
    );
    const runtime = await ClusterRuntime.build(scenario, getProvider("cbr0-host-gw"));
    const ports = (await runtime.k.link.list(runtime.ns("underlay")))
      .map((l) => l.ifname)
      .filter((n) => n !== "lo");
    expect(ports).toHaveLength(3);
    expect(new Set(ports).size).toBe(3);
    expect(runtime.summary("a", "b")).toMatchObject({ outcome: "reached" });
  });
});

describe("a UDP hostPort published while a client was already sending to it", () => {
  it("reaches the pod from the next datagram on: the portmap plugin deletes the node's stale flow", async () => {
    const scenario = loadScenario(
      `name: stale-udp
cluster: { clusterCidr: 10.0.0.0/16, nodeMaskSize: 24, serviceCidr: 10.96.0.0/24 }
underlay:
  segments: [{ name: lan, subnet: 10.100.0.0/24 }]
  hosts: [{ name: client, segment: lan, address: 10.100.0.9 }]
nodes: [{ name: node1, segment: lan, address: 10.100.0.2 }]
`,
      "stale-udp.yaml",
    );
    const runtime = await ClusterRuntime.build(scenario, getProvider("cbr0-host-gw"));
    // One client socket (one source port), as a DNS resolver retrying keeps one.
    const send = () => runtime.summary("client", "node1:5353", { protocol: "udp", srcPort: 40000 });
    expect(send()).toMatchObject({ outcome: "refused", deliveredTo: { ns: "node1" } });
    await runtime.addPod({
      name: "dns",
      namespace: "default",
      node: "node1",
      labels: {},
      containers: [{ name: "dns", ports: [{ containerPort: 53, hostPort: 5353, protocol: "udp" }] }],
    });
    // Without the delete, the flow tracked untranslated keeps going to the node (conntrack's
    // blackhole the reference plugin's delete is there for).
    expect(send()).toMatchObject({ outcome: "reached", deliveredTo: { ns: "dns", port: 53 } });
  });
});

describe("the Service proxy as a scenario's choice", () => {
  it("builds the Services under the scenario's proxy, with the same reachability under both", async () => {
    const scenario = bundled("service");
    const iptables = (await runScenario(scenario, getProvider("cbr0-host-gw"))).result;
    const nftables = (await runScenario({ ...scenario, proxy: "nftables" }, getProvider("cbr0-host-gw")))
      .result;
    expect([iptables.proxy, nftables.proxy]).toEqual(["iptables", "nftables"]);
    const outcomes = (r: typeof iptables) => r.reachability.map((c) => `${c.from} → ${c.to}: ${c.reached}`);
    expect(outcomes(nftables)).toEqual(outcomes(iptables));
    const node = Object.values(nftables.tables)[0]!;
    expect(node.nat).not.toContain("KUBE-");
    expect(node.nft?.[0]).toEqual({ table: { family: "ip", name: "kube-proxy" } });
  });

  it("traces through the endpoint named: the Service's draw picks it under either proxy", async () => {
    for (const proxy of ["iptables", "nftables"] as const) {
      const runtime = await ClusterRuntime.build(
        withProxy(bundled("service"), proxy),
        getProvider("overlay"),
      );
      const endpoints = runtime.serviceOf("svc/web", undefined, "tcp")!.endpoints.map((e) => e.pod);
      expect(endpoints).toEqual(["web-a", "web-b", "web-c"]);
      // Each twice, in an order no draw sequence of the seed gives by chance.
      for (const pod of ["web-c", "web-a", "web-b", "web-b", "web-a", "web-c"]) {
        const trace = runtime.trace("client", "svc/web", { protocol: "tcp", endpoint: pod });
        expect([proxy, trace.outcome, trace.deliveredTo?.ns]).toEqual([proxy, "reached", pod]);
      }
      // Random again afterwards: the next draws are the seed's, not the last pick's.
      const drawn = new Set(
        Array.from(
          { length: 30 },
          () => runtime.trace("client", "svc/web", { protocol: "tcp" }).deliveredTo?.ns,
        ),
      );
      expect(drawn.size).toBe(3);
      expect(() => runtime.trace("client", "svc/web", { endpoint: "client" })).toThrow(
        '"client" is not an endpoint of svc/web (endpoints: web-a, web-b, web-c)',
      );
      expect(() => runtime.trace("client", "web-a:8080", { endpoint: "web-a" })).toThrow(
        '"web-a:8080" is not a Service\'s port, so there is no endpoint to choose',
      );
      expect(() => runtime.trace("client", "svc/web", { protocol: "udp", endpoint: "web-a" })).toThrow(
        "svc/web has no udp port 80 (its ports: http 80/tcp)",
      );
    }
  });

  it("shows every filter hook a packet passes, with the rules or policy that let it on, when asked", async () => {
    const build = () =>
      ClusterRuntime.build(bundled("netpol"), getProvider("cbr0-host-gw"), {
        policy: policyEngine("iptables"),
      });
    const [plain, shown] = [await build(), await build()];
    const options = { protocol: "tcp" as const };
    const without = plain.trace("web", "api:8080", options);
    const withHooks = shown.trace("web", "api:8080", { ...options, hooks: true });
    const filters = (t: typeof without) =>
      t.hops.filter((h) => h.event === "filter").map((h) => `${h.direction} ${h.ns} ${h.detail}`);
    expect(filters(without)).toEqual([]);
    const passed = filters(withHooks);
    // Each node's FORWARD, both ways: the request let on by the ingress rule on api's node, the
    // answer by the established-flows rule; node1 has no rule for web's egress (the chain's policy).
    expect(passed.map((line) => line.slice(0, line.indexOf(":")))).toEqual([
      "request node1 filter FORWARD",
      "request node2 filter FORWARD",
      "reply node2 filter FORWARD",
      "reply node1 filter FORWARD",
    ]);
    expect(passed[0]).toMatch(/ → -P FORWARD ACCEPT$/);
    expect(passed[1]).toContain('--dport 8080 -m comment --comment "shop/api-from-web ingress[0]" -j RETURN');
    expect(passed[2]).toContain('--comment "established and related flows" -j RETURN');
    // Nothing else moves: the same hops but these, the same outcome.
    const rest = (t: typeof without) =>
      t.hops.filter((h) => h.event !== "filter").map((h) => `${h.ns} ${h.event} ${h.detail}`);
    expect(rest(withHooks)).toEqual(rest(without));
    expect(withHooks.outcome).toBe(without.outcome);
    // A denied connection is one hop at the hook that dropped it, with or without them.
    const denied = shown.trace("monitor", "db:5432", { ...options, hooks: true });
    expect(denied.outcome).toBe("dropped");
    expect(filters(denied).at(-1)).toMatch(/^request node2 filter FORWARD: -A PNP-I-.* -j DROP/);
  });

  it("picks the named endpoint from whichever list the packet's node draws from, and says what that list was", async () => {
    // web is a Local NodePort with web1 on node2 and web2, web3 on node1; cache a Local ClusterIP.
    const scenario = loadScenario(
      `name: local
${TWO_NODES_ROUTED.replace("nodes:", "  hosts: [{ name: outside, segment: lan, address: 10.100.0.50 }]\nnodes:")}pods:
  - { name: client, node: node1 }
  - { name: far, node: node2 }
  - { name: web1, node: node2, labels: { app: web }, containers: [{ name: web, ports: [{ containerPort: 8080 }] }] }
  - { name: web2, node: node1, labels: { app: web }, containers: [{ name: web, ports: [{ containerPort: 8080 }] }] }
  - { name: web3, node: node1, labels: { app: web }, containers: [{ name: web, ports: [{ containerPort: 8080 }] }] }
  - { name: cache1, node: node1, labels: { app: cache }, containers: [{ name: c, ports: [{ containerPort: 6379 }] }] }
  - { name: cache2, node: node2, labels: { app: cache }, containers: [{ name: c, ports: [{ containerPort: 6379 }] }] }
services:
  - name: web
    type: NodePort
    externalTrafficPolicy: Local
    selector: { app: web }
    ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }]
  - { name: cache, internalTrafficPolicy: Local, selector: { app: cache }, ports: [{ port: 6379 }] }
`,
      "local.yaml",
    );
    for (const proxy of ["iptables", "nftables"] as const) {
      const runtime = await ClusterRuntime.build(withProxy(scenario, proxy), getProvider("overlay"));
      const to = (from: string, target: string, pod: string) =>
        runtime.trace(from, target, { protocol: "tcp", endpoint: pod }).deliveredTo?.ns;
      // From node2 and from far (masqueraded to node2 on its way) node1 draws from its own.
      for (const from of ["node2", "far", "outside"]) {
        expect([proxy, from, to(from, "node1:30080", "web3"), to(from, "node1:30080", "web2")]).toEqual([
          proxy,
          from,
          "web3",
          "web2",
        ]);
        expect(() => to(from, "node1:30080", "web1")).toThrow(
          "web1 is not drawn from here: node1's rules for svc/web draw from web2, web3",
        );
      }
      // node1's own traffic short-circuits to the Service's whole list.
      expect(to("node1", "node1:30080", "web1")).toBe("web1");
      expect(to("far", "svc/cache", "cache2")).toBe("cache2");
      // One endpoint in the list (iptables makes no draw; nftables draws among one).
      expect(() => to("far", "svc/cache", "cache1")).toThrow(
        "cache1 is not drawn from here: node2's rules for svc/cache draw from cache2",
      );
    }
    const fixture = (name: string) => {
      const file = join(__dirname, "..", "..", "lab", "test", "fixtures", `${name}.yaml`);
      return loadScenario(readFileSync(file, "utf8"), file);
    };
    // No endpoint on node1 for a Local NodePort: the packet is dropped before any draw.
    const none = await ClusterRuntime.build(fixture("traffic-policy"), getProvider("cbr0-host-gw"));
    const dropped = none.trace("outside", "node1:30080", { protocol: "tcp", endpoint: "web1" });
    expect([dropped.outcome, requestTranslated(dropped)]).toEqual(["dropped", false]);
    const sticky = await ClusterRuntime.build(fixture("session-affinity"), getProvider("cbr0-host-gw"));
    expect(sticky.trace("client", "svc/sticky", { endpoint: "web2" }).deliveredTo?.ns).toBe("web2");
    expect(() => sticky.trace("client", "svc/sticky", { endpoint: "web3" })).toThrow(
      "web3 is not drawn from here: session affinity holds this client to web2",
    );
  });

  it("holds a trace through a chosen endpoint to that pod: under docker-bridge another pod may hold its address", async () => {
    const runtime = await ClusterRuntime.build(bundled("service"), getProvider("docker-bridge"));
    const trace = runtime.trace("client", "svc/web", { protocol: "tcp", endpoint: "web-b" });
    expect([trace.outcome, trace.reason]).toEqual([
      "wrong-destination",
      "reached web-a, which also holds 172.17.0.2, not web-b",
    ]);
  });

  it("writes nothing for a headless Service under either proxy, lists its pods, and refuses it as a target", async () => {
    const scenario = loadScenario(
      `name: headless
${TWO_NODES_ROUTED}pods:
  - { name: client, node: node1 }
  - { name: db-0, node: node2, labels: { app: db }, containers: [{ name: c, ports: [{ containerPort: 5432 }] }] }
services:
  - { name: db, clusterIP: None, selector: { app: db }, ports: [{ port: 5432 }] }
  - { name: web, selector: { app: db }, ports: [{ port: 80, targetPort: 5432 }] }
traffic:
  - { from: client, to: "db-0:5432", protocol: tcp }
`,
      "headless.yaml",
    );
    for (const proxy of ["iptables", "nftables"] as const) {
      const { result, runtime } = await runScenario(withProxy(scenario, proxy), getProvider("cbr0-host-gw"));
      const tables = JSON.stringify(Object.values(result.tables));
      expect(tables, proxy).toContain("default/web");
      expect(tables, proxy).not.toContain("default/db");
      expect(result.services.find((svc) => svc.name === "db")).toEqual({
        name: "db",
        namespace: "default",
        clusterIP: "None",
        endpoints: [runtime.pods.get("db-0")!.ip],
      });
      expect(result.probes.every((p) => p.reached)).toBe(true);
      // Its pods are the matrix's pod→pod cells; it has no cell of its own.
      expect(result.reachability.some((c) => c.to.startsWith("svc/db"))).toBe(false);
      expect(() => runtime.summary("client", "svc/db:5432", { protocol: "tcp" })).toThrow(
        /service db is headless \(clusterIP: None\): it has no address.*send to a pod/,
      );
      expect(runtime.services.get("default/web")!.clusterIP).toMatch(/^10\.96\./);
      // Removing it writes nothing either.
      expect(
        (await runtime.removeService("db")).added + (await runtime.setService(scenario.services[0]!)).added,
      ).toBe(0);
    }
  });

  it("refuses a proxy it does not know, at its place in the file", () => {
    expect(() =>
      loadScenario(
        `name: p\nproxy: ipvs\nunderlay: { segments: [{ name: lan, subnet: 10.100.0.0/24 }] }\n`,
        "p.yaml",
      ),
    ).toThrow('p.yaml:2:8: proxy: "ipvs" is not one of "iptables", "nftables"');
  });
});

describe("the reachability matrix's Service cells", () => {
  // Each cell to a Service of several endpoints is sampled (8 connections an endpoint) while the
  // matrix's Service cells need at most MATRIX_SAMPLES connections; past that, one draw each.
  const scenario = (services: number) =>
    ScenarioSchema.parse({
      name: "many",
      cluster: { serviceCidr: "10.96.0.0/16" },
      underlay: { segments: [{ name: "lan", subnet: "10.100.0.0/24" }] },
      nodes: [{ name: "node1", segment: "lan", address: "10.100.0.2" }],
      pods: [
        { name: "client", node: "node1" },
        {
          name: "web",
          node: "node1",
          labels: { app: "web" },
          containers: [{ name: "c", ports: [{ containerPort: 80 }] }],
        },
        { name: "web2", node: "node1", labels: { app: "web" } },
      ],
      services: Array.from({ length: services }, (_, i) => ({
        name: `s${i}`,
        selector: { app: "web" },
        ports: [{ name: "http", port: 80 }],
      })),
    });
  const sampled = async (services: number) => {
    const runtime = await ClusterRuntime.build(scenario(services), getProvider("cbr0-host-gw"));
    const cells = reachability(runtime).filter((c) => c.kind === "pod→service" && c.from === "client");
    expect(cells.length).toBe(services);
    return cells.filter((c) => / of 16 connections: /.test(c.reason ?? "")).length;
  };

  it("samples while the budget allows, and draws once past it", async () => {
    // 3 pods × S cells × 16 connections: 10 Services are sampled, 2,100 are past the budget.
    expect(MATRIX_SAMPLES).toBe(100_000);
    expect(await sampled(10)).toBe(10);
    expect(await sampled(2_100)).toBe(0);
  }, 60_000);
});
