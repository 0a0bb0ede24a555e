/** `podnet trace`: one packet and its answer, hop by hop, under one or several providers. */
import { Option, type Command } from "commander";
import {
  ClusterRuntime,
  TargetError,
  requestTranslated,
  traceSocketNote,
  traceSocketOutcome,
  traceVerdict,
  unenforcedPolicies,
} from "@podnet/cluster";
import { traceJson, tracePcap } from "@podnet/sim";
import { explainVerdict } from "@podnet/policy";
import { providerNames } from "@podnet/providers";
import { UsageError } from "../errors.js";
import { checkOutput, readScenario, writeOutput } from "../files.js";
import { color, formatTrace, print } from "../format.js";
import { buildProgress } from "../progress.js";
import {
  integerIn,
  jsonOption,
  parsePolicy,
  parseProviders,
  parseProxies,
  policyOption,
  proxyOption,
  withProxy,
} from "../options.js";

interface TraceOptions {
  provider?: string;
  policy: string;
  providers?: string;
  proxy?: string;
  from: string;
  to: string;
  proto?: "icmp" | "tcp" | "udp";
  size?: number;
  pmtudisc?: "do" | "want" | "dont";
  pcap?: string;
  endpoint?: string;
  hooks?: boolean;
  verbose?: boolean;
  json?: boolean;
  events: boolean;
}

/** A runtime lookup whose failure is the user's flag: the message names the flag. */
function located<T>(option: string, lookup: () => T): T {
  try {
    return lookup();
  } catch (error) {
    // Still a target error (ETARGET in JSON), now saying which option named it.
    if (error instanceof TargetError) throw new TargetError(`${option}: ${error.message}`);
    throw error;
  }
}

