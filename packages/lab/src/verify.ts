/**
 * `podnet verify`: one scenario built twice, in the simulator and on real namespaces, by the same
 * runtime; every reachability cell, every probe of the scenario's traffic and a packet size on each
 * side of a cross-node path's MTU, run on both; and where they disagree, what each saw.
 */
import { randomBytes } from "node:crypto";
import {
  ClusterRuntime,
  clusterPolicies,
  reachabilityPlan,
  SAMPLES_PER_ENDPOINT,
  type ProbeOptions,
  type ProbeResult,
  type Scenario,
} from "@podnet/cluster";
import type { NetworkProvider } from "@podnet/cni";
import { connectionVerdict, noPolicyEngine, policyMatrix, type PolicyEngine } from "@podnet/policy";
import { down, shortenArpRetries, up, watchSignals } from "./lab.js";

export interface VerifyCell {
  kind: string;
  from: string;
  to: string;
  protocol: "icmp" | "tcp" | "udp";
  size?: number;
  sim: ProbeResult;
  kernel: ProbeResult;
  /**
   * For a Service with several endpoints, each backend's outcomes over repeated connections:
   * kube-proxy picks an endpoint at random for each one, independently on each backend, so what is
   * compared is the set of outcomes the endpoints give, not one draw.
   */
  samples?: { sim: Tally; kernel: Tally };
  agree: boolean;
  /** Why they disagree, in a sentence. */
  why?: string;
}

export interface VerifyReport {
  scenario: string;
  provider: string;
  /** kube-proxy's mode the Services ran under on both backends. */
  proxy: string;
  /** The NetworkPolicy engine on both ("none" without one). */
  policy: string;
  cells: VerifyCell[];
  agreed: number;
  total: number;
}

type Outcome = ProbeResult["outcome"];
export type Tally = Partial<Record<Outcome, number>>;

/**
 * ARP's retry timer in a verify lab. With the kernel's 1 s, an address nobody answers fails after
 * about 3 s: later than the TCP and UDP probes wait (2 s), so the kernel would read a timeout where
 * the simulator, which has no clock for ARP, says host unreachable; and later than TCP's first
 * retransmission (1 s), a new connection whose endpoint kube-proxy draws again when the first SYN
 * never left the node. At 200 ms resolution fails at 600 ms, before both.
 */
const ARP_RETRY_MS = 200;

/** How many times the simulator's connections the kernel may make to show the same outcomes. */
const KERNEL_TRIES = 3;

function formatTally(tally: Tally): string {
  return Object.entries(tally)
    .map(([outcome, n]) => `${outcome} ×${n}`)
    .join(", ");
}

/**
 * Repeats a probe until its outcomes cover `wanted` (or show one outside it), at most `max` times;
 * without `wanted`, exactly `max` times. Returns the first result of each outcome and their counts.
 */
async function sample(
  probe: () => Promise<ProbeResult>,
  max: number,
  wanted?: Tally,
): Promise<{ first: ProbeResult; tally: Tally }> {
  const tally: Tally = {};
  let first: ProbeResult | undefined;
  for (let i = 0; i < max; i++) {
    const r = await probe();
    first ??= r;
    tally[r.outcome] = (tally[r.outcome] ?? 0) + 1;
    if (!wanted) continue;
    const seen = Object.keys(tally) as Outcome[];
    if (seen.some((o) => !wanted[o])) break;
    if ((Object.keys(wanted) as Outcome[]).every((o) => tally[o])) break;
  }
  return { first: first!, tally };
}

function sameOutcomes(a: Tally, b: Tally): boolean {
  const keys = (t: Tally) => Object.keys(t).sort().join(",");
  return keys(a) === keys(b);
}

interface Check {
  kind: string;
  from: string;
  to: string;
  options: ProbeOptions & { protocol: "icmp" | "tcp" | "udp" };
  /** For a NetworkPolicy cell: whether the compiled policies allow the connection. */
  allowed?: boolean;
}

/**
 * What is compared: the outcome class, for an answered ping the TTL it arrived with, and for a
 * NetworkPolicy cell whether the kernel's answer is the compiled policies' verdict — where the
 * network connects the pair without policies (`connects`): under docker-bridge a pod on another node
 * is not reached whatever the policies say, and that is the simulator's to agree with, not theirs.
 */
function compare(
  sim: ProbeResult,
  kernel: ProbeResult,
  allowed?: boolean,
  connects?: boolean,
): string | undefined {
  if (allowed !== undefined && connects && (kernel.outcome === "reached") !== allowed)
    return `the policies ${allowed ? "allow" : "deny"} it and the network connects the pair; the kernel says ${kernel.outcome} (${kernel.detail})`;
  if (sim.outcome !== kernel.outcome)
    return `the simulator says ${sim.outcome} (${sim.detail}); the kernel says ${kernel.outcome} (${kernel.detail})`;
  if (sim.ttl !== undefined && kernel.ttl !== undefined && sim.ttl !== kernel.ttl)
    return `the answer arrives with TTL ${sim.ttl} in the simulator and ${kernel.ttl} on the kernel`;
  return undefined;
}

