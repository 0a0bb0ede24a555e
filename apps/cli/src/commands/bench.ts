/** `podnet bench`: scenarios × providers, measuring the network and podnet itself. */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Option, type Command } from "commander";
import {
  ClusterRuntime,
  SimBackend,
  controlPlaneMetrics,
  pathMetrics,
  reachability,
  type BenchRow,
  type Scenario,
} from "@podnet/cluster";
import type { NetworkProvider } from "@podnet/cni";
import { noPolicyEngine, type PolicyEngine } from "@podnet/policy";
import { UsageError } from "../errors.js";
import { checkOutput, readScenarios, scenarioPath, writeOutput } from "../files.js";
import { table } from "../format.js";
import {
  integerIn,
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
import { benchLinux, datapathMarkdown, datapathTable } from "./datapath.js";
import {
  benchServices,
  parseServiceCounts,
  serviceBenchProxies,
  servicesMarkdown,
  servicesTable,
} from "./bench-services.js";
import { labErrors } from "./lab.js";
import { progressBar, stopBar, yieldingProgress } from "../progress.js";
import type { RowJob } from "../bench-row.js";

const TRACE_BUDGET_MS = 1000;

/** One row in this process (`bench-row.ts` runs it in a process of its own: see `measureApart`). */
export async function measure(
  scenario: Scenario,
  provider: NetworkProvider,
  policy: PolicyEngine = noPolicyEngine,
): Promise<BenchRow> {
  let peak = process.memoryUsage().rss;
  const sample = () => (peak = Math.max(peak, process.memoryUsage().rss));
  const t0 = performance.now();
  const runtime = await ClusterRuntime.build(scenario, provider, { onProgress: yieldingProgress, policy });
  await runtime.runEvents();
  const buildMs = performance.now() - t0;
  sample();
  const pods = [...runtime.pods.keys()];
  const random = randomPairs(runtime, pods);
  const replayed = replayedPairs(runtime, pods, random.traces);
  const warmTracesPerSecond = warmPair(runtime, pods);
  sample();
  const cells = reachability(runtime);
  const path = await pathMetrics(runtime);
  const cp = await controlPlaneMetrics(runtime);
  sample();
  const nodes = Math.max(1, runtime.nodes.size);
  return {
    scenario: scenario.name,
    provider: provider.name,
    proxy: runtime.proxy,
    policy: runtime.policyEngine.name,
    nodes: runtime.nodes.size,
    pods: runtime.pods.size,
    buildMs: Math.round(buildMs),
    reconcileMs: Math.round(runtime.reconcileMs),
    tracesPerSecond: Math.round(random.first),
    ...(random.after !== undefined ? { laterTracesPerSecond: Math.round(random.after) } : {}),
    ...(random.walkedPercent !== undefined ? { tracesWalkedPercent: random.walkedPercent } : {}),
    ...(replayed !== undefined ? { replayedTracesPerSecond: Math.round(replayed) } : {}),
    ...(warmTracesPerSecond !== undefined ? { warmTracesPerSecond: Math.round(warmTracesPerSecond) } : {}),
    hopsPerTrace: random.hops,
    peakRssMiB: Math.round(peak / 2 ** 20),
    reachable: `${cells.filter((c) => c.reached).length}/${cells.length}`,
    ...(path ? { podMtu: path.podMtu, overheadPercentAt1400: path.wire.at(-1)!.overheadPercent } : {}),
    routesPerNode: Math.round((cp.total.routes / nodes) * 10) / 10,
    neighboursAndFdbPerNode: Math.round(((cp.total.neighbours + cp.total.fdb) / nodes) * 10) / 10,
    natRulesPerNode: Math.round((cp.total.natRules / nodes) * 10) / 10,
  };
}

/**
 * Random pod pairs (one fixed sequence), summarised: each pair is walked (its hops recorded, their text
 * and packets never made: a summary reads none). Timed over two seconds, each reported: the first pays
 * for first contacts — every node's caches made, its first ARP exchanges — as a one-off check of a
 * freshly built cluster does; the second is closer to what a long session (`podnet web`) sees.
 * Hops are averaged over both.
 */
function randomPairs(
  runtime: ClusterRuntime,
  pods: string[],
): { first: number; after?: number; hops: number; traces: number; walkedPercent?: number } {
  // Whether each pair was walked or replayed, as the simulator counts them.
  const flows = runtime.backend instanceof SimBackend ? runtime.backend.netlink.flowStats : undefined;
  const before = flows && { walked: flows.walked, replayed: flows.replayed };
  let i = 0;
  let hops = 0;
  let traces = 0;
  const rate = () => {
    const t0 = performance.now();
    let n = 0;
    for (; performance.now() - t0 < TRACE_BUDGET_MS; i++) {
      const [a, b] = pairAt(pods, i);
      if (a === b) continue;
      hops += runtime.summary(a, b, { protocol: "icmp" }).hopCount;
      n++;
    }
    traces += n;
    return n / ((performance.now() - t0) / 1000);
  };
  if (pods.length < 2) return { first: 0, hops: 0, traces: 0 };
  const first = rate();
  const after = rate();
  const walked = flows && before ? flows.walked - before.walked : undefined;
  const answered = flows && before ? walked! + flows.replayed - before.replayed : 0;
  return {
    first,
    after,
    hops: traces ? Math.round(hops / traces) : 0,
    traces,
    // Three significant digits: a small scenario walks a handful of millions.
    ...(answered ? { walkedPercent: Number(((100 * walked!) / answered).toPrecision(3)) } : {}),
  };
}

/** The bench's fixed sequence of pod pairs: the i-th (its two pods may be one). */
const pairAt = (pods: string[], i: number): [string, string] => [
  pods[(i * 7919) % pods.length]!,
  pods[(i * 104729 + 1) % pods.length]!,
];

/** Pairs `replayedPairs` takes at most: within the flow cache's capacity, all of them kept. */
const REPLAY_PAIRS = 10_000;

/**
 * The first pairs of `randomPairs`' sequence (up to REPLAY_PAIRS of those it walked) walked once
 * more, their state now learned, then timed as the flow cache answers each: the rate of pairs
 * already traced, spread over the cluster and so cold in memory, that a re-run of the same checks
 * (a reachability matrix, the web app's walks) sees. It is also the ceiling of any replay: a cache
 * that answered new pairs from others' walks would do at least a replay's work for each.
 */
function replayedPairs(runtime: ClusterRuntime, pods: string[], walked: number): number | undefined {
  const pairs: [string, string][] = [];
  for (let i = 0; pairs.length < Math.min(walked, REPLAY_PAIRS); i++) {
    const pair = pairAt(pods, i);
    if (pair[0] !== pair[1]) pairs.push(pair);
  }
  if (pairs.length === 0) return undefined;
  for (const [a, b] of pairs) runtime.summary(a, b, { protocol: "icmp" });
  const t0 = performance.now();
  for (const [a, b] of pairs) runtime.summary(a, b, { protocol: "icmp" });
  return pairs.length / ((performance.now() - t0) / 1000);
}

/**
 * One row measured in a child process (bench-row.ts), so that its peak RSS is its own cluster's and
 * not the process's peak over every row before it.
 */
function measureApart(scenario: Scenario, provider: string, policy: PolicyEngine): Promise<BenchRow> {
  // The argument names the parent: what `ps` shows of a measuring process, and how a test finds it.
  const child = fork(
    fileURLToPath(new URL("./bench-row.js", import.meta.url)),
    [`--bench-row-of=${process.pid}`],
    {
      serialization: "advanced",
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    },
  );
  // The registry's name, which the child looks up.
  const job: RowJob = { scenario, provider, policy: policy.name };
  // The child leaves when its channel closes, but not in the middle of a synchronous build (seconds
  // at 5,000 nodes): whatever ends this process ends the child at once.
  const stop = () => child.kill("SIGKILL");
  process.once("exit", stop);
  return new Promise((resolve, reject) => {
    child.once("message", (m: { row?: BenchRow; error?: string }) =>
      m.row ? resolve(m.row) : reject(new Error(m.error)),
    );
    // A send to a process already gone fails; its exit, just behind, says why.
    child.on("error", () => {});
    child.once("exit", (code, signal) => {
      process.off("exit", stop);
      // A Ctrl-C (or a TERM to the group) before the child set its handlers ended it: the signal was
      // this process's as well, and answering it (stop the bar, exit 130) is the signal handler's job,
      // which may not have run yet. Raised again here, it does, and is not raced by an error.
      if (signal === "SIGINT" || signal === "SIGTERM") process.kill(process.pid, signal);
      else reject(new Error(`the process measuring ${provider} ended (${signal ?? `exit ${code}`})`));
    });
    child.send(job);
  });
}

/**
 * Pings per second between one pair of pods on two nodes (the first pod and the first of another
 * node), again and again: after the first, each is answered from the simulator's flow cache.
 */
function warmPair(runtime: ClusterRuntime, pods: string[]): number | undefined {
  const a = pods[0];
  const node = a && runtime.pods.get(a)!.node;
  const b = pods.find((p) => runtime.pods.get(p)!.node !== node) ?? pods[1];
  if (!a || !b) return undefined;
  runtime.summary(a, b, { protocol: "icmp" });
  let traces = 0;
  const t0 = performance.now();
  // Checked every 1,024: reading the clock costs more than a replayed ping.
  while (traces % 1024 !== 0 || performance.now() - t0 < TRACE_BUDGET_MS) {
    runtime.summary(a, b, { protocol: "icmp" });
    traces++;
  }
  return traces / ((performance.now() - t0) / 1000);
}

const COLUMNS: [keyof BenchRow, string][] = [
  ["scenario", "scenario"],
  ["provider", "provider"],
  ["proxy", "proxy"],
  ["policy", "policy"],
  ["nodes", "nodes"],
  ["pods", "pods"],
  ["buildMs", "build ms"],
  ["reconcileMs", "reconcile ms"],
  ["tracesPerSecond", "traces/s"],
  ["laterTracesPerSecond", "traces/s, 2nd s"],
  ["tracesWalkedPercent", "walked %"],
  ["replayedTracesPerSecond", "replayed pairs/s"],
  ["warmTracesPerSecond", "warm pair/s"],
  ["hopsPerTrace", "hops/trace"],
  ["peakRssMiB", "peak RSS MiB"],
  ["reachable", "reachable"],
  ["podMtu", "pod MTU"],
  ["overheadPercentAt1400", "overhead @1400 B %"],
  ["routesPerNode", "routes/node"],
  ["neighboursAndFdbPerNode", "neigh+fdb/node"],
  ["natRulesPerNode", "NAT rules/node"],
];

export function markdown(rows: BenchRow[]): string {
  const head = `| ${COLUMNS.map(([, h]) => h).join(" | ")} |\n|${COLUMNS.map(() => "---").join("|")}|\n`;
  return head + rows.map((r) => `| ${COLUMNS.map(([k]) => r[k] ?? "-").join(" | ")} |`).join("\n") + "\n";
}

/** The options that set how the kernel is measured, as the command line spells them. */
const LINUX_OPTIONS = {
  runs: "--runs",
  seconds: "--seconds",
  omit: "--omit",
  pin: "--pin",
  sideBySide: "--side-by-side",
  blocks: "--blocks",
};

/**
 * Refuses the kernel's options where they would be ignored: with the simulated backend, blocks
 * without side by side, and a timed transfer's settings with blocks (of a fixed size, pinned).
 */
function checkLinuxOptions(command: Command, opts: { backend: string; sideBySide: boolean }): void {
  const given = (Object.keys(LINUX_OPTIONS) as (keyof typeof LINUX_OPTIONS)[]).filter(
    (key) => command.getOptionValueSource(key) === "cli",
  );
  const flags = (keys: (keyof typeof LINUX_OPTIONS)[]) => keys.map((key) => LINUX_OPTIONS[key]).join(", ");
  if (opts.backend !== "linux" && given.length)
    throw new UsageError(`${flags(given)}: measure the real datapath, with --backend linux`);
  if (!given.includes("blocks")) return;
  if (!opts.sideBySide)
    throw new UsageError(
      "--blocks: measures each pair's transfers in blocks beside the baseline's, with --side-by-side",
    );
  const timed = given.filter((key) => key === "seconds" || key === "omit" || key === "pin");
  if (timed.length)
    throw new UsageError(
      `${flags(timed)}: --blocks measures each transfer in blocks of a fixed size, each TCP flow's ends on a CPU of their own; leave ${flags(timed)} out`,
    );
}

export function benchCommand(cli: Command): void {
  cli
    .command("bench")
    .description("measure scenarios under providers: the network and podnet itself")
    .argument("[scenarios...]", "scenario files or bundled scenario names")
    .addOption(providersOption())
    .addOption(proxyOption(true))
    .addOption(policyOption(true))
    .option("--out <file>", "write the results as JSON there, and as Markdown beside it (.md)")
    .addOption(jsonOption("print the JSON instead of the table"))
    .addOption(
      new Option("--backend <backend>", "sim: podnet and the simulated network; linux: the real datapath")
        .choices(["sim", "linux"])
        .default("sim"),
    )
    .addOption(nodesOption())
    .addOption(podsPerNodeOption())
    .option("--runs <n>", "linux: runs per measurement", integerIn("--runs", "a number of runs", 1, 50), 3)
    .option(
      "--seconds <s>",
      "linux: seconds per iperf3 run",
      integerIn("--seconds", "a number of seconds", 1, 60),
      1,
    )
    .option(
      "--omit <s>",
      "linux: seconds left out at the start of each iperf3 run (slow start), added to --seconds",
      integerIn("--omit", "a number of seconds", 0, 10),
      0,
    )
    .option("--pin", "linux: pin iperf3's client to CPU 0 and its server to CPU 1", false)
    .option(
      "--side-by-side",
      "linux: measure each pair's TCP transfers at the same time as a baseline run of its own (ratios of two flows that met the same machine)",
      false,
    )
    .option(
      "--blocks <n>",
      "linux, with --side-by-side: each run's transfers as n blocks (TCP 300 MB, each flow's ends on a CPU of their own; UDP 10 MB), a run's ratio the median of the blocks'",
      integerIn("--blocks", "a number of blocks", 1, 100),
      0,
    )
    .option(
      "--services <counts>",
      "instead of scenarios: kube-proxy on one node with this many Services (comma-separated, up to 10000): sync times (after a discarded warm-up round), entries touched, first-packet rule evaluations",
    )
    .option(
      "--endpoints <n>",
      "with --services: endpoints per Service",
      integerIn("--endpoints", "an endpoint count", 1, 100),
      5,
    )
    .addHelpText(
      "after",
      "\nExamples:\n  podnet bench scenarios/two-nodes.yaml scenarios/churn.yaml --out bench.json\n  podnet bench service --proxy iptables,nftables   # kube-proxy's two modes side by side\n  podnet bench --services 1000,5000,10000 --providers cbr0-host-gw   # both modes at 10,000 Services\n  podnet bench two-nodes --backend linux --providers cbr0-host-gw,overlay   # as root: iperf3, ping, TCP connect\n" +
        "\nOn the simulator (the default) traces/s walks random pod pairs for a second right after the build,\n" +
        "first contacts included (every node's caches made, its first ARP exchanges), and traces/s, 2nd s for the\n" +
        "second after that; walked % says how many of those pairs were walked (a small scenario's pairs repeat, and\n" +
        "the flow cache answers a pair met again); warm pair/s probes one pair on two nodes again and again (the flow cache answers).\n" +
        "\nWith --backend linux each provider's lab is built, measured and removed (also on Ctrl-C): the first\n" +
        "pod to a pod on its node, on another node, through a one-endpoint ClusterIP Service the bench adds\n" +
        "(podnet-bench), and to an outside host; a bare veth pair measured in the same runs, interleaved, gives\n" +
        "every figure as a ratio. Under VXLAN the across-nodes pair is measured again with a wrong 1500-byte\n" +
        "pod MTU. Spreads are (max - min) / median over --runs, of the figure and of its ratio, and the ratio's\n" +
        "interquartile range over its median. --side-by-side runs each pair's TCP transfers at the same time as a\n" +
        "baseline run of its own, so that a run's ratio compares two flows that met the same machine (no CPU per\n" +
        "Gbit then), UDP right after the baseline's, and pings and connects in blocks alternated with the\n" +
        "baseline's (a run's ratio: the median of the blocks'). A connect's time is its handshake as the client's\n" +
        "kernel timed it (SYN → SYN-ACK). --blocks n makes each run's transfers n short blocks (TCP 300 MB, each\n" +
        "flow's ends on a CPU of their own; UDP 10 MB), a run's ratio the median of the blocks': on a noisy machine\n" +
        "more flows steady a run where longer ones do not, at the cost of time (16 blocks: about 2.3 times as long).",
    )
    .action(
      async (
        files: string[],
        opts: {
          providers: string;
          proxy?: string;
          policy: string;
          out?: string;
          json?: boolean;
          backend: "sim" | "linux";
          runs: number;
          seconds: number;
          omit: number;
          pin: boolean;
          sideBySide: boolean;
          blocks: number;
          services?: string;
          endpoints: number;
        } & ScaleOpts,
        command: Command,
      ) => {
        checkLinuxOptions(command, opts);
        const fromCli = (key: string) => command.getOptionValueSource(key) === "cli";
        if (opts.services !== undefined) {
          // A scenario's scale does not apply to kube-proxy on one node.
          const scale = ["nodes", "podsPerNode"].filter(fromCli);
          if (scale.length)
            throw new UsageError(
              `${scale.map((key) => (key === "nodes" ? "--nodes" : "--pods-per-node")).join(", ")}: scale a scenario; --services measures kube-proxy on one node (--endpoints sets its endpoints)`,
            );
          return benchServicesAction(files, opts.services, opts.endpoints, opts);
        }
        if (fromCli("endpoints")) throw new UsageError("--endpoints: endpoints per Service, with --services");
        if (!files.length) throw new UsageError("bench: name a scenario, or --services <counts>");
        const inputs = new Set<string>();
        const scenarios = readScenarios(files, inputs, scaleOf(opts));
        const providers = parseProviders(opts.providers);
        const proxies = parseProxies(opts.proxy);
        const policies = parsePolicies(opts.policy);
        if (opts.backend === "linux" && policies.length > 1)
          throw new UsageError("--policy: --backend linux measures one policy engine per run");
        const out = outputs(opts.out, inputs);
        // On the kernel, Ctrl-C must first remove the lab: the bar does not exit on it then.
        const bar = opts.json
          ? undefined
          : progressBar(
              "bench [{bar}] {value}/{total} {task}",
              scenarios.length * providers.length * proxies.length * policies.length,
              {
                exitOnSignal: opts.backend !== "linux",
              },
            );
        if (opts.backend === "linux") {
          const policy = policies[0]!;
          let done = 0;
          const report = await labErrors(async () => {
            try {
              return await benchLinux(
                files.flatMap((f, i) =>
                  proxies.map((proxy) => ({
                    scenario: withProxy(scenarios[i]!, proxy),
                    file: scenarioPath(f),
                  })),
                ),
                providers,
                {
                  runs: opts.runs,
                  seconds: opts.seconds,
                  omit: opts.omit,
                  pin: opts.pin,
                  sideBySide: opts.sideBySide,
                  blocks: opts.blocks,
                },
                policy,
                (scenario, provider) => measureApart(scenario, provider, policy),
                (task) => bar?.update(done++, { task }),
                // Written after every pair: minutes of kernel figures survive a later failure or Ctrl-C.
                (partial) => out?.write(partial, datapathMarkdown(partial, markdown(partial.simulated))),
              );
            } finally {
              stopBar(bar);
            }
          });
          out?.write(report, datapathMarkdown(report, markdown(report.simulated)));
          process.stdout.write(
            opts.json ? JSON.stringify(report, null, 2) + "\n" : datapathTable(report) + "\n",
          );
          return;
        }

        const rows: BenchRow[] = [];
        const of = scenarios.length * providers.length * proxies.length * policies.length;
        const report = (partial?: { measured: number; of: number }) => ({
          schemaVersion: 1,
          machine: { node: process.version, platform: process.platform },
          rows,
          ...(partial ? { partial } : {}),
        });
        const write = (partial?: { measured: number; of: number }) =>
          out?.write(
            report(partial),
            `# podnet bench\n\n${partial ? `**Partial**: ${partial.measured} of ${partial.of} rows measured when this was written; the bench did not finish.\n\n` : ""}${markdown(rows)}`,
          );
        // A report from an earlier bench at the same path is not left standing as if it were this one's.
        write({ measured: 0, of });
        for (const scenario of scenarios) {
          for (const { name, provider } of providers)
            for (const proxy of proxies)
              for (const policy of policies) {
                const task = [scenario.name, provider.name, proxy, policies.length > 1 ? policy.name : ""];
                bar?.update(rows.length, { task: task.filter(Boolean).join(" / ") });
                rows.push(await measureApart(withProxy(scenario, proxy), name, policy));
                // Written after every row, as on the kernel: a 5,000-node row is a minute of work.
                if (rows.length < of) write({ measured: rows.length, of });
              }
        }
        bar?.update(rows.length, { task: "done" });
        stopBar(bar);
        write();
        process.stdout.write(
          opts.json
            ? JSON.stringify(report(), null, 2) + "\n"
            : table(
                COLUMNS.map(([, h]) => h),
                rows.map((r) => COLUMNS.map(([k]) => r[k] ?? "-")),
              ) + "\n",
        );
      },
    );
}

/**
 * `--out file.json` and its Markdown twin beside it (file.md): both checked before anything is
 * measured, both written after each row (marked partial) and at the end.
 */
function outputs(out: string | undefined, inputs: Set<string>) {
  if (out === undefined) return undefined;
  // x.md would hold the JSON, and x.md.md the Markdown.
  if (/\.md$/i.test(out))
    throw new UsageError(
      `--out ${out}: name the JSON file (${out.replace(/\.md$/i, ".json")}); its Markdown twin is written beside it as .md`,
    );
  const markdownOut = out.replace(/(\.json)?$/, ".md");
  checkOutput("--out", out, inputs);
  checkOutput("--out", markdownOut, inputs);
  return {
    write(report: unknown, markdownText: string): void {
      writeOutput("--out", out, JSON.stringify(report, null, 2) + "\n");
      writeOutput("--out", markdownOut, markdownText);
    },
  };
}

async function benchServicesAction(
  files: string[],
  list: string,
  endpoints: number,
  opts: { providers: string; proxy?: string; policy: string; backend: string; out?: string; json?: boolean },
): Promise<void> {
  if (files.length) throw new UsageError("--services measures kube-proxy alone: name no scenario with it");
  if (opts.backend !== "sim") throw new UsageError("--services runs on the simulated kernel (--backend sim)");
  if (opts.policy !== "none") throw new UsageError("--services: a policy engine does not apply");
  const counts = parseServiceCounts(list);
  const providers = parseProviders(opts.providers);
  const proxies = serviceBenchProxies(parseProxies(opts.proxy));
  const out = outputs(opts.out, new Set());
  const total = counts.length * providers.length * proxies.length;
  const bar = opts.json ? undefined : progressBar("bench [{bar}] {value}/{total} {task}", total);
  let done = 0;
  let rows;
  try {
    rows = await benchServices(counts, providers, proxies, endpoints, (task) =>
      bar?.update(done++, { task }),
    );
    bar?.update(done, { task: "done" });
  } finally {
    stopBar(bar);
  }
  const report = {
    schemaVersion: 1,
    machine: { node: process.version, platform: process.platform },
    endpoints,
    services: rows,
  };
  out?.write(report, servicesMarkdown(rows, endpoints));
  process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + "\n" : servicesTable(rows) + "\n");
}
