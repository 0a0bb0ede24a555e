/** The view lives in the URL, so a link shares it: scenario, provider, view, selection and walk step. */
export type View = "topology" | "compare" | "bench";

export interface ViewState {
  scenario: string;
  provider: string;
  /** kube-proxy's mode, when chosen (else the scenario's own, iptables by default). */
  proxy?: Proxy;
  view: View;
  from?: string;
  to?: string;
  node?: string;
  /** The Service endpoint the trace goes through, when chosen (else kube-proxy's random draw). */
  endpoint?: string;
  /** The trace's protocol and payload size, when not the defaults (ICMP, or TCP to a port). */
  proto?: Protocol;
  size?: number;
  /** Don't-Fragment as ping -M, when not ping's default "want". */
  pmtudisc?: Pmtudisc;
  /** A step at every filter hook the packet passes (`podnet trace --hooks`). */
  hooks?: boolean;
  /** The walk's step, 0-based (shown 1-based). */
  step?: number;
  /** The timeline's position: after this many of the scenario's events (all of them when absent). */
  at?: number;
}

export type Proxy = "iptables" | "nftables";
export const PROXIES: Proxy[] = ["iptables", "nftables"];
export type Protocol = "icmp" | "tcp" | "udp";
const PROTOCOLS: Protocol[] = ["icmp", "tcp", "udp"];
export type Pmtudisc = "do" | "dont";
const PMTUDISC: Pmtudisc[] = ["do", "dont"];

const VIEWS: View[] = ["topology", "compare", "bench"];
const TEXT_KEYS = ["from", "to", "node", "endpoint"] as const;

export function parseState(search: string, defaults: { scenario: string; provider: string }): ViewState {
  const q = new URLSearchParams(search);
  const view = q.get("view") as View | null;
  const state: ViewState = {
    scenario: q.get("scenario") ?? defaults.scenario,
    provider: q.get("provider") ?? defaults.provider,
    view: view && VIEWS.includes(view) ? view : "topology",
  };
  for (const key of TEXT_KEYS) {
    const value = q.get(key);
    if (value) state[key] = value;
  }
  const proxy = q.get("proxy") as Proxy | null;
  if (proxy && PROXIES.includes(proxy)) state.proxy = proxy;
  const proto = q.get("proto") as Protocol | null;
  if (proto && PROTOCOLS.includes(proto)) state.proto = proto;
  const size = Number(q.get("size"));
  if (q.get("size") && Number.isInteger(size) && size >= 0 && size <= 65000) state.size = size;
  const pmtudisc = q.get("pmtudisc") as Pmtudisc | null;
  if (pmtudisc && PMTUDISC.includes(pmtudisc)) state.pmtudisc = pmtudisc;
  if (q.get("hooks") === "1") state.hooks = true;
  const at = Number(q.get("at"));
  if (q.get("at") && Number.isInteger(at) && at >= 0) state.at = at;
  const step = Number(q.get("step"));
  if (q.get("step") && Number.isInteger(step) && step > 1) state.step = step - 1;
  return state;
}

/**
 * What a link asked for that this page does not have or understand, each in words with what is shown
 * instead; `state` is `parsed` with an unknown scenario or provider replaced by the default. Providers
 * are checked only once known (the worker lists them).
 */
export function checkState(
  parsed: ViewState,
  search: string,
  known: { scenarios: string[]; providers?: string[] },
  defaults: { scenario: string; provider: string },
): { state: ViewState; problems: string[] } {
  const q = new URLSearchParams(search);
  const problems: string[] = [];
  const state = { ...parsed };
  if (!known.scenarios.includes(state.scenario)) {
    problems.push(
      state.scenario === "pasted"
        ? `scenario=pasted: the pasted YAML is not kept in this browser, so ${defaults.scenario} is shown`
        : `scenario=${JSON.stringify(state.scenario)}: not a bundled scenario (${known.scenarios.join(", ")}; paste others with "Edit or paste YAML"), so ${defaults.scenario} is shown`,
    );
    state.scenario = defaults.scenario;
  }
  if (known.providers && !known.providers.includes(state.provider)) {
    problems.push(
      `provider=${JSON.stringify(state.provider)}: not a provider here (${known.providers.join(", ")}), so ${defaults.provider} is shown`,
    );
    state.provider = defaults.provider;
  }
  // Each key parseState drops when its value is not one it knows: [key, whether it was kept, what it takes].
  const dropped: [string, boolean, string][] = [
    ["view", VIEWS.includes(q.get("view") as View), VIEWS.join(", ")],
    ["proxy", state.proxy !== undefined, PROXIES.join(", ")],
    ["proto", state.proto !== undefined, PROTOCOLS.join(", ")],
    ["size", state.size !== undefined, "a payload size, 0-65000"],
    ["pmtudisc", state.pmtudisc !== undefined, PMTUDISC.join(", ")],
    ["hooks", state.hooks !== undefined, "1"],
    ["at", state.at !== undefined, "a number of events"],
    // step=1 is the first step, kept as no step at all.
    ["step", state.step !== undefined || q.get("step") === "1", "a walk step, from 1"],
  ];
  for (const [key, kept, takes] of dropped) {
    const value = q.get(key);
    if (value !== null && !kept)
      problems.push(`${key}=${JSON.stringify(value)}: not understood (${takes}), so left out`);
  }
  return { state, problems };
}

export function formatState(state: ViewState): string {
  const q = new URLSearchParams({ scenario: state.scenario, provider: state.provider, view: state.view });
  if (state.proxy) q.set("proxy", state.proxy);
  for (const key of TEXT_KEYS) if (state[key]) q.set(key, state[key]!);
  if (state.proto) q.set("proto", state.proto);
  if (state.size !== undefined) q.set("size", String(state.size));
  if (state.pmtudisc) q.set("pmtudisc", state.pmtudisc);
  if (state.hooks) q.set("hooks", "1");
  if (state.at !== undefined) q.set("at", String(state.at));
  if (state.step) q.set("step", String(state.step + 1));
  return `?${q.toString()}`;
}

/**
 * Whether moving from one state to another is a new place to go Back from (a view, scenario, provider,
 * trace or inspected node) rather than a step within one (the walk's position).
 */
export function isNavigation(a: ViewState, b: ViewState): boolean {
  return (
    a.scenario !== b.scenario ||
    a.provider !== b.provider ||
    a.proxy !== b.proxy ||
    a.view !== b.view ||
    a.from !== b.from ||
    a.to !== b.to ||
    a.node !== b.node ||
    a.proto !== b.proto ||
    a.size !== b.size ||
    a.pmtudisc !== b.pmtudisc ||
    a.hooks !== b.hooks ||
    a.endpoint !== b.endpoint
  );
}
