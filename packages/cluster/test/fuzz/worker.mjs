// Runs fuzzed scenario texts through the loader and the runner, in a worker thread the test can
// terminate: a case that hangs is found by its deadline, not by CI's. Uses the built packages.
import { parentPort } from "node:worker_threads";
import { ScenarioError, loadScenario, runScenario } from "@podnet/cluster";
import { iptablesPolicyEngine } from "@podnet/policy";
import { getProvider, providerNames } from "@podnet/providers";

parentPort.on("message", async ({ id, text, provider }) => {
  const started = performance.now();
  let outcome;
  try {
    const scenario = loadScenario(text, "fuzz.yaml");
    const name = providerNames[provider % providerNames.length];
    // Every other case enforces the scenario's NetworkPolicies, its events' too.
    await runScenario(scenario, getProvider(name), id % 2 ? { policy: iptablesPolicyEngine } : {});
    outcome = { kind: "ran", provider: name };
  } catch (error) {
    outcome =
      error instanceof ScenarioError
        ? { kind: "rejected", file: error.file, issues: error.issues }
        : { kind: "crash", error: String(error?.stack ?? error) };
  }
  parentPort.postMessage({ id, ms: performance.now() - started, ...outcome });
});
