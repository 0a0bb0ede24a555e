/**
 * The map: the laid-out topology in React Flow (zoom with the wheel or the buttons, pan by dragging,
 * only what is on screen drawn for large clusters), and the walk drawn on it — the links crossed so far,
 * the current device and link with the direction of travel, the packet (a packet inside a packet when
 * encapsulated) moving along the links, and the failure marked where it happened.
 */
import {
  Controls,
  Handle,
  Position,
  ReactFlow,
  ReactFlowProvider,
  ViewportPortal,
  useReactFlow,
  useStore,
  type EdgeProps,
  type Edge as FlowEdge,
  type Node as FlowNode,
  type NodeProps,
} from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { memo, useEffect, useMemo, useRef, type CSSProperties, type ReactNode } from "react";
import type { PeerReach } from "./policy.js";
import type { Box, Edge, Layout } from "./topology.js";
import { pointAlong, type Leg, type Point } from "./walk.js";

export interface MapWalk {
  /** Boxes the walk has been at so far, and the one it is at now. */
  visited: ReadonlySet<string>;
  current?: string;
  /** Links crossed so far, and those crossed to reach the current step, in travel order. */
  crossed: ReadonlySet<string>;
  legs: Leg[];
  line: Point[];
  /** Milliseconds the packet takes along `line`; 0 shows it at the end at once. */
  duration: number;
  encapsulated: boolean;
  /** How many fragments the packet travels as (1: whole); drawn as a stack of that many, up to 3. */
  fragments: number;
  n: number;
  /** Where the walk failed and how (outcome words), shown from the start. */
  failure?: { box: string; label: string };
  /** Changes whenever the packet should start moving again. */
  key: string;
  onArrive: () => void;
}

export const edgeId = (e: { from: string; to: string }): string => `${e.from}>${e.to}`;

const REACH_WORDS = { allowed: "allowed", partial: "some ports allowed", denied: "denied" };

/** Past this many boxes only those on screen are drawn. */
const CULL_ABOVE = 150;
/** When the map fits itself to the window, text stays at least 70 % of its size (about 9 px). */
const FIT = { padding: 0.04, minZoom: 0.7, maxZoom: 1.2 };

/**
 * A grid of node boxes (an expanded segment) is not React Flow's to draw: a thousand nodes make every
 * update of the map cost a thousand node updates. Its group box draws it — every cell as a rect of one
 * SVG, and over them, at a zoom where text reads (DETAIL_ZOOM), a full box for each cell on screen.
 */
const DETAIL_ZOOM = 0.45;

type Cell = { box: Box; classes: string };
type BoxData = { box: Box; classes: string; onActivate: (b: Box) => void; cells?: Cell[] };
type PathData = { edge: Edge; classes: string };

/** A box of the map: its kind's look, its lines, and a click or Enter to pick or inspect it. */
function BoxBody({
  box: b,
  classes,
  onActivate,
  style,
  children,
}: {
  box: Box;
  classes: string;
  onActivate: (b: Box) => void;
  style: CSSProperties;
  children?: ReactNode;
}) {
  return (
    <div
      className={`box ${b.kind}${b.container ? " container" : ""} ${classes}`}
      data-box={b.id}
      tabIndex={0}
      role="button"
      aria-label={b.label.join(", ")}
      style={style}
      onClick={(e) => {
        e.stopPropagation();
        onActivate(b);
      }}
      onKeyDown={(e) => (e.key === "Enter" || e.key === " ") && (e.preventDefault(), onActivate(b))}
    >
      {b.label.map((l, i) => (
        <div key={i} className={i === 0 ? "title" : "line"}>
          {l}
        </div>
      ))}
      {children}
    </div>
  );
}

const BoxNode = memo(function BoxNode({ data }: NodeProps<FlowNode<BoxData>>) {
  const { box: b, classes, onActivate, cells } = data;
  return (
    <BoxBody box={b} classes={classes} onActivate={onActivate} style={{ width: b.width, height: b.height }}>
      <Handle type="target" position={Position.Top} isConnectable={false} className="handle" />
      {cells && <GridCells group={b} cells={cells} onActivate={onActivate} />}
      <Handle type="source" position={Position.Bottom} isConnectable={false} className="handle" />
    </BoxBody>
  );
});

/**
 * Which cells of a grid are on screen at a readable zoom, as their indices joined ("" when zoomed
 * out): a string, so the grid renders again only when that set changes, not on every frame of a pan.
 */
function visibleCells(group: Box, cells: Cell[]) {
  return (s: { transform: [number, number, number]; width: number; height: number }): string => {
    const [tx, ty, zoom] = s.transform;
    if (zoom < DETAIL_ZOOM) return "";
    const left = -tx / zoom - group.x;
    const top = -ty / zoom - group.y;
    const right = left + s.width / zoom;
    const bottom = top + s.height / zoom;
    const on: number[] = [];
    cells.forEach(({ box: c }, i) => {
      const { x, y } = c.cell!;
      if (x + c.width > left && x < right && y + c.height > top && y < bottom) on.push(i);
    });
    return on.join(",");
  };
}

