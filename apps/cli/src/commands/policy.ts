/**
 * `podnet policy check`: the allowed-connection matrix of a scenario's NetworkPolicies (pods ×
 * pods × ports, and to and from outside hosts), as Cyclonus prints truth tables.
 * `podnet policy diff`: every connection that applying a manifest of policies would open or close.
 * Both compute verdicts from compiled policies; no packet is walked.
 */
import { Option, type Command } from "commander";
import {
  ClusterRuntime,
  MAX_SCENARIO_BYTES,
  clusterPolicies,
  expandScenario,
  existingNamespaces,
  type Scenario,
  loadManifests,
  outsideHosts,
  sharedAddresses,
} from "@podnet/cluster";
import {
  diffMatrices,
  formatMatrix,
  policyKey,
  policyMatrix,
  type NetworkPolicy,
  type PolicyMatrix,
} from "@podnet/policy";
import { providerNames } from "@podnet/providers";
import { UsageError } from "../errors.js";
import { readBounded, readScenario } from "../files.js";
import { color, print } from "../format.js";
import { jsonOption, parseProviders } from "../options.js";

interface PolicyOptions {
  provider: string;
  json?: boolean;
  with?: string;
  events: boolean;
}

const eventsOption = () =>
  new Option(
    "--no-events",
    "the policies and pods as built, before the scenario's events (by default they happen first, as for run and trace)",
  );

const providerOption = () =>
  new Option(
    "--provider <name>",
    `the provider whose pod addresses ipBlocks are matched against (${providerNames.join(", ")})`,
  ).default("cbr0-host-gw");

/** The matrix as JSON: sources, targets, and per source a string of "1" (allowed) / "0" (denied). */
function matrixJson(m: PolicyMatrix) {
  const width = m.targets.length;
  return {
    sources: m.sources,
    targets: m.targets,
    allowed: m.sources.map((_, s) => Array.from(m.allowed.subarray(s * width, (s + 1) * width)).join("")),
  };
}

function counts(m: PolicyMatrix): { allowed: number; denied: number } {
  const allowed = m.allowed.reduce((sum, v) => sum + v, 0);
  return { allowed, denied: m.allowed.length - allowed };
}

/**
 * The most cells a matrix is made for: sources (pods and outside hosts) × targets (each pod's and
 * host's distinct ports), a byte each, and as text three characters each. 20 million is 3,000 pods
 * with two ports each (60 MB of text); `large` (150,000 pods) would be 22.5 billion, past what a typed
 * array or a string can hold, and 900 pods sharing 300 ports through one YAML alias 243 million.
 */
const MAX_MATRIX_CELLS = 20_000_000;
/** And the most pods: each is built (a namespace, its interfaces, its address) before any is judged. */
const MAX_MATRIX_PODS = 3_000;

/**
 * Sources × targets of the matrix of `scenario` (counted, not built), with the pods its events add
 * when they are played.
 */
function matrixCells(scenario: Scenario, events: boolean): { pods: number; cells: number } {
  const expanded = expandScenario(scenario);
  const added = events ? scenario.events.flatMap((e) => (e.action === "addPod" ? [e.pod] : [])) : [];
  const pods = [...expanded.pods, ...added];
  const distinct = (ports: { protocol: string; port: number }[]) =>
    new Set(ports.map((p) => `${p.protocol}/${p.port}`)).size;
  const hosts = scenario.underlay.hosts;
  const targets =
    pods.reduce(
      (sum, p) =>
        sum +
        distinct(
          p.containers.flatMap((c) => c.ports.map((x) => ({ protocol: x.protocol, port: x.containerPort }))),
        ),
      0,
    ) + hosts.reduce((sum, h) => sum + distinct(h.listen), 0);
  return { pods: pods.length, cells: (pods.length + hosts.length) * targets };
}

async function build(file: string, opts: PolicyOptions, inputs: Set<string>) {
  const scenario = readScenario(file, inputs);
  const providers = parseProviders(opts.provider);
  if (providers.length !== 1) throw new UsageError("--provider: name one provider");
  const { pods, cells } = matrixCells(scenario, opts.events);
  if (pods > MAX_MATRIX_PODS)
    throw new UsageError(
      `${file}: ${pods.toLocaleString("en-US")} pods; a policy matrix is made for at most ${MAX_MATRIX_PODS.toLocaleString("en-US")} (every pod against every pod and port); \`podnet trace --policy\` checks single connections at any size`,
    );
  if (cells > MAX_MATRIX_CELLS)
    throw new UsageError(
      `${file}: ${pods.toLocaleString("en-US")} pods and their ports make a policy matrix of ${cells.toLocaleString("en-US")} cells; it is made for at most ${MAX_MATRIX_CELLS.toLocaleString("en-US")} (every pod and host against every pod's and host's port); \`podnet trace --policy\` checks single connections at any size`,
    );
  const runtime = await ClusterRuntime.build(scenario, providers[0]!.provider);
  // Pods and policies that events add or remove: the matrix is of the cluster after them.
  if (opts.events) await runtime.runEvents();
  return runtime;
}

