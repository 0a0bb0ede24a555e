// The simulator's flow cache (packages/sim/src/flow-cache.ts) against the walk it stands in for: two
// twins of each cluster, one replaying repeated probes, one walking every probe, must say the same
// thing about every probe and hold the same conntrack entries after — through changes of routes,
// links, rules and listeners in between.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ipv4Prefix, parseIpv4 } from "@podnet/core";
import { iptablesPolicyEngine, noPolicyEngine, type PolicyEngine } from "@podnet/policy";
import { getProvider } from "@podnet/providers";
import type { SimKernel, TraceSummary } from "@podnet/sim";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ClusterRuntime, SimBackend, loadScenario, reachabilityPlan, type Scenario } from "../src/index.js";

const bundled = (name: string, overrides: Partial<Scenario> = {}) => {
  const file = join(__dirname, "..", "..", "..", "scenarios", `${name}.yaml`);
  return { ...loadScenario(readFileSync(file, "utf8"), file), ...overrides };
};

interface Twins {
  cached: ClusterRuntime;
  walked: ClusterRuntime;
}

async function twins(scenario: Scenario, provider: string, policy: PolicyEngine): Promise<Twins> {
  const build = (flowCache: boolean) =>
    ClusterRuntime.build(scenario, getProvider(provider), {
      backend: new SimBackend(scenario.name, { flowCache }),
      policy,
    });
  return { cached: await build(true), walked: await build(false) };
}

const kernel = (rt: ClusterRuntime) => rt.backend.netlink as SimKernel;

/** Every live conntrack entry of every namespace, in one order. */
function conntrack(rt: ClusterRuntime): string[] {
  const k = kernel(rt);
  const out: string[] = [];
  for (const ns of k.namespaces.values()) {
    if (!ns.conntrackSize) continue;
    for (const e of ns.conntrack.list(k.clock)) out.push(`${ns.name} ${JSON.stringify(e)}`);
  }
  return out.sort();
}

type Probe = [
  from: string,
  to: string,
  options: { protocol: "icmp" | "tcp" | "udp"; port?: number; size?: number },
];

/** The scenario's own probes and the reachability matrix's, plus TCP and UDP to every pod's ports. */
function probesOf(rt: ClusterRuntime): Probe[] {
  const probes: Probe[] = reachabilityPlan(rt).map((c) => [c.from, c.to, { protocol: c.protocol }]);
  const known = (from: string, to: string) => {
    try {
      rt.origin(from);
      rt.resolve(to);
      return true;
    } catch {
      return false; // made by a later event
    }
  };
  for (const t of rt.spec.traffic.filter((t) => known(t.from, t.to)))
    probes.push([
      t.from,
      t.to,
      {
        protocol: t.protocol,
        ...(t.port ? { port: t.port } : {}),
        ...(t.size !== undefined ? { size: t.size } : {}),
      },
    ]);
  const pods = [...rt.pods.keys()].slice(0, 6);
  for (const a of pods)
    for (const b of pods)
      if (a !== b) {
        probes.push([a, b, { protocol: "tcp", port: 80 }]);
        probes.push([a, b, { protocol: "udp", port: 53 }]);
        probes.push([a, b, { protocol: "icmp", size: 1600 }]);
      }
  return probes;
}

/** One probe on both twins: the summaries must be equal. */
function both(t: Twins, [from, to, options]: Probe): TraceSummary {
  const cached = t.cached.summary(from, to, options);
  const walked = t.walked.summary(from, to, options);
  expect({ probe: `${from} → ${to} ${JSON.stringify(options)}`, ...cached }).toEqual({
    probe: `${from} → ${to} ${JSON.stringify(options)}`,
    ...walked,
  });
  return cached;
}

/** The same change on both twins. */
async function change(t: Twins, apply: (k: SimKernel) => Promise<unknown>): Promise<void> {
  for (const rt of [t.cached, t.walked]) await apply(kernel(rt)).catch(() => undefined);
}

const CASES: [scenario: string, provider: string, proxy: "iptables" | "nftables", policy: PolicyEngine][] = [
  ["two-nodes", "docker-bridge", "iptables", noPolicyEngine],
  ["two-nodes", "cbr0-host-gw", "nftables", noPolicyEngine],
  ["two-nodes", "overlay", "iptables", noPolicyEngine],
  ["routed-segments", "cbr0-host-gw-gateway", "iptables", noPolicyEngine],
  ["service", "cbr0-host-gw", "iptables", noPolicyEngine],
  ["service", "overlay", "nftables", noPolicyEngine],
  ["netpol", "cbr0-host-gw", "iptables", iptablesPolicyEngine],
  ["netpol", "overlay", "iptables", iptablesPolicyEngine],
  ["churn", "cbr0-host-gw", "iptables", noPolicyEngine],
];

