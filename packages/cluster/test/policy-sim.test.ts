// NetworkPolicy enforced by the iptables engine on the simulator: the upstream e2e suite's truth
// tables, under providers that route (cbr0-host-gw) and that encapsulate (overlay).
import { PolicyLimitError, iptablesPolicyEngine } from "@podnet/policy";
import { OWN_CASES, UPSTREAM_CASES } from "@podnet/policy/upstream";
import { getProvider } from "@podnet/providers";
import { describe, expect, it } from "vitest";
import {
  ClusterRuntime,
  ScenarioSchema,
  checkUpstreamCase,
  pathMetrics,
  traceVerdict,
  upstreamScenario,
} from "../src/index.js";

for (const provider of ["overlay", "cbr0-host-gw"])
  describe(`the upstream NetworkPolicy cases on the simulator, ${provider} + iptables`, async () => {
    const runtime = await ClusterRuntime.build(upstreamScenario(), getProvider(provider), {
      policy: iptablesPolicyEngine,
    });
    for (const c of [...UPSTREAM_CASES, ...OWN_CASES])
      it(c.name, async () => {
        expect(await checkUpstreamCase(runtime, c)).toEqual([]);
      });
  });

/** Two nodes on one segment, and what the test adds (pods, policies, events). */
const twoNodes = (name: string, rest: Record<string, unknown>) =>
  ScenarioSchema.parse({
    name,
    cluster: { clusterCidr: "10.0.0.0/16", serviceCidr: "10.96.0.0/16" },
    underlay: { segments: [{ name: "lan", subnet: "10.100.0.0/24" }] },
    nodes: [
      { name: "node1", segment: "lan", address: "10.100.0.2" },
      { name: "node2", segment: "lan", address: "10.100.0.3" },
    ],
    ...rest,
  });

describe("a trace's policy verdict", () => {
  // A pod whose egress a policy denies: its node drops the packet, so the walk ends on that node, as
  // it does for a packet taken by the node. Only the second is between a pod and its own node.
  it("denies egress a node dropped, and allows a pod to its own node", async () => {
    const scenario = twoNodes("deny-egress", {
      pods: [
        { name: "a", node: "node1", labels: { app: "a" } },
        { name: "b", node: "node2", containers: [{ name: "c", ports: [{ containerPort: 80 }] }] },
      ],
      networkPolicies: [
        {
          apiVersion: "networking.k8s.io/v1",
          kind: "NetworkPolicy",
          metadata: { name: "deny-egress", namespace: "default" },
          spec: { podSelector: { matchLabels: { app: "a" } }, policyTypes: ["Egress"] },
        },
      ],
    });
    const runtime = await ClusterRuntime.build(scenario, getProvider("cbr0-host-gw"), {
      policy: iptablesPolicyEngine,
    });
    const verdict = (to: string, protocol: "icmp" | "tcp") => {
      const trace = runtime.trace("a", to, { protocol });
      const v = traceVerdict(runtime, trace)!;
      return [trace.outcome, v.allowed, v.egress?.reason];
    };
    expect(verdict("b:80", "tcp")).toEqual(["dropped", false, "default-deny"]);
    expect(verdict("node2", "icmp")).toEqual(["dropped", false, "default-deny"]);
    expect(verdict("node1", "icmp")).toEqual(["reached", true, "own-node"]);
    // The path metrics describe the first pair across nodes that a ping crosses: a's egress is
    // denied, b's is not.
    expect(await pathMetrics(runtime)).toMatchObject({
      from: "b",
      to: "a",
      reached: true,
      sourcePreserved: true,
    });
    // With every pod's egress denied, the first pair and why: whether b saw a's address is not known.
    await runtime.runEvents([
      {
        at: 0,
        action: "setNetworkPolicy",
        networkPolicy: {
          apiVersion: "networking.k8s.io/v1",
          kind: "NetworkPolicy",
          metadata: { name: "deny-all-egress", namespace: "default" },
          spec: { podSelector: {}, policyTypes: ["Egress"] },
        },
      },
    ]);
    const path = (await pathMetrics(runtime))!;
    expect(path).toMatchObject({ from: "a", to: "b", reached: false });
    expect(path.sourcePreserved).toBeUndefined();
  });
});

