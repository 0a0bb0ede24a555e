/**
 * Benchmarks on the real datapath: a scenario realised as a lab, then between chosen pod pairs (same
 * node, across nodes, through a Service, to an outside host) TCP throughput on one and on four
 * streams, UDP throughput with loss and jitter (iperf3), round-trip time (ping) and TCP connect time,
 * with the IP fragments and TCP retransmits they caused, each run several times (median and spread).
 *
 * A bare veth pair between two namespaces of the same lab is measured the same way, interleaved:
 * each run measures the baseline, then every pair, so that whatever else the machine does drifts
 * into both; every figure is also given as a ratio to the baseline, with the spread of the per-run
 * ratios, the only form that holds on a shared machine.
 *
 * The Service pair is deterministic: the bench adds a ClusterIP Service (`podnet-bench`) whose one
 * endpoint is the across-nodes pair's server, so kube-proxy has no random choice to make. A ClusterIP
 * answers only on its ports (kube-proxy DNATs those), so that pair has no ping figure.
 *
 * The MTU story: where the provider's pod MTU is below the underlay's (VXLAN), the across-nodes pair
 * is measured again with both pods' eth0 and their host-side veth peers set to the underlay's MTU
 * after attach — what a conflist without the provider's `mtu` gives, as flannel users hit it — and
 * the fragments and retransmits of both rows tell the cost.
 *
 * Kernel CPU per gigabit is the whole machine's system + softirq time (from /proc/stat) over the
 * one-stream TCP runs, divided by the gigabits moved: namespaces have no accounting of their own, so
 * the figure includes both ends and anything else the machine did meanwhile.
 */
import { expandScenario, type ClusterRuntime, type Scenario } from "@podnet/cluster";
import type { NetworkProvider } from "@podnet/cni";
import type { PolicyEngine } from "@podnet/policy";
import { LinuxNetlink } from "@podnet/linux";
import { parseAddrArgument } from "@podnet/netlink";
import { listening, stopProcesses } from "./backend.js";
import { down, up, watchSignals } from "./lab.js";
import {
  CONNECT_PORT,
  IPERF_PORT,
  Measurer,
  type MeasureSettings,
  type RatioKey,
  type Sample,
  type Target,
} from "./measure.js";
import { spread, type Spread } from "./stats.js";

export interface DatapathFigures {
  tcpGbps: Spread;
  tcp4Gbps: Spread;
  udpGbps: Spread;
  udpLossPercent: Spread;
  udpJitterMs: Spread;
  /** Absent through a ClusterIP (no ICMP there). */
  rttMs?: Spread;
  connectMs: Spread;
  /**
   * System + softirq CPU-seconds of the whole machine per gigabit moved over TCP (one stream). Absent
   * side by side: the machine's CPU then served two transfers at once.
   */
  cpuSecondsPerGbit?: number;
  /** iperf3's retransmitted segments in a one-stream TCP run (side by side: over its blocks). */
  tcpRetransmits: Spread;
  /** IP fragments created (Ip FragCreates, summed over the lab's namespaces) during a one-stream TCP run. */
  tcpFragments: Spread;
  /** The same during a UDP run. */
  udpFragments: Spread;
  /** Runs whose UDP transfer failed once and was run again, and the first failure's message. */
  udpRetries: number;
  udpFirstError?: string;
}

export interface DatapathRow {
  provider: string;
  pair: string;
  from: string;
  to: string;
  podMtu: number;
  /** Absent when the pair cannot talk (docker-bridge across nodes): then `unreachable` says why. */
  figures?: DatapathFigures;
  unreachable?: string;
  /** median ÷ baseline median (throughput: higher is better; times: lower is better). */
  ratioToBaseline?: Partial<Record<RatioKey, number>> & Record<Exclude<RatioKey, "rtt">, number>;
  /** The spread of the per-run ratios, each run to the baseline run measured just before it. */
  ratioSpreads?: Partial<Record<RatioKey, Spread>> & Record<Exclude<RatioKey, "rtt">, Spread>;
  /** The pair through a Service: its ClusterIP and its one endpoint. */
  service?: { name: string; clusterIP: string; endpoint: string };
  /** The pod MTU was set to `podMtu` after attach, over the provider's own `providerMtu`. */
  wrongMtu?: { providerMtu: number };
}

