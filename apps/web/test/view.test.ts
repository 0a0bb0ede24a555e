import { ClusterRuntime, loadScenario } from "@podnet/cluster";
import { getProvider } from "@podnet/providers";
import { describe, expect, it } from "vitest";
import type { Snapshot } from "../src/protocol.js";
import { snapshotOf } from "../src/snapshot.js";
import { EXPAND_LIMIT, buildGraph, layout } from "../src/topology.js";
import { checkState, formatState, parseState } from "../src/url.js";

const snapshot = (nodes: number): Snapshot => ({
  scenario: "s",
  description: "",
  provider: "overlay",
  proxy: "iptables",
  segments: [{ name: "lan", subnet: "10.100.0.0/16" }],
  routers: [{ name: "gw", interfaces: [{ segment: "lan", address: "10.100.0.1" }] }],
  hosts: [],
  nodes: Array.from({ length: nodes }, (_, i) => ({
    name: `n${i}`,
    segment: "lan",
    address: `10.100.0.${i + 2}`,
    podCidr: `10.0.${i}.0/24`,
    devices: [
      { name: "cni0", kind: "bridge", addresses: [`10.0.${i}.1/24`], mtu: 1450 },
      { name: "flannel.1", kind: "vxlan", addresses: [`10.0.${i}.0/32`], mtu: 1450 },
      { name: "eth0", kind: "veth", addresses: [], mtu: 1500 },
    ],
  })),
  pods: Array.from({ length: nodes * 2 }, (_, i) => ({
    name: `p${i}`,
    node: `n${i % nodes}`,
    ip: `10.0.${i % nodes}.${2 + Math.floor(i / nodes)}`,
    containers: ["app", "dns"],
    containerPorts: i === 0 ? [["8080"], ["53/UDP", "53"]] : [[], []],
    ports: [],
  })),
  services: [],
  refusals: [],
});

describe("view state in the URL", () => {
  it("round-trips scenario, provider, view and selection, and falls back to defaults", () => {
    const state = {
      scenario: "two-nodes",
      provider: "overlay",
      proxy: "nftables" as const,
      view: "compare" as const,
      from: "client",
      to: "svc/web",
      endpoint: "web-b",
      hooks: true,
    };
    expect(parseState(formatState(state), { scenario: "x", provider: "y" })).toEqual(state);
    expect(parseState("?view=nonsense&proxy=ipvs", { scenario: "x", provider: "y" })).toEqual({
      scenario: "x",
      provider: "y",
      view: "topology",
    });
  });
});

describe("what a link asks for that the page lacks", () => {
  const defaults = { scenario: "two-nodes", provider: "cbr0-host-gw" };
  const check = (search: string, providers?: string[]) =>
    checkState(
      parseState(search, defaults),
      search,
      { scenarios: ["two-nodes", "netpol"], ...(providers ? { providers } : {}) },
      defaults,
    );

  it("replaces an unknown scenario or provider by the default and says so", () => {
    const { state, problems } = check("?scenario=large&provider=flannel&from=a", ["overlay", "cbr0-host-gw"]);
    expect(state).toEqual({ scenario: "two-nodes", provider: "cbr0-host-gw", view: "topology", from: "a" });
    expect(problems).toEqual([
      'scenario="large": not a bundled scenario (two-nodes, netpol; paste others with "Edit or paste YAML"), so two-nodes is shown',
      'provider="flannel": not a provider here (overlay, cbr0-host-gw), so cbr0-host-gw is shown',
    ]);
    expect(check("?scenario=pasted").problems).toEqual([
      "scenario=pasted: the pasted YAML is not kept in this browser, so two-nodes is shown",
    ]);
    // Providers not known yet: not judged.
    expect(check("?provider=flannel").problems).toEqual([]);
  });

  it("names every value it leaves out, and nothing the link spelled out as a default", () => {
    expect(check("?view=x&proxy=ipvs&proto=sctp&size=-1&pmtudisc=probe&at=x&step=0").problems).toEqual([
      'view="x": not understood (topology, compare, bench), so left out',
      'proxy="ipvs": not understood (iptables, nftables), so left out',
      'proto="sctp": not understood (icmp, tcp, udp), so left out',
      'size="-1": not understood (a payload size, 0-65000), so left out',
      'pmtudisc="probe": not understood (do, dont), so left out',
      'at="x": not understood (a number of events), so left out',
      'step="0": not understood (a walk step, from 1), so left out',
    ]);
    expect(
      check("?scenario=netpol&view=topology&proxy=nftables&proto=udp&size=0&pmtudisc=do&at=0&step=1")
        .problems,
    ).toEqual([]);
  });
});