export function traceCommand(cli: Command): void {
  cli
    .command("trace")
    .description("follow one packet and its answer hop by hop")
    .argument("<scenario>", "scenario file or bundled scenario name")
    .addOption(new Option("--provider <name>", `one of: ${providerNames.join(", ")}`).conflicts("providers"))
    .option("--providers <names>", "trace under several providers, one after the other")
    .addOption(proxyOption(false))
    .addOption(policyOption())
    .requiredOption("--from <source>", "a pod, pod/container, node or host")
    .requiredOption(
      "--to <target[:port]>",
      "a pod, node, host, svc/<name>[.<namespace>] or an address, with an optional :port",
    )
    .addOption(new Option("--proto <protocol>", "icmp, tcp or udp").choices(["icmp", "tcp", "udp"]))
    .option(
      "--size <bytes>",
      "payload bytes after the ICMP/UDP/TCP header, as ping -s (the IP packet is 28 bytes more for ICMP and UDP, 40 for TCP)",
      integerIn("--size", "a number of bytes", 0, 65000),
    )
    .addOption(
      new Option(
        "--pmtudisc <mode>",
        "Don't-Fragment as ping -M: want (ping's default: DF on what fits the route, the rest fragmented by the sender), do (always DF: too big fails), dont (never DF: routers fragment)",
      ).choices(["want", "do", "dont"]),
    )
    .option(
      "--pcap <file>",
      "write every frame the trace put on a wire, as a pcapng file with an interface per device (with --providers, one per provider: x.pcap → x-overlay.pcap)",
    )
    .option(
      "--endpoint <pod>",
      "through a Service: the endpoint kube-proxy's random draw picks (by default the draw is random, the same for the same scenario)",
    )
    .option(
      "--no-events",
      "trace the cluster as built, before the scenario's events (by default they happen first, as for run)",
    )
    .option("-v, --verbose", "show every transmit and receive too")
    .option(
      "--hooks",
      "a hop at every filter hook the packet passes (INPUT, FORWARD, OUTPUT), with the rules or the policy that accepted it",
    )
    .addOption(jsonOption("{provider, trace, socketOutcome: what the sending socket sees, policy?, notes?}"))
    .addHelpText(
      "after",
      "\nExamples:\n  podnet trace scenarios/two-nodes.yaml --provider overlay --from client --to db\n  podnet trace service --provider cbr0-host-gw --from client --to svc/web --pcap web.pcap\n  podnet trace service --provider cbr0-host-gw --proxy nftables --from client --to svc/web\n  podnet trace service --provider overlay --from client --to svc/web --endpoint web-b\n  podnet trace netpol --provider overlay --policy iptables --from monitor --to db:5432 --proto tcp\n  podnet trace churn --provider overlay --from a --to d   # d joins in an event\nExit status 1 when the packet is not delivered.",
    )
    .action(async (file: string, opts: TraceOptions) => {
      // Given but empty (`--providers ""`) is an empty list, not a missing flag.
      if (opts.provider === undefined && opts.providers === undefined)
        throw new UsageError("trace: give --provider <name> or --providers a,b,c");
      const inputs = new Set<string>();
      const providers =
        opts.providers !== undefined
          ? parseProviders(opts.providers)
          : parseProviders(opts.provider!, "--provider");
      const scenario = withProxy(
        readScenario(
          file,
          inputs,
          undefined,
          providers.map((p) => p.provider),
        ),
        parseProxies(opts.proxy, false)[0],
      );
      const several = providers.length > 1 || Boolean(opts.providers);
      const pcapFor = (name: string) =>
        several ? opts.pcap!.replace(/(\.pcap)?$/, `-${name}.pcap`) : opts.pcap!;
      // Checked before a provider's name is added to it: "" would become "-overlay.pcap".
      if (opts.pcap === "") throw new UsageError("--pcap: needs a file name");
      if (opts.pcap !== undefined)
        for (const { name } of providers) checkOutput("--pcap", pcapFor(name), inputs);
      const results = [];
      for (const { name, provider } of providers) {
        const runtime = await ClusterRuntime.build(scenario, provider, {
          onProgress: buildProgress(`building under ${name}`),
          policy: parsePolicy(opts.policy),
        });
        // The scenario's own probes name what exists after its events (as `podnet run` sends them).
        if (opts.events) await runtime.runEvents();
        located("--from", () => runtime.origin(opts.from));
        located("--to", () => runtime.resolve(opts.to));
        if (opts.endpoint !== undefined)
          located("--endpoint", () => runtime.endpointOf(opts.to, opts.proto, opts.endpoint!));
        // What is left to refuse once both ends resolve is the target's missing port (a Service's
        // has its first), or an endpoint the packet could not be sent to.
        const trace = located(opts.endpoint !== undefined ? "--endpoint" : "--to", () =>
          runtime.trace(opts.from, opts.to, {
            ...(opts.proto ? { protocol: opts.proto } : {}),
            ...(opts.size !== undefined ? { size: opts.size } : {}),
            ...(opts.pmtudisc && opts.pmtudisc !== "want" ? { dontFragment: opts.pmtudisc === "do" } : {}),
            ...(opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {}),
            ...(opts.hooks ? { hooks: true } : {}),
          }),
        );
        const verdict = traceVerdict(runtime, trace);
        // A REJECT on the path (kube-proxy's for a Service without endpoints) ends the walk as
        // unreachable, but the sending socket gets ECONNREFUSED; a UDP socket is told nothing of a
        // host unreachable. What `run` reports is the socket's view: both are said.
        const socket = traceSocketOutcome(trace);
        const note = traceSocketNote(trace);
        // One packet is one of kube-proxy's random draws: say so where another could go elsewhere.
        const drawn =
          opts.endpoint === undefined ? runtime.serviceDraw(opts.to, opts.proto, trace) : undefined;
        const draw = drawn
          ? `${drawn.service} has ${drawn.endpoints.length} endpoints (${drawn.endpoints.join(", ")}): kube-proxy picks one at random for each connection, and this trace is one draw (--endpoint <pod> chooses it); \`podnet run\` probes them all`
          : undefined;
        // A chosen endpoint the packet never got to: nothing translated it on its way (no route to
        // the Service, or a Local traffic policy's drop before any draw).
        const unmet =
          opts.endpoint !== undefined && !requestTranslated(trace)
            ? `--endpoint ${opts.endpoint}: no endpoint was drawn on the packet's way (nothing translated it)`
            : undefined;
        // Policies only written down pass every packet: said, so "reached" is not read as allowed.
        const unenforced = runtime.policyEngine.name === "none" ? unenforcedPolicies(runtime.spec) : [];
        const seen = [note, draw, unmet, ...unenforced.map((n) => color.yellow(`note: ${n}`))]
          .filter(Boolean)
          .map((line) => `${line}\n`)
          .join("");
        results.push({
          provider: name,
          trace,
          socketOutcome: socket,
          ...(verdict ? { policy: { ...verdict, explanation: explainVerdict(verdict) } } : {}),
          ...(unenforced.length ? { notes: unenforced } : {}),
        });
        if (opts.pcap !== undefined)
          writeOutput("--pcap", pcapFor(name), tracePcap(trace, undefined, Date.now() * 1000));
        if (!opts.json)
          process.stdout.write(
            `${color.bold(`== ${name}`)}: ${opts.from} → ${opts.to}\n${formatTrace(trace, { verbose: Boolean(opts.verbose) })}\n${seen}${
              verdict
                ? `${color.bold(`policy (${opts.policy}): ${verdict.allowed ? "allowed" : "denied"}`)}\n${explainVerdict(
                    verdict,
                  )
                    .map((line) => `  ${line}`)
                    .join("\n")}\n`
                : ""
            }\n`,
          );
      }
      if (opts.json) {
        const json = results.map((r) => ({ ...r, trace: traceJson(r.trace) }));
        print(true, json.length === 1 ? json[0] : json, () => "");
      }
      if (results.some((r) => r.trace.outcome !== "reached" && r.trace.outcome !== "refused"))
        process.exitCode = 1;
    });
}