export interface DatapathOptions extends Partial<MeasureSettings> {
  /** Runs per measurement (3 by default). */
  runs?: number;
  /**
   * Measure each pair at the same moments as a baseline run of its own (two transfers at once), not
   * one after the other: a run's ratio then compares two flows that met the same machine.
   */
  sideBySide?: boolean;
  scenarioFile: string;
  /** The NetworkPolicy engine on every node (none by default). */
  policy?: PolicyEngine;
}

export const BENCH_SERVICE = "podnet-bench";
const BENCH_LABEL = "podnet.dev/bench";
const BASELINE_MTU = 1500;

const SETTINGS: MeasureSettings & { runs: number } = { seconds: 1, omit: 0, pin: false, blocks: 0, runs: 3 };
/** Seconds of unmeasured traffic before the first run (`Measurer.warmUp`). */
const WARM_UP_SECONDS = 3;

/** The figures of one target from its runs' samples (CPU per gigabit unless measured side by side). */
function figuresOf(samples: Sample[], sideBySide = false): DatapathFigures {
  const of = (pick: (s: Sample) => number) => spread(samples.map(pick));
  const jiffies = samples.reduce((sum, s) => sum + s.jiffies, 0);
  const gigabits = samples.reduce((sum, s) => sum + s.gigabits, 0);
  const ticks = 100; // USER_HZ: /proc/stat counts in 1/100 s on Linux
  const rtts = samples.flatMap((s) => (s.rtt !== undefined ? [s.rtt] : []));
  return {
    tcpGbps: of((s) => s.tcp),
    tcp4Gbps: of((s) => s.tcp4),
    udpGbps: of((s) => s.udp),
    udpLossPercent: of((s) => s.loss),
    udpJitterMs: of((s) => s.jitter),
    ...(rtts.length ? { rttMs: spread(rtts) } : {}),
    connectMs: of((s) => s.connect),
    ...(sideBySide
      ? {}
      : { cpuSecondsPerGbit: gigabits ? Math.round((jiffies / ticks / gigabits) * 1000) / 1000 : 0 }),
    tcpRetransmits: of((s) => s.retransmits),
    tcpFragments: of((s) => s.tcpFragments),
    udpFragments: of((s) => s.udpFragments),
    udpRetries: samples.filter((s) => s.udpError).length,
    ...(samples.find((s) => s.udpError) ? { udpFirstError: samples.find((s) => s.udpError)!.udpError } : {}),
  };
}

const KEYS: [RatioKey, keyof Sample, keyof DatapathFigures][] = [
  ["tcp", "tcp", "tcpGbps"],
  ["tcp4", "tcp4", "tcp4Gbps"],
  ["udp", "udp", "udpGbps"],
  ["rtt", "rtt", "rttMs"],
  ["connect", "connect", "connectMs"],
];

const round3 = (n: number) => Math.round(n * 1000) / 1000;

/**
 * A target's ratios to the baseline: of the medians, and the spread of the per-run ratios (`base[i]`
 * is the baseline run measured beside, or just before, run `i`).
 */
export function ratiosOf(samples: Sample[], base: Sample[], sideBySide: boolean) {
  const figures = figuresOf(samples, sideBySide);
  const baseFigures = figuresOf(base, sideBySide);
  const ratioToBaseline: Partial<Record<RatioKey, number>> = {};
  const ratioSpreads: Partial<Record<RatioKey, Spread>> = {};
  for (const [key, sample, figure] of KEYS) {
    const mine = figures[figure] as Spread | undefined;
    const theirs = baseFigures[figure] as Spread;
    if (!mine) continue;
    ratioToBaseline[key] = theirs.median ? round3(mine.median / theirs.median) : 0;
    ratioSpreads[key] = spread(
      samples.map((s, i) => {
        // Side by side, a run's ratio is the median of its blocks' ratios.
        return round3(s.blockRatios?.[key] ?? (s[sample] as number) / ((base[i]![sample] as number) || 1));
      }),
    );
  }
  return {
    figures,
    ratioToBaseline: ratioToBaseline as DatapathRow["ratioToBaseline"] & object,
    ratioSpreads: ratioSpreads as DatapathRow["ratioSpreads"] & object,
  };
}

