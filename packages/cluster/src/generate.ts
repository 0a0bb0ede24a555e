import { formatIpv4, parseIpv4 } from "@podnet/core";
import { deepFreeze } from "@podnet/cni";
import type { NodeSpec, PodSpec, Scenario } from "./schema.js";

type Generate = NonNullable<Scenario["generate"]>;

// One containers list for every generated pod: 150,000 copies were objects every GC copied.
const CONTAINERS: PodSpec["containers"] = deepFreeze([
  { name: "app", ports: [{ containerPort: 80, protocol: "tcp" }] },
]);

/** A generate block's nodes ("node-17") and pods ("node-17-pod-3"), in order: each node, then its pods. */
export function eachGenerated(
  g: Generate,
  onNode: (node: NodeSpec) => void,
  onPod: (pod: PodSpec) => void,
): void {
  const first = parseIpv4(g.firstAddress);
  for (let i = 0; i < g.nodes; i++) {
    const name = `node-${i}`;
    onNode({ name, segment: g.segment, address: formatIpv4(first + i) });
    for (let j = 0; j < g.podsPerNode; j++)
      onPod({
        name: `${name}-pod-${j}`,
        namespace: "default",
        node: name,
        labels: g.labels,
        containers: CONTAINERS,
      });
  }
}

/** Whether `name` is a node or pod the block makes. */
export function generates(g: Generate, name: string): boolean {
  const m = /^node-(0|[1-9]\d*)(?:-pod-(0|[1-9]\d*))?$/.exec(name);
  return m !== null && Number(m[1]) < g.nodes && (m[2] === undefined || Number(m[2]) < g.podsPerNode);
}

/** Expands a `generate` block into nodes and pods, listed ones first. */
export function expandScenario(s: Scenario): Scenario {
  if (!s.generate) return s;
  const nodes: NodeSpec[] = [...s.nodes];
  const pods: PodSpec[] = [...s.pods];
  eachGenerated(
    s.generate,
    (n) => nodes.push(n),
    (p) => pods.push(p),
  );
  return { ...s, nodes, pods, generate: undefined };
}
