/**
 * A scenario's meaning, checked before anything is built: references, addresses, overlaps, ports,
 * capacities, and the timed events played forward in order. Everything the build would trip over is
 * reported here, at its place in the file, so a build never starts on a scenario it cannot finish.
 */
import { Ipv4Prefix, quoteInput as q } from "@podnet/core";
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

/**
 * What a provider asks of a scenario beyond the check: a provider whose pods take a range of their
 * own on every node (docker-bridge's 172.17.0.0/16) needs it apart from the underlay and the
 * Services — a node's own address would be handed to a pod, and a trace would say "reached" for a
 * packet that never left it. (Docker would move docker0 to the next free pool; podnet's
 * docker-bridge is Docker's default, so the scenario must move.)
 */
export function providerIssues(s: Scenario, provider: { name: string; podRange?: string }): ScenarioIssue[] {
  if (!provider.podRange) return [];
  const range = Ipv4Prefix.parse(provider.podRange);
  const issues: ScenarioIssue[] = [];
  const clash = (path: (string | number)[], what: string, cidr: string) => {
    if (Ipv4Prefix.parse(cidr).overlaps(range))
      issues.push({
        path,
        message: `${what} ${cidr} overlaps ${provider.podRange}, the range ${provider.name} gives the pods of every node: move it out of that range, or choose another provider`,
      });
  };
  s.underlay.segments.forEach((segment, i) =>
    clash(["underlay", "segments", i, "subnet"], `segment ${q(segment.name)}`, segment.subnet),
  );
  clash(["cluster", "serviceCidr"], "the service CIDR", s.cluster.serviceCidr);
  return issues;
}