/** The bare veth baseline: two namespaces of the lab, one veth pair, nothing else. */
async function baseline(prefix: string): Promise<{ client: string; server: string; to: string }> {
  const k = new LinuxNetlink();
  const a = `${prefix}base-a`;
  const b = `${prefix}base-b`;
  await k.netns.add(a);
  await k.netns.add(b);
  for (const ns of [a, b]) await k.link.set(ns, "lo", { up: true });
  await k.link.add(a, { kind: "veth", name: "eth0", peer: { name: "eth0", netns: b }, mtu: BASELINE_MTU });
  // Addresses inside the lab's own namespaces only; never in the root namespace.
  await k.addr.add(a, "eth0", parseAddrArgument("10.255.255.1/30"));
  await k.addr.add(b, "eth0", parseAddrArgument("10.255.255.2/30"));
  await k.link.set(a, "eth0", { up: true });
  await k.link.set(b, "eth0", { up: true });
  return { client: a, server: b, to: "10.255.255.2" };
}

/**
 * The scenario with the bench's Service added: a ClusterIP whose one endpoint is the first pod on a
 * node other than the first pod's (the across-nodes pair's server), on iperf3's and the connect
 * listener's ports. Undefined when the scenario has no such pod.
 */
export function withBenchService(scenario: Scenario): { scenario: Scenario; endpoint?: string } {
  const expanded = expandScenario(scenario);
  const [first] = expanded.pods;
  const endpoint = expanded.pods.find((p) => p.node !== first?.node);
  if (!first || !endpoint) return { scenario: expanded };
  return {
    endpoint: endpoint.name,
    scenario: {
      ...expanded,
      pods: expanded.pods.map((p) =>
        p === endpoint ? { ...p, labels: { ...p.labels, [BENCH_LABEL]: "endpoint" } } : p,
      ),
      services: [
        ...expanded.services,
        {
          name: BENCH_SERVICE,
          namespace: "default",
          type: "ClusterIP",
          selector: { [BENCH_LABEL]: "endpoint" },
          ports: [
            { name: "iperf3", port: IPERF_PORT, targetPort: IPERF_PORT, protocol: "tcp" },
            { name: "iperf3-udp", port: IPERF_PORT, targetPort: IPERF_PORT, protocol: "udp" },
            { name: "connect", port: CONNECT_PORT, targetPort: CONNECT_PORT, protocol: "tcp" },
          ],
        },
      ],
    },
  };
}

interface Pair extends Target {
  pair: string;
  from: string;
  server: string;
  service?: DatapathRow["service"];
}

/** The pod pairs a scenario offers: same node, across nodes, through a Service, to an outside host. */
function pairs(runtime: ClusterRuntime, serviceEndpoint: string | undefined): Pair[] {
  const pods = [...runtime.pods];
  const out: Pair[] = [];
  const [first] = pods;
  if (!first) return out;
  const [from, src] = first;
  const fromNs = runtime.ns(from);
  const add = (pair: string, server: string, to: string, extra: Partial<Pair> = {}) =>
    out.push({ pair, from, server, fromNs, to, ping: true, ...extra });
  const same = pods.find(([n, p]) => n !== from && p.node === src.node);
  if (same) add("same node", same[0], same[1].ip);
  const across = pods.find(([, p]) => p.node !== src.node);
  if (across) add("across nodes", across[0], across[1].ip);
  // The Service's one endpoint is the pod the bench labelled (an address may be repeated: docker-bridge).
  const svc = runtime.services.get(`default/${BENCH_SERVICE}`);
  const endpoint = serviceEndpoint && runtime.pods.get(serviceEndpoint);
  if (svc && endpoint && svc.endpoints.length === 1 && svc.endpoints[0] === endpoint.ip)
    add("through a Service", serviceEndpoint, svc.clusterIP, {
      ping: false,
      service: { name: BENCH_SERVICE, clusterIP: svc.clusterIP, endpoint: serviceEndpoint },
    });
  const host = [...runtime.hosts][0];
  if (host) add("to an outside host", host[0], host[1]);
  return out;
}