/** The snapshot of a one-node cluster built under cbr0-host-gw, `rest` (pods, services) its YAML after the node. */
async function builtSnapshot(rest: string) {
  const rt = await ClusterRuntime.build(
    loadScenario(
      `name: one-node
cluster: { serviceCidr: 10.96.0.0/16 }
underlay: { segments: [{ name: lan, subnet: 10.100.0.0/24 }] }
nodes: [{ name: node1, segment: lan, address: 10.100.0.2 }]
${rest}`,
      "one-node.yaml",
    ),
    getProvider("cbr0-host-gw"),
  );
  await rt.runEvents();
  return snapshotOf(rt);
}

describe("the topology graph", () => {
  it("draws each node as a box holding eth0, the bridge, the VXLAN device and its pods", () => {
    const { boxes, edges } = buildGraph(snapshot(2), false);
    const box = (id: string) => boxes.find((b) => b.id === id)!;
    expect(box("ns:n0").label).toEqual(["node n0", "pods 10.0.0.0/24"]);
    expect(box("dev:n0:eth0")).toMatchObject({ label: ["eth0", "10.100.0.2", "mtu 1500"], parent: "ns:n0" });
    expect(box("dev:n0:flannel.1")).toMatchObject({
      label: ["vxlan flannel.1", "10.0.0.0/32", "mtu 1450"],
      parent: "ns:n0",
    });
    expect(box("ns:p0")).toMatchObject({
      label: ["pod p0", "eth0 10.0.0.2", "pause", "app :8080", "dns :53/UDP :53"],
      parent: "ns:n0",
    });
    expect(edges).toContainEqual({ from: "dev:n0:cni0", to: "ns:p0", label: "veth" });
    expect(edges).toContainEqual({ from: "seg:lan", to: "dev:n0:eth0" });
  });

  it("draws a Service with its ports, NodePort and dashed links to its endpoints", () => {
    const s = snapshot(2);
    s.services = [
      {
        name: "web",
        namespace: "default",
        ref: "web",
        type: "NodePort",
        clusterIP: "10.96.0.10",
        ports: [
          { name: "http", port: 80, protocol: "TCP", targetPort: 8080, nodePort: 30080 },
          { name: "dns", port: 53, protocol: "UDP", targetPort: 5353 },
        ],
        externalTrafficPolicy: "Local",
        affinitySeconds: 10800,
        endpoints: ["10.0.0.2", "10.0.1.2"],
      },
    ];
    const { boxes, edges } = buildGraph(s, false);
    expect(boxes.find((b) => b.id === "svc:web")!.label).toEqual([
      "service web",
      "http: 10.96.0.10:80/TCP → 8080, NodePort 30080",
      "dns: 10.96.0.10:53/UDP → 5353",
      "externalTrafficPolicy: Local",
      "sessionAffinity: ClientIP, 10800 s",
      "2 endpoints",
    ]);
    expect(edges.filter((e) => e.from === "svc:web")).toEqual([
      { from: "svc:web", to: "ns:p0", style: "service" },
      { from: "svc:web", to: "ns:p1", style: "service" },
    ]);
  });

  it("lays nodes out left to right in the scenario's order", () => {
    const { boxes } = layout(snapshot(3));
    const nodes = boxes.filter((b) => b.kind === "node").sort((a, b) => a.x - b.x);
    expect(nodes.map((b) => b.id)).toEqual(["ns:n0", "ns:n1", "ns:n2"]);
  });

  it("lays Services out in rows under the nodes, no wider than the map, each linked up to its pods", () => {
    const s = snapshot(2);
    const bare = layout(s);
    s.services = ["web", "api", "db", "cache", "queue", "search"].map((name, i) => ({
      name,
      namespace: "default",
      ref: name,
      type: "ClusterIP" as const,
      clusterIP: `10.96.0.${10 + i}`,
      ports: [{ name: "http", port: 80, protocol: "TCP" as const, targetPort: 8080 }],
      endpoints: [`10.0.${i % 2}.2`],
    }));
    const { boxes, edges, width, height } = layout(s);
    const services = boxes.filter((b) => b.kind === "service");
    const bottom = Math.max(...boxes.filter((b) => b.kind !== "service").map((b) => b.y + b.height));
    for (const b of services) {
      expect(b.y).toBeGreaterThanOrEqual(bottom);
      expect(b.x).toBeGreaterThanOrEqual(0);
      expect(b.x + b.width).toBeLessThanOrEqual(width);
      expect(b.y + b.height).toBeLessThanOrEqual(height);
    }
    // Between the nodes they widened the map; under them they take rows instead.
    expect(width).toBe(bare.width);
    expect(new Set(services.map((b) => b.y)).size).toBeGreaterThan(1);
    for (const [i, a] of services.entries())
      for (const b of services.slice(i + 1))
        expect(
          a.x + a.width <= b.x || b.x + b.width <= a.x || a.y + a.height <= b.y || b.y + b.height <= a.y,
        ).toBe(true);
    const web = edges.find((e) => e.from === "svc:web")!;
    const [svc, pod] = [boxes.find((b) => b.id === "svc:web")!, boxes.find((b) => b.id === "ns:p0")!];
    expect(web.points).toEqual([
      { x: svc.x + svc.width / 2, y: svc.y },
      { x: pod.x + pod.width / 2, y: pod.y + pod.height },
    ]);
  });

  it("counts only the pods a named targetPort resolves to as a Service's endpoints", async () => {
    // web3 is selected but has no container port named "http": it is no endpoint, as the
    // EndpointSlice controller resolves it, and the map draws no link to it.
    const s = await builtSnapshot(`pods:
  - { name: web1, node: node1, labels: { app: web }, containers: [{ name: c, ports: [{ name: http, containerPort: 8080 }] }] }
  - { name: web2, node: node1, labels: { app: web }, containers: [{ name: c, ports: [{ name: http, containerPort: 9090 }] }] }
  - { name: web3, node: node1, labels: { app: web }, containers: [{ name: c, ports: [{ name: admin, containerPort: 7070 }] }] }
services:
  - { name: web, selector: { app: web }, ports: [{ name: http, port: 80, targetPort: http }] }
`);
    const { boxes, edges } = buildGraph(s, false);
    expect(boxes.find((b) => b.id === "svc:web")!.label).toEqual([
      "service web",
      `http: ${s.services[0]!.clusterIP}:80/TCP → http (2 pods)`,
      "2 endpoints",
    ]);
    expect(edges.filter((e) => e.from === "svc:web").map((e) => e.to)).toEqual(["ns:web1", "ns:web2"]);
  });

  it("draws a headless Service with its pods and no address", async () => {
    const s = await builtSnapshot(`pods:
  - { name: db-0, node: node1, labels: { app: db }, containers: [{ name: c, ports: [{ containerPort: 5432 }] }] }
services:
  - { name: db, clusterIP: None, selector: { app: db }, ports: [{ port: 5432 }] }
`);
    const { boxes, edges } = buildGraph(s, false);
    expect(boxes.find((b) => b.id === "svc:db")!.label).toEqual([
      "service db",
      "headless, port 5432/TCP → 5432",
      "1 endpoint",
    ]);
    expect(edges.filter((e) => e.from === "svc:db").map((e) => e.to)).toEqual(["ns:db-0"]);
  });

  it("lays 20 nodes × 2 pods out without overlaps, each box inside its node", () => {
    const { boxes } = layout(snapshot(EXPAND_LIMIT));
    const byId = new Map(boxes.map((b) => [b.id, b]));
    const nested = (a: (typeof boxes)[number], b: (typeof boxes)[number]) =>
      a.parent === b.id || b.parent === a.id;
    for (const b of boxes.filter((x) => x.parent)) {
      const p = byId.get(b.parent!)!;
      expect(
        b.x >= p.x && b.y >= p.y && b.x + b.width <= p.x + p.width && b.y + b.height <= p.y + p.height,
      ).toBe(true);
    }
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const [a, b] = [boxes[i]!, boxes[j]!];
        if (nested(a, b)) continue;
        const overlap =
          a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
        expect(overlap, `${a.id} overlaps ${b.id}`).toBe(false);
      }
    }
  });

  it("collapses a large segment into a summary that expands into a grid of plain node boxes", () => {
    const big = buildGraph(snapshot(EXPAND_LIMIT + 1), false);
    expect(big.boxes.filter((b) => b.kind === "summary").map((b) => b.label)).toEqual([
      ["21 nodes, 42 pods", "click to expand"],
    ]);
    const huge = buildGraph(snapshot(EXPAND_LIMIT + 1), new Set(["lan"]));
    expect(huge.boxes.filter((b) => b.kind === "node")).toHaveLength(21);
    expect(huge.boxes.filter((b) => b.kind === "device" || b.kind === "pod")).toEqual([]);
    expect(huge.boxes.find((b) => b.id === "ns:n0")).toMatchObject({
      label: ["node n0", "eth0 10.100.0.2", "2 pods"],
      parent: "grid:lan",
    });
  });

  it("lays out 1,000 expanded nodes as a grid inside their segment's group, none overlapping", () => {
    const start = performance.now();
    const view = layout(snapshot(1000), new Set(["lan"]));
    console.log(`layout of 1,000 expanded nodes: ${(performance.now() - start).toFixed(0)} ms`);
    const nodes = view.boxes.filter((b) => b.kind === "node");
    expect(nodes).toHaveLength(1000);
    const group = view.boxes.find((b) => b.id === "grid:lan")!;
    // Roughly square, not a strip.
    expect(group.width / group.height).toBeLessThan(2.5);
    expect(new Set(nodes.map((b) => `${b.x},${b.y}`)).size).toBe(1000);
    for (const b of nodes) expect(b.x >= group.x && b.x + b.width <= group.x + group.width).toBe(true);
  });
});
