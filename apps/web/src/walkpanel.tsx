/** Beside the map: the walk's controls, the current step's headers (outer around inner), and the steps. */
import type { Trace } from "@podnet/sim";
import type { WalkTrace } from "./protocol.js";
import { useEffect, useRef } from "react";
import type { Fragments, HeaderLine, Step } from "./walk.js";

export const SPEEDS = [0.5, 1, 2, 4];

/** Player icons as SVG paths: the symbol fonts a browser has vary too much to rely on. */
const ICONS = {
  first: "M2 2h2v12H2zM14 2v12L5 8z",
  back: "M12 2v12L3 8z",
  play: "M4 2v12l10-6z",
  pause: "M3 2h4v12H3zM9 2h4v12H9z",
  forward: "M4 2v12l9-6z",
  last: "M12 2h2v12h-2zM2 2v12l9-6z",
};

const Icon = ({ d }: { d: string }) => (
  <svg viewBox="0 0 16 16" aria-hidden="true">
    <path d={d} />
  </svg>
);

const OUTCOME_WORDS: Record<Trace["outcome"], string> = {
  reached: "reached",
  refused: "refused",
  "wrong-destination": "wrong destination",
  unreachable: "unreachable",
  dropped: "dropped",
};

export const outcomeWords = (o: Trace["outcome"]): string => OUTCOME_WORDS[o];

export interface WalkControls {
  at: number;
  playing: boolean;
  speed: number;
  withReply: boolean;
  onAt: (i: number) => void;
  onPlay: (playing: boolean) => void;
  onSpeed: (speed: number) => void;
  onReply: (withReply: boolean) => void;
  /** Trace through this endpoint of the Service, or a random draw again (undefined). */
  onEndpoint: (pod: string | undefined) => void;
}

export function WalkPanel({
  trace,
  steps,
  lines,
  phases,
  fragments,
  controls,
  pcapUrl,
}: {
  trace: WalkTrace;
  steps: Step[];
  lines: HeaderLine[];
  /** Each step's part of the exchange (walk.ts `phases`): headings in the list, a line at the step. */
  phases: string[];
  fragments: (Fragments | undefined)[];
  controls: WalkControls;
  pcapUrl?: string;
}) {
  const { at, playing, speed, withReply, onAt, onPlay, onSpeed, onReply, onEndpoint } = controls;
  const step = steps[at];
  const last = steps.length - 1;
  // The list scrolls on its own (beside the current step's headers): keep the current step in it in
  // view, without scrolling the page.
  const list = useRef<HTMLOListElement>(null);
  useEffect(() => {
    const ol = list.current;
    const item = ol?.querySelector<HTMLElement>('[aria-current="step"]');
    if (!ol || !item || ol.scrollHeight <= ol.clientHeight) return;
    const top = item.offsetTop; // the list is positioned: offsets are within it
    if (top < ol.scrollTop) ol.scrollTop = top - 24;
    else if (top + item.offsetHeight > ol.scrollTop + ol.clientHeight)
      ol.scrollTop = top + item.offsetHeight - ol.clientHeight + 8;
  }, [at, steps]);
  const cut = fragments[at];
  return (
    <section className="trace" aria-label="trace">
      <p className={`outcome ${trace.outcome}`} data-testid="outcome">
        <strong>{trace.outcome}</strong>: {trace.reason}
      </p>
      {trace.socket && (
        <p className="socket-note" data-testid="socket-note">
          {trace.socket}
        </p>
      )}
      {trace.draw && (
        <p className="draw-note" data-testid="draw-note">
          {trace.draw.service} has {trace.draw.endpoints.length} endpoints:{" "}
          {trace.draw.chosen
            ? "this trace goes through the one chosen here; kube-proxy picks one at random for each connection."
            : "kube-proxy picks one at random for each connection, and this trace is one draw."}{" "}
          <label>
            Endpoint{" "}
            <select
              name="endpoint"
              aria-label="endpoint"
              value={trace.draw.chosen ?? ""}
              onChange={(e) => onEndpoint(e.target.value || undefined)}
            >
              <option value="">random draw</option>
              {trace.draw.endpoints.map((pod) => (
                <option key={pod} value={pod}>
                  {pod}
                </option>
              ))}
            </select>
          </label>
        </p>
      )}
      {trace.policy && (
        <div className={`verdict ${trace.policy.allowed ? "allowed" : "denied"}`} data-testid="verdict">
          <strong>NetworkPolicy: {trace.policy.allowed ? "allowed" : "denied"}</strong>
          <ul>
            {trace.policy.explanation.map((line) => (
              <li key={line}>{line}</li>
            ))}
          </ul>
        </div>
      )}
      <div className="controls" role="toolbar" aria-label="walk controls">
        <button type="button" onClick={() => onAt(0)} disabled={at === 0} aria-label="first step">
          <Icon d={ICONS.first} />
        </button>
        <button type="button" onClick={() => onAt(at - 1)} disabled={at === 0} aria-label="step back">
          <Icon d={ICONS.back} />
        </button>
        <button
          type="button"
          className="play"
          onClick={() => onPlay(!playing)}
          aria-label={playing ? "pause" : "play"}
          aria-pressed={playing}
        >
          <Icon d={playing ? ICONS.pause : ICONS.play} /> {playing ? "pause" : "play"}
        </button>
        <button type="button" onClick={() => onAt(at + 1)} disabled={at >= last} aria-label="step forward">
          <Icon d={ICONS.forward} />
        </button>
        <button type="button" onClick={() => onAt(last)} disabled={at >= last} aria-label="last step">
          <Icon d={ICONS.last} />
        </button>
        <label>
          speed{" "}
          <select name="speed" value={speed} onChange={(e) => onSpeed(Number(e.target.value))}>
            {SPEEDS.map((s) => (
              <option key={s} value={s}>
                {s}×
              </option>
            ))}
          </select>
        </label>
        <span className="position" data-testid="position">
          step {at + 1} of {steps.length}
        </span>
      </div>
      <p className="keys">← → step, or press play.</p>
      {step && (
        <div className="current-hop" aria-live="polite">
          <h3>
            <span className="n">{step.n}</span> {step.hop.direction === "reply" ? "← reply" : "→ request"} at{" "}
            <code>
              {step.hop.ns}
              {step.hop.dev ? ` ${step.hop.dev}` : ""}
            </code>
            : <span className={`event ${step.hop.event}`}>{step.hop.event}</span>
          </h3>
          <p className="phase-now" data-testid="phase">
            {phases[at]}
            {cut && (
              <span className="fragments" data-testid="fragments">
                {" "}
                · travelling as {cut.count} fragments of at most {cut.largest} bytes
              </span>
            )}
          </p>
          <HopDetail detail={step.hop.detail} />
          <Headers lines={lines} />
        </div>
      )}
      <div className="list-options">
        <label>
          <input
            type="checkbox"
            name="with-reply"
            checked={withReply}
            onChange={(e) => onReply(e.target.checked)}
          />{" "}
          include the reply
        </label>
        {pcapUrl && (
          <a className="pcap" href={pcapUrl} download="trace.pcapng">
            Download pcap
          </a>
        )}
      </div>
      <ol className="hops" aria-label="steps" ref={list}>
        {steps.map((s, i) => (
          <li key={s.index}>
            {phases[i] !== phases[i - 1] && <h4 className="phase">{phases[i]}</h4>}
            <button
              type="button"
              className={`hop ${s.hop.event} ${i === at ? "selected" : ""}`}
              aria-current={i === at ? "step" : undefined}
              onClick={() => onAt(i)}
              data-hop={s.hop.event}
            >
              <span className="n">{s.n}</span>{" "}
              <span className="dir">{s.hop.direction === "reply" ? "←" : "→"}</span>{" "}
              <span className="where">
                {s.hop.ns}
                {s.hop.dev ? ` ${s.hop.dev}` : ""}
              </span>{" "}
              <span className="event">{s.hop.event}</span> {s.hop.detail}
            </button>
          </li>
        ))}
      </ol>
    </section>
  );
}

