/** `podnet compare`: one scenario under several providers (and kube-proxy modes), side by side. */
import type { Command } from "commander";
import { providerIssues, runScenario, type RunResult } from "@podnet/cluster";
import { readScenario } from "../files.js";
import { color, print, table } from "../format.js";
import { buildProgress } from "../progress.js";
import {
  jsonOption,
  parsePolicies,
  parseProviders,
  parseProxies,
  policyOption,
  providersOption,
  proxyOption,
  withProxy,
  nodesOption,
  podsPerNodeOption,
  scaleOf,
  type ScaleOpts,
} from "../options.js";

export function compareCommand(cli: Command): void {
  cli
    .command("compare")
    .description("the same scenario under several providers, side by side")
    .argument("<scenario>", "scenario file or bundled scenario name")
    .addOption(providersOption())
    .addOption(proxyOption(true))
    .addOption(policyOption(true))
    .addOption(jsonOption("RunResult per provider and proxy"))
    .addOption(nodesOption())
    .addOption(podsPerNodeOption())
    .addHelpText(
      "after",
      "\nExamples:\n  podnet compare scenarios/two-nodes.yaml --providers docker-bridge,cbr0-host-gw,overlay\n  podnet compare two-nodes\n  podnet compare service --providers cbr0-host-gw --proxy iptables,nftables\n  podnet compare netpol --policy iptables   # the same policies enforced beside every provider\n  podnet compare netpol --providers overlay --policy none,iptables   # what the policies close",
    )
    .action(
      async (
        file: string,
        opts: { providers: string; proxy?: string; policy: string; json?: boolean } & ScaleOpts,
      ) => {
        const scenario = readScenario(file, undefined, scaleOf(opts));
        // A provider that cannot take this scenario (its pod range on the underlay) is left out with
        // why; the others are compared. When none can, `readScenario` says where, as `run` does.
        const all = parseProviders(opts.providers).map((p) => ({
          ...p,
          issue: providerIssues(scenario, p.provider)[0],
        }));
        const providers = all.filter((p) => !p.issue);
        if (!providers.length) readScenario(file, undefined, scaleOf(opts), [all[0]!.provider]);
        const skipped = all.flatMap(({ provider, issue }) =>
          issue ? [`${provider.name} is not compared: ${issue.message}`] : [],
        );
        const proxies = parseProxies(opts.proxy);
        const policies = parsePolicies(opts.policy);
        const results: RunResult[] = [];
        for (const { provider } of providers)
          for (const proxy of proxies)
            for (const policy of policies) {
              const task = [provider.name, proxy, policies.length > 1 ? `policy ${policy.name}` : undefined];
              results.push(
                (
                  await runScenario(withProxy(scenario, proxy), provider, {
                    onProgress: buildProgress(`building under ${task.filter(Boolean).join(" / ")}`),
                    policy,
                  })
                ).result,
              );
            }
        // A column per provider, and per proxy and policy engine when several of them are compared.
        const column = (r: RunResult) =>
          [
            r.provider,
            proxies.length > 1 ? r.proxy : undefined,
            policies.length > 1 ? `policy ${r.policy}` : undefined,
          ]
            .filter(Boolean)
            .join(" / ");
        const kinds = [...new Set(results.flatMap((r) => r.reachability.map((c) => c.kind)))];
        if (opts.json) for (const s of skipped) process.stderr.write(`note: ${s}\n`);
        print(Boolean(opts.json), results, () => {
          const reach = table(
            ["reachability", ...results.map(column)],
            kinds.map((k) => [
              // The matrix pings, but probes Services over TCP: say which each row is.
              `${k}, ${[...new Set(results.flatMap((r) => r.reachability.filter((c) => c.kind === k).map((c) => c.protocol)))].join("/")}`,
              ...results.map((r) => {
                const cells = r.reachability.filter((c) => c.kind === k);
                const ok = cells.filter((c) => c.reached).length;
                return ok === cells.length
                  ? color.green(`${ok}/${cells.length}`)
                  : color.red(`${ok}/${cells.length}`);
              }),
            ]),
          );
          const nodes = (r: RunResult) => Math.max(1, Object.keys(r.controlPlane.perNode).length);
          const metrics = table(
            ["metric", ...results.map(column)],
            [
              ["pod MTU", ...results.map((r) => r.path?.podMtu ?? "-")],
              [
                "routed hops (cross-node)",
                ...results.map((r) => (r.path?.reached ? r.path.routedHops : "not reached")),
              ],
              ["encapsulations", ...results.map((r) => r.path?.encapsulations ?? "-")],
              [
                "overhead at 1400 B",
                ...results.map((r) => (r.path?.reached ? `${r.path.wire.at(-1)!.overheadPercent}%` : "-")),
              ],
              [
                "pod source survives",
                ...results.map((r) => (r.path?.reached ? (r.path.sourcePreserved ? "yes" : "no") : "-")),
              ],
              ["routes per node", ...results.map((r) => (r.controlPlane.total.routes / nodes(r)).toFixed(1))],
              [
                "neighbours + FDB per node",
                ...results.map((r) =>
                  ((r.controlPlane.total.neighbours + r.controlPlane.total.fdb) / nodes(r)).toFixed(1),
                ),
              ],
              [
                "NAT rules per node",
                ...results.map((r) => (r.controlPlane.total.natRules / nodes(r)).toFixed(1)),
              ],
            ],
          );
          // Three a column, and how many more: `podnet run <scenario> --json` lists every cell.
          const failures = results.flatMap((r) => {
            const failed = r.reachability.filter((c) => !c.reached);
            return [
              ...failed
                .slice(0, 3)
                .map((c) => `${color.bold(column(r))} ${c.kind} ${c.from} → ${c.to}: ${c.reason}`),
              ...(failed.length > 3
                ? [`${color.bold(column(r))} … and ${failed.length - 3} more (podnet run --json lists them)`]
                : []),
            ];
          });
          // Each note once, naming the columns it is about when not all of them.
          const notes = [...new Set(results.flatMap((r) => r.notes ?? []))].map((n) => {
            const about = results.filter((r) => r.notes?.includes(n));
            const which = about.length === results.length ? "" : ` (${about.map(column).join(", ")})`;
            return color.yellow(`note${which}: ${n}`);
          });
          return [
            ...skipped.map((s) => color.yellow(`note: ${s}`)),
            ...notes,
            reach,
            metrics,
            ...(failures.length ? ["", "why some fail:", ...failures] : []),
          ].join("\n");
        });
      },
    );
}
