/// <reference lib="webworker" />
// The simulation runs here, off the page's thread: large scenarios build without freezing the UI.
import {
  ClusterRuntime,
  NFT_TABLE,
  PROXY_NAMES,
  ScenarioError,
  loadScenario,
  runScenario,
  traceSocketNote,
  traceVerdict,
  withProxy,
  type NodeTables,
  type ProxyName,
} from "@podnet/cluster";
import { explainVerdict, iptablesPolicyEngine } from "@podnet/policy";
import { tracePcap } from "@podnet/sim";
import { getProvider, providerNames } from "@podnet/providers";
import type { Scenario } from "@podnet/cluster";
import type { Reply, Request, TimelineStep } from "./protocol.js";
import { snapshotOf } from "./snapshot.js";
import { tableChanges, tableLines } from "./tables.js";

declare const self: DedicatedWorkerGlobalScope;
/** What was built last: the scenario (with its proxy) and the provider. */
let built: { scenario: Scenario; provider: string } | undefined;
/** Bumped by every build, so a runtime built for an older one is never handed out. */
let generation = 0;
/**
 * Runtimes no trace has walked yet, by how many of the scenario's events (in time order) they ran. A
 * trace changes the cluster it walks — conntrack entries, ARP and FDB entries learned, a Service's
 * session-affinity choice, the kernel's clock — so each trace takes one, and the next is built while
 * the page waits for a click: every walk starts from the cluster as built, as `podnet trace` does, and
 * a shared link shows the same walk whatever was traced before it.
 */
const pristine = new Map<number, Promise<ClusterRuntime>>();

/** Timelines record every node's tables at each event; past this many nodes they are not recorded. */
const TIMELINE_NODE_LIMIT = 50;

/** The providers offered: overlay-4789 differs from overlay only in its UDP port. */
const OFFERED = providerNames.filter((n) => !n.endsWith("-4789"));

/**
 * A namespace's tables in the shape of nodeTables (which covers nodes only): routers, outside hosts and
 * pods have routes and neighbours too.
 */
async function tablesOf(rt: ClusterRuntime, ns: string): Promise<NodeTables> {
  return {
    routes: await rt.k.route.list(ns),
    neighbours: (await rt.k.neigh.list(ns)).filter((n) => n.state.includes("PERMANENT")),
    fdb: (await rt.k.fdb.list(ns)).filter((f) => f.dst),
    nat: await rt.k.iptables.save(ns, "nat"),
    filter: await rt.k.iptables.save(ns, "filter"),
    ...(rt.proxy === "nftables" && rt.nodes.has(ns)
      ? { nft: await rt.k.nft.list(rt.ns(ns), "ip", NFT_TABLE).catch(() => []) }
      : {}),
  };
}

/** A scenario with NetworkPolicies, at the start or by its events, is built with the iptables engine enforcing them. */
const buildOptions = (scenario: Scenario) =>
  scenario.networkPolicies.length || scenario.events.some((e) => e.action === "setNetworkPolicy")
    ? { policy: iptablesPolicyEngine }
    : {};

/** The proxy the page chose, if it is one (none chosen: the scenario's own). */
const proxyOf = (name: string | undefined): ProxyName | undefined =>
  (PROXY_NAMES as readonly string[]).includes(name ?? "") ? (name as ProxyName) : undefined;

const byTime = (scenario: Scenario) => [...scenario.events].sort((a, b) => a.at - b.at);

async function allTableLines(rt: ClusterRuntime): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const name of rt.nodes.keys()) out[name] = tableLines(await tablesOf(rt, name));
  return out;
}

/** Plays the scenario's events one at a time, recording the map and the tables' changes after each. */
async function playTimeline(rt: ClusterRuntime, scenario: Scenario): Promise<TimelineStep[]> {
  const record = rt.nodes.size <= TIMELINE_NODE_LIMIT;
  let lines = record ? await allTableLines(rt) : {};
  const steps: TimelineStep[] = [
    { at: 0, description: "the cluster as built", snapshot: await snapshotOf(rt), changes: [] },
  ];
  for (const event of byTime(scenario)) {
    const [report] = (await rt.runEvents([event])).slice(-1);
    const now = record ? await allTableLines(rt) : {};
    steps.push({
      at: event.at,
      description: report?.description ?? event.action,
      snapshot: await snapshotOf(rt),
      changes: record ? tableChanges(lines, now) : [],
    });
    lines = now;
  }
  return steps;
}

