/**
 * Reading a scenario: YAML or JSON text → zod validation → semantic checks. Every problem names the
 * file, the path inside it and what was expected, with the line it is on:
 * `scenarios/x.yaml: nodes[2].address: "10.100.0.300" is not an IPv4 address`.
 */
import { Ipv4Prefix, PodnetError, formatIpv4, parseIpv4 } from "@podnet/core";
import { LineCounter, isNode, parseDocument, type Document } from "yaml";
import { ScenarioSchema, type Scenario } from "./schema.js";

export interface ScenarioIssue {
  path: (string | number)[];
  message: string;
  line?: number;
  column?: number;
}

export class ScenarioError extends PodnetError {
  constructor(
    readonly file: string,
    readonly issues: ScenarioIssue[],
  ) {
    super(
      "ESCENARIO",
      issues.map((i) => `${file}: ${formatPath(i.path)}${i.path.length ? ": " : ""}${i.message}`).join("\n"),
    );
  }
}

export function formatPath(path: (string | number)[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

function locate(
  doc: Document,
  counter: LineCounter,
  path: (string | number)[],
): { line?: number; column?: number } {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true);
    if (isNode(node) && node.range) {
      const pos = counter.linePos(node.range[0]);
      return { line: pos.line, column: pos.col };
    }
  }
  return {};
}

/** Parses, validates and checks a scenario. Throws ScenarioError listing every problem found. */
export function loadScenario(text: string, file = "scenario.yaml"): Scenario {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false });
  if (doc.errors.length) {
    throw new ScenarioError(
      file,
      doc.errors.map((e) => {
        const pos = counter.linePos(e.pos[0]);
        return { path: [], message: `YAML: ${e.message.split("\n")[0]!}`, line: pos.line, column: pos.col };
      }),
    );
  }
  const raw = doc.toJS();
  const parsed = ScenarioSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => {
      const path = issue.path.map((p) => (typeof p === "symbol" ? String(p) : p));
      let message = issue.message;
      if (issue.code === "unrecognized_keys")
        message = `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}`;
      else if (issue.code === "invalid_type" && /received undefined/.test(message))
        message = `required (${issue.expected})`;
      // An unknown key is located at the key itself, not at the object holding it.
      const at = issue.code === "unrecognized_keys" ? [...path, issue.keys[0]!] : path;
      return { path, message, ...locate(doc, counter, at) };
    });
    throw new ScenarioError(file, issues);
  }
  const scenario = parsed.data;
  const issues = checkScenario(scenario).map((issue) => ({ ...issue, ...locate(doc, counter, issue.path) }));
  if (issues.length) throw new ScenarioError(file, issues);
  return scenario;
}