function GridCells({
  group,
  cells,
  onActivate,
}: {
  group: Box;
  cells: Cell[];
  onActivate: (b: Box) => void;
}) {
  const select = useMemo(() => visibleCells(group, cells), [group, cells]);
  const visible = useStore(select);
  const rects = useMemo(
    () => (
      <svg className="grid-cells" width={group.width} height={group.height} aria-hidden="true">
        {cells.map(({ box: c, classes }) => (
          <rect
            key={c.id}
            className={`cell ${classes}`}
            x={c.cell!.x}
            y={c.cell!.y}
            width={c.width}
            height={c.height}
            onClick={(e) => {
              e.stopPropagation();
              onActivate(c);
            }}
          />
        ))}
      </svg>
    ),
    [group, cells, onActivate],
  );
  return (
    <>
      {rects}
      {visible &&
        visible.split(",").map((i) => {
          const { box: c, classes } = cells[Number(i)]!;
          return (
            <BoxBody
              key={c.id}
              box={c}
              classes={classes}
              onActivate={onActivate}
              style={{
                position: "absolute",
                left: c.cell!.x,
                top: c.cell!.y,
                width: c.width,
                height: c.height,
              }}
            />
          );
        })}
    </>
  );
}

/** A link drawn through dagre's bends, not React Flow's own routing, so the walk's packet follows it. */
const PathEdge = memo(function PathEdge({ data }: EdgeProps<FlowEdge<PathData>>) {
  const points = data!.edge.points;
  const d = points.map((p, i) => `${i ? "L" : "M"}${p.x},${p.y}`).join(" ");
  // A veth pair is a device in its own right: named on its link, halfway along.
  const middle = data!.edge.label === "veth" ? pointAlong(points, 0.5) : undefined;
  return (
    <>
      <path
        className={`edge ${data!.edge.style ?? ""} ${data!.classes}`}
        data-edge={edgeId(data!.edge)}
        d={d}
      />
      {middle && (
        <text className="edge-label" x={middle.x} y={middle.y + 4}>
          veth
        </text>
      )}
    </>
  );
});

const NODE_TYPES = { box: BoxNode };
const EDGE_TYPES = { path: PathEdge };

interface MapProps {
  view: Layout;
  walk?: MapWalk;
  from?: string;
  to?: string;
  /** The namespace (or segment box) whose tables are open. */
  inspected?: string;
  /** Nodes where the kernel refused an entry the provider asked for. */
  refused?: ReadonlySet<string>;
  /** NetworkPolicy from one source: a line to every peer it may or may not reach, by map name. */
  reach?: { from: string; peers: ReadonlyMap<string, PeerReach> };
  onBox: (b: Box) => void;
}

export function TopologyMap(props: MapProps) {
  return (
    <div className="map">
      <div className="frame">
        <ReactFlowProvider>
          <Flow {...props} />
        </ReactFlowProvider>
        {props.reach && !props.walk && (
          <div className="reach-legend" data-testid="reach-legend">
            <strong>NetworkPolicy from {props.reach.from}</strong>
            {(["allowed", "partial", "denied"] as const).map((r) => (
              <span key={r}>
                <svg width="34" height="10" aria-hidden="true">
                  <path className={`reach-line ${r}`} d="M2,5 L32,5" />
                </svg>
                {REACH_WORDS[r]}
              </span>
            ))}
            <span>click a peer to trace to it</span>
          </div>
        )}
      </div>
    </div>
  );
}