const STATUS_WORDS: Partial<Record<HeaderLine["status"], string>> = {
  changed: "changed",
  added: "added",
  removed: "removed",
};

function HeaderItem({ line }: { line: HeaderLine }) {
  return (
    <li className={line.status} data-kind={line.kind}>
      {STATUS_WORDS[line.status] && <span className="badge">{STATUS_WORDS[line.status]}</span>}
      {line.status === "removed" ? (
        <del>{line.text}</del>
      ) : (
        line.tokens.map((t, i) => (
          <span key={i}>
            {i > 0 && " "}
            {t.before !== undefined ? (
              <span className="nat">
                <del>{t.before}</del> → <ins>{t.text}</ins>
              </span>
            ) : (
              t.text
            )}
          </span>
        ))
      )}
    </li>
  );
}

/** The packet as nested boxes: the outer headers around the inner packet, and what this step took off. */
export function Headers({ lines }: { lines: HeaderLine[] }) {
  const outer = lines.filter((l) => l.group === "outer" && l.status !== "removed");
  const inner = lines.filter((l) => l.group === "inner");
  const removed = lines.filter((l) => l.status === "removed");
  const quoted = lines.filter((l) => l.group === "quoted");
  const innerList = (
    <div className="header-group inner" aria-label={outer.length ? "inner headers" : "headers"}>
      <h4>{outer.length ? "inner packet (pod to pod)" : "packet"}</h4>
      <ul>
        {inner.map((l, i) => (
          <HeaderItem key={i} line={l} />
        ))}
      </ul>
      {quoted.length > 0 && (
        <div className="header-group quoted" aria-label="quoted packet">
          <h4>quoted inside the error: the packet it is about</h4>
          <ul>
            {quoted.map((l, i) => (
              <HeaderItem key={i} line={l} />
            ))}
          </ul>
        </div>
      )}
    </div>
  );
  return (
    <div className="headers" aria-label="headers at this step">
      {outer.length ? (
        <div className="header-group outer" aria-label="outer headers">
          <h4>outer headers (node to node)</h4>
          <ul>
            {outer.map((l, i) => (
              <HeaderItem key={i} line={l} />
            ))}
          </ul>
          {innerList}
        </div>
      ) : (
        innerList
      )}
      {removed.length > 0 && (
        <div className="header-group removed" aria-label="removed headers">
          <h4>taken off at this step</h4>
          <ul>
            {removed.map((l, i) => (
              <HeaderItem key={i} line={l} />
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}

/**
 * A step's sentence. A filter hook passed (`--hooks`) names every rule that let the packet on, a
 * paragraph's worth: listed one rule a line instead.
 */
function HopDetail({ detail }: { detail: string }) {
  const accepted = /^(filter \w+: ACCEPT by) (.*)$/.exec(detail);
  if (!accepted) return <p className="detail">{detail}</p>;
  return (
    <div className="detail">
      <p>{accepted[1]}</p>
      <ol className="rules">
        {accepted[2]!.split(" → ").map((rule, i) => (
          <li key={i}>
            <code>{rule}</code>
          </li>
        ))}
      </ol>
    </div>
  );
}