describe("NetworkPolicy events", () => {
  const policy = (ingress: unknown[] | undefined) => ({
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "db", namespace: "shop" },
    spec: {
      podSelector: { matchLabels: { app: "db" } },
      policyTypes: ["Ingress"],
      ...(ingress ? { ingress } : {}),
    },
  });
  const scenario = twoNodes("policy-events", {
    pods: [
      { name: "web", namespace: "shop", node: "node1", labels: { app: "web" } },
      { name: "other", namespace: "shop", node: "node1", labels: { app: "other" } },
      {
        name: "db",
        namespace: "shop",
        node: "node2",
        labels: { app: "db" },
        containers: [{ name: "pg", ports: [{ containerPort: 5432 }] }],
      },
    ],
    events: [
      // Deny every connection to db, then replace that policy by one that lets web in, then delete it.
      { at: 1, action: "setNetworkPolicy", networkPolicy: policy(undefined) },
      {
        at: 2,
        action: "setNetworkPolicy",
        networkPolicy: policy([{ from: [{ podSelector: { matchLabels: { app: "web" } } }] }]),
      },
      { at: 3, action: "removeNetworkPolicy", networkPolicy: { name: "db", namespace: "shop" } },
    ],
  });
  const reaches = (runtime: ClusterRuntime) =>
    ["web", "other"].map(
      (from) => runtime.summary(from, "db:5432", { protocol: "tcp" }).outcome === "reached",
    );

  it("set, replace and remove a policy; the nodes' chains and every verdict follow", async () => {
    const runtime = await ClusterRuntime.build(scenario, getProvider("cbr0-host-gw"), {
      policy: iptablesPolicyEngine,
    });
    expect(reaches(runtime)).toEqual([true, true]);
    const seen: boolean[][] = [];
    for (const event of scenario.events) {
      await runtime.runEvents([event]);
      seen.push(reaches(runtime));
      // The policy table agrees with the datapath at every step.
      const verdicts = ["web", "other"].map(
        (from) => traceVerdict(runtime, runtime.trace(from, "db:5432", { protocol: "tcp" }))?.allowed,
      );
      expect(verdicts).toEqual(seen.at(-1));
    }
    expect(seen).toEqual([
      [false, false],
      [true, false],
      [true, true],
    ]);
    expect(runtime.networkPolicies).toEqual([]);
    // The scenario as written is left as it was.
    expect(scenario.networkPolicies).toEqual([]);
    expect(runtime.reports.map((r) => r.description)).toEqual([
      expect.stringMatching(/^NetworkPolicy shop\/db set \(\d+ chains? written, \d+ chains? removed\)$/),
      expect.stringMatching(/^NetworkPolicy shop\/db set /),
      expect.stringMatching(
        /^NetworkPolicy shop\/db removed \(\d+ chains? written, [1-9]\d* chains? removed\)$/,
      ),
    ]);
  });

  it("without a policy engine the events change the policies and say nothing is enforced", async () => {
    const runtime = await ClusterRuntime.build(scenario, getProvider("cbr0-host-gw"));
    await runtime.runEvents(scenario.events.slice(0, 1));
    expect(runtime.networkPolicies.map((p) => p.metadata.name)).toEqual(["db"]);
    expect(reaches(runtime)).toEqual([true, true]);
    expect(runtime.reports[0]!.description).toBe(
      "NetworkPolicy shop/db set (not enforced: no policy engine)",
    );
    await expect(
      runtime.runEvents(scenario.events.slice(2).concat(scenario.events.slice(2))),
    ).rejects.toThrow('unknown NetworkPolicy "shop/db"');
  });
});

describe("NetworkPolicy past the engine's limits", () => {
  it("is refused before any node is written, and an event's policy is then not in force", async () => {
    // 520 pods, each allowed in from and out to every pod: 10 on node1 (10,420 rules, within the
    // limit, and first in line) and 510 on node2 (530,910 rules: past it).
    const scenario = ScenarioSchema.parse({
      name: "too-many-rules",
      cluster: { clusterCidr: "10.0.0.0/16", nodeMaskSize: 22, serviceCidr: "10.96.0.0/16" },
      underlay: { segments: [{ name: "lan", subnet: "10.100.0.0/24" }] },
      nodes: [
        { name: "node1", segment: "lan", address: "10.100.0.2" },
        { name: "node2", segment: "lan", address: "10.100.0.3" },
      ],
      pods: Array.from({ length: 520 }, (_, i) => ({ name: `p${i}`, node: i < 10 ? "node1" : "node2" })),
      events: [
        {
          at: 1,
          action: "setNetworkPolicy",
          networkPolicy: {
            apiVersion: "networking.k8s.io/v1",
            kind: "NetworkPolicy",
            metadata: { name: "all" },
            spec: {
              podSelector: {},
              ingress: [{ from: [{ podSelector: {} }] }],
              egress: [{ to: [{ podSelector: {} }] }],
            },
          },
        },
      ],
    });
    const runtime = await ClusterRuntime.build(scenario, getProvider("cbr0-host-gw"), {
      policy: iptablesPolicyEngine,
    });
    const filters = () =>
      Promise.all(["node1", "node2"].map((n) => runtime.k.iptables.save(runtime.ns(n), "filter")));
    const before = await filters();
    await expect(runtime.runEvents()).rejects.toThrow(PolicyLimitError);
    expect(runtime.networkPolicies).toEqual([]);
    expect(await filters()).toEqual(before);
  }, 60_000);
});