function Flow({ view, walk, from, to, inspected, refused, reach, onBox }: MapProps) {
  const flow = useReactFlow();
  const activate = useRef(onBox);
  activate.current = onBox;
  const onActivate = useMemo(() => (b: Box) => activate.current(b), []);
  const nodes: FlowNode<BoxData>[] = useMemo(() => {
    const classesOf = (b: Box) =>
      [
        walk?.visited.has(b.id) ? "visited" : "",
        b.id === walk?.current ? "current" : "",
        b.ns !== undefined && b.ns === from ? "source" : "",
        b.ns !== undefined && b.ns === to ? "destination" : "",
        b.kind === "node" && b.ns !== undefined && refused?.has(b.ns) ? "refused" : "",
        inspected !== undefined && (b.id === inspected || (b.kind !== "device" && b.ns === inspected))
          ? "inspected"
          : "",
      ].join(" ");
    // A grid's boxes are drawn by their group box.
    const cells = new Map<string, Cell[]>();
    for (const b of view.boxes)
      if (b.cell && b.parent) {
        const list = cells.get(b.parent) ?? [];
        list.push({ box: b, classes: classesOf(b) });
        cells.set(b.parent, list);
      }
    return (
      // Node boxes first: the devices and pods inside them are drawn over them.
      [...view.boxes]
        .filter((b) => !b.cell)
        .sort((a, b) => Number(Boolean(b.container)) - Number(Boolean(a.container)))
        .map((b) => ({
          id: b.id,
          type: "box",
          position: { x: b.x, y: b.y },
          width: b.width,
          height: b.height,
          draggable: false,
          selectable: false,
          focusable: false,
          data: {
            box: b,
            onActivate,
            classes: classesOf(b),
            ...(cells.has(b.id) ? { cells: cells.get(b.id)! } : {}),
          },
        }))
    );
  }, [view, walk?.visited, walk?.current, from, to, inspected, refused, onActivate]);
  const edges: FlowEdge<PathData>[] = useMemo(
    () =>
      view.edges.map((e) => ({
        id: edgeId(e),
        source: e.from,
        target: e.to,
        type: "path",
        focusable: false,
        selectable: false,
        data: { edge: e, classes: walk?.crossed.has(edgeId(e)) ? "crossed" : "" },
      })),
    [view, walk?.crossed],
  );

  // Follow the packet: when its box is off screen, bring it to the middle.
  const current = walk?.current ? view.boxes.find((b) => b.id === walk.current) : undefined;
  const follow = useRef<() => void>(() => {});
  const width = useStore((s) => s.width);
  const height = useStore((s) => s.height);
  follow.current = () => {
    if (!current) return;
    const { x, y, zoom } = flow.getViewport();
    const left = current.x * zoom + x;
    const top = current.y * zoom + y;
    const inside =
      left > 20 &&
      top > 20 &&
      left + current.width * zoom < width - 20 &&
      top + current.height * zoom < height - 20;
    if (!inside)
      void flow.setCenter(current.x + current.width / 2, current.y + current.height / 2, {
        zoom,
        duration: 250,
      });
  };
  useEffect(() => follow.current(), [current]);

  // A new map (another scenario, a segment expanded) or a resized window is fitted again, and the
  // packet, if the fit left it off screen, followed.
  useEffect(() => {
    const id = requestAnimationFrame(() => void flow.fitView(FIT).then(() => follow.current()));
    return () => cancelAnimationFrame(id);
  }, [view, flow, width, height]);

  return (
    <ReactFlow
      className="topology"
      nodes={nodes}
      edges={edges}
      nodeTypes={NODE_TYPES}
      edgeTypes={EDGE_TYPES}
      nodesDraggable={false}
      nodesConnectable={false}
      nodesFocusable={false}
      edgesFocusable={false}
      elementsSelectable={false}
      onlyRenderVisibleElements={nodes.length > CULL_ABOVE}
      minZoom={0.02}
      maxZoom={3}
      fitView
      fitViewOptions={FIT}
      aria-label="cluster topology"
    >
      <Controls showInteractive={false} position="top-right" />
      <ViewportPortal>
        <svg className="walk-layer" width={1} height={1} aria-hidden="true">
          <defs>
            <marker
              id="arrow"
              viewBox="0 0 10 10"
              refX="8"
              refY="5"
              markerWidth="7"
              markerHeight="7"
              orient="auto"
            >
              <path d="M0,0 L10,5 L0,10 z" fill="#c2410c" />
            </marker>
            {(["allowed", "partial", "denied"] as const).map((r) => (
              <marker
                key={r}
                id={`reach-${r}`}
                className={`reach-marker ${r}`}
                viewBox="-6 -6 12 12"
                refX="0"
                refY="0"
                markerWidth="9"
                markerHeight="9"
                orient="auto"
              >
                {r === "denied" ? <path d="M-4,-4 L4,4 M4,-4 L-4,4" /> : <path d="M-5,-5 L5,0 L-5,5 z" />}
              </marker>
            ))}
          </defs>
          {reach && !walk && <ReachOverlay view={view} reach={reach} />}
          {walk && <WalkOverlay view={view} walk={walk} />}
        </svg>
      </ViewportPortal>
    </ReactFlow>
  );
}

const centre = (b: Box): Point => ({ x: b.x + b.width / 2, y: b.y + b.height / 2 });

/** Where the line from `p` to the centre of `b` meets b's border (the arrow stops there). */
function border(p: Point, b: Box): Point {
  const c = centre(b);
  const dx = p.x - c.x;
  const dy = p.y - c.y;
  const scale = Math.min(
    dx ? b.width / 2 / Math.abs(dx) : Infinity,
    dy ? b.height / 2 / Math.abs(dy) : Infinity,
  );
  return scale >= 1 ? p : { x: c.x + dx * scale, y: c.y + dy * scale };
}

