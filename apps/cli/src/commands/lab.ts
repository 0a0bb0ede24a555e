/** `podnet up | exec | ls | down | verify`: scenarios on this machine's real network namespaces. */
import type { Command } from "commander";
import { getProvider, providerNames } from "@podnet/providers";
import { PodnetError } from "@podnet/core";
import { UsageError } from "../errors.js";
import { readScenario, readScenarios, scenarioPath } from "../files.js";
import { color, print, table } from "../format.js";
import {
  jsonOption,
  parsePolicy,
  parseProviders,
  parseProxies,
  policyOption,
  providersOption,
  proxyOption,
  withProxy,
  maxNamespacesOption,
  nodesOption,
  podsPerNodeOption,
  scaleOf,
  type ScaleOpts,
} from "../options.js";
import { buildProgress, progressBar, stopBar } from "../progress.js";

/** The lab package is loaded only by these commands: the rest of the CLI never needs root or Linux. */
const lab = () => import("@podnet/lab");

/** Real namespaces need root and Linux; say so plainly rather than fail half-way. */
export function needRoot(): void {
  if (process.platform !== "linux" || process.getuid?.() !== 0)
    throw new UsageError(
      "real clusters need root on Linux (network namespaces, veth, iptables): run as root",
    );
}

/** Runs lab work: a lab's own errors become usage errors, an interruption exits as a shell expects. */
export async function labErrors<T>(work: () => Promise<T>): Promise<T> {
  const { LabError, LabInterrupted } = await lab();
  try {
    return await work();
  } catch (error) {
    if (error instanceof LabInterrupted) {
      process.stderr.write(`podnet: ${error.message}\n`);
      process.exit(error.signal === "SIGINT" ? 130 : 143);
    }
    if (error instanceof LabError && error.exitCode !== undefined) {
      // exec's command not found (127) or not executable (126): a shell's status, not a usage error.
      process.stderr.write(`error: ${error.message}\n`);
      process.exit(error.exitCode);
    }
    if (error instanceof LabError) throw new UsageError(error.message);
    // The machine refused a step (a kernel or CNI answer): said as such, not as a stack trace;
    // `up` has removed what it had built by then.
    if (error instanceof PodnetError) {
      process.stderr.write(`error: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}

export function labCommands(cli: Command): void {
  cli
    .command("up")
    .description("realise a scenario on real network namespaces of this machine (a lab)")
    .argument("<scenario>", "scenario file or bundled scenario name")
    .requiredOption("--provider <name>", `one of: ${providerNames.join(", ")}`)
    .addOption(proxyOption(false))
    .addOption(policyOption())
    .option("--name <lab>", "the lab's name (namespaces are named pn-<lab>-<pod|node|host>)", "lab")
    .addOption(jsonOption("the lab's state"))
    .addOption(nodesOption())
    .addOption(podsPerNodeOption())
    .addOption(maxNamespacesOption())
    .addHelpText(
      "after",
      "\nExample:\n  podnet up two-nodes --provider overlay --name demo\n  podnet exec demo client -- ping -c1 10.0.2.2\n  podnet down demo",
    )
    .action(
      async (
        file: string,
        opts: {
          provider: string;
          proxy?: string;
          policy: string;
          name: string;
          json?: boolean;
          maxNamespaces?: number;
        } & ScaleOpts,
      ) => {
        needRoot();
        const provider = getProvider(opts.provider);
        const [proxy] = parseProxies(opts.proxy, false);
        const policy = parsePolicy(opts.policy);
        const scenario = withProxy(readScenario(file, undefined, scaleOf(opts), [provider]), proxy);
        const { up } = await lab();
        const { state } = await labErrors(() =>
          up(scenario, provider, {
            name: opts.name,
            scenarioFile: scenarioPath(file),
            onProgress: buildProgress(`up ${opts.name}`),
            policy,
            ...(opts.maxNamespaces !== undefined ? { maxNamespaces: opts.maxNamespaces } : {}),
          }),
        );
        print(Boolean(opts.json), state, () =>
          [
            `${color.bold(`lab ${state.name}`)}: ${scenario.name} under ${state.provider} (kube-proxy ${state.proxy}${state.policy ? `, NetworkPolicy ${state.policy}` : ""}), namespaces ${state.prefix}*`,
            table(
              ["node", "address", "pod CIDR"],
              state.nodes.map((n) => [n.name, n.address, n.podCidr ?? "-"]),
            ),
            table(
              ["pod", "node", "address", "containers"],
              state.pods.map((p) => [p.name, p.node, p.ip, p.containers.join(", ")]),
            ),
            `podnet exec ${state.name} <pod|node|host> -- <command>    podnet down ${state.name}`,
          ].join("\n"),
        );
      },
    );

  cli
    .command("exec")
    .description("run a command inside a lab's pod, node, host or router")
    .argument("<lab>", "the lab's name")
    .argument("<target>", "a pod (or pod/container), node, host or router of the lab")
    .argument("[command...]", "the command, after --")
    .addHelpText(
      "after",
      "\nExamples:\n  podnet exec demo client -- ip route\n  podnet exec demo node1 -- tshark -ni eth0 -c 5\nExit status: the command's; 127 when it is not found, 126 when it is not executable, as a shell's.",
    )
    .action(async (name: string, target: string, argv: string[]) => {
      needRoot();
      const { exec } = await lab();
      process.exitCode = await labErrors(async () => exec(name, target, argv));
    });

  cli
    .command("ls")
    .description("list the labs on this machine")
    .addOption(jsonOption(""))
    .addHelpText("after", "\nExample:\n  podnet ls")
    .action(async (opts: { json?: boolean }) => {
      const { list } = await lab();
      const labs = await list();
      print(Boolean(opts.json), labs, () =>
        labs.length
          ? table(
              [
                "lab",
                "provider",
                "kube-proxy",
                "policy",
                "scenario",
                "nodes",
                "pods",
                "namespaces",
                "status",
                "created",
              ],
              labs.map((l) => [
                l.name,
                l.provider,
                // A lab made before these were recorded ran the defaults.
                l.proxy ?? "iptables",
                l.policy ?? "none",
                l.scenario,
                l.nodes.length,
                l.pods.length,
                l.namespaces,
                l.unreadable
                  ? "unreadable state.json (podnet down removes the lab)"
                  : !l.namespaces
                    ? "gone (podnet down removes its state)"
                    : l.expectedNamespaces !== undefined && l.namespaces < l.expectedNamespaces
                      ? `damaged: ${l.expectedNamespaces - l.namespaces} of ${l.expectedNamespaces} namespaces deleted (podnet down removes the rest)`
                      : l.status,
                l.createdAt,
              ]),
            )
          : "no labs",
      );
    });

  cli
    .command("down")
    .description("remove a lab: its processes, namespaces and files")
    .argument("<lab>", "the lab's name")
    .addOption(jsonOption("what was removed"))
    .addHelpText("after", "\nExample:\n  podnet down demo")
    .action(async (name: string, opts: { json?: boolean }) => {
      needRoot();
      const { down } = await lab();
      const removed = await labErrors(() => down(name));
      print(
        Boolean(opts.json),
        removed,
        () =>
          `lab ${name} removed: ${removed.namespaces.length} namespaces, ${removed.processes} ${removed.processes === 1 ? "process" : "processes"}`,
      );
    });

  cli
    .command("verify")
    .description("build scenarios in the simulator and on the kernel, and compare every probe")
    .argument("<scenarios...>", "scenario files or bundled scenario names")
    .addOption(providersOption())
    .addOption(proxyOption(true))
    .addOption(policyOption())
    .addOption(jsonOption("a VerifyReport per scenario, provider and proxy"))
    .addOption(nodesOption())
    .addOption(podsPerNodeOption())
    .addHelpText(
      "after",
      "\nExamples:\n  podnet verify two-nodes service --providers cbr0-host-gw,overlay\n  podnet verify large --nodes 4 --pods-per-node 3\n  podnet verify service two-nodes --proxy nftables\n  podnet verify netpol --providers overlay --policy iptables   # every pod to every pod port: sim, kernel and the policy verdict agree\nA Service with several endpoints is sampled on both backends (kube-proxy picks one at random per\nconnection) and the sets of outcomes are compared.\nExit status 1 when the simulator and the kernel disagree on any probe.",
    )
    .action(
      async (
        files: string[],
        opts: { providers: string; proxy?: string; policy: string; json?: boolean } & ScaleOpts,
      ) => {
        needRoot();
        const policy = parsePolicy(opts.policy);
        const scenarios = readScenarios(files, undefined, scaleOf(opts)).map((scenario, i) => ({
          file: scenarioPath(files[i]!),
          scenario,
        }));
        const providers = parseProviders(opts.providers);
        const proxies = parseProxies(opts.proxy);
        const { verify } = await lab();
        const reports = [];
        for (const { file, scenario } of scenarios)
          for (const { name, provider } of providers)
            for (const proxy of proxies) {
              // Reported under the name the user chose it by.
              // A bar per build on a terminal: each probe is a real connection, some wait out a timeout.
              let bar: ReturnType<typeof progressBar>;
              let said = false;
              const onProgress = (done: number, total: number) => {
                // Without a terminal (a CI log), one line as each build's probing starts, so a long
                // one does not read as a hang (--json keeps stderr for errors).
                if (!process.stderr.isTTY && !opts.json && !said) {
                  said = true;
                  process.stderr.write(
                    `verify ${scenario.name} / ${name}${proxy ? ` / kube-proxy ${proxy}` : ""}: ${total} probes\n`,
                  );
                }
                bar ??= progressBar(
                  `verify ${scenario.name} / ${name} [{bar}] {value}/{total} probes`,
                  total,
                  {
                    exitOnSignal: false,
                  },
                );
                bar?.update(done);
              };
              const report = {
                ...(await labErrors(() =>
                  verify(withProxy(scenario, proxy), provider, file, policy, onProgress).finally(() =>
                    stopBar(bar),
                  ),
                )),
                provider: name,
              };
              reports.push(report);
              if (!opts.json) {
                const mark = report.agreed === report.total ? color.green : color.red;
                const label = [
                  report.scenario,
                  report.provider,
                  `kube-proxy ${report.proxy}`,
                  ...(report.policy !== "none" ? [`policy ${report.policy}`] : []),
                ].join(" / ");
                process.stdout.write(
                  `${color.bold(label)}: ${mark(`${report.agreed}/${report.total} agree`)}\n`,
                );
                for (const c of report.cells.filter((c) => !c.agree))
                  process.stdout.write(
                    `  ${c.kind} ${c.from} → ${c.to} (${c.protocol}${c.size !== undefined ? `, ${c.size} B` : ""}): ${c.why}\n`,
                  );
              }
            }
        if (opts.json) print(true, reports, () => "");
        if (reports.some((r) => r.agreed !== r.total)) process.exitCode = 1;
      },
    );
}
