/**
 * The map: the laid-out topology as SVG, with zoom (wheel, buttons) and pan (drag), and the walk drawn on
 * it — the links crossed so far, the current device and link with the direction of travel, the packet
 * (a packet inside a packet when encapsulated) moving along the links, and the failure marked where it
 * happened.
 */
import {
  useEffect,
  useLayoutEffect,
  useMemo,
  useRef,
  useState,
  type PointerEvent,
  type WheelEvent,
} from "react";
import type { Box, Layout } from "./topology.js";
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
  n: number;
  /** Where the walk failed and how (outcome words), shown from the start. */
  failure?: { box: string; label: string };
  /** Changes whenever the packet should start moving again. */
  key: string;
  onArrive: () => void;
}

export const edgeId = (e: { from: string; to: string }): string => `${e.from}>${e.to}`;

interface ViewBox {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Text stays at least this large on screen when the map first fits itself to the window. */
const MIN_FIT_SCALE = 0.85;

function fit(view: Layout, width: number, height: number): ViewBox {
  const w = Math.max(view.width, 200);
  const h = Math.max(view.height, 120);
  const scale = Math.max(MIN_FIT_SCALE, Math.min(1.25, width / w, height / h));
  const vw = width / scale;
  const vh = height / scale;
  // Centred when it fits; otherwise from the top left, and the rest is a drag or a wheel away.
  return { x: vw > w ? (w - vw) / 2 : 0, y: vh > h ? (h - vh) / 2 : 0, w: vw, h: vh };
}

export function TopologyMap({
  view,
  walk,
  from,
  to,
  onBox,
}: {
  view: Layout;
  walk?: MapWalk;
  from?: string;
  to?: string;
  onBox: (b: Box) => void;
}) {
  const frame = useRef<HTMLDivElement>(null);
  const [size, setSize] = useState({ width: 800, height: 500 });
  const [box, setBox] = useState<ViewBox>(() => fit(view, 800, 500));
  useLayoutEffect(() => {
    const el = frame.current;
    if (!el) return;
    const measure = () => setSize({ width: el.clientWidth, height: el.clientHeight });
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  useLayoutEffect(() => {
    setBox(fit(view, size.width, size.height));
  }, [view, size.width, size.height]);

  // Follow the packet: when its box is off screen, bring it to the middle.
  const current = walk?.current ? view.boxes.find((b) => b.id === walk.current) : undefined;
  useEffect(() => {
    if (!current) return;
    setBox((v) => {
      const margin = 30;
      const inside =
        current.x - margin > v.x &&
        current.x + current.width + margin < v.x + v.w &&
        current.y - margin > v.y &&
        current.y + current.height + margin < v.y + v.h;
      if (inside) return v;
      return {
        ...v,
        x: current.x + current.width / 2 - v.w / 2,
        y: current.y + current.height / 2 - v.h / 2,
      };
    });
  }, [current]);

  const zoom = (factor: number, at?: Point) =>
    setBox((v) => {
      const p = at ?? { x: v.x + v.w / 2, y: v.y + v.h / 2 };
      const w = Math.min(Math.max(v.w * factor, 100), Math.max(view.width, 400) * 4);
      const k = w / v.w;
      return { x: p.x - (p.x - v.x) * k, y: p.y - (p.y - v.y) * k, w, h: v.h * k };
    });
  const toMap = (clientX: number, clientY: number): Point => {
    const r = frame.current!.getBoundingClientRect();
    return {
      x: box.x + ((clientX - r.left) / r.width) * box.w,
      y: box.y + ((clientY - r.top) / r.height) * box.h,
    };
  };
  const drag = useRef<{ x: number; y: number; moved: boolean } | null>(null);
  const onPointerDown = (e: PointerEvent) => {
    drag.current = { x: e.clientX, y: e.clientY, moved: false };
  };
  const onPointerMove = (e: PointerEvent) => {
    const d = drag.current;
    if (!d) return;
    const dx = e.clientX - d.x;
    const dy = e.clientY - d.y;
    if (!d.moved && Math.hypot(dx, dy) < 4) return;
    if (!d.moved) (e.currentTarget as Element).setPointerCapture(e.pointerId);
    d.moved = true;
    d.x = e.clientX;
    d.y = e.clientY;
    const r = frame.current!.getBoundingClientRect();
    setBox((v) => ({ ...v, x: v.x - (dx / r.width) * v.w, y: v.y - (dy / r.height) * v.h }));
  };
  const onPointerUp = () => {
    // A drag that moved is a pan, not a click on the box it ended over.
    setTimeout(() => (drag.current = null));
  };
  const onWheel = (e: WheelEvent) => zoom(e.deltaY > 0 ? 1.15 : 1 / 1.15, toMap(e.clientX, e.clientY));
  const activate = (b: Box) => {
    if (!drag.current?.moved) onBox(b);
  };

  return (
    <div className="map">
      <div className="zoom" role="toolbar" aria-label="zoom">
        <button type="button" onClick={() => zoom(1 / 1.25)} aria-label="zoom in">
          +
        </button>
        <button type="button" onClick={() => zoom(1.25)} aria-label="zoom out">
          −
        </button>
        <button type="button" onClick={() => setBox(fit(view, size.width, size.height))}>
          fit
        </button>
      </div>
      <div
        className="frame"
        ref={frame}
        onPointerDown={onPointerDown}
        onPointerMove={onPointerMove}
        onPointerUp={onPointerUp}
        onWheel={onWheel}
      >
        <svg
          className="topology"
          width={size.width}
          height={size.height}
          viewBox={`${box.x} ${box.y} ${box.w} ${box.h}`}
          role="group"
          aria-label="cluster topology"
        >
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
          </defs>
          {view.edges.map((e) => (
            <polyline
              key={edgeId(e)}
              className={`edge ${walk?.crossed.has(edgeId(e)) ? "crossed" : ""}`}
              data-edge={edgeId(e)}
              points={e.points.map((p) => `${p.x},${p.y}`).join(" ")}
            />
          ))}
          {view.boxes.map((b) => (
            <MapBox
              key={b.id}
              b={b}
              classes={[
                walk?.visited.has(b.id) ? "visited" : "",
                b.id === walk?.current ? "current" : "",
                b.ns !== undefined && b.ns === from ? "source" : "",
                b.ns !== undefined && b.ns === to ? "destination" : "",
              ]}
              onActivate={activate}
            />
          ))}
          {walk && <WalkOverlay view={view} walk={walk} />}
        </svg>
      </div>
    </div>
  );
}

function MapBox({ b, classes, onActivate }: { b: Box; classes: string[]; onActivate: (b: Box) => void }) {
  return (
    <g
      className={["box", b.kind, ...classes].join(" ")}
      data-box={b.id}
      tabIndex={0}
      role="button"
      aria-label={b.label.join(", ")}
      onClick={() => onActivate(b)}
      onKeyDown={(e) => (e.key === "Enter" || e.key === " ") && (e.preventDefault(), onActivate(b))}
    >
      <rect x={b.x} y={b.y} width={b.width} height={b.height} rx={6} />
      {b.label.map((l, i) => (
        <text key={i} x={b.x + 8} y={b.y + 16 + i * 15} className={i === 0 ? "title" : ""}>
          {l}
        </text>
      ))}
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
    <g className="walk" pointerEvents="none">
      {legPoints.length > 1 && (
        <polyline
          className="active-link"
          data-testid="active-link"
          points={legPoints.map((p) => `${p.x},${p.y}`).join(" ")}
          markerEnd="url(#arrow)"
        />
      )}
      {failure && (
        <g
          className="failure"
          data-testid="failure"
          transform={`translate(${failure.x + failure.width - 4},${failure.y + 4})`}
        >
          <circle r={11} />
          <path d="M-5,-5 L5,5 M5,-5 L-5,5" />
          <text x={14} y={5}>
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
  return (
    <g ref={ref} className={`packet ${walk.encapsulated ? "encapsulated" : ""}`} data-testid="packet">
      {walk.encapsulated ? (
        <>
          <rect className="outer" x={-21} y={-13} width={42} height={26} rx={4} />
          <rect className="inner" x={-13} y={-7} width={26} height={14} rx={3} />
        </>
      ) : (
        <rect className="inner" x={-13} y={-7} width={26} height={14} rx={3} />
      )}
      <text y={walk.encapsulated ? -17 : -11}>{walk.n}</text>
    </g>
  );
}
