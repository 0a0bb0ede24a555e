/**
 * The allowed-connection matrix (Cyclonus' truth table): every source (pods, then outside
 * addresses) against every target port (each pod's container ports, then each outside host's
 * listening ports), computed from compiled policies with set operations per target, never by
 * walking packets. `diffMatrices` lists what a policy change opens and closes.
 */
import { formatIpv4, type Ipv4 } from "@podnet/core";
import {
  PodSet,
  matchingPort,
  peerMatches,
  type CompiledPolicies,
  type CompiledRule,
  type PolicyProtocol,
} from "./compile.js";
import { podKey } from "./verdict.js";

/** A host outside the cluster's pods: a source, and a target on the ports it listens on. */
export interface OutsideHost {
  name: string;
  ip: Ipv4;
  ports: readonly { port: number; protocol: PolicyProtocol }[];
}

export interface MatrixTarget {
  /** namespace/pod, or the outside host's name. */
  name: string;
  ip: string;
  protocol: PolicyProtocol;
  port: number;
  outside: boolean;
}

export interface PolicyMatrix {
  /** namespace/pod for pods, the host's name for outside hosts. */
  sources: string[];
  /** How many of `sources` are pods (the rest are outside hosts). */
  podSources: number;
  targets: MatrixTarget[];
  /** allowed[s * targets.length + t]: 1 when a new connection from source s to target t is allowed. */
  allowed: Uint8Array;
}

function uniquePorts(ports: readonly { port: number; protocol: PolicyProtocol }[]) {
  const seen = new Set<string>();
  return ports.filter((p) => {
    const key = `${p.protocol}/${p.port}`;
    return seen.has(key) ? false : (seen.add(key), true);
  });
}

export function policyMatrix(c: CompiledPolicies, outside: readonly OutsideHost[] = []): PolicyMatrix {
  const n = c.pods.length;
  const sources = [...c.pods.map((_, i) => podKey(c, i)), ...outside.map((h) => h.name)];
  const targets: MatrixTarget[] = [];
  const targetPod: number[] = [];
  for (const [j, pod] of c.pods.entries())
    for (const p of uniquePorts(pod.ports)) {
      targets.push({
        name: podKey(c, j),
        ip: formatIpv4(pod.ip),
        protocol: p.protocol,
        port: p.port,
        outside: false,
      });
      targetPod.push(j);
    }
  for (const [h, host] of outside.entries())
    for (const p of uniquePorts(host.ports)) {
      targets.push({
        name: host.name,
        ip: formatIpv4(host.ip),
        protocol: p.protocol,
        port: p.port,
        outside: true,
      });
      targetPod.push(-1 - h);
    }
  const allowed = new Uint8Array(sources.length * targets.length);
  // Pods no egress policy selects may open any connection.
  const egressFree = PodSet.all(n);
  const egressRules: CompiledRule[] = [];
  for (const p of c.policies) {
    if (!p.egress) continue;
    for (let k = 0; k < egressFree.words.length; k++) egressFree.words[k]! &= ~p.selected.words[k]!;
    for (const r of p.rules) if (r.direction === "egress") egressRules.push(r);
  }
  const all = PodSet.all(n);
  const set = new PodSet(n);
  const ingressSet = new PodSet(n);
  const outsideIn = new Uint8Array(outside.length);
  for (const [t, target] of targets.entries()) {
    const j = targetPod[t]!;
    const dstPod = j >= 0 ? c.pods[j] : undefined;
    const dstIp = dstPod ? dstPod.ip : outside[-1 - j]!.ip;
    // Egress: which source pods may send here.
    set.words.set(egressFree.words);
    for (const rule of egressRules)
      if (
        peerMatches(rule, j >= 0 ? j : undefined, dstIp) &&
        matchingPort(rule, target.protocol, target.port, dstPod) >= 0
      )
        set.or(c.policies[rule.policy]!.selected);
    // Ingress: which sources the target pod's policies admit.
    if (j >= 0 && c.ingressOf[j]!.length) {
      ingressSet.words.fill(0);
      outsideIn.fill(0);
      for (const pi of c.ingressOf[j]!)
        for (const rule of c.policies[pi]!.rules) {
          if (rule.direction !== "ingress" || matchingPort(rule, target.protocol, target.port, dstPod) < 0)
            continue;
          ingressSet.or(rule.pods ?? all);
          for (const [h, host] of outside.entries())
            if (peerMatches(rule, undefined, host.ip)) outsideIn[h] = 1;
        }
      set.and(ingressSet);
    } else outsideIn.fill(1);
    const width = targets.length;
    for (const i of set) allowed[i * width + t] = 1;
    // A pod cannot block access to itself: its connection to itself never leaves it.
    if (j >= 0) allowed[j * width + t] = 1;
    // Outside to outside crosses no enforcing node: allowed.
    for (let h = 0; h < outside.length; h++) allowed[(n + h) * width + t] = j >= 0 ? outsideIn[h]! : 1;
  }
  return { sources, podSources: n, targets, allowed };
}

