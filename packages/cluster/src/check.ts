/**
 * A scenario's meaning, checked before anything is built: references, addresses, overlaps, ports,
 * capacities, and the timed events played forward in order. Everything the build would trip over is
 * reported here, at its place in the file, so a build never starts on a scenario it cannot finish.
 */
import type { ScenarioIssue } from "./load.js";
import type { Scenario } from "./schema.js";
import { CheckState, type ManifestNames } from "./check-state.js";
import { checkCluster, checkEnvelope, checkUnderlay } from "./check-network.js";
import { checkPolicies, setService } from "./check-objects.js";
import { checkTraffic } from "./check-traffic.js";
import { addNode, addPod, expandGenerated, playEvents, startAllocators } from "./check-workload.js";

export { SCENARIO_LIMITS } from "./check-state.js";
export { existingNamespaces, missingNamespace } from "./check-objects.js";

/** Checks a scenario's meaning, in the order the runtime builds it; every problem found, each with its path. */
export function checkScenario(s: Scenario, manifests?: ManifestNames): ScenarioIssue[] {
  const check = new CheckState(s, manifests);
  checkCluster(check);
  checkUnderlay(check);
  if (!checkEnvelope(check)) return check.issues;
  startAllocators(check);
  check.s.nodes.forEach((n, i) => addNode(check, n, ["nodes", i]));
  expandGenerated(check);
  check.s.pods.forEach((p, i) => addPod(check, p, ["pods", i]));
  check.s.services.forEach((svc, i) => setService(check, svc, ["services", i]));
  playEvents(check);
  checkTraffic(check);
  checkPolicies(check);
  return check.issues;
}
