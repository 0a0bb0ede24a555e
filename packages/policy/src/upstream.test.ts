import { formatIpv4, parseIpv4 } from "@podnet/core";
import { describe, expect, it } from "vitest";
import { compilePolicies, type PolicyPod } from "./compile.js";
import { isAllowed, policyMatrix } from "./matrix.js";
import { NetworkPolicySchema } from "./schema.js";
import { OWN_CASES, UPSTREAM_CASES, UPSTREAM_CONTAINER_PORTS, upstreamPods } from "./upstream.js";
import { connectionVerdict } from "./verdict.js";

const pods: PolicyPod[] = upstreamPods().map((p, i) => ({
  ...p,
  ip: parseIpv4(`10.0.${1 + (i % 3)}.${10 + i}`),
  ports: UPSTREAM_CONTAINER_PORTS,
}));
const ipOf = (peer: { ns: string; pod: string }) =>
  formatIpv4(pods.find((p) => p.namespace === peer.ns && p.labels.pod === peer.pod)!.ip);
const peer = (p: PolicyPod) => ({ ns: p.namespace, pod: p.labels.pod! });

describe("the upstream NetworkPolicy e2e cases on the compiled engine", () => {
  for (const c of [...UPSTREAM_CASES, ...OWN_CASES])
    it(c.name, () => {
      const policies = c.policies(ipOf).map((p) => NetworkPolicySchema.parse(p));
      const compiled = compilePolicies({ pods, namespaces: [], policies });
      const matrix = policyMatrix(compiled);
      const wrong: string[] = [];
      for (const probe of c.probes)
        for (const [s, from] of pods.entries())
          for (const [d, to] of pods.entries()) {
            if (s === d) continue;
            const t = matrix.targets.findIndex(
              (x) =>
                x.name === `${to.namespace}/${to.name}` &&
                x.protocol === probe.protocol &&
                x.port === probe.port,
            );
            const want = c.expect(peer(from), peer(to), probe);
            const verdict = connectionVerdict(compiled, { pod: s }, { pod: d }, probe.protocol, probe.port);
            if (isAllowed(matrix, s, t) !== want || verdict.allowed !== want)
              wrong.push(`${from.name} -> ${to.name} ${probe.protocol}/${probe.port}: want ${want}`);
          }
      expect(wrong).toEqual([]);
    });
});
