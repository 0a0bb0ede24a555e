/** The topology view: the map and, beside it, the walk of the current trace with its player. */
import { useCallback, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { TopologyMap, edgeId, type MapWalk } from "./map.js";
import type { WalkTrace, Snapshot } from "./protocol.js";
import { layout, type Box } from "./topology.js";
import {
  encapsulated,
  failureStep,
  fragmentsAt,
  headerDiff,
  hopLocator,
  legsBetween,
  phases,
  previousStep,
  quotedDiff,
  travelLine,
  walkSteps,
} from "./walk.js";
import { WalkPanel, outcomeWords } from "./walkpanel.js";
import { policySource, reachFrom } from "./policy.js";

/** How long the packet takes from one step's device to the next at 1×, and how long it rests there. */
const MOVE_MS = 650;
const REST_MS = 350;

export function Explorer({
  snapshot,
  trace,
  from,
  to,
  inspected,
  step,
  onStep,
  onBox,
  onEndpoint,
  pcapUrl,
  children,
}: {
  snapshot: Snapshot;
  trace?: WalkTrace;
  from?: string;
  to?: string;
  inspected?: string;
  step?: number;
  onStep: (step: number) => void;
  onBox: (b: Box) => void;
  /** Trace through this endpoint of the Service, or a random draw again (undefined). */
  onEndpoint: (pod: string | undefined) => void;
  pcapUrl?: string;
  /** What else goes beside the map (a node's tables). */
  children?: ReactNode;
}) {
  // Segments whose summary box was expanded into their nodes.
  const [expanded, setExpanded] = useState<ReadonlySet<string>>(new Set());
  const view = useMemo(() => layout(snapshot, expanded), [snapshot, expanded]);
  const ids = useMemo(() => new Set(view.boxes.map((b) => b.id)), [view]);
  const [withReply, setWithReply] = useState(true);
  const steps = useMemo(
    () => (trace ? walkSteps(trace, withReply, hopLocator(snapshot, ids)) : []),
    [trace, withReply, snapshot, ids],
  );
  const legs = useMemo(
    () => steps.map((s, i) => legsBetween(view.edges, steps[i - 1]?.box, s.box)),
    [steps, view.edges],
  );
  const fragments = useMemo(() => fragmentsAt(steps), [steps]);
  const phaseNames = useMemo(() => (trace ? phases(trace, steps) : []), [trace, steps]);
  const refused = useMemo(() => new Set(snapshot.refusals.map((r) => r.node)), [snapshot]);
  const at = Math.min(Math.max(step ?? 0, 0), Math.max(steps.length - 1, 0));
  const [playing, setPlaying] = useState(false);
  const [speed, setSpeed] = useState(1);
  // Moving forward animates the packet along the links; jumping back or far shows it at once.
  const [animated, setAnimated] = useState(false);
  const go = useCallback(
    (i: number, animate = false) => {
      const next = Math.min(Math.max(i, 0), steps.length - 1);
      setAnimated(animate && next === at + 1);
      onStep(next);
    },
    [steps.length, at, onStep],
  );
  useEffect(() => setPlaying(false), [trace]);

  // Arrow keys step, wherever the focus is except in a form field.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      if (!steps.length || /^(INPUT|SELECT|TEXTAREA)$/.test(t.tagName) || e.altKey || e.metaKey || e.ctrlKey)
        return;
      if (e.key === "ArrowRight") go(at + 1, true);
      else if (e.key === "ArrowLeft") go(at - 1);
      else return;
      e.preventDefault();
      setPlaying(false);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [go, at, steps.length]);

  const rest = useRef<ReturnType<typeof setTimeout>>(undefined);
  useEffect(() => () => clearTimeout(rest.current), [at, playing]);
  const onArrive = useCallback(() => {
    if (!playing) return;
    if (at >= steps.length - 1) return setPlaying(false);
    rest.current = setTimeout(() => go(at + 1, true), REST_MS / speed);
  }, [playing, at, steps.length, speed, go]);

  const current = steps[at];
  const failure = trace ? failureStep(trace, steps) : undefined;
  const walk: MapWalk | undefined = useMemo(() => {
    if (!trace || !current) return undefined;
    const crossed = new Set<string>();
    const visited = new Set<string>();
    for (let i = 0; i <= at; i++) {
      for (const l of legs[i] ?? []) crossed.add(edgeId(l.edge));
      if (steps[i]!.box) visited.add(steps[i]!.box!);
    }
    const line = travelLine(view, steps[at - 1]?.box, current.box, legs[at] ?? []);
    return {
      visited,
      ...(current.box ? { current: current.box } : {}),
      crossed,
      legs: legs[at] ?? [],
      line,
      duration: animated ? MOVE_MS / speed : 0,
      encapsulated: encapsulated(current.hop),
      fragments: fragments[at]?.count ?? 1,
      n: current.n,
      ...(failure?.box ? { failure: { box: failure.box, label: outcomeWords(trace.outcome) } } : {}),
      key: `${at}:${animated}:${steps.length}:${view.width}`,
      onArrive,
    };
  }, [trace, current, at, legs, steps, view, animated, speed, failure, fragments, onArrive]);

  const lines = useMemo(() => {
    if (!current) return [];
    const previous = previousStep(steps, at)?.hop;
    return [
      ...headerDiff(previous?.packet.headers, current.hop.packet.headers),
      ...quotedDiff(previous, current.hop),
    ];
  }, [steps, at, current]);

  // NetworkPolicy from the chosen source, until a trace's walk takes the map.
  const reach = useMemo(() => {
    const table = snapshot.policy;
    const source = table && !trace ? policySource(table, from) : -1;
    return source < 0 ? undefined : { from: table!.sources[source]!.name, peers: reachFrom(table!, source) };
  }, [snapshot, from, trace]);

  const onMapBox = (b: Box) =>
    b.kind === "summary" && b.segment ? setExpanded(new Set([...expanded, b.segment])) : onBox(b);
  return (
    <>
      <div className="canvas">
        {expanded.size > 0 && (
          <button type="button" className="collapse" onClick={() => setExpanded(new Set())}>
            collapse the expanded segments
          </button>
        )}
        <TopologyMap
          view={view}
          {...(walk ? { walk } : {})}
          {...(from ? { from } : {})}
          {...(to ? { to } : {})}
          {...(inspected ? { inspected } : {})}
          refused={refused}
          {...(reach ? { reach } : {})}
          onBox={onMapBox}
        />
      </div>
      <aside>
        {trace && (
          <WalkPanel
            trace={trace}
            steps={steps}
            lines={lines}
            phases={phaseNames}
            fragments={fragments}
            controls={{
              at,
              playing,
              speed,
              withReply,
              onAt: (i) => {
                setPlaying(false);
                go(i, i === at + 1);
              },
              onPlay: (p) => {
                if (p && at >= steps.length - 1) go(0);
                else if (p) go(at + 1, true);
                setPlaying(p);
              },
              onSpeed: setSpeed,
              onReply: setWithReply,
              onEndpoint,
            }}
            {...(pcapUrl ? { pcapUrl } : {})}
          />
        )}
        {children}
      </aside>
    </>
  );
}
