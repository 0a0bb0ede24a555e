import type { NodeTables, RunResult, ScenarioIssue } from "@podnet/cluster";
import { Suspense, lazy, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Simulation } from "./client.js";
import { Explorer } from "./explorer.js";
import { Guide } from "./guide.js";
import { NodeInspector, inspectable } from "./inspector.js";
import type { WalkTrace, ProviderInfo, Snapshot, TimelineStep } from "./protocol.js";
import { ScenarioEditor, firstPerMistake } from "./editor.js";
import { BUNDLED, PASTED, forgetPasted, loadPasted, savePasted, scenarioText } from "./scenarios.js";
import { PolicyPanel } from "./policypanel.js";
import { Timeline } from "./timeline.js";
import { TraceBar, destinations, sources, type TraceRequest } from "./tracebar.js";
import {
  PROXIES,
  checkState,
  formatState,
  isNavigation,
  parseState,
  type View,
  type ViewState,
} from "./url.js";
import type { Box } from "./topology.js";

// Chart.js is only needed on the compare and bench tabs: they load on first use.
const CompareView = lazy(() => import("./compare.js"));
const BenchView = lazy(() => import("./bench.js"));

const DEFAULTS = { scenario: "two-nodes", provider: "cbr0-host-gw" };

/** The scenarios a link may name: the bundled ones, and the pasted one when this browser keeps it. */
const scenarioNames = () => [...Object.keys(BUNDLED), ...(loadPasted() !== undefined ? [PASTED] : [])];

/**
 * The view a link asks for, and what in it this page lacks or does not understand (said at the top,
 * with what is shown instead, rather than silently ignored). The address bar is corrected to match.
 */
function readLink(search: string, providers?: string[]) {
  const checked = checkState(
    parseState(search, DEFAULTS),
    search,
    { scenarios: scenarioNames(), ...(providers?.length ? { providers } : {}) },
    DEFAULTS,
  );
  if (checked.problems.length) history.replaceState(null, "", formatState(checked.state));
  return checked;
}

