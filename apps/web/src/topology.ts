/**
 * The topology as a graph, laid out by dagre (compound): segments, routers and outside hosts at the top;
 * each node a box holding its devices — eth0 with its address, the bridge, the VXLAN device — and its
 * pods, attached to the bridge by their veth; Services with dashed links to their endpoints. Segments of
 * more than EXPAND_LIMIT nodes start collapsed into one summary box each, expandable one by one into a
 * grid of plain node boxes inside a group box (a row of a thousand boxes would be a strip no one can
 * read, and dagre's compound layout of that many nodes with their devices would take seconds).
 */
import { HEADLESS } from "@podnet/cluster";
import dagre from "@dagrejs/dagre";
import type { Snapshot } from "./protocol.js";

export type BoxKind =
  "segment" | "router" | "host" | "node" | "device" | "pod" | "service" | "summary" | "group";

export interface Box {
  id: string;
  kind: BoxKind;
  label: string[];
  /** The namespace the box stands for (selection, tables and trace highlighting). */
  ns?: string;
  /** The node box this box is drawn inside. */
  parent?: string;
  /** For a summary box: the segment it stands for. */
  segment?: string;
  /** Set on a box that other boxes are drawn inside (a node holding its devices and pods). */
  container?: boolean;
  /** For a box in a grid group: its offset inside the group (the grid is laid out here, not by dagre). */
  cell?: { x: number; y: number };
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Edge {
  from: string;
  to: string;
  label?: string;
  /** "stack": through the node's IP stack, not a cable; "service": a Service's endpoint. */
  style?: "stack" | "service";
  points: { x: number; y: number }[];
}

export interface Layout {
  boxes: Box[];
  edges: Edge[];
  width: number;
  height: number;
}

export const EXPAND_LIMIT = 20;

const CELL = { width: 190, height: 70, gap: 12 };

/** Room above a node's devices for its two-line title (name, pod CIDR). */
const NODE_TITLE = 40;

function size(label: string[]): { width: number; height: number } {
  // 13.5 px monospace: about 8.2 px a character, 17 px a line.
  return { width: Math.max(80, ...label.map((l) => l.length * 8.2 + 18)), height: 14 + label.length * 17 };
}

type Draft = { boxes: Omit<Box, "x" | "y">[]; edges: Omit<Edge, "points">[] };

/** "1 pod", "3 pods". */
const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? "" : "s"}`;

export function buildGraph(s: Snapshot, expanded: ReadonlySet<string> | boolean = false): Draft {
  const boxes: Omit<Box, "x" | "y">[] = [];
  const edges: Omit<Edge, "points">[] = [];
  const add = (id: string, kind: BoxKind, label: string[], extra: Partial<Box> = {}) =>
    boxes.push({ id, kind, label, ...extra, ...size(label) });
  const isExpanded = (segment: string) => (typeof expanded === "boolean" ? expanded : expanded.has(segment));
  for (const seg of s.segments) add(`seg:${seg.name}`, "segment", [`segment ${seg.name}`, seg.subnet]);
  for (const r of s.routers) {
    add(`ns:${r.name}`, "router", [`router ${r.name}`, ...r.interfaces.map((i) => i.address)], {
      ns: r.name,
    });
    for (const i of r.interfaces)
      edges.push({ from: `seg:${i.segment}`, to: `ns:${r.name}`, label: i.address });
  }
  for (const h of s.hosts) {
    add(`ns:${h.name}`, "host", [`host ${h.name}`, h.address], { ns: h.name });
    edges.push({ from: `seg:${h.segment}`, to: `ns:${h.name}`, label: h.address });
  }
  const podsOn = new Map<string, Snapshot["pods"]>();
  for (const p of s.pods) podsOn.set(p.node, [...(podsOn.get(p.node) ?? []), p]);
  const drawnPods = new Map<string, string>();
  for (const seg of s.segments) {
    const nodes = s.nodes.filter((n) => n.segment === seg.name);
    if (!nodes.length) continue;
    if (nodes.length > EXPAND_LIMIT && !isExpanded(seg.name)) {
      const pods = nodes.reduce((sum, n) => sum + (podsOn.get(n.name)?.length ?? 0), 0);
      add(`sum:${seg.name}`, "summary", [`${nodes.length} nodes, ${pods} pods`, "click to expand"], {
        segment: seg.name,
      });
      edges.push({ from: `seg:${seg.name}`, to: `sum:${seg.name}` });
      continue;
    }
    if (nodes.length > EXPAND_LIMIT) {
      const group = `grid:${seg.name}`;
      // About as tall as wide: the cells are wider than high.
      const columns = Math.ceil(
        Math.sqrt((nodes.length * (CELL.height + CELL.gap)) / (CELL.width + CELL.gap)),
      );
      const rows = Math.ceil(nodes.length / columns);
      const title = 26;
      boxes.push({
        id: group,
        kind: "group",
        label: [`${nodes.length} nodes on ${seg.name}: click one for its tables`],
        width: columns * (CELL.width + CELL.gap) + CELL.gap,
        height: title + rows * (CELL.height + CELL.gap) + CELL.gap,
      });
      edges.push({ from: `seg:${seg.name}`, to: group });
      nodes.forEach((n, i) => {
        const count = podsOn.get(n.name)?.length ?? 0;
        const label = [`node ${n.name}`, `eth0 ${n.address}`, plural(count, "pod")];
        boxes.push({
          id: `ns:${n.name}`,
          kind: "node",
          label,
          ns: n.name,
          parent: group,
          cell: {
            x: CELL.gap + (i % columns) * (CELL.width + CELL.gap),
            y: title + CELL.gap + Math.floor(i / columns) * (CELL.height + CELL.gap),
          },
          width: CELL.width,
          height: CELL.height,
        });
      });
      continue;
    }
    for (const n of nodes) {
      const id = `ns:${n.name}`;
      const pods = podsOn.get(n.name) ?? [];
      // The node's title sits above its devices; the box itself is sized by the layout.
      boxes.push({
        id,
        kind: "node",
        label: [`node ${n.name}`, ...(n.podCidr ? [`pods ${n.podCidr}`] : [])],
        ns: n.name,
        ...size([`node ${n.name}`, ...(n.podCidr ? [`pods ${n.podCidr}`] : [])]),
      });
      const eth0 = n.devices.find((d) => d.name === "eth0");
      add(`dev:${n.name}:eth0`, "device", ["eth0", n.address, ...(eth0 ? [`mtu ${eth0.mtu}`] : [])], {
        ns: n.name,
        parent: id,
      });
      edges.push({ from: `seg:${n.segment}`, to: `dev:${n.name}:eth0` });
      for (const d of n.devices.filter((d) => d.kind === "bridge" || d.kind === "vxlan")) {
        add(`dev:${n.name}:${d.name}`, "device", [`${d.kind} ${d.name}`, ...d.addresses, `mtu ${d.mtu}`], {
          ns: n.name,
          parent: id,
        });
        edges.push({ from: `dev:${n.name}:eth0`, to: `dev:${n.name}:${d.name}`, style: "stack" });
      }
      const bridge = n.devices.find((d) => d.kind === "bridge");
      for (const p of pods) {
        // Each container with the ports it listens on (`nginx :80`), as the pod's spec lists them.
        const containers = p.containers.map((c, i) =>
          [c, ...(p.containerPorts[i] ?? []).map((port) => `:${port}`)].join(" "),
        );
        add(`ns:${p.name}`, "pod", [`pod ${p.name}`, `eth0 ${p.ip}`, "pause", ...containers], {
          ns: p.name,
          parent: id,
        });
        drawnPods.set(p.ip, p.name);
        edges.push({
          from: bridge ? `dev:${n.name}:${bridge.name}` : `dev:${n.name}:eth0`,
          to: `ns:${p.name}`,
          label: "veth",
        });
      }
    }
  }
  for (const x of s.services) {
    // One line a port, as kubectl describes it: its name, address:port/protocol → target, its NodePort.
    const ports = x.ports.map(
      (p) =>
        `${p.name ? `${p.name}: ` : ""}${
          // A headless Service has no address: its clients reach the pods themselves (DNS names them).
          x.clusterIP === HEADLESS ? "headless, port " : `${x.clusterIP}:`
        }${p.port}/${p.protocol} → ${p.targetPort ?? p.port}${p.nodePort ? `, NodePort ${p.nodePort}` : ""}${
          p.endpoints !== undefined ? ` (${plural(p.endpoints, "pod")})` : ""
        }`,
    );
    const endpoints = x.endpoints.map((ip) => drawnPods.get(ip)).filter((p): p is string => Boolean(p));
    add(`svc:${x.ref}`, "service", [
      `service ${x.ref}`,
      ...ports,
      // What a Local policy changes: a NodePort or a ClusterIP reaches only its own node's endpoints.
      ...(x.externalTrafficPolicy ? ["externalTrafficPolicy: Local"] : []),
      ...(x.internalTrafficPolicy ? ["internalTrafficPolicy: Local"] : []),
      ...(x.affinitySeconds ? [`sessionAffinity: ClientIP, ${x.affinitySeconds} s`] : []),
      plural(x.endpoints.length, "endpoint"),
    ]);
    for (const pod of endpoints) edges.push({ from: `svc:${x.ref}`, to: `ns:${pod}`, style: "service" });
  }
  return { boxes, edges };
}

export function layout(s: Snapshot, expanded: ReadonlySet<string> | boolean = false): Layout {
  const graph = buildGraph(s, expanded);
  const g = new dagre.graphlib.Graph({ compound: true, multigraph: false });
  g.setGraph({ rankdir: "TB", nodesep: 18, ranksep: 44, marginx: 12, marginy: 12 + NODE_TITLE });
  g.setDefaultEdgeLabel(() => ({}));
  // Grid cells are placed inside their group after the layout; dagre sees the group as one box.
  // Services too are placed after it, in rows under the nodes: dagre, pulled by their endpoints,
  // put them between the nodes, which widened a two-node map past a 1280-px window.
  const laid = graph.boxes.filter((b) => !b.cell && b.kind !== "service");
  const parents = new Set(laid.flatMap((b) => (b.parent ? [b.parent] : [])));
  // Given in reverse: dagre's ordering lays siblings out right to left of the order they came in, and
  // node1 belongs left of node2.
  for (const b of [...laid].reverse())
    g.setNode(b.id, parents.has(b.id) ? {} : { width: b.width, height: b.height });
  for (const b of laid) if (b.parent) g.setParent(b.id, b.parent);
  for (const e of [...graph.edges].reverse()) if (e.style !== "service") g.setEdge(e.from, e.to);
  dagre.layout(g);
  const boxes = graph.boxes.map((b) => {
    if (b.cell) {
      const group = g.node(b.parent!);
      return { ...b, x: group.x - group.width / 2 + b.cell.x, y: group.y - group.height / 2 + b.cell.y };
    }
    if (b.kind === "service") return { ...b, x: 0, y: 0 }; // placed by placeServices
    const n = g.node(b.id);
    if (!parents.has(b.id)) return { ...b, x: n.x - n.width / 2, y: n.y - n.height / 2 };
    // A node box grows upwards by its title's height above the devices dagre fitted it around, and
    // is at least as wide as its title.
    const width = Math.max(n.width, b.width);
    return {
      ...b,
      container: true,
      x: n.x - width / 2,
      y: n.y - n.height / 2 - NODE_TITLE,
      width,
      height: n.height + NODE_TITLE,
    };
  });
  const { width: graphWidth = 0, height: graphHeight = 0 } = g.graph();
  const { width, height } = placeServices(boxes, graphWidth, graphHeight);
  const at = new Map(boxes.map((b) => [b.id, b]));
  const edges = graph.edges.map((e) => {
    if (e.style !== "service") return { ...e, points: g.edge(e.from, e.to)?.points ?? [] };
    // Straight up from the Service's top to the endpoint pod's bottom.
    const [svc, pod] = [at.get(e.from)!, at.get(e.to)!];
    return {
      ...e,
      points: [
        { x: svc.x + svc.width / 2, y: svc.y },
        { x: pod.x + pod.width / 2, y: pod.y + pod.height },
      ],
    };
  });
  return { boxes, edges, width, height };
}

const SERVICE_GAP = 18;

/**
 * Lays the Service boxes out in rows under the rest of the map (`width` × `height`), each row centred
 * and no wider than the map (or one box); returns the map's size with them.
 */
function placeServices(boxes: Box[], width: number, height: number) {
  const services = boxes.filter((b) => b.kind === "service");
  if (!services.length) return { width, height };
  const limit = Math.max(width - 24, ...services.map((b) => b.width));
  const rows: (typeof services)[] = [[]];
  let used = 0;
  for (const b of services) {
    if (rows.at(-1)!.length && used + SERVICE_GAP + b.width > limit) {
      rows.push([]);
      used = 0;
    }
    used += (rows.at(-1)!.length ? SERVICE_GAP : 0) + b.width;
    rows.at(-1)!.push(b);
  }
  let y = height;
  let right = width;
  for (const row of rows) {
    const rowWidth = row.reduce((n, b) => n + b.width, 0) + SERVICE_GAP * (row.length - 1);
    let x = Math.max(12, (width - rowWidth) / 2);
    for (const b of row) {
      b.x = x;
      b.y = y;
      x += b.width + SERVICE_GAP;
    }
    right = Math.max(right, x - SERVICE_GAP + 12);
    y += Math.max(...row.map((b) => b.height)) + SERVICE_GAP;
  }
  return { width: right, height: y };
}
