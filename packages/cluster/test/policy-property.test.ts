// The iptables engine's chains agree with the compiled verdicts: random policies over upstream's
// model, every sampled connection probed through the simulator's netfilter and compared with
// connectionVerdict on the compiled policies, the verdict `podnet policy check` prints.
import { parseIpv4 } from "@podnet/core";
import {
  NetworkPolicySchema,
  connectionVerdict,
  endpointAt,
  explainVerdict,
  iptablesPolicyEngine,
  type NetworkPolicyInput,
} from "@podnet/policy";
import { getProvider } from "@podnet/providers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ClusterRuntime, applyPolicies, clusterPolicies, upstreamScenario } from "../src/index.js";

const labelSelector = fc.oneof(
  fc.constant({}),
  fc.constantFrom("a", "b", "c").map((p) => ({ matchLabels: { pod: p } })),
  fc
    .subarray(["a", "b", "c"], { minLength: 1 })
    .chain((values) =>
      fc
        .constantFrom("In", "NotIn")
        .map((operator) => ({ matchExpressions: [{ key: "pod", operator, values }] })),
    ),
);
const nsSelector = fc.oneof(
  fc.constant({}),
  fc.constantFrom("x", "y", "z").map((n) => ({ matchLabels: { "kubernetes.io/metadata.name": n } })),
);
const peer = (podCidrs: string[]) =>
  fc.oneof(
    labelSelector.map((podSelector) => ({ podSelector })),
    nsSelector.map((namespaceSelector) => ({ namespaceSelector })),
    fc
      .tuple(labelSelector, nsSelector)
      .map(([podSelector, namespaceSelector]) => ({ podSelector, namespaceSelector })),
    fc.constantFrom(...podCidrs).chain((cidr) =>
      fc.boolean().map((except) => ({
        ipBlock: except ? { cidr: "10.0.0.0/16", except: [cidr] } : { cidr },
      })),
    ),
  );
const port = fc.oneof(
  fc.constantFrom(80, 81).map((p) => ({ port: p })),
  fc.constantFrom("serve-80-tcp", "serve-81-udp", "serve-81-tcp").map((p) => ({
    port: p,
    protocol: p.endsWith("udp") ? "UDP" : "TCP",
  })),
  fc.constant({ port: 80, endPort: 81 }),
  fc.constantFrom("TCP", "UDP").map((protocol) => ({ protocol })),
);
const rule = (podCidrs: string[], key: "from" | "to") =>
  fc.record(
    { [key]: fc.array(peer(podCidrs), { maxLength: 2 }), ports: fc.array(port, { maxLength: 2 }) },
    { requiredKeys: [] },
  );
const policies = (podCidrs: string[]) =>
  fc.array(
    fc.record({
      ns: fc.constantFrom("x", "y", "z"),
      podSelector: labelSelector,
      policyTypes: fc.option(fc.subarray(["Ingress", "Egress"] as const, { minLength: 1 }), {
        nil: undefined,
      }),
      ingress: fc.option(fc.array(rule(podCidrs, "from"), { maxLength: 2 }), { nil: undefined }),
      egress: fc.option(fc.array(rule(podCidrs, "to"), { maxLength: 2 }), { nil: undefined }),
    }),
    { minLength: 1, maxLength: 4 },
  );

describe("the iptables engine's chains agree with the compiled verdicts", () => {
  it("on random policies, across nodes and on one node (br_netfilter)", async () => {
    const runtime = await ClusterRuntime.build(upstreamScenario(), getProvider("cbr0-host-gw"), {
      policy: iptablesPolicyEngine,
    });
    const podCidrs = [...new Set([...runtime.pods.values()].map((p) => `${p.ip}/32`))];
    const names = [...runtime.pods.keys()];
    const seen = { allowed: 0, denied: 0 };
    await fc.assert(
      fc.asyncProperty(
        policies(podCidrs),
        fc.array(
          fc.record({
            from: fc.constantFrom(...names),
            to: fc.constantFrom(...names),
            protocol: fc.constantFrom("tcp" as const, "udp" as const),
            port: fc.constantFrom(80, 81),
          }),
          { minLength: 10, maxLength: 20 },
        ),
        async (specs, probes) => {
          runtime.networkPolicies = specs.map((s, i) =>
            NetworkPolicySchema.parse({
              apiVersion: "networking.k8s.io/v1",
              kind: "NetworkPolicy",
              metadata: { name: `p${i}`, namespace: s.ns },
              spec: {
                podSelector: s.podSelector,
                ...(s.policyTypes ? { policyTypes: s.policyTypes } : {}),
                ...(s.ingress ? { ingress: s.ingress } : {}),
                ...(s.egress ? { egress: s.egress } : {}),
              },
            } as NetworkPolicyInput),
          );
          await applyPolicies(runtime);
          const compiled = clusterPolicies(runtime);
          for (const p of probes) {
            if (p.from === p.to) continue;
            const verdict = connectionVerdict(
              compiled,
              endpointAt(compiled, parseIpv4(runtime.pods.get(p.from)!.ip)),
              endpointAt(compiled, parseIpv4(runtime.pods.get(p.to)!.ip)),
              p.protocol,
              p.port,
            );
            seen[verdict.allowed ? "allowed" : "denied"]++;
            const result = await runtime.probe(p.from, p.to, { protocol: p.protocol, port: p.port });
            expect(
              { reached: result.outcome === "reached", probe: `${p.from} → ${p.to} ${p.protocol}/${p.port}` },
              explainVerdict(verdict).join("; "),
            ).toEqual({ reached: verdict.allowed, probe: `${p.from} → ${p.to} ${p.protocol}/${p.port}` });
          }
        },
      ),
      { numRuns: 40, seed: 14 },
    );
    // Both answers were put to the test many times.
    expect(Math.min(seen.allowed, seen.denied)).toBeGreaterThan(50);
  });
});
