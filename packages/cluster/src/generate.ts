import { formatIpv4, parseIpv4 } from "@podnet/core";
import { deepFreeze } from "@podnet/cni";
import type { NodeSpec, PodSpec, Scenario } from "./schema.js";

/** Expands a `generate` block into nodes and pods ("node-17", "node-17-pod-3"), listed ones first. */
export function expandScenario(s: Scenario): Scenario {
  if (!s.generate) return s;
  const g = s.generate;
  const first = parseIpv4(g.firstAddress);
  const nodes: NodeSpec[] = [...s.nodes];
  const pods: PodSpec[] = [...s.pods];
  // One containers list for every generated pod: 150,000 copies were objects every GC copied.
  const containers: PodSpec["containers"] = deepFreeze([
    { name: "app", ports: [{ containerPort: 80, protocol: "tcp" }] },
  ]);
  for (let i = 0; i < g.nodes; i++) {
    const name = `node-${i}`;
    nodes.push({ name, segment: g.segment, address: formatIpv4(first + i) });
    for (let j = 0; j < g.podsPerNode; j++)
      pods.push({
        name: `${name}-pod-${j}`,
        namespace: "default",
        node: name,
        labels: g.labels,
        containers,
      });
  }
  return { ...s, nodes, pods, generate: undefined };
}
