/** `podnet run`: one scenario under one provider — pods, reachability, probes, tables, metrics. */
import type { Command } from "commander";
import { runScenario, type RunResult } from "@podnet/cluster";
import { getProvider, providerNames } from "@podnet/providers";
import { readScenario } from "../files.js";
import { color, limitedTable, outcomeText, print, table } from "../format.js";
import { buildProgress } from "../progress.js";
import {
  jsonOption,
  nodesOption,
  parsePolicy,
  parseProxies,
  podsPerNodeOption,
  policyOption,
  proxyOption,
  scaleOf,
  withProxy,
  type ScaleOpts,
} from "../options.js";

/** Rows of the node and pod tables shown before "… N more". */
const ROWS = 20;
/** Rows of the probe table shown before "… N more": every failed probe still counts in the summary. */
const PROBE_ROWS = 200;

export function summarize(result: RunResult): string {
  const kinds = [...new Set(result.reachability.map((c) => c.kind))];
  const out = [
    `${color.bold(result.scenario)} under ${color.bold(result.provider)} (kube-proxy ${result.proxy}${result.policy !== "none" ? `, NetworkPolicy ${result.policy}` : ""}): ${result.summary.reached}/${result.summary.total} reachable`,
    ...(result.notes ?? []).map((n) => color.yellow(`note: ${n}`)),
    limitedTable(
      ["node", "address", "pod CIDR"],
      result.nodes.map((n) => [n.name, n.address, n.podCidr ?? "-"]),
      ROWS,
    ),
    limitedTable(
      ["pod", "namespace", "node", "address"],
      result.pods.map((p) => [p.name, p.namespace, p.node, p.ip]),
      ROWS,
    ),
    table(
      ["reachability", "reached", "first failure"],
      kinds.map((k) => {
        const cells = result.reachability.filter((c) => c.kind === k);
        const failure = cells.find((c) => !c.reached);
        return [
          k,
          `${cells.filter((c) => c.reached).length}/${cells.length}`,
          failure ? `${failure.from} → ${failure.to}: ${failure.reason}` : "-",
        ];
      }),
    ),
  ];
  if (result.probes.length)
    out.push(
      // cli-table3 lays a table out in time quadratic in its rows: 20,000 probes took 15 s to print.
      // Cut short, the failed ones come first.
      limitedTable(
        ["probe", "outcome", "reason"],
        (result.probes.length > PROBE_ROWS
          ? [...result.probes.filter((p) => !p.reached), ...result.probes.filter((p) => p.reached)]
          : result.probes
        ).map((p) => [`${p.from} → ${p.to} (${p.protocol})`, outcomeText(p.outcome), p.reason]),
        PROBE_ROWS,
      ),
    );
  if (result.path && !result.path.reached) {
    // What a path that was not delivered "has" (its wire bytes, whether its source survived) is
    // not a measurement of the design: say why instead.
    const p = result.path;
    out.push(
      table(
        ["path " + `${p.from} → ${p.to}`, "value"],
        [
          ["reached", `no: ${p.reason ?? "not delivered"}`],
          ["pod MTU", p.podMtu],
        ],
      ),
    );
  } else if (result.path) {
    const p = result.path;
    out.push(
      table(
        ["path " + `${p.from} → ${p.to}`, "value"],
        [
          ["routed hops", p.routedHops],
          ["encapsulations", p.encapsulations],
          ["NAT steps", p.natSteps],
          ["pod MTU", p.podMtu],
          [
            "source address survives",
            p.sourcePreserved === undefined ? "-" : p.sourcePreserved ? "yes" : "no",
          ],
          ...p.wire.map((w) => [
            `bytes on the wire for ${w.payload} B`,
            w.underlayFrames > 1 || w.podFrames > 1
              ? `${w.underlayFrame || "-"} in ${w.underlayFrames} fragments (pod: ${w.podFrame || "-"} in ${w.podFrames}, +${w.overheadPercent}%)`
              : `${w.underlayFrame || "-"} (pod frame ${w.podFrame || "-"}, +${w.overheadPercent}%)`,
          ]),
        ],
      ),
    );
  }
  // Small clusters: each node's routing table, as `ip route` shows it.
  if (Object.keys(result.tables).length <= 4) {
    for (const [node, t] of Object.entries(result.tables)) {
      out.push(
        `${color.bold(node)} ip route:`,
        ...t.routes.map(
          (r) =>
            `  ${r.dst}${r.gateway ? ` via ${r.gateway}` : ""} dev ${r.dev}${r.protocol ? ` proto ${r.protocol}` : ""}${r.scope ? ` scope ${r.scope}` : ""}${r.prefsrc ? ` src ${r.prefsrc}` : ""}${r.flags.length ? ` ${r.flags.join(" ")}` : ""}`,
        ),
      );
    }
  }
  const cp = result.controlPlane;
  out.push(
    table(
      ["entries", "routes", "neighbours", "fdb", "nat rules"],
      [
        ...Object.entries(cp.perNode)
          .slice(0, 10)
          .map(([n, c]) => [n, c.routes, c.neighbours, c.fdb, c.natRules]),
        [color.bold("total"), cp.total.routes, cp.total.neighbours, cp.total.fdb, cp.total.natRules],
      ],
    ),
  );
  if (cp.events.length)
    out.push(
      table(
        ["event", "added", "removed", "changed", "refused", "ms"],
        cp.events.map((e) =>
          e.counted
            ? [e.description, e.added, e.removed, e.changed, e.refused, e.durationMs]
            : [e.description, "-", "-", "-", "-", "-"],
        ),
      ),
    );
  return out.join("\n");
}

export function runCommand(cli: Command): void {
  cli
    .command("run")
    .description("build a scenario under a provider, run its traffic and events, and report")
    .argument("<scenario>", "scenario file (YAML or JSON) or bundled scenario name")
    .requiredOption("--provider <name>", `one of: ${providerNames.join(", ")}`)
    .addOption(proxyOption(false))
    .addOption(policyOption())
    .addOption(jsonOption("shape: RunResult, schemaVersion 1"))
    .addOption(nodesOption())
    .addOption(podsPerNodeOption())
    .addHelpText(
      "after",
      "\nExamples:\n  podnet run scenarios/two-nodes.yaml --provider cbr0-host-gw\n  podnet run two-nodes --provider overlay --json\n  podnet run service --provider cbr0-host-gw --proxy nftables\n  podnet run netpol --provider overlay --policy iptables\nExit status 1 when a probe of the scenario's traffic fails: dropped, unreachable, refused (a RST or a port\nunreachable: nothing took it), or answered by a pod other than the one meant.",
    )
    .action(
      async (
        file: string,
        opts: { provider: string; proxy?: string; policy: string; json?: boolean } & ScaleOpts,
      ) => {
        const provider = getProvider(opts.provider);
        const [proxy] = parseProxies(opts.proxy, false);
        const policy = parsePolicy(opts.policy);
        const scenario = withProxy(readScenario(file, undefined, scaleOf(opts), [provider]), proxy);
        const { result } = await runScenario(scenario, provider, {
          onProgress: buildProgress(`building under ${provider.name}`),
          onProbe: buildProgress("probing", "probes"),
          policy,
        });
        print(Boolean(opts.json), result, () => summarize(result));
        if (result.probes.some((p) => !p.reached)) process.exitCode = 1;
      },
    );
}
