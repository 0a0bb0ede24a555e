/**
 * The podnet command line. Exit codes: 0 success; 1 the answer is "no" (a trace not delivered, a
 * scenario probe that failed); 2 bad input (scenario, flag, name). Every command takes --json.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import { encodePcap, encodePacket } from "@podnet/core";
import {
  ClusterRuntime,
  ScenarioError,
  TargetError,
  loadScenario,
  runScenario,
  scenarioJsonSchema,
  type RunResult,
  type Scenario,
} from "@podnet/cluster";
import { UnknownProviderError, getProvider, providerNames } from "@podnet/providers";
import { benchCommand } from "./bench.js";
import { color, formatTrace, outcomeText, table } from "./format.js";

export class UsageError extends Error {}

function readScenario(file: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new UsageError(
      `${file}: cannot read the scenario file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
  return loadScenario(text, file);
}

function print(json: boolean, data: unknown, human: () => string): void {
  process.stdout.write(json ? JSON.stringify(data, null, 2) + "\n" : human() + "\n");
}

const providersOption = () =>
  new Option("--providers <names>", "comma-separated providers").default(
    providerNames.filter((n) => !n.endsWith("-4789")).join(","),
  );
const parseProviders = (list: string) =>
  list
    .split(",")
    .map((n) => n.trim())
    .filter(Boolean)
    .map((name) => ({ name, provider: getProvider(name) }));

function summarize(result: RunResult): string {
  const kinds = [...new Set(result.reachability.map((c) => c.kind))];
  const out = [
    `${color.bold(result.scenario)} under ${color.bold(result.provider)}: ${result.summary.reached}/${result.summary.total} reachable`,
    table(
      ["node", "address", "pod CIDR"],
      result.nodes.map((n) => [n.name, n.address, n.podCidr ?? "-"]),
    ),
    table(
      ["pod", "node", "address"],
      result.pods.map((p) => [p.name, p.node, p.ip]),
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
      table(
        ["probe", "outcome", "reason"],
        result.probes.map((p) => [`${p.from} → ${p.to} (${p.protocol})`, outcomeText(p.outcome), p.reason]),
      ),
    );
  if (result.path) {
    const p = result.path;
    out.push(
      table(
        ["path " + `${p.from} → ${p.to}`, "value"],
        [
          ["routed hops", p.routedHops],
          ["encapsulations", p.encapsulations],
          ["NAT steps", p.natSteps],
          ["pod MTU", p.podMtu],
          ["source address survives", p.sourcePreserved ? "yes" : "no"],
          ...p.wire.map((w) => [
            `bytes on the wire for ${w.payload} B`,
            `${w.underlayFrame || "-"} (pod frame ${w.podFrame || "-"}, +${w.overheadPercent}%)`,
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
        cp.events.map((e) => [e.description, e.added, e.removed, e.changed, e.refused, e.durationMs]),
      ),
    );
  return out.join("\n");
}

export function program(): Command {
  const cli = new Command("podnet")
    .description("Design, compare and run Kubernetes pod networks")
    .version("0.1.0")
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(color.red(text)) })
    .showSuggestionAfterError();

  cli
    .command("providers")
    .description("list the network providers")
    .option("--json", "machine-readable output")
    .addHelpText("after", "\nExample:\n  podnet providers --json")
    .action((opts: { json?: boolean }) => {
      const list = providerNames.map((name) => {
        const p = getProvider(name);
        return {
          name,
          description: p.description,
          podAddressing: p.podAddressing,
          crossNodeSource: p.crossNodeSource,
          layer2Adjacency: p.underlay.layer2Adjacency,
          overheadBytes: p.overheadBytes,
          podMtuAt1500: p.podMtu(1500),
        };
      });
      print(Boolean(opts.json), list, () =>
        table(
          ["provider", "pod addresses", "overhead", "pod MTU", "needs L2", "description"],
          list.map((p) => [
            p.name,
            p.podAddressing,
            `${p.overheadBytes} B`,
            p.podMtuAt1500,
            p.layer2Adjacency ? "yes" : "no",
            p.description,
          ]),
        ),
      );
    });

  cli
    .command("run")
    .description("build a scenario under a provider, run its traffic and events, and report")
    .argument("<scenario>", "scenario file (YAML or JSON)")
    .requiredOption("--provider <name>", `one of: ${providerNames.join(", ")}`)
    .option("--json", "machine-readable output (shape: RunResult, schemaVersion 1)")
    .addHelpText(
      "after",
      "\nExample:\n  podnet run scenarios/two-nodes.yaml --provider cbr0-host-gw\nExit status 1 when a probe of the scenario's traffic fails.",
    )
    .action(async (file: string, opts: { provider: string; json?: boolean }) => {
      const provider = getProvider(opts.provider);
      const { result } = await runScenario(readScenario(file), provider);
      print(Boolean(opts.json), result, () => summarize(result));
      if (result.probes.some((p) => !p.reached)) process.exitCode = 1;
    });

  cli
    .command("trace")
    .description("follow one packet and its answer hop by hop")
    .argument("<scenario>", "scenario file")
    .addOption(new Option("--provider <name>", `one of: ${providerNames.join(", ")}`).conflicts("providers"))
    .option("--providers <names>", "trace under several providers, one after the other")
    .requiredOption("--from <pod[/container]>", "a pod, pod/container, node or host")
    .requiredOption(
      "--to <target[:port]>",
      "a pod, node, host, svc/<name> or an address, with an optional :port",
    )
    .addOption(new Option("--proto <protocol>", "icmp, tcp or udp").choices(["icmp", "tcp", "udp"]))
    .option("--size <bytes>", "payload bytes", (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65000)
        throw new UsageError(`--size: "${v}" is not a number of bytes (0-65000)`);
      return n;
    })
    .option("--pcap <file>", "write every frame the trace put on a wire, as a pcap file")
    .option("-v, --verbose", "show every transmit and receive too")
    .option("--json", "machine-readable output (the Trace)")
    .addHelpText(
      "after",
      "\nExamples:\n  podnet trace scenarios/two-nodes.yaml --provider overlay --from client --to db\n  podnet trace scenarios/service.yaml --provider cbr0-host-gw --from client --to svc/web --pcap web.pcap\nExit status 1 when the packet is not delivered.",
    )
    .action(
      async (
        file: string,
        opts: {
          provider?: string;
          providers?: string;
          from: string;
          to: string;
          proto?: "icmp" | "tcp" | "udp";
          size?: number;
          pcap?: string;
          verbose?: boolean;
          json?: boolean;
        },
      ) => {
        if (!opts.provider && !opts.providers)
          throw new UsageError("trace: give --provider <name> or --providers a,b,c");
        const scenario = readScenario(file);
        const results = [];
        for (const { name, provider } of parseProviders(opts.providers ?? opts.provider!)) {
          const runtime = await ClusterRuntime.build(scenario, provider);
          const trace = runtime.trace(opts.from, opts.to, {
            ...(opts.proto ? { protocol: opts.proto } : {}),
            ...(opts.size !== undefined ? { size: opts.size } : {}),
          });
          results.push({ provider: name, trace });
          if (opts.pcap) {
            const frames = trace.hops.filter(
              (h) => h.wire === "out" && h.packet.headers[0]?.kind === "ethernet",
            );
            const target =
              results.length > 1 || opts.providers
                ? opts.pcap.replace(/(\.pcap)?$/, `-${name}.pcap`)
                : opts.pcap;
            writeFileSync(
              target,
              encodePcap(frames.map((h, i) => ({ timestampMicros: i, data: encodePacket(h.packet) }))),
            );
          }
          if (!opts.json)
            process.stdout.write(
              `${color.bold(`== ${name}`)}: ${opts.from} → ${opts.to}\n${formatTrace(trace, { verbose: Boolean(opts.verbose) })}\n\n`,
            );
        }
        if (opts.json) print(true, results.length === 1 ? results[0] : results, () => "");
        if (results.some((r) => r.trace.outcome !== "reached" && r.trace.outcome !== "refused"))
          process.exitCode = 1;
      },
    );

  cli
    .command("compare")
    .description("the same scenario under several providers, side by side")
    .argument("<scenario>", "scenario file")
    .addOption(providersOption())
    .option("--json", "machine-readable output (RunResult per provider)")
    .addHelpText(
      "after",
      "\nExample:\n  podnet compare scenarios/two-nodes.yaml --providers docker-bridge,cbr0-host-gw,overlay",
    )
    .action(async (file: string, opts: { providers: string; json?: boolean }) => {
      const scenario = readScenario(file);
      const results: RunResult[] = [];
      for (const { provider } of parseProviders(opts.providers))
        results.push((await runScenario(scenario, provider)).result);
      const kinds = [...new Set(results.flatMap((r) => r.reachability.map((c) => c.kind)))];
      print(Boolean(opts.json), results, () => {
        const reach = table(
          ["reachability", ...results.map((r) => r.provider)],
          kinds.map((k) => [
            k,
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
          ["metric", ...results.map((r) => r.provider)],
          [
            ["pod MTU", ...results.map((r) => r.path?.podMtu ?? "-")],
            [
              "routed hops (cross-node)",
              ...results.map((r) => (r.path?.reached ? r.path.routedHops : "unreachable")),
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
        const failures = results.flatMap((r) =>
          r.reachability
            .filter((c) => !c.reached)
            .slice(0, 3)
            .map((c) => `${color.bold(r.provider)} ${c.kind} ${c.from} → ${c.to}: ${c.reason}`),
        );
        return [reach, metrics, ...(failures.length ? ["", "why some fail:", ...failures] : [])].join("\n");
      });
    });

  benchCommand(cli, readScenario, parseProviders, providersOption);

  cli
    .command("web")
    .description("serve the web app on 127.0.0.1 (it opens nothing; point a browser at the address)")
    .option(
      "--port <port>",
      "port to listen on (0 picks a free one)",
      (v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0 || n > 65535)
          throw new UsageError(`--port: "${v}" is not a port number`);
        return n;
      },
      5173,
    )
    .addHelpText("after", "\nExample:\n  podnet web --port 8080   # then open http://127.0.0.1:8080/")
    .action(async (opts: { port: number }) => {
      const { DIST_DIR, serveStatic } = await import("@podnet/web/serve");
      if (!existsSync(`${DIST_DIR}/index.html`))
        throw new UsageError(`the web app is not built (${DIST_DIR}); run the build first`);
      const { url } = await serveStatic(DIST_DIR, opts.port);
      process.stdout.write(`podnet web: serving ${url} (Ctrl-C to stop)\n`);
      await new Promise(() => undefined);
    });

  cli
    .command("schema")
    .description("print the JSON Schema of scenario files, for editors")
    .addHelpText("after", "\nExample:\n  podnet schema > podnet-scenario.schema.json")
    .action(() => print(true, scenarioJsonSchema(), () => ""));

  return cli;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv, { from: "user" });
    return Number(process.exitCode ?? 0);
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (
      error instanceof ScenarioError ||
      error instanceof UsageError ||
      error instanceof TargetError ||
      error instanceof UnknownProviderError
    ) {
      process.stderr.write(`${color.red("error")}: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}