/** Sets a pod's eth0 and its host-side veth peer to `mtu`, as a conflist with that `mtu` would. */
async function setPodMtu(runtime: ClusterRuntime, pod: string, mtu: number): Promise<void> {
  const podNs = runtime.ns(pod);
  const nodeNs = runtime.ns(runtime.pods.get(pod)!.node);
  const eth0 = (await runtime.k.link.list(podNs)).find((l) => l.ifname === "eth0")!;
  const peer = (await runtime.k.link.list(nodeNs)).find((l) => l.ifindex === eth0.link_index);
  if (!peer) throw new Error(`${pod}: no host-side veth for eth0 in ${nodeNs}`);
  await runtime.k.link.set(nodeNs, peer.ifname, { mtu });
  await runtime.k.link.set(podNs, "eth0", { mtu });
}

interface Measured {
  /** Each target's samples, run by run (the baseline's first). */
  samples: Sample[][];
  /** For each target, the baseline run its run `i` is compared with. */
  partners: Sample[][];
  /** Why a target could not be measured (a design that cannot carry the pair). */
  failures: (string | undefined)[];
}

/**
 * Measures the baseline (`targets[0]`) and the pairs `runs` times, interleaved: run 1 of each, then
 * run 2 of each… One after the other, each pair's run is compared with the baseline run just before
 * it; side by side, each pair's transfers run beside a baseline's of its own (TCP at the same
 * moments, UDP right after; one transfer each, or blocks; the baseline's figures are then all of
 * those), then its RTTs and connect times in blocks alternated with the baseline's, each run's
 * ratios the medians of the blocks'. A pair that fails is
 * unreachable from then on (its message kept); the baseline must not fail.
 */
async function interleave(
  measurer: Measurer,
  targets: Target[],
  runs: number,
  sideBySide: boolean,
): Promise<Measured> {
  const samples: Sample[][] = targets.map(() => []);
  const partners: Sample[][] = targets.map(() => []);
  const failures: (string | undefined)[] = targets.map(() => undefined);
  const [base, ...rest] = targets;
  const fail = (i: number, error: unknown) => {
    if (measurer.stopped) throw error;
    failures[i] = (error as Error).message;
  };
  for (let r = 0; r < runs; r++) {
    let last: Sample | undefined;
    if (!sideBySide) samples[0]!.push((last = await measurer.sample(base!)));
    for (const [k, target] of rest.entries()) {
      const i = k + 1;
      if (failures[i]) continue;
      if (!sideBySide) {
        try {
          samples[i]!.push(await measurer.sample(target));
          partners[i]!.push(last!);
        } catch (error) {
          fail(i, error);
        }
        continue;
      }
      // The transfers beside the baseline's (`transfersBeside`), then the latencies in
      // blocks alternated with the baseline's (`latencyBeside`; a ping beside a transfer would time
      // the transfer's load, not the path).
      const transfers = await measurer.transfersBeside(target, base!);
      let failure = transfers.failure;
      let latency: Awaited<ReturnType<Measurer["latencyBeside"]>> | undefined;
      if (transfers.mine)
        try {
          latency = await measurer.latencyBeside(target, base!);
        } catch (error) {
          failure = error;
        }
      if (!transfers.mine || !latency) {
        // The pair's end failed, unless the baseline fails measured alone too (then the bench does).
        samples[0]!.push({ ...transfers.theirs, ...(await measurer.latency(base!)) });
        fail(i, failure);
        continue;
      }
      const baseline = { ...transfers.theirs, ...latency.theirs };
      samples[0]!.push(baseline);
      samples[i]!.push({
        ...transfers.mine,
        ...latency.mine,
        blockRatios: { ...transfers.mine.blockRatios, ...latency.mine.blockRatios },
      });
      partners[i]!.push(baseline);
    }
  }
  return { samples, partners, failures };
}

