// 1,000 pods in 10 namespaces under 200 policies (selectors of every kind, named ports, ipBlocks
// with excepts, both directions): compiling them, the full allowed-connection matrix (every pod and
// 4 outside hosts against every pod's 2 ports and every host's port: 4.0 million cells), and one
// verdict. The cluster is generated from a fixed seed, so every run measures the same work.
import { parseIpv4 } from "@podnet/core";
import { bench, describe } from "vitest";
import {
  NetworkPolicySchema,
  compilePolicies,
  connectionVerdict,
  policyMatrix,
  type NetworkPolicyInput,
  type OutsideHost,
  type PolicyPod,
} from "../src/index.js";

let seed = 14;
const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
const NAMESPACES = Array.from({ length: 10 }, (_, i) => `ns${i}`);
const APPS = Array.from({ length: 20 }, (_, i) => `app${i}`);

const pods: PolicyPod[] = Array.from({ length: 1000 }, (_, i) => ({
  name: `pod${i}`,
  namespace: NAMESPACES[i % 10]!,
  labels: { app: pick(APPS), tier: pick(["web", "api", "db"]) },
  ip: parseIpv4(`10.0.${Math.floor(i / 250)}.${(i % 250) + 2}`),
  ports: [
    { name: "http", port: 8080, protocol: "tcp" },
    { name: "dns", port: 53, protocol: "udp" },
  ],
  node: `node${i % 20}`,
}));
const outside: OutsideHost[] = Array.from({ length: 4 }, (_, i) => ({
  name: `host${i}`,
  ip: parseIpv4(`192.168.1.${i + 10}`),
  ports: [{ port: 443, protocol: "tcp" }],
}));
const namespaces = NAMESPACES.map((name, i) => ({ name, labels: { team: `team${i % 3}` } }));
const selector = () =>
  random() < 0.2
    ? {}
    : random() < 0.5
      ? { matchLabels: { app: pick(APPS) } }
      : {
          matchExpressions: [{ key: "tier", operator: "In" as const, values: [pick(["web", "api", "db"])] }],
        };
const peer = () => {
  const r = random();
  if (r < 0.4) return { podSelector: selector() };
  if (r < 0.6) return { namespaceSelector: { matchLabels: { team: `team${Math.floor(random() * 3)}` } } };
  if (r < 0.8) return { podSelector: selector(), namespaceSelector: {} };
  return { ipBlock: { cidr: "10.0.0.0/16", except: [`10.0.${Math.floor(random() * 4)}.0/24`] } };
};
const ports = () =>
  random() < 0.3 ? undefined : [random() < 0.5 ? { port: "http" } : { port: 8000, endPort: 8100 }];
const policies = Array.from({ length: 200 }, (_, i) => {
  const rules = () =>
    Array.from({ length: 1 + Math.floor(random() * 3) }, () => ({
      peers: Array.from({ length: 1 + Math.floor(random() * 2) }, peer),
      ports: ports(),
    }));
  const egress = random() < 0.3;
  const input: NetworkPolicyInput = {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: `p${i}`, namespace: pick(NAMESPACES) },
    spec: {
      podSelector: selector(),
      policyTypes: egress ? ["Ingress", "Egress"] : ["Ingress"],
      ingress: rules().map((r) => ({ from: r.peers, ...(r.ports ? { ports: r.ports } : {}) })),
      ...(egress
        ? { egress: rules().map((r) => ({ to: r.peers, ...(r.ports ? { ports: r.ports } : {}) })) }
        : {}),
    },
  };
  return NetworkPolicySchema.parse(input);
});
const compiled = compilePolicies({ pods, namespaces, policies });

describe("1,000 pods, 200 policies", () => {
  bench("compile the policies", () => {
    compilePolicies({ pods, namespaces, policies });
  });
  bench("compile + the full allowed-connection matrix (1,004 sources × 2,004 targets)", () => {
    policyMatrix(compilePolicies({ pods, namespaces, policies }), outside);
  });
  let i = 0;
  bench("one connection verdict, with its explanation data", () => {
    i = (i + 7919) % 1000;
    connectionVerdict(compiled, { pod: i }, { pod: (i * 31) % 1000 }, "tcp", 8080);
  });
});
