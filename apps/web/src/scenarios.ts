// The bundled scenarios, shipped with the app as text (Vite's ?raw imports), and the pasted one, kept
// in the browser's storage so a reload does not lose it.
import churn from "../../../scenarios/churn.yaml?raw";
import netpol from "../../../scenarios/netpol.yaml?raw";
import routed from "../../../scenarios/routed-segments.yaml?raw";
import service from "../../../scenarios/service.yaml?raw";
import singlePod from "../../../scenarios/single-pod.yaml?raw";
import twoNodes from "../../../scenarios/two-nodes.yaml?raw";

export const BUNDLED: Record<string, string> = {
  "two-nodes": twoNodes,
  "single-pod": singlePod,
  "routed-segments": routed,
  service,
  churn,
  netpol,
};

/** The scenario name in the URL for YAML the user pasted, uploaded or edited. */
export const PASTED = "pasted";
const STORE = "podnet:pasted-yaml";

export function loadPasted(): string | undefined {
  try {
    return localStorage.getItem(STORE) ?? undefined;
  } catch {
    return undefined; // storage disabled: the pasted text lives as long as the page
  }
}

export function savePasted(text: string): void {
  try {
    localStorage.setItem(STORE, text);
  } catch {
    // storage full or disabled: nothing to keep it in
  }
}

export function forgetPasted(): void {
  try {
    localStorage.removeItem(STORE);
  } catch {
    // nothing was kept
  }
}

/** The YAML of a scenario by its URL name; an unknown name (or a lost paste) is the two-node scenario. */
export function scenarioText(name: string): string {
  return (name === PASTED ? loadPasted() : BUNDLED[name]) ?? BUNDLED["two-nodes"]!;
}