describe("the flow cache", () => {
  it.each(CASES)(
    "%s under %s (%s proxy): a replayed probe says what a walk says, and leaves the same conntrack",
    async (name, provider, proxy, policy) => {
      const t = await twins(bundled(name, { proxy }), provider, policy);
      const probes = probesOf(t.cached);
      // Three rounds: the first walks and learns, the others replay what can be replayed.
      for (let round = 0; round < 3; round++) for (const p of probes) both(t, p);
      expect(conntrack(t.cached)).toEqual(conntrack(t.walked));
      const stats = kernel(t.cached).flowStats;
      expect(stats.replayed).toBeGreaterThan(probes.length);
      expect(kernel(t.walked).flowStats.replayed).toBe(0);
      // The scenario's events (pods and nodes coming and going), then the probes again.
      await t.cached.runEvents();
      await t.walked.runEvents();
      for (let round = 0; round < 2; round++) for (const p of probesOf(t.cached)) both(t, p);
      expect(conntrack(t.cached)).toEqual(conntrack(t.walked));
    },
    60_000,
  );

  it("reuses timed-out entries without changing what either twin holds (3,000 probes of one pair)", async () => {
    // Under overlay a replay files six entries; thousands of probes time them out, sweeps drop them
    // and later replays reuse them. A listing taken half way must read the same at the end.
    const t = await twins(bundled("two-nodes"), "overlay", noPolicyEngine);
    const probe: Probe = ["web", "db", { protocol: "icmp" }];
    let midway: { entries: object[]; text: string } | undefined;
    for (let i = 0; i < 3000; i++) {
      both(t, probe);
      if (i === 1500) {
        const k = kernel(t.cached);
        const entries = [...k.namespaces.values()].flatMap((ns) =>
          ns.conntrackSize ? ns.conntrack.list(k.clock) : [],
        );
        midway = { entries, text: JSON.stringify(entries) };
        expect(conntrack(t.cached)).toEqual(conntrack(t.walked));
      }
    }
    expect(conntrack(t.cached)).toEqual(conntrack(t.walked));
    expect(JSON.stringify(midway!.entries)).toBe(midway!.text);
    expect(kernel(t.cached).flowStats.replayed).toBeGreaterThan(2900);
  });

  it("follows every change of state between two probes of one pair, in any order (random interleavings)", async () => {
    // Few probes, so that one is often repeated across a change: across nodes, on a node, to a node.
    const probes: Probe[] = [
      ["web", "db", { protocol: "icmp" }],
      ["web", "db", { protocol: "tcp", port: 80 }],
      ["db", "web", { protocol: "udp", port: 53 }],
      ["client", "db", { protocol: "icmp", size: 1600 }],
      ["web", "client", { protocol: "icmp" }],
      ["db", "node1", { protocol: "icmp" }],
    ];
    const node1 = "node1";
    const podRoute = { dst: Ipv4Prefix.parse("10.0.2.0/24"), via: parseIpv4("10.100.0.3"), dev: "eth0" };
    // Each change and its undoing, every kind of state a walk reads.
    const changes: ((k: SimKernel) => Promise<unknown>)[] = [
      (k) => k.link.set(node1, "cbr0", { up: false }),
      (k) => k.link.set(node1, "cbr0", { up: true }),
      (k) => k.link.set(node1, "eth0", { mtu: 1200 }),
      (k) => k.link.set(node1, "eth0", { mtu: 1500 }),
      (k) => k.sysctl.set(node1, "net.ipv4.ip_forward", "0"),
      (k) => k.sysctl.set(node1, "net.ipv4.ip_forward", "1"),
      (k) => k.route.del(node1, podRoute),
      (k) => k.route.add(node1, podRoute),
      (k) =>
        k.iptables.insert(node1, "filter", "FORWARD", {
          protocol: "tcp",
          matches: [{ kind: "tcp", sport: 80 }],
          target: { kind: "DROP" },
        }),
      (k) =>
        k.iptables.insert(node1, "filter", "FORWARD", {
          protocol: "icmp",
          target: { kind: "REJECT", rejectWith: "icmp-host-unreachable" },
        }),
      // Replies to ephemeral ports up to the next two probes' (a fresh cluster's ports count up from
      // 32768, one a send; the range's text names neither): a walk whose rules read its own port is
      // not replayed for another port.
      (k) =>
        k.iptables.insert(node1, "filter", "FORWARD", {
          protocol: "tcp",
          matches: [{ kind: "tcp", dport: 32700, dportEnd: 32769 + k.clock }],
          target: { kind: "DROP" },
        }),
      (k) => k.iptables.flush(node1, "filter", "FORWARD"),
      async (k) => k.close("db", { protocol: "tcp", port: 80 }),
      async (k) => k.listen("db", { protocol: "tcp", port: 80, owner: "db/postgres" }),
    ];
    let replayed = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({ probe: fc.nat(probes.length - 1), times: fc.integer({ min: 1, max: 3 }) }),
            fc.record({ change: fc.nat(changes.length - 1) }),
          ),
          { minLength: 5, maxLength: 30 },
        ),
        async (steps) => {
          const t = await twins(bundled("two-nodes"), "cbr0-host-gw", noPolicyEngine);
          for (const step of steps) {
            if ("change" in step) await change(t, changes[step.change]!);
            else for (let i = 0; i < step.times; i++) both(t, probes[step.probe]!);
          }
          expect(conntrack(t.cached)).toEqual(conntrack(t.walked));
          replayed += kernel(t.cached).flowStats.replayed;
        },
      ),
      { numRuns: 100, seed: 26 },
    );
    expect(replayed).toBeGreaterThan(200);
  }, 120_000);
});