export interface MatrixChange {
  from: string;
  to: string;
  protocol: PolicyProtocol;
  port: number;
  change: "opened" | "closed";
}

const targetKey = (t: MatrixTarget) => `${t.name} ${t.protocol}/${t.port}`;

/** Every connection allowed in one matrix and not the other; sources and targets match by name. */
export function diffMatrices(before: PolicyMatrix, after: PolicyMatrix): MatrixChange[] {
  const changes: MatrixChange[] = [];
  const beforeSource = new Map(before.sources.map((s, i) => [s, i]));
  const beforeTarget = new Map(before.targets.map((t, i) => [targetKey(t), i]));
  for (const [s, from] of after.sources.entries()) {
    const bs = beforeSource.get(from);
    for (const [t, target] of after.targets.entries()) {
      const bt = beforeTarget.get(targetKey(target));
      const was =
        bs !== undefined && bt !== undefined && before.allowed[bs * before.targets.length + bt] === 1;
      const is = after.allowed[s * after.targets.length + t] === 1;
      if (was !== is)
        changes.push({
          from,
          to: target.name,
          protocol: target.protocol,
          port: target.port,
          change: is ? "opened" : "closed",
        });
    }
  }
  return changes;
}

/** Whether source may open a connection to target, in a matrix or any table laid out as one. */
export function isAllowed(
  m: { targets: readonly unknown[]; allowed: Uint8Array },
  source: number,
  target: number,
): boolean {
  return m.allowed[source * m.targets.length + target] === 1;
}

/**
 * The matrix as truth tables, one per protocol/port, sources down and targets across, as Cyclonus
 * prints them: "." allowed, "X" denied.
 */
export function formatMatrix(m: PolicyMatrix): string {
  const groups = new Map<string, number[]>();
  for (const [t, target] of m.targets.entries()) {
    const key = `${target.protocol}/${target.port}`;
    groups.set(key, [...(groups.get(key) ?? []), t]);
  }
  const out: string[] = [];
  const width = Math.max(...m.sources.map((s) => s.length), 4);
  for (const [key, cols] of groups) {
    out.push(`${key}  (rows: from, columns: to; "." allowed, "X" denied)`);
    const names = cols.map((t) => m.targets[t]!.name);
    out.push(`${"".padEnd(width)} ${names.map((_, i) => String(i + 1).padStart(3)).join("")}`);
    for (const [s, source] of m.sources.entries())
      out.push(
        `${source.padEnd(width)} ${cols.map((t) => (isAllowed(m, s, t) ? "." : "X").padStart(3)).join("")}`,
      );
    out.push(`  columns: ${names.map((name, i) => `${i + 1}=${name}`).join(" ")}`, "");
  }
  return out.join("\n");
}
