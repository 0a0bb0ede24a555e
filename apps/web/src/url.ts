/** The view lives in the URL, so a link shares it: scenario, provider, view, selected pods. */
export type View = "topology" | "compare" | "bench";

export interface ViewState {
  scenario: string;
  provider: string;
  view: View;
  from?: string;
  to?: string;
  node?: string;
}

const VIEWS: View[] = ["topology", "compare", "bench"];

export function parseState(search: string, defaults: { scenario: string; provider: string }): ViewState {
  const q = new URLSearchParams(search);
  const view = q.get("view") as View | null;
  const state: ViewState = {
    scenario: q.get("scenario") ?? defaults.scenario,
    provider: q.get("provider") ?? defaults.provider,
    view: view && VIEWS.includes(view) ? view : "topology",
  };
  for (const key of ["from", "to", "node"] as const) {
    const value = q.get(key);
    if (value) state[key] = value;
  }
  return state;
}

export function formatState(state: ViewState): string {
  const q = new URLSearchParams({ scenario: state.scenario, provider: state.provider, view: state.view });
  for (const key of ["from", "to", "node"] as const) if (state[key]) q.set(key, state[key]!);
  return `?${q.toString()}`;
}