/** Checks a scenario's meaning: references, addresses, overlaps, ports. */
export function checkScenario(s: Scenario): ScenarioIssue[] {
  const issues: ScenarioIssue[] = [];
  const fail = (path: (string | number)[], message: string) => issues.push({ path, message });
  const cluster = Ipv4Prefix.parse(s.cluster.clusterCidr);
  const services = Ipv4Prefix.parse(s.cluster.serviceCidr);
  if (cluster.containsPrefix(services))
    fail(
      ["cluster", "serviceCidr"],
      `service CIDR ${services} is inside the cluster CIDR ${cluster}: ClusterIPs would collide with pod addresses`,
    );
  else if (cluster.overlaps(services))
    fail(["cluster", "serviceCidr"], `service CIDR ${services} overlaps the cluster CIDR ${cluster}`);
  if (s.cluster.nodeMaskSize < cluster.length)
    fail(
      ["cluster", "nodeMaskSize"],
      `/${s.cluster.nodeMaskSize} is larger than the cluster CIDR ${cluster}`,
    );

  const segments = new Map<string, Ipv4Prefix>();
  s.underlay.segments.forEach((seg, i) => {
    const prefix = Ipv4Prefix.parse(seg.subnet);
    if (segments.has(seg.name))
      fail(["underlay", "segments", i, "name"], `segment ${JSON.stringify(seg.name)} is defined twice`);
    for (const [other, p] of segments)
      if (p.overlaps(prefix))
        fail(
          ["underlay", "segments", i, "subnet"],
          `${prefix} overlaps segment ${JSON.stringify(other)} (${p})`,
        );
    for (const [what, p] of [
      ["cluster CIDR", cluster],
      ["service CIDR", services],
    ] as const) {
      if (p.overlaps(prefix))
        fail(["underlay", "segments", i, "subnet"], `${prefix} overlaps the ${what} ${p}`);
    }
    if (seg.gateway && !prefix.contains(parseIpv4(seg.gateway)))
      fail(
        ["underlay", "segments", i, "gateway"],
        `${seg.gateway} is outside the segment's subnet ${prefix}`,
      );
    segments.set(seg.name, prefix);
  });

  const names = new Map<string, string>();
  const addresses = new Map<number, string>();
  const claim = (path: (string | number)[], name: string, what: string) => {
    if (name === "underlay") fail(path, `"underlay" is reserved for the underlay's own namespace`);
    const previous = names.get(name);
    if (previous) fail(path, `${what} name ${JSON.stringify(name)} is already used by a ${previous}`);
    else names.set(name, what);
  };
  const onSegment = (path: (string | number)[], segment: string, address: string, owner: string) => {
    const prefix = segments.get(segment);
    if (!prefix)
      return fail(
        [...path, "segment"],
        `unknown segment ${JSON.stringify(segment)} (segments: ${[...segments.keys()].join(", ")})`,
      );
    const ip = parseIpv4(address);
    if (!prefix.contains(ip))
      fail([...path, "address"], `${address} is outside its segment ${JSON.stringify(segment)} (${prefix})`);
    if (ip === prefix.network || ip === prefix.broadcast)
      fail([...path, "address"], `${address} is the network or broadcast address of ${prefix}`);
    const holder = addresses.get(ip);
    if (holder) fail([...path, "address"], `${address} is already ${holder}'s address`);
    addresses.set(ip, owner);
  };
  s.underlay.routers.forEach((r, i) => {
    claim(["underlay", "routers", i, "name"], r.name, "router");
    r.interfaces.forEach((nic, j) =>
      onSegment(["underlay", "routers", i, "interfaces", j], nic.segment, nic.address, r.name),
    );
  });
  s.underlay.hosts.forEach((h, i) => {
    claim(["underlay", "hosts", i, "name"], h.name, "host");
    onSegment(["underlay", "hosts", i], h.segment, h.address, h.name);
  });
  const nodeCidrs = new Map<string, string>();
  s.nodes.forEach((n, i) => {
    claim(["nodes", i, "name"], n.name, "node");
    onSegment(["nodes", i], n.segment, n.address, n.name);
    if (n.podCidr) {
      const p = Ipv4Prefix.parse(n.podCidr);
      if (!cluster.containsPrefix(p) || p.length !== s.cluster.nodeMaskSize)
        fail(
          ["nodes", i, "podCidr"],
          `${p} is not a /${s.cluster.nodeMaskSize} inside the cluster CIDR ${cluster}`,
        );
      const other = nodeCidrs.get(p.toString());
      if (other) fail(["nodes", i, "podCidr"], `${p} is already node ${JSON.stringify(other)}'s pod CIDR`);
      nodeCidrs.set(p.toString(), n.name);
    }
  });
  if (s.generate) {
    const g = s.generate;
    const prefix = segments.get(g.segment);
    if (!prefix) fail(["generate", "segment"], `unknown segment ${JSON.stringify(g.segment)}`);
    else {
      const last = parseIpv4(g.firstAddress) + g.nodes - 1;
      if (!prefix.contains(parseIpv4(g.firstAddress)) || !prefix.contains(last) || last >= prefix.broadcast) {
        fail(
          ["generate", "nodes"],
          `${g.nodes} nodes from ${g.firstAddress} do not fit in segment ${JSON.stringify(g.segment)} (${prefix}), which ends at ${formatIpv4(prefix.broadcast)}`,
        );
      }
    }
    const capacity = cluster.subnetCount(Math.max(s.cluster.nodeMaskSize, cluster.length));
    if (g.nodes + s.nodes.length > capacity)
      fail(
        ["generate", "nodes"],
        `${g.nodes + s.nodes.length} nodes need more than the ${capacity} /${s.cluster.nodeMaskSize} pod subnets of ${cluster}`,
      );
  }
  const nodeNames = new Set(s.nodes.map((n) => n.name));
  s.pods.forEach((p, i) => {
    claim(["pods", i, "name"], p.name, "pod");
    if (!nodeNames.has(p.node))
      fail(
        ["pods", i, "node"],
        `unknown node ${JSON.stringify(p.node)} (nodes: ${[...nodeNames].join(", ") || "none"})`,
      );
    const used = new Map<string, string>();
    p.containers.forEach((c, j) => {
      c.ports.forEach((port, k) => {
        const key = `${port.containerPort}/${port.protocol}`;
        const holder = used.get(key);
        if (holder)
          fail(
            ["pods", i, "containers", j, "ports", k],
            `port ${key} is already taken by container ${JSON.stringify(holder)}: the containers of a pod share one network namespace`,
          );
        used.set(key, c.name);
      });
    });
  });
  s.services.forEach((svc, i) => {
    if (svc.clusterIP && !services.contains(parseIpv4(svc.clusterIP)))
      fail(["services", i, "clusterIP"], `${svc.clusterIP} is outside the service CIDR ${services}`);
    svc.ports.forEach((port, j) => {
      if (port.nodePort !== undefined && svc.type !== "NodePort")
        fail(["services", i, "ports", j, "nodePort"], `a nodePort needs type: NodePort`);
    });
  });
  // Traffic may name what events bring in later (a node that joins, a pod that starts).
  const known = new Set([
    ...names.keys(),
    ...s.events.flatMap((e) =>
      e.action === "addNode" ? [e.node.name] : e.action === "addPod" ? [e.pod.name] : [],
    ),
  ]);
  s.traffic.forEach((t, i) => {
    const from = t.from.split("/")[0]!;
    if (!known.has(from)) fail(["traffic", i, "from"], `unknown pod, node or host ${JSON.stringify(from)}`);
    const target = t.to.replace(/:\d+$/, "");
    if (target.startsWith("svc/")) {
      if (!s.services.some((svc) => svc.name === target.slice(4)))
        fail(["traffic", i, "to"], `unknown service ${JSON.stringify(target.slice(4))}`);
    } else if (!known.has(target) && !/^\d+\.\d+\.\d+\.\d+$/.test(target))
      fail(
        ["traffic", i, "to"],
        `unknown target ${JSON.stringify(target)} (a pod, node or host name, an address, or svc/<name>)`,
      );
  });
  return issues;
}