/** The cluster after its first `count` events (in time order), built again. */
async function buildAfter(count: number): Promise<ClusterRuntime> {
  const { scenario, provider } = built!;
  const rt = await ClusterRuntime.build(scenario, getProvider(provider), buildOptions(scenario));
  await rt.runEvents(byTime(scenario).slice(0, count));
  return rt;
}

/** How many events a request's moment means: all of them when it names none. */
const momentOf = (events: number | undefined) =>
  Math.min(events ?? built!.scenario.events.length, built!.scenario.events.length);

/** The untraced cluster after `count` events, left for the next request. */
function peek(count: number): Promise<ClusterRuntime> {
  let rt = pristine.get(count);
  if (!rt) pristine.set(count, (rt = buildAfter(count)));
  return rt;
}

/** The untraced cluster after `count` events, for a trace; another is built once this request is answered. */
function take(count: number): Promise<ClusterRuntime> {
  const rt = peek(count);
  pristine.delete(count);
  const of = generation;
  setTimeout(() => {
    if (of === generation && !pristine.has(count)) peek(count).catch(() => pristine.delete(count));
  });
  return rt;
}

async function handle(req: Request): Promise<Reply> {
  switch (req.type) {
    case "build": {
      const scenario = withProxy(loadScenario(req.text, req.file), proxyOf(req.proxy));
      const runtime = await ClusterRuntime.build(scenario, getProvider(req.provider), buildOptions(scenario));
      built = { scenario, provider: req.provider };
      generation++;
      pristine.clear();
      const timeline = scenario.events.length ? await playTimeline(runtime, scenario) : undefined;
      pristine.set(scenario.events.length, Promise.resolve(runtime));
      return { id: req.id, ok: true, snapshot: await snapshotOf(runtime), ...(timeline ? { timeline } : {}) };
    }
    case "trace": {
      if (!built) throw new Error("no scenario built");
      const rt = await take(momentOf(req.events));
      const trace = rt.trace(req.from, req.to, {
        ...(req.protocol ? { protocol: req.protocol } : {}),
        ...(req.size !== undefined ? { size: req.size } : {}),
        ...(req.dontFragment !== undefined ? { dontFragment: req.dontFragment } : {}),
        ...(req.endpoint !== undefined ? { endpoint: req.endpoint } : {}),
        ...(req.hooks ? { hooks: true } : {}),
      });
      const verdict = traceVerdict(rt, trace);
      const socket = traceSocketNote(trace);
      const draw = rt.serviceDraw(req.to, req.protocol, trace);
      return {
        id: req.id,
        ok: true,
        trace: {
          ...trace,
          ...(verdict ? { policy: { allowed: verdict.allowed, explanation: explainVerdict(verdict) } } : {}),
          ...(socket ? { socket } : {}),
          ...(draw ? { draw: { ...draw, ...(req.endpoint ? { chosen: req.endpoint } : {}) } } : {}),
        },
        pcap: tracePcap(trace, undefined, Date.now() * 1000),
      };
    }
    case "tables": {
      if (!built) throw new Error("no scenario built");
      const rt = await peek(momentOf(req.events));
      return { id: req.id, ok: true, tables: await tablesOf(rt, req.node) };
    }
    case "providers":
      return {
        id: req.id,
        ok: true,
        providers: OFFERED.map((name) => ({ name, description: getProvider(name).description })),
      };
    case "compare": {
      const scenario = withProxy(loadScenario(req.text, req.file), proxyOf(req.proxy));
      const results = [];
      for (const name of OFFERED) {
        // The policy engine the map enforces, so the two views agree on who reaches whom.
        const { result } = await runScenario(scenario, getProvider(name), buildOptions(scenario));
        // Named as the buttons name them, so the same words appear everywhere on the page.
        results.push({ ...result, provider: name, tables: {} });
      }
      return { id: req.id, ok: true, results };
    }
  }
}

self.onmessage = async (event: MessageEvent<Request>) => {
  const req = event.data;
  try {
    self.postMessage(await handle(req));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    self.postMessage({
      id: req.id,
      ok: false,
      message,
      ...(error instanceof ScenarioError ? { issues: error.issues } : {}),
    } satisfies Reply);
  }
};
