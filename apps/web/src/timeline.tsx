/** A scenario's events as a timeline to scrub: the map follows, and each event's table changes are listed. */
import type { TimelineStep } from "./protocol.js";

export function Timeline({
  steps,
  at,
  onAt,
}: {
  steps: TimelineStep[];
  at: number;
  onAt: (i: number) => void;
}) {
  const step = steps[at]!;
  const nodes = step.snapshot.nodes.length;
  const pods = step.snapshot.pods.length;
  return (
    <section className="timeline" aria-label="timeline">
      <div className="scrub">
        <label htmlFor="time">Time</label>
        <input
          id="time"
          name="time"
          type="range"
          min={0}
          max={steps.length - 1}
          value={at}
          onChange={(e) => onAt(Number(e.target.value))}
          aria-valuetext={`${at === 0 ? "start" : `t=${step.at}`}: ${step.description}`}
        />
        <span className="now" data-testid="moment">
          {at === 0 ? "start" : `t=${step.at}`}: {step.description} — {nodes} nodes, {pods} pods
        </span>
      </div>
      <ol className="events">
        {steps.map((s, i) => (
          <li key={i}>
            <button type="button" aria-current={i === at ? "step" : undefined} onClick={() => onAt(i)}>
              {i === 0 ? "start" : `t=${s.at}`} {i === 0 ? "" : s.description}
            </button>
          </li>
        ))}
      </ol>
      <div className="changes" aria-label="table changes">
        {at === 0 ? (
          <p>
            The cluster before its events. Move the slider to play them: the map follows, and what each event
            changed in the nodes' tables is listed here.
          </p>
        ) : step.changes.length === 0 ? (
          <p>No node's tables changed at this event.</p>
        ) : (
          // One node's changes open; several nodes' as their counts, opened on a click, so that the
          // map below stays in view (a join rewrites every node's tables).
          step.changes.map((c) => (
            <details key={c.node} open={step.changes.length === 1}>
              <summary>
                <code>{c.node}</code>: {c.added.length} added, {c.removed.length} removed
              </summary>
              <ul>
                {c.added.map((l) => (
                  <li key={`+${l}`} className="added">
                    + {l}
                  </li>
                ))}
                {c.removed.map((l) => (
                  <li key={`-${l}`} className="removed">
                    − {l}
                  </li>
                ))}
              </ul>
            </details>
          ))
        )}
      </div>
    </section>
  );
}