/** `kubectl apply` of a manifest onto the scenario's policies: same namespace/name replaces. */
function applied(current: readonly NetworkPolicy[], changes: readonly NetworkPolicy[]): NetworkPolicy[] {
  const next = new Map(current.map((p) => [policyKey(p), p]));
  for (const p of changes) next.set(policyKey(p), p);
  return [...next.values()];
}

export function policyCommands(cli: Command): void {
  const policy = cli
    .command("policy")
    .description(
      "NetworkPolicy: the allowed-connection matrix of a scenario, and what a change would open or close",
    )
    .addHelpText(
      "after",
      "\nExamples:\n  podnet policy check netpol\n  podnet policy diff netpol --with scenarios/policies/lockdown.yaml",
    );
  policy
    .command("check")
    .description(
      "print the allowed-connection matrix: every pod and outside host against every pod and host port",
    )
    .argument("<scenario>", "scenario file or bundled scenario name")
    .addOption(providerOption())
    .addOption(eventsOption())
    .addOption(jsonOption("{sources, targets, allowed: one string of 1/0 per source, summary}"))
    .addHelpText(
      "after",
      '\nEach table is one protocol/port: rows are sources, columns targets, "." allowed, "X" denied.\nVerdicts are those of networking.k8s.io/v1 semantics, computed from the compiled policies;\nthe iptables engine (`podnet trace --policy iptables`) enforces the same verdicts.\nA matrix is made for scenarios of up to 3,000 pods.\n\nExample:\n  podnet policy check scenarios/netpol.yaml',
    )
    .action(async (file: string, opts: PolicyOptions) => {
      const runtime = await build(file, opts, new Set());
      const matrix = policyMatrix(clusterPolicies(runtime), outsideHosts(runtime));
      const total = counts(matrix);
      const notes = sharedAddresses(runtime);
      print(
        Boolean(opts.json),
        { ...matrixJson(matrix), summary: total, ...(notes.length ? { notes } : {}) },
        () =>
          [
            formatMatrix(matrix),
            `${runtime.networkPolicies.length} policies; ${total.allowed} connections allowed, ${total.denied} denied`,
            ...notes.map((n) => color.yellow(`note: ${n}`)),
          ].join("\n"),
      );
    });
  policy
    .command("diff")
    .description("list every connection applying a manifest of NetworkPolicies would open or close")
    .argument("<scenario>", "scenario file or bundled scenario name")
    .requiredOption(
      "--with <policies.yaml>",
      "Kubernetes manifests (NetworkPolicy, Namespace) applied as kubectl apply does",
    )
    .addOption(providerOption())
    .addOption(eventsOption())
    .addOption(jsonOption("{opened, closed, changes: [{from, to, protocol, port, change}]}"))
    .addHelpText(
      "after",
      "\nA policy in the file with the namespace/name of one in the scenario replaces it; the others are added;\nNamespace objects set their namespace's labels.\nExit status 0 either way; 2 for bad input.\n\nExample:\n  podnet policy diff scenarios/netpol.yaml --with scenarios/policies/lockdown.yaml",
    )
    .action(async (file: string, opts: PolicyOptions) => {
      const inputs = new Set<string>();
      const runtime = await build(file, opts, inputs);
      const changes = loadManifests(
        readBounded(opts.with!, "manifest file", MAX_SCENARIO_BYTES),
        opts.with!,
        {
          namespaces: existingNamespaces(runtime.spec),
        },
      );
      const outside = outsideHosts(runtime);
      const before = policyMatrix(clusterPolicies(runtime), outside);
      const namespaces = new Map(runtime.spec.namespaces.map((n) => [n.name, n]));
      for (const n of changes.namespaces) namespaces.set(n.name, n);
      const after = policyMatrix(
        clusterPolicies(runtime, applied(runtime.networkPolicies, changes.policies), [
          ...namespaces.values(),
        ]),
        outside,
      );
      const diff = diffMatrices(before, after);
      const opened = diff.filter((d) => d.change === "opened").length;
      print(Boolean(opts.json), { opened, closed: diff.length - opened, changes: diff }, () =>
        [
          ...diff.map(
            (d) =>
              `${d.change === "opened" ? color.green("+ opened") : color.red("- closed")}  ${d.from} → ${d.to} ${d.protocol}/${d.port}`,
          ),
          `${opened} opened, ${diff.length - opened} closed`,
        ].join("\n"),
      );
    });
}