/**
 * NetworkPolicy from one source: a curved line to each peer, solid green where every port it listens
 * on is allowed, dashed amber where some are, dotted red ending in a cross where none is.
 */
function ReachOverlay({ view, reach }: { view: Layout; reach: NonNullable<MapProps["reach"]> }) {
  const byNs = useMemo(() => new Map(view.boxes.map((b) => [b.id, b])), [view]);
  const source = byNs.get(`ns:${reach.from}`);
  if (!source) return null;
  const s = centre(source);
  return (
    <g className="reach" data-testid="reach">
      {[...reach.peers].map(([name, peer]) => {
        const box = byNs.get(`ns:${name}`);
        if (!box) return null; // its node is in a collapsed segment
        const t = centre(box);
        // Arched over the boxes between, higher the farther the peer: lines to pods side by side in a
        // row part instead of lying on top of each other.
        const bend = { x: (s.x + t.x) / 2, y: Math.min(s.y, t.y) - Math.abs(t.x - s.x) * 0.3 - 30 };
        const start = border(bend, source);
        const end = border(bend, box);
        return (
          <path
            key={name}
            className={`reach-line ${peer.reach}`}
            data-reach={`${name}:${peer.reach}`}
            d={`M${start.x},${start.y} Q${bend.x},${bend.y} ${end.x},${end.y}`}
            markerEnd={`url(#reach-${peer.reach})`}
          >
            <title>
              {`${reach.from} to ${name}: ${REACH_WORDS[peer.reach]}` +
                (peer.open.length ? `; open ${peer.open.join(", ")}` : "") +
                (peer.closed.length ? `; closed ${peer.closed.join(", ")}` : "")}
            </title>
          </path>
        );
      })}
    </g>
  );
}

function WalkOverlay({ view, walk }: { view: Layout; walk: MapWalk }) {
  const failure = walk.failure && view.boxes.find((b) => b.id === walk.failure!.box);
  const legPoints = useMemo(
    () => walk.legs.flatMap((l) => (l.forward ? l.edge.points : [...l.edge.points].reverse())),
    [walk.legs],
  );
  return (
    <g className="walk">
      {legPoints.length > 1 && (
        <polyline
          className="active-link"
          data-testid="active-link"
          points={legPoints.map((p) => `${p.x},${p.y}`).join(" ")}
          markerEnd="url(#arrow)"
        />
      )}
      {failure && (
        <g className="failure" data-testid="failure">
          <g transform={`translate(${failure.x + failure.width - 2},${failure.y + 2})`}>
            <circle r={11} />
            <path d="M-5,-5 L5,5 M5,-5 L-5,5" />
          </g>
          <text x={failure.x + failure.width / 2} y={failure.y + failure.height + 16}>
            {walk.failure!.label}
          </text>
        </g>
      )}
      <Packet walk={walk} />
    </g>
  );
}

/** The moving packet; positioned by the animation frame loop, not by React, so a frame costs one attribute. */
function Packet({ walk }: { walk: MapWalk }) {
  const ref = useRef<SVGGElement>(null);
  const { line, duration, onArrive } = walk;
  const arrive = useRef(onArrive);
  arrive.current = onArrive;
  useEffect(() => {
    const start = performance.now();
    let frame = 0;
    const place = (t: number) => {
      const p = pointAlong(line, t);
      ref.current?.setAttribute("transform", `translate(${p.x},${p.y})`);
    };
    const tick = (now: number) => {
      const t = duration > 0 ? (now - start) / duration : 1;
      place(t);
      if (t < 1) frame = requestAnimationFrame(tick);
      else arrive.current();
    };
    place(duration > 0 ? 0 : 1);
    frame = requestAnimationFrame(tick);
    return () => cancelAnimationFrame(frame);
  }, [walk.key]);
  if (!line.length) return null;
  // Fragments are drawn as a stack of packets, each offset up and right of the one before.
  const stack = Array.from({ length: Math.min(walk.fragments, 3) }, (_, i) => i * 5).reverse();
  return (
    <g
      ref={ref}
      className={`packet ${walk.encapsulated ? "encapsulated" : ""}`}
      data-testid="packet"
      data-fragments={walk.fragments}
    >
      {stack.map((d) => (
        <g key={d} transform={`translate(${d},${-d})`} className={d ? "fragment" : undefined}>
          {walk.encapsulated && <rect className="outer" x={-21} y={-13} width={42} height={26} rx={4} />}
          <rect className="inner" x={-13} y={-7} width={26} height={14} rx={3} />
        </g>
      ))}
      <text y={(walk.encapsulated ? -17 : -11) - stack[0]!}>
        {walk.fragments > 1 ? `${walk.n} (${walk.fragments} fragments)` : walk.n}
      </text>
    </g>
  );
}
