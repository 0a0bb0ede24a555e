import type { NodeTables, RunResult, ScenarioIssue } from "@podnet/cluster";
import { providerNames } from "@podnet/providers";
import type { Trace } from "@podnet/sim";
import { useCallback, useEffect, useMemo, useState } from "react";
import { Simulation } from "./client.js";
import { BenchView, CompareView, NodeInspector, ScenarioEditor } from "./components.js";
import { Explorer } from "./explorer.js";
import type { Snapshot } from "./protocol.js";
import { BUNDLED } from "./scenarios.js";
import { formatState, isNavigation, parseState, type View, type ViewState } from "./url.js";

const PROVIDERS = providerNames.filter((n) => !n.endsWith("-4789"));

/** Where a packet can start: a pod, one of its containers, a node, an outside host. */
export function sources(s: Snapshot): string[] {
  return [
    ...s.pods.flatMap((p) => [p.name, ...p.containers.map((c) => `${p.name}/${c}`)]),
    ...s.nodes.map((n) => n.name),
    ...s.hosts.map((h) => h.name),
  ];
}

/** Where it can go: a pod, a node, an outside host or router, a service. */
export function destinations(s: Snapshot): string[] {
  return [
    ...s.pods.map((p) => p.name),
    ...s.nodes.map((n) => n.name),
    ...s.hosts.map((h) => h.name),
    ...s.routers.map((r) => r.name),
    ...s.services.map((x) => `svc/${x.name}`),
  ];
}

