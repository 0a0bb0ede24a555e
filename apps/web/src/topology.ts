/**
 * The topology as a graph, laid out by dagre: segments and routers at the top, nodes with their NIC
 * address, the node's bridge and VXLAN device, pods with their containers (the pause container first).
 * Clusters of more than 20 nodes collapse into one summary box per segment until expanded.
 */
import dagre from "@dagrejs/dagre";
import type { Snapshot } from "./protocol.js";

export type BoxKind = "segment" | "router" | "host" | "node" | "device" | "pod" | "summary";

export interface Box {
  id: string;
  kind: BoxKind;
  label: string[];
  /** The namespace the box stands for (selection and trace highlighting). */
  ns?: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Edge {
  from: string;
  to: string;
  label?: string;
  points: { x: number; y: number }[];
}

export interface Layout {
  boxes: Box[];
  edges: Edge[];
  width: number;
  height: number;
}

export const EXPAND_LIMIT = 20;

function size(label: string[]): { width: number; height: number } {
  return { width: Math.max(90, ...label.map((l) => l.length * 7 + 16)), height: 18 + label.length * 15 };
}

export function buildGraph(
  s: Snapshot,
  expanded: boolean,
): { boxes: Omit<Box, "x" | "y">[]; edges: Omit<Edge, "points">[] } {
  const boxes: Omit<Box, "x" | "y">[] = [];
  const edges: Omit<Edge, "points">[] = [];
  const add = (id: string, kind: BoxKind, label: string[], ns?: string) =>
    boxes.push({ id, kind, label, ...(ns ? { ns } : {}), ...size(label) });
  for (const seg of s.segments) add(`seg:${seg.name}`, "segment", [`segment ${seg.name}`, seg.subnet]);
  for (const r of s.routers) {
    add(`ns:${r.name}`, "router", [`router ${r.name}`, ...r.interfaces.map((i) => i.address)], r.name);
    for (const i of r.interfaces)
      edges.push({ from: `seg:${i.segment}`, to: `ns:${r.name}`, label: i.address });
  }
  for (const h of s.hosts) {
    add(`ns:${h.name}`, "host", [`host ${h.name}`, h.address], h.name);
    edges.push({ from: `seg:${h.segment}`, to: `ns:${h.name}`, label: h.address });
  }
  if (!expanded && s.nodes.length > EXPAND_LIMIT) {
    for (const seg of s.segments) {
      const nodes = s.nodes.filter((n) => n.segment === seg.name);
      if (!nodes.length) continue;
      const pods = s.pods.filter((p) => nodes.some((n) => n.name === p.node)).length;
      add(`sum:${seg.name}`, "summary", [`${nodes.length} nodes, ${pods} pods`, "click to expand"]);
      edges.push({ from: `seg:${seg.name}`, to: `sum:${seg.name}` });
    }
    return { boxes, edges };
  }
  for (const n of s.nodes) {
    add(
      `ns:${n.name}`,
      "node",
      [`node ${n.name}`, `eth0 ${n.address}`, ...(n.podCidr ? [`pods ${n.podCidr}`] : [])],
      n.name,
    );
    edges.push({ from: `seg:${n.segment}`, to: `ns:${n.name}`, label: n.address });
    for (const d of n.devices.filter((d) => d.kind === "bridge" || d.kind === "vxlan")) {
      add(
        `dev:${n.name}:${d.name}`,
        "device",
        [`${d.kind} ${d.name}`, ...d.addresses, `mtu ${d.mtu}`],
        n.name,
      );
      edges.push({ from: `ns:${n.name}`, to: `dev:${n.name}:${d.name}` });
    }
    const bridge = n.devices.find((d) => d.kind === "bridge");
    for (const p of s.pods.filter((p) => p.node === n.name)) {
      add(`ns:${p.name}`, "pod", [`pod ${p.name}`, `eth0 ${p.ip}`, "pause", ...p.containers], p.name);
      edges.push({
        from: bridge ? `dev:${n.name}:${bridge.name}` : `ns:${n.name}`,
        to: `ns:${p.name}`,
        label: "veth",
      });
    }
  }
  return { boxes, edges };
}

export function layout(s: Snapshot, expanded = false): Layout {
  const graph = buildGraph(s, expanded);
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "TB", nodesep: 18, ranksep: 46, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const b of graph.boxes) g.setNode(b.id, { width: b.width, height: b.height });
  for (const e of graph.edges) g.setEdge(e.from, e.to);
  dagre.layout(g);
  const boxes = graph.boxes.map((b) => {
    const n = g.node(b.id);
    return { ...b, x: n.x - b.width / 2, y: n.y - b.height / 2 };
  });
  const edges = graph.edges.map((e) => ({ ...e, points: g.edge(e.from, e.to).points ?? [] }));
  const { width = 0, height = 0 } = g.graph();
  return { boxes, edges, width, height };
}