function checks(runtime: ClusterRuntime): Check[] {
  const out: Check[] = reachabilityPlan(runtime).map((c) => ({
    kind: c.kind,
    from: c.from,
    to: c.to,
    options: { protocol: c.protocol },
  }));
  for (const p of runtime.spec.traffic)
    out.push({
      kind: "scenario probe",
      from: p.from,
      to: p.to,
      options: {
        protocol: p.protocol,
        ...(p.port !== undefined ? { port: p.port } : {}),
        ...(p.size !== undefined ? { size: p.size } : {}),
      },
    });
  // Around the path MTU of a cross-node pod pair: the largest ping that fits, and one byte more, DF set.
  const pods = [...runtime.pods];
  const first = pods[0];
  const other = pods.find(([, p]) => first && p.node !== first[1].node);
  if (first && other) {
    const mtu = runtime.provider.podMtu(runtime.nodes.get(first[1].node)!.underlayMtu);
    for (const size of [mtu - 28, mtu - 27])
      out.push({
        kind: "path MTU",
        from: first[0],
        to: other[0],
        options: { protocol: "icmp", size, dontFragment: true },
      });
  }
  if (runtime.policyEngine.name !== "none") out.push(...policyChecks(runtime));
  return out;
}

/** Every pod to every other pod's container ports, with the compiled policies' verdict. */
function policyChecks(runtime: ClusterRuntime): Check[] {
  const compiled = clusterPolicies(runtime);
  const matrix = policyMatrix(compiled);
  const out: Check[] = [];
  for (const [s, from] of compiled.pods.entries())
    for (const target of matrix.targets) {
      const to = compiled.pods.findIndex((p) => `${p.namespace}/${p.name}` === target.name);
      if (to === s) continue;
      const verdict = connectionVerdict(compiled, { pod: s }, { pod: to }, target.protocol, target.port);
      out.push({
        kind: "NetworkPolicy",
        from: from.name,
        to: `${compiled.pods[to]!.name}:${target.port}`,
        options: { protocol: target.protocol, port: target.port },
        allowed: verdict.allowed,
      });
    }
  return out;
}

/** Builds `scenario` under `provider` on both backends and compares every check. */
export async function verify(
  scenario: Scenario,
  provider: NetworkProvider,
  file: string,
  policy: PolicyEngine = noPolicyEngine,
  /** Called after each probe compared, with how many there are. */
  onProgress?: (done: number, total: number) => void,
): Promise<VerifyReport> {
  const sim = await ClusterRuntime.build(scenario, provider, { policy });
  await sim.runEvents();
  // What the network connects without policies, for the NetworkPolicy cells' verdicts.
  const open = policy.name === "none" ? undefined : await ClusterRuntime.build(scenario, provider);
  await open?.runEvents();
  const name = `v${randomBytes(3).toString("hex")}`;
  // Ctrl-C while probing stops at the next probe, and the lab is removed below (it was left behind).
  const signals = watchSignals();
  let built = false;
  try {
    const { runtime: kernel } = await up(scenario, provider, { name, scenarioFile: file, policy });
    built = true;
    await shortenArpRetries(name, ARP_RETRY_MS);
    const cells: VerifyCell[] = [];
    const all = checks(sim);
    for (const check of all) {
      signals.check();
      const endpoints =
        sim.serviceOf(check.to, check.options.port, check.options.protocol)?.endpoints.length ?? 0;
      let simResult: ProbeResult;
      let kernelResult: ProbeResult;
      let samples: VerifyCell["samples"];
      let why: string | undefined;
      if (endpoints > 1) {
        const max = SAMPLES_PER_ENDPOINT * endpoints;
        const s = await sample(() => sim.probe(check.from, check.to, check.options), max);
        // The kernel stops as soon as it has shown every outcome the simulator did; it may take up to
        // three times as many connections, so that an outcome the kernel gives rarely (under
        // docker-bridge, a Service endpoint holding the client's own address: about 1 in 10
        // connections on the kernel, 1 in 3 in the simulator) is not missed by chance.
        const k = await sample(
          () => kernel.probe(check.from, check.to, check.options),
          KERNEL_TRIES * max,
          s.tally,
        );
        [simResult, kernelResult, samples] = [s.first, k.first, { sim: s.tally, kernel: k.tally }];
        if (!sameOutcomes(s.tally, k.tally))
          why = `over ${endpoints} endpoints, the simulator's connections gave ${formatTally(s.tally)}; the kernel's gave ${formatTally(k.tally)}`;
      } else {
        simResult = await sim.probe(check.from, check.to, check.options);
        kernelResult = await kernel.probe(check.from, check.to, check.options);
        const connects =
          check.allowed !== undefined && open
            ? (await open.probe(check.from, check.to, check.options)).outcome === "reached"
            : undefined;
        why = compare(simResult, kernelResult, check.allowed, connects);
      }
      cells.push({
        kind: check.kind,
        from: check.from,
        to: check.to,
        protocol: check.options.protocol,
        ...(check.options.size !== undefined ? { size: check.options.size } : {}),
        sim: simResult,
        kernel: kernelResult,
        ...(samples ? { samples } : {}),
        agree: !why,
        ...(why ? { why } : {}),
      });
      onProgress?.(cells.length, all.length);
    }
    return {
      scenario: scenario.name,
      provider: provider.name,
      proxy: sim.proxy,
      policy: policy.name,
      cells,
      agreed: cells.filter((c) => c.agree).length,
      total: cells.length,
    };
  } catch (error) {
    throw signals.cause(error);
  } finally {
    signals.close();
    // `up` removes what it built when it fails; after that the lab is ours to remove.
    if (built) await down(name);
  }
}
