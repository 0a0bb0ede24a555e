/**
 * The Kubernetes NetworkPolicy e2e suite's cases run on a built cluster, on either backend: the
 * suite's model as a scenario (pods spread over nodes so that some pairs share a node and some do
 * not), each case's policies applied by the cluster's policy engine, every ordered pair of
 * distinct pods probed, and the answers compared with the case's truth table.
 */
import { NetworkPolicySchema } from "@podnet/policy";
import {
  UPSTREAM_CONTAINER_PORTS,
  upstreamPods,
  type UpstreamCase,
  type UpstreamPeer,
} from "@podnet/policy/upstream";
import { applyPolicies } from "./policy.js";
import type { ClusterRuntime } from "./runtime.js";
import { ScenarioSchema, type Scenario } from "./schema.js";

/** Upstream's x/y/z × a/b/c model on `nodes` nodes of one segment, pod i on node i mod nodes. */
export function upstreamScenario(nodes = 3): Scenario {
  return ScenarioSchema.parse({
    name: "netpol-upstream",
    underlay: { segments: [{ name: "lan", subnet: "192.168.77.0/24" }] },
    nodes: Array.from({ length: nodes }, (_, i) => ({
      name: `n${i}`,
      segment: "lan",
      address: `192.168.77.${10 + i}`,
    })),
    pods: upstreamPods().map((p, i) => ({
      ...p,
      node: `n${i % nodes}`,
      containers: [
        {
          name: "serve",
          ports: UPSTREAM_CONTAINER_PORTS.map((q) => ({
            name: q.name,
            containerPort: q.port,
            protocol: q.protocol,
          })),
        },
      ],
    })),
  });
}

export interface UpstreamMismatch {
  from: string;
  to: string;
  probe: string;
  expected: boolean;
  outcome: string;
}

/** Applies a case's policies to a cluster built from upstreamScenario() and probes every pair. */
export async function checkUpstreamCase(
  runtime: ClusterRuntime,
  c: UpstreamCase,
  { concurrency = 1, retries = 0 }: { concurrency?: number; retries?: number } = {},
): Promise<UpstreamMismatch[]> {
  const peerOf = (name: string): UpstreamPeer => {
    const spec = runtime.pods.get(name)!.spec;
    return { ns: spec.namespace, pod: spec.labels.pod! };
  };
  const ipOf = (peer: UpstreamPeer) =>
    [...runtime.pods.values()].find((p) => p.spec.namespace === peer.ns && p.spec.labels.pod === peer.pod)!
      .ip;
  runtime.networkPolicies = c.policies(ipOf).map((p) => NetworkPolicySchema.parse(p));
  await applyPolicies(runtime);
  const names = [...runtime.pods.keys()];
  const work = c.probes.flatMap((probe) =>
    names.flatMap((from) => names.filter((to) => to !== from).map((to) => ({ probe, from, to }))),
  );
  const mismatches: UpstreamMismatch[] = [];
  // Probes run `concurrency` at a time: on the kernel a dropped one waits out its timeout, so a
  // default-deny case is as slow as its longest queue.
  const pending = [...work];
  const worker = async () => {
    for (let w = pending.shift(); w; w = pending.shift()) {
      const { probe, from, to } = w;
      const expected = c.expect(peerOf(from), peerOf(to), probe);
      // As upstream's suite does, a probe that disagrees is tried again (a UDP datagram can be lost).
      let result = await runtime.probe(from, to, { protocol: probe.protocol, port: probe.port });
      for (let retry = 0; retry < retries && (result.outcome === "reached") !== expected; retry++)
        result = await runtime.probe(from, to, { protocol: probe.protocol, port: probe.port });
      if ((result.outcome === "reached") !== expected)
        mismatches.push({
          from,
          to,
          probe: `${probe.protocol}/${probe.port}`,
          expected,
          outcome: result.outcome,
        });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  mismatches.sort((a, b) => (a.from + a.to + a.probe < b.from + b.to + b.probe ? -1 : 1));
  return mismatches;
}
