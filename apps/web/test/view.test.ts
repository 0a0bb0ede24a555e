import { describe, expect, it } from "vitest";
import type { Snapshot } from "../src/protocol.js";
import { EXPAND_LIMIT, buildGraph, layout } from "../src/topology.js";
import { formatState, parseState } from "../src/url.js";

const snapshot = (nodes: number): Snapshot => ({
  scenario: "s",
  description: "",
  provider: "overlay",
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
    containers: ["app"],
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
      view: "compare" as const,
      from: "client",
      to: "db",
    };
    expect(parseState(formatState(state), { scenario: "x", provider: "y" })).toEqual(state);
    expect(parseState("?view=nonsense", { scenario: "x", provider: "y" })).toEqual({
      scenario: "x",
      provider: "y",
      view: "topology",
    });
  });
});

describe("the topology graph", () => {
  it("draws nodes with their eth0 address, bridges and VXLAN devices, and pods with the pause container", () => {
    const { boxes, edges } = buildGraph(snapshot(2), false);
    expect(boxes.find((b) => b.id === "ns:n0")!.label).toEqual([
      "node n0",
      "eth0 10.100.0.2",
      "pods 10.0.0.0/24",
    ]);
    expect(boxes.find((b) => b.id === "dev:n0:flannel.1")!.label).toEqual([
      "vxlan flannel.1",
      "10.0.0.0/32",
      "mtu 1450",
    ]);
    expect(boxes.find((b) => b.id === "ns:p0")!.label).toEqual(["pod p0", "eth0 10.0.0.2", "pause", "app"]);
    expect(edges).toContainEqual({ from: "dev:n0:cni0", to: "ns:p0", label: "veth" });
    expect(boxes.some((b) => b.label[0] === "veth eth0")).toBe(false); // the NIC is the node box, not a device box
  });

  it("stays readable at 20 nodes × 10 pods and collapses larger clusters into a summary that expands", () => {
    const at20 = layout(snapshot(EXPAND_LIMIT));
    const boxes = at20.boxes;
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const [a, b] = [boxes[i]!, boxes[j]!];
        const overlap =
          a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
        expect(overlap, `${a.id} overlaps ${b.id}`).toBe(false);
      }
    }
    const big = buildGraph(snapshot(EXPAND_LIMIT + 1), false);
    expect(big.boxes.filter((b) => b.kind === "summary").map((b) => b.label)).toEqual([
      ["21 nodes, 42 pods", "click to expand"],
    ]);
    expect(buildGraph(snapshot(EXPAND_LIMIT + 1), true).boxes.filter((b) => b.kind === "node")).toHaveLength(
      21,
    );
  });
});