export function App() {
  const sim = useMemo(() => new Simulation(), []);
  const [link] = useState(() => readLink(location.search));
  const [state, setState] = useState<ViewState>(link.state);
  const [linkProblems, setLinkProblems] = useState<string[]>(link.problems);
  const [text, setText] = useState(() => scenarioText(state.scenario));
  const [editing, setEditing] = useState(false);
  const [issues, setIssues] = useState<ScenarioIssue[]>([]);
  const [error, setError] = useState<string>();
  const [stale, setStale] = useState(false);
  const [built, setBuilt] = useState<Snapshot>();
  const [timeline, setTimeline] = useState<TimelineStep[]>();
  const [providers, setProviders] = useState<ProviderInfo[]>([]);
  const [trace, setTrace] = useState<WalkTrace>();
  const [pcapUrl, setPcapUrl] = useState<string>();
  const [tables, setTables] = useState<NodeTables | { none: string }>();
  const [compare, setCompare] = useState<RunResult[]>();
  const [busy, setBusy] = useState(false);
  // A trace belongs to the build it walked: a new build drops it at once (the map under it is about
  // to change provider or scenario), and a reply for an older build is not shown.
  const buildGeneration = useRef(0);
  // With a timeline, the map shows the moment chosen on it (the end by default).
  const moment = timeline ? Math.min(state.at ?? timeline.length - 1, timeline.length - 1) : undefined;
  const snapshot = timeline && moment !== undefined ? timeline[moment]!.snapshot : built;
  const events = timeline && moment !== undefined && moment < timeline.length - 1 ? moment : undefined;
  const file = state.scenario === PASTED ? "pasted.yaml" : `scenarios/${state.scenario}.yaml`;

  /** Views, scenarios, providers and selections are history entries; the walk's step replaces its own. */
  const update = useCallback((patch: Partial<ViewState>) => {
    setState((s) => {
      const next = { ...s, ...patch };
      if (isNavigation(s, next)) {
        history.pushState(null, "", formatState(next));
        setLinkProblems([]);
      } else history.replaceState(null, "", formatState(next));
      return next;
    });
  }, []);
  useEffect(() => {
    const onPop = () => {
      const { state: next, problems } = readLink(location.search, providerNames.current);
      setLinkProblems(problems);
      setState((s) => {
        if (s.scenario !== next.scenario) setText(scenarioText(next.scenario));
        return next;
      });
    };
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);

  // The loading line index.html painted goes once the app has painted itself.
  useEffect(() => document.getElementById("booting")?.remove(), []);

  // The first build waits for the providers, so a link naming one the page lacks is caught before it.
  const providerNames = useRef<string[]>([]);
  useEffect(() => {
    void sim.call({ type: "providers" }).then((reply) => {
      if (!(reply.ok && "providers" in reply)) return;
      providerNames.current = reply.providers.map((p) => p.name);
      const { state: next, problems } = readLink(location.search, providerNames.current);
      if (next.provider !== state.provider) {
        setLinkProblems((earlier) => [...earlier, ...problems.filter((p) => p.startsWith("provider="))]);
        setState((s) => ({ ...s, provider: next.provider }));
      }
      setProviders(reply.providers);
    });
  }, [sim]);

  const build = useCallback(async () => {
    buildGeneration.current++;
    setTrace(undefined);
    setBusy(true);
    const reply = await sim.call({
      type: "build",
      text,
      file,
      provider: state.provider,
      ...(state.proxy ? { proxy: state.proxy } : {}),
    });
    setBusy(false);
    setCompare(undefined);
    if (!reply.ok) {
      // The last map that built stays, marked as such, under the errors.
      setIssues(firstPerMistake(reply.issues ?? []));
      setError(reply.issues ? undefined : reply.message);
      setStale(true);
      if (reply.issues) setEditing(true);
      return;
    }
    if ("snapshot" in reply) {
      // Kept once it builds: a paste that does not build leaves the last one that did.
      if (file === "pasted.yaml") savePasted(text);
      setIssues([]);
      setError(undefined);
      setStale(false);
      setTables(undefined);
      setBuilt(reply.snapshot);
      setTimeline(reply.timeline);
      // A selection the new scenario does not have is dropped, not left pointing at nothing.
      const s = reply.snapshot;
      setState((v) => {
        const keep = (x: string | undefined, all: string[]) => x && all.some((a) => a === x.split(":")[0]);
        const next = {
          ...v,
          from: keep(v.from, sources(s)) ? v.from : undefined,
          to: keep(v.to, destinations(s)) || /^\d+\.\d+\.\d+\.\d+/.test(v.to ?? "") ? v.to : undefined,
        };
        if (next.from !== v.from || next.to !== v.to) history.replaceState(null, "", formatState(next));
        return next;
      });
    }
  }, [sim, text, file, state.provider, state.proxy]);

  const ready = providers.length > 0;
  useEffect(() => {
    if (ready) void build();
    // Rebuild when the provider, proxy or scenario changes; the selection of pods is kept.
  }, [ready, state.provider, state.proxy, state.scenario]);

  const runTrace = useCallback(
    async (request: TraceRequest) => {
      const generation = buildGeneration.current;
      const reply = await sim.call({ type: "trace", ...request });
      if (generation !== buildGeneration.current) return;
      if (reply.ok && "trace" in reply) {
        setTrace(reply.trace);
        setError(undefined);
        if (pcapUrl) URL.revokeObjectURL(pcapUrl);
        setPcapUrl(URL.createObjectURL(new Blob([reply.pcap as BlobPart], { type: "application/x-pcapng" })));
      } else if (!reply.ok) {
        setTrace(undefined);
        setError(reply.message);
      }
    },
    [sim, pcapUrl],
  );

  useEffect(() => {
    if (snapshot && !stale && state.from && state.to)
      void runTrace({
        from: state.from,
        to: state.to,
        ...(state.proto ? { protocol: state.proto } : {}),
        ...(state.size !== undefined ? { size: state.size } : {}),
        ...(state.pmtudisc ? { dontFragment: state.pmtudisc === "do" } : {}),
        ...(events !== undefined ? { events } : {}),
        ...(state.endpoint ? { endpoint: state.endpoint } : {}),
        ...(state.hooks ? { hooks: true } : {}),
      });
  }, [snapshot, state.from, state.to, state.proto, state.size, state.pmtudisc, state.endpoint, state.hooks]);

  useEffect(() => {
    if (state.view !== "compare" || compare || stale) return;
    setBusy(true);
    void sim
      .call({ type: "compare", text, file, ...(state.proxy ? { proxy: state.proxy } : {}) })
      .then((reply) => {
        setBusy(false);
        if (reply.ok && "results" in reply) setCompare(reply.results);
        else if (!reply.ok) setError(reply.message);
      });
  }, [state.view, compare, sim, text, file, stale, state.proxy]);

  useEffect(() => {
    if (!snapshot || !state.node) return setTables(undefined);
    const why = inspectable(snapshot, state.node);
    if (why) return setTables({ none: why });
    void sim
      .call({ type: "tables", node: state.node, ...(events !== undefined ? { events } : {}) })
      .then((reply) => {
        setTables(reply.ok && "tables" in reply ? reply.tables : { none: reply.ok ? "" : reply.message });
      });
  }, [snapshot, state.node, sim]);

  const pick = (ns: string) => {
    if (!state.from || (state.from && state.to)) update({ from: ns, to: undefined, step: undefined });
    else update({ to: ns, step: undefined });
  };
  const onBox = (b: Box) => {
    if (b.kind === "pod" && b.ns) pick(b.ns);
    else update({ node: b.kind === "segment" ? b.id : b.ns });
  };
  const apply = () => {
    if (text === BUNDLED[state.scenario]) return void build();
    if (state.scenario === PASTED) void build();
    else update({ scenario: PASTED, node: undefined, step: undefined, at: undefined });
  };

  return (
    <div className="app">
      <header>
        <h1>podnet</h1>
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
        <label>
          Scenario{" "}
          <select
            name="scenario"
            value={state.scenario}
            onChange={(e) => {
              setText(scenarioText(e.target.value));
              update({
                scenario: e.target.value,
                from: undefined,
                to: undefined,
                node: undefined,
                step: undefined,
                at: undefined,
              });
            }}
          >
            {Object.keys(BUNDLED).map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
            {(state.scenario === PASTED || loadPasted() !== undefined) && (
              <option value={PASTED}>pasted YAML</option>
            )}
          </select>
        </label>
        {state.scenario === PASTED && (
          <span className="pasted" data-testid="pasted">
            pasted — kept in this browser{" "}
            <button
              type="button"
              onClick={() => {
                forgetPasted();
                setText(scenarioText(DEFAULTS.scenario));
                update({
                  scenario: DEFAULTS.scenario,
                  from: undefined,
                  to: undefined,
                  node: undefined,
                  at: undefined,
                });
              }}
            >
              forget it
            </button>
          </span>
        )}
        <button type="button" onClick={() => setEditing(!editing)} aria-pressed={editing}>
          {editing ? "Hide YAML" : "Edit or paste YAML"}
        </button>
        <fieldset className="providers">
          <legend>Provider</legend>
          {providers.map((p) => (
            <button
              key={p.name}
              type="button"
              title={p.description}
              aria-pressed={state.provider === p.name}
              onClick={() => update({ provider: p.name })}
            >
              {p.name}
            </button>
          ))}
        </fieldset>
        <fieldset className="providers proxies">
          <legend>kube-proxy</legend>
          {PROXIES.map((p) => (
            <button
              key={p}
              type="button"
              title={
                p === "nftables"
                  ? "kube-proxy's nftables mode: verdict maps, one lookup per packet"
                  : "kube-proxy's iptables mode: a chain per Service, walked rule by rule"
              }
              aria-pressed={(state.proxy ?? snapshot?.proxy ?? "iptables") === p}
              onClick={() => {
                setCompare(undefined);
                update({ proxy: p });
              }}
            >
              {p}
            </button>
          ))}
        </fieldset>
        {busy && (
          <span className="busy" role="status">
            simulating…
          </span>
        )}
      </header>
      {snapshot && (
        <p className="about" data-testid="about">
          <strong>{snapshot.scenario}</strong>
          {snapshot.description ? `: ${snapshot.description}` : ""}
        </p>
      )}
      {editing && (
        <ScenarioEditor text={text} file={file} issues={issues} onChange={setText} onApply={apply} />
      )}
      {linkProblems.length > 0 && (
        <div className="link-problems" role="alert" data-testid="link-problems">
          This link asks for what the page does not have:
          <ul>
            {linkProblems.map((p) => (
              <li key={p}>{p}</li>
            ))}
          </ul>
        </div>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {stale && snapshot && (
        <p className="stale" role="status">
          The scenario has errors: the map below is the last one that built.
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
            {timeline && moment !== undefined && (
              <Timeline steps={timeline} at={moment} onAt={(at) => update({ at, step: undefined })} />
            )}
            <TraceBar snapshot={snapshot} state={state} update={update} />
            <div className="workspace">
              <Explorer
                snapshot={snapshot}
                {...(trace ? { trace } : {})}
                {...(state.from ? { from: state.from } : {})}
                {...(state.to ? { to: state.to } : {})}
                {...(state.node ? { inspected: state.node } : {})}
                {...(state.step !== undefined ? { step: state.step } : {})}
                onStep={(step) => update({ step })}
                onEndpoint={(endpoint) => update({ endpoint, step: undefined })}
                onBox={onBox}
                {...(pcapUrl ? { pcapUrl } : {})}
              >
                {tables && state.node && (
                  <NodeInspector
                    name={state.node}
                    tables={tables}
                    snapshot={snapshot}
                    onClose={() => update({ node: undefined })}
                  />
                )}
                {snapshot.policy && (
                  <PolicyPanel
                    table={snapshot.policy}
                    {...(state.from ? { from: state.from } : {})}
                    onPick={(from, to, proto) => update({ from, to, proto, step: undefined })}
                  />
                )}
                <Guide providers={providers} open={!trace && !state.node} />
              </Explorer>
            </div>
          </>
        )}
        <Suspense fallback={<p role="status">loading charts…</p>}>
          {state.view === "compare" && compare && <CompareView results={compare} />}
          {state.view === "bench" && <BenchView />}
        </Suspense>
      </main>
    </div>
  );
}