function Picker({
  label,
  name,
  value,
  options,
  onChange,
}: {
  label: string;
  name: string;
  value: string | undefined;
  options: string[];
  onChange: (v: string | undefined) => void;
}) {
  return (
    <label>
      {label}{" "}
      <select
        name={name}
        value={value ?? ""}
        onChange={(e) => onChange(e.target.value || undefined)}
        aria-label={name}
      >
        <option value="">choose…</option>
        {options.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    </label>
  );
}

export function App() {
  const sim = useMemo(() => new Simulation(), []);
  const [state, setState] = useState<ViewState>(() =>
    parseState(location.search, { scenario: "two-nodes", provider: "cbr0-host-gw" }),
  );
  const [text, setText] = useState(() => BUNDLED[state.scenario] ?? BUNDLED["two-nodes"]!);
  const [editing, setEditing] = useState(false);
  const [issues, setIssues] = useState<ScenarioIssue[]>([]);
  const [error, setError] = useState<string>();
  const [snapshot, setSnapshot] = useState<Snapshot>();
  const [trace, setTrace] = useState<Trace>();
  const [pcapUrl, setPcapUrl] = useState<string>();
  const [tables, setTables] = useState<NodeTables>();
  const [compare, setCompare] = useState<RunResult[]>();
  const [busy, setBusy] = useState(false);
  const file =
    state.scenario in BUNDLED && BUNDLED[state.scenario] === text
      ? `scenarios/${state.scenario}.yaml`
      : "pasted.yaml";

  const update = useCallback((patch: Partial<ViewState>) => {
    setState((s) => {
      const next = { ...s, ...patch };
      if (isNavigation(s, next)) history.pushState(null, "", formatState(next));
      else history.replaceState(null, "", formatState(next));
      return next;
    });
  }, []);

  const build = useCallback(async () => {
    setBusy(true);
    const reply = await sim.call({ type: "build", text, file, provider: state.provider });
    setBusy(false);
    setTrace(undefined);
    setTables(undefined);
    setCompare(undefined);
    if (!reply.ok) {
      setIssues(reply.issues ?? []);
      setError(reply.issues ? undefined : reply.message);
      setSnapshot(undefined);
      if (reply.issues) setEditing(true);
      return;
    }
    if ("snapshot" in reply) {
      setIssues([]);
      setError(undefined);
      setSnapshot(reply.snapshot);
    }
  }, [sim, text, file, state.provider]);

  useEffect(() => {
    void build();
    // Rebuild when the provider or scenario changes; the selection of pods is kept.
  }, [state.provider, state.scenario]);

  const runTrace = useCallback(
    async (from: string, to: string) => {
      const reply = await sim.call({ type: "trace", from, to });
      if (reply.ok && "trace" in reply) {
        setTrace(reply.trace);
        if (pcapUrl) URL.revokeObjectURL(pcapUrl);
        setPcapUrl(
          URL.createObjectURL(new Blob([reply.pcap as BlobPart], { type: "application/vnd.tcpdump.pcap" })),
        );
      } else if (!reply.ok) setError(reply.message);
    },
    [sim, pcapUrl],
  );

  useEffect(() => {
    if (snapshot && state.from && state.to && sources(snapshot).includes(state.from))
      void runTrace(state.from, state.to);
  }, [snapshot, state.from, state.to]);

  useEffect(() => {
    if (state.view !== "compare" || compare) return;
    setBusy(true);
    void sim.call({ type: "compare", text, file, providers: PROVIDERS }).then((reply) => {
      setBusy(false);
      if (reply.ok && "results" in reply) setCompare(reply.results);
      else if (!reply.ok) setError(reply.message);
    });
  }, [state.view, compare, sim, text, file]);

  const pick = (ns: string) => {
    if (!state.from || (state.from && state.to)) update({ from: ns, to: undefined, step: undefined });
    else update({ to: ns, step: undefined });
  };
  const inspect = async (ns: string) => {
    update({ node: ns });
    const reply = await sim.call({ type: "tables", node: ns });
    setTables(reply.ok && "tables" in reply ? reply.tables : undefined);
  };

  return (
    <div className="app">
      <header>
        <h1>podnet</h1>
        <label>
          Scenario{" "}
          <select
            value={state.scenario in BUNDLED ? state.scenario : ""}
            onChange={(e) => {
              setText(BUNDLED[e.target.value]!);
              update({ scenario: e.target.value, from: undefined, to: undefined, node: undefined });
            }}
          >
            {Object.keys(BUNDLED).map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => setEditing(!editing)} aria-pressed={editing}>
          {editing ? "Hide YAML" : "Edit or paste YAML"}
        </button>
        <fieldset className="providers">
          <legend>Provider</legend>
          {PROVIDERS.map((p) => (
            <button
              key={p}
              type="button"
              aria-pressed={state.provider === p}
              onClick={() => update({ provider: p })}
            >
              {p}
            </button>
          ))}
        </fieldset>
        <nav aria-label="views">
          {(["topology", "compare", "bench"] as View[]).map((v) => (
            <button
              key={v}
              type="button"
              aria-current={state.view === v ? "page" : undefined}
              onClick={() => update({ view: v })}
            >
              {v}
            </button>
          ))}
        </nav>
        {busy && <span role="status">simulating…</span>}
      </header>
      {editing && (
        <ScenarioEditor
          text={text}
          file={file}
          issues={issues}
          onChange={setText}
          onApply={() => void build()}
        />
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <main>
        {state.view === "topology" && snapshot && (
          <>
            {snapshot.refusals.length > 0 && (
              <div className="refusals" role="alert">
                <strong>
                  The kernel refused{" "}
                  {snapshot.refusals.length === 1 ? "an entry" : `${snapshot.refusals.length} entries`}
                </strong>{" "}
                — the provider could not install it, so traffic that needs it fails:
                <ul>
                  {snapshot.refusals.map((r, i) => (
                    <li key={i}>
                      <code>{r.node}</code>: <code>{r.entry}</code>: {r.reason}
                    </li>
                  ))}
                </ul>
              </div>
            )}
            <form
              className="endpoints"
              onSubmit={(e) => {
                e.preventDefault();
                if (state.from && state.to) void runTrace(state.from, state.to);
              }}
            >
              <Picker
                label="From"
                name="source"
                value={state.from}
                options={sources(snapshot)}
                onChange={(from) => update({ from, step: undefined })}
              />
              <Picker
                label="To"
                name="destination"
                value={state.to}
                options={destinations(snapshot)}
                onChange={(to) => update({ to, step: undefined })}
              />
              <button type="submit" disabled={!state.from || !state.to}>
                Trace
              </button>
              <span className="hint">
                {!state.from
                  ? "Click a pod on the map to pick the source, or choose one here."
                  : !state.to
                    ? "Now click the destination."
                    : "Click a node, router or host for its tables."}
              </span>
            </form>
            <div className="workspace">
              <Explorer
                snapshot={snapshot}
                {...(trace ? { trace } : {})}
                {...(state.from ? { from: state.from } : {})}
                {...(state.to ? { to: state.to } : {})}
                {...(state.step !== undefined ? { step: state.step } : {})}
                onStep={(step) => update({ step })}
                onBox={(b) => {
                  if (b.kind === "pod" && b.ns) pick(b.ns);
                  else if (b.ns) void inspect(b.ns);
                }}
                {...(pcapUrl ? { pcapUrl } : {})}
              >
                {tables && state.node && <NodeInspector node={state.node} tables={tables} />}
              </Explorer>
            </div>
          </>
        )}
        {state.view === "compare" && compare && <CompareView results={compare} />}
        {state.view === "bench" && <BenchView />}
      </main>
    </div>
  );
}