/** The scenario's pairs under `provider` on the kernel, beside the bare veth baseline. */
export async function benchDatapath(
  scenario: Scenario,
  provider: NetworkProvider,
  name: string,
  options: DatapathOptions,
): Promise<{ baseline: DatapathFigures; rows: DatapathRow[] }> {
  const { runs, sideBySide = false, ...settings } = { ...SETTINGS, ...options };
  if (settings.blocks && !sideBySide) throw new Error("blocks: transfers run in blocks only side by side");
  const measurer = new Measurer(settings);
  // Ctrl-C or SIGTERM stops the running measurement at once; the lab is then removed below.
  const signals = watchSignals(() => measurer.stop());
  const servers: number[] = [];
  let built = false;
  try {
    const bench = withBenchService(scenario);
    const { runtime, state } = await up(bench.scenario, provider, {
      name,
      scenarioFile: options.scenarioFile,
      ...(options.policy ? { policy: options.policy } : {}),
    });
    built = true;
    const base = await baseline(state.prefix);
    const all = pairs(runtime, bench.endpoint);
    const serverNs = [...new Set([base.server, ...all.map((p) => runtime.ns(p.server))])];
    for (const ns of serverNs) servers.push(...measurer.serve(ns));
    for (const ns of serverNs)
      for (const port of [IPERF_PORT, CONNECT_PORT])
        if (!(await listening(ns, "tcp", port))) throw new Error(`${ns}: nothing listens on ${port}`);
    await measurer.watch((await runtime.k.netns.list()).filter((ns) => ns.startsWith(state.prefix)));
    // Side by side, each transfer's fragments are counted where it runs: the baseline's two namespaces,
    // or the rest of the lab.
    const baseNs = new Set([base.client, base.server]);
    const baseTarget: Target = {
      fromNs: base.client,
      to: base.to,
      ping: true,
      ...(sideBySide ? { counts: (ns: string) => baseNs.has(ns) } : {}),
    };
    const counted = (p: Pair): Pair => (sideBySide ? { ...p, counts: (ns: string) => !baseNs.has(ns) } : p);
    const podMtu = async (pod: string) =>
      (await runtime.k.link.list(runtime.ns(pod))).find((l) => l.ifname === "eth0")?.mtu ?? 0;
    const rowsOf = async (list: Pair[], measured: Measured) => {
      const rows: DatapathRow[] = [];
      for (const [i, p] of list.entries()) {
        const row: DatapathRow = {
          provider: provider.name,
          pair: p.pair,
          from: p.from,
          to: p.server,
          podMtu: await podMtu(p.from),
          ...(p.service ? { service: p.service } : {}),
        };
        const failure = measured.failures[i + 1];
        // A design that cannot carry the pair (docker-bridge's repeated addresses) is a result too.
        rows.push(
          failure
            ? { ...row, unreachable: failure }
            : { ...row, ...ratiosOf(measured.samples[i + 1]!, measured.partners[i + 1]!, sideBySide) },
        );
      }
      return rows;
    };

    await measurer.warmUp(baseTarget, WARM_UP_SECONDS);
    const measured = await interleave(measurer, [baseTarget, ...all.map(counted)], runs, sideBySide);
    const rows = await rowsOf(all, measured);

    // The wrong MTU: where the provider's pod MTU is below the underlay's, the across pair again with
    // the underlay's MTU on both pods (and the baseline again, interleaved, for its ratios).
    const across = all.find((p) => p.pair === "across nodes");
    const providerMtu = rows.find((r) => r.pair === "across nodes" && r.figures)?.podMtu;
    const underlayMtu = across && runtime.nodes.get(runtime.pods.get(across.from)!.node)!.underlayMtu;
    if (across && providerMtu && underlayMtu && providerMtu < underlayMtu) {
      for (const pod of [across.from, across.server]) await setPodMtu(runtime, pod, underlayMtu);
      const wrong = { ...across, pair: "across nodes, wrong MTU" };
      const [row] = await rowsOf(
        [wrong],
        await interleave(measurer, [baseTarget, counted(wrong)], runs, sideBySide),
      );
      rows.push({ ...row!, wrongMtu: { providerMtu } });
    }
    return { baseline: figuresOf(measured.samples[0]!, sideBySide), rows };
  } catch (error) {
    throw signals.cause(error);
  } finally {
    measurer.stop();
    await stopProcesses(servers);
    signals.close();
    // `up` removes what it built when it fails; after that the lab is ours to remove.
    if (built) await down(name);
  }
}
