import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  MAX_SCENARIO_BYTES,
  ScenarioError,
  affinitySeconds,
  loadScenario,
  scenarioJsonSchema,
} from "../src/index.js";

const dir = join(__dirname, "..", "..", "..", "scenarios");

function problems(text: string, file = "scenarios/x.yaml"): string[] {
  try {
    loadScenario(text, file);
  } catch (error) {
    if (error instanceof ScenarioError)
      return error.issues.map(
        (i) =>
          `${i.line ?? "?"}: ${error.file}: ${i.path.length ? i.path.map((p, n) => (typeof p === "number" ? `[${p}]` : n ? `.${p}` : p)).join("") + ": " : ""}${i.message}`,
      );
    throw error;
  }
  return [];
}

const base = `name: x
underlay:
  segments:
    - { name: lan, subnet: 10.100.0.0/24 }
cluster: { serviceCidr: 10.96.0.0/16 }
nodes:
  - { name: node1, segment: lan, address: 10.100.0.2 }
  - { name: node2, segment: lan, address: 10.100.0.3 }
`;

describe("scenario files", () => {
  it("every bundled scenario validates", () => {
    const files = readdirSync(dir).filter((f) => f.endsWith(".yaml"));
    expect(files.length).toBeGreaterThanOrEqual(6);
    for (const f of files) expect(problems(readFileSync(join(dir, f), "utf8"), `scenarios/${f}`)).toEqual([]);
  });

  it("takes a protocol as Kubernetes writes it (TCP, UDP) and as podnet does; nothing else", () => {
    const text = (protocol: string) =>
      `${base}pods:
  - name: dns
    node: node1
    labels: { app: dns }
    containers: [{ name: c, ports: [{ containerPort: 53, protocol: ${protocol} }] }]
services:
  - { name: dns, selector: { app: dns }, ports: [{ name: dns, port: 53, protocol: ${protocol} }] }
traffic:
  - { from: dns, to: "svc/dns:53", protocol: ${protocol} }
`;
    for (const spelling of ["UDP", "udp"]) {
      const s = loadScenario(text(spelling), "scenarios/x.yaml");
      expect([
        s.pods[0]!.containers[0]!.ports[0]!.protocol,
        s.services[0]!.ports[0]!.protocol,
        s.traffic[0]!.protocol,
      ]).toEqual(["udp", "udp", "udp"]);
    }
    expect(problems(text("Udp"))).toEqual([
      '13: scenarios/x.yaml: pods[0].containers[0].ports[0].protocol: "Udp" is not a protocol (tcp or udp; TCP and UDP as Kubernetes writes them)',
      '15: scenarios/x.yaml: services[0].ports[0].protocol: "Udp" is not a protocol (tcp or udp; TCP and UDP as Kubernetes writes them)',
      '17: scenarios/x.yaml: traffic[0].protocol: "Udp" is not a protocol (icmp, tcp or udp; or ICMP, TCP, UDP)',
    ]);
  });

  it("says what a name may be, its length too", () => {
    expect(problems(`${base}pods:\n  - { name: ${"a".repeat(64)}, node: node1 }\n`)).toEqual([
      `10: scenarios/x.yaml: pods[0].name: "${"a".repeat(64)}" is not a valid name (1 to 63 lowercase letters, digits, "-" and ".", starting and ending with a letter or digit)`,
    ]);
  });

  it("lists at most 50 mistakes, and says how many more there are", () => {
    const pods = Array.from({ length: 120 }, (_, i) => `  - { name: p${i}, node: node9 }\n`).join("");
    const found = problems(base + "pods:\n" + pods);
    expect(found).toHaveLength(51);
    expect(found[0]).toBe('10: scenarios/x.yaml: pods[0].node: unknown node "node9" (nodes: node1, node2)');
    expect(found[50]).toBe("60: scenarios/x.yaml: and 70 more mistakes not listed");
  });

  it("says a generate block's mistake once, not once for every node or pod it makes", () => {
    // It repeated for every pod (145,000 lines for large.yaml), at a path that is not in the file.
    const large = readFileSync(join(dir, "large.yaml"), "utf8").replace(
      "nodeMaskSize: 24",
      "nodeMaskSize: 30",
    );
    const found = problems(large, "scenarios/large.yaml");
    expect(found).toHaveLength(2);
    expect(found[0]).toMatch(/cluster\.nodeMaskSize: \/30 node subnets are more than 16 bits smaller/);
    expect(found[1]).toMatch(
      /^\d+: scenarios\/large\.yaml: generate\.podsPerNode: pod node-0-pod-1 would be pod number 2 on node-0, but a \/30 pod subnet holds only 1 pod$/,
    );
  });

  it("quotes a long value in part, with its length", () => {
    const found = problems(base.replace("name: x", `name: ${"A".repeat(100_000)}`));
    expect(found).toHaveLength(1);
    expect(found[0]).toContain('"AAAA');
    expect(found[0]).toContain('…" (100,000 characters)');
    expect(found[0]!.length).toBeLessThan(300);
  });

  it("refuses YAML nested too deeply to read, in words and located", () => {
    const deep = `name: x\ndescription: ${"[".repeat(100_000)}${"]".repeat(100_000)}\n`;
    const found = problems(deep);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(
      /^2: scenarios\/x\.yaml: YAML: nested too deeply to read \(collections inside collections, thousands of levels\)$/,
    );
  });

  it("places what the YAML library finds only when making objects: aliases, merges, collection keys, documents", () => {
    expect(problems("name: x\nnodes: *nope\n")).toEqual([
      "2: scenarios/x.yaml: YAML: *nope names no anchor set before it",
    ]);
    expect(problems("name: x\na: &a { b: 1 }\nc:\n  <<: *a\n  <<: 5\n")).toEqual([
      "5: scenarios/x.yaml: YAML: << merges a mapping (or an alias of one) into this one",
    ]);
    // It was reported at 1:1 and printed a Node warning about stringified keys.
    expect(problems("name: x\n? [a, b]\n: 1\n")).toEqual([
      "2: scenarios/x.yaml: YAML: a key is a name or a number, not a list or mapping",
    ]);
    expect(problems("name: x\n---\nname: y\n")).toEqual([
      "2: scenarios/x.yaml: YAML: a scenario is one document, and this --- starts another",
    ]);
  });

  it("names the file, the path, what was expected, and the line", () => {
    expect(problems(base + "  - { name: node3, segment: lan, address: 10.100.0.300 }\n")).toEqual([
      '9: scenarios/x.yaml: nodes[2].address: "10.100.0.300" is not an IPv4 address',
    ]);
    expect(problems(base.replace("10.100.0.0/24", "10.100.0.0/33"))).toEqual([
      '4: scenarios/x.yaml: underlay.segments[0].subnet: "10.100.0.0/33" is not a CIDR (prefix length 33 out of range (0-32))',
    ]);
    expect(problems("name: x\n")).toEqual(["1: scenarios/x.yaml: underlay: required (a mapping)"]);
    expect(problems(base + "colour: blue\n")).toEqual(['9: scenarios/x.yaml: unknown key "colour"']);
    expect(problems("name: [unclosed\n")[0]).toMatch(/^\d: scenarios\/x\.yaml: /);
  });

  it("refuses a __proto__ key, which validation would otherwise drop without a word", () => {
    expect(
      problems(base + "pods:\n  - { name: web, node: node1, labels: { __proto__: x, app: web } }\n"),
    ).toEqual(['10: scenarios/x.yaml: pods[0].labels: "__proto__" is not a key podnet takes']);
    // Shared through an anchor: reported where it is written, not where the alias uses it again.
    const shared =
      "pods:\n  - { name: web, node: node1, labels: &l { __proto__: x } }\n  - { name: db, node: node1, labels: *l }\n";
    expect(problems(base + shared)).toEqual([
      '10: scenarios/x.yaml: pods[0].labels: "__proto__" is not a key podnet takes',
    ]);
  });

  it("takes YAML merge keys, as kubectl does", () => {
    const text = base.replace(
      "  - { name: node2, segment: lan, address: 10.100.0.3 }\n",
      "  - &node { name: node2, segment: lan, address: 10.100.0.3 }\n  - { <<: *node, name: node3, address: 10.100.0.4 }\n",
    );
    expect(loadScenario(text, "x.yaml").nodes.at(-1)).toEqual({
      name: "node3",
      segment: "lan",
      address: "10.100.0.4",
    });
    expect(problems(text.replace("<<: *node, ", "<<: *node, colour: blue, "))).toEqual([
      '9: scenarios/x.yaml: nodes[2]: unknown key "colour"',
    ]);
  });

  it("catches mistakes of meaning, each at its place", () => {
    expect(problems(base + "pods:\n  - { name: web, node: node9 }\n")).toEqual([
      '10: scenarios/x.yaml: pods[0].node: unknown node "node9" (nodes: node1, node2)',
    ]);
    expect(problems(base + "  - { name: node3, segment: lan, address: 10.200.0.3 }\n")).toEqual([
      '9: scenarios/x.yaml: nodes[2].address: 10.200.0.3 is outside its segment "lan" (10.100.0.0/24)',
    ]);
    expect(problems(base.replace("serviceCidr: 10.96.0.0/16", "serviceCidr: 10.0.96.0/20"))).toEqual([
      "5: scenarios/x.yaml: cluster.serviceCidr: service CIDR 10.0.96.0/20 is inside the cluster CIDR 10.0.0.0/16: ClusterIPs would collide with pod addresses",
    ]);
    expect(problems(base.replace("serviceCidr: 10.96.0.0/16", "serviceCidr: 10.96.0.0/12"))).toEqual([
      "4: scenarios/x.yaml: underlay.segments[0].subnet: 10.100.0.0/24 overlaps the service CIDR 10.96.0.0/12",
    ]);
    expect(
      problems(
        base +
          "pods:\n  - name: web\n    node: node1\n    containers:\n      - { name: nginx, ports: [{ containerPort: 80 }] }\n      - { name: apache, ports: [{ containerPort: 80 }] }\n",
      ),
    ).toEqual([
      '14: scenarios/x.yaml: pods[0].containers[1].ports[0]: port 80/tcp is already taken by container "nginx": the containers of a pod share one network namespace',
    ]);
    expect(problems(base + "  - { name: node1, segment: lan, address: 10.100.0.9 }\n")).toEqual([
      '9: scenarios/x.yaml: nodes[2].name: node name "node1" is already used by a node',
    ]);
    expect(problems(base + "pods:\n  - { name: 10.100.0.3, node: node1 }\n")).toEqual([
      '10: scenarios/x.yaml: pods[0].name: pod name "10.100.0.3" reads as an IPv4 address: probes could not tell them apart',
    ]);
    expect(problems(base + "traffic:\n  - { from: node1, to: svc/nope }\n")).toEqual([
      '10: scenarios/x.yaml: traffic[0].to: unknown service "nope"',
    ]);
  });

  it("defaults session affinity's timeout as the API server does, at every level left out or null", () => {
    const timeout = (fields: string) => {
      const s = loadScenario(
        `${base}services:\n  - { name: web, selector: { app: web }, ports: [{ port: 80 }], ${fields} }\n`,
      );
      return affinitySeconds(s.services[0]!);
    };
    for (const config of [
      "",
      "sessionAffinityConfig: null,",
      "sessionAffinityConfig: {},",
      "sessionAffinityConfig: { clientIP: null },",
      "sessionAffinityConfig: { clientIP: {} },",
      "sessionAffinityConfig: { clientIP: { timeoutSeconds: null } },",
    ])
      expect(timeout(`sessionAffinity: ClientIP, ${config}`), config).toBe(10800);
    expect(
      timeout("sessionAffinity: ClientIP, sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } }"),
    ).toBe(60);
    expect(timeout("sessionAffinity: None, sessionAffinityConfig: null")).toBeUndefined();
    expect(timeout("")).toBeUndefined();
  });

  it("says what a targetPort may be when it is neither a number nor a string", () => {
    expect(
      problems(
        `${base}services:\n  - { name: web, selector: { app: web }, ports: [{ port: 80, targetPort: true }] }\n`,
      ),
    ).toEqual([
      "10: scenarios/x.yaml: services[0].ports[0].targetPort: true is not a port (1-65535) or a container port's name",
    ]);
  });

  it("says NaN and a huge number as written, each once", () => {
    const svc = (fields: string) =>
      problems(`${base}services:\n  - { name: web, selector: { app: web }, ${fields} }\n`);
    expect(svc("ports: [{ port: .nan }]")).toEqual([
      "10: scenarios/x.yaml: services[0].ports[0].port: NaN is not a port (1-65535)",
    ]);
    expect(
      svc(
        "sessionAffinity: ClientIP, sessionAffinityConfig: { clientIP: { timeoutSeconds: 1e100 } }, ports: [{ port: 80 }]",
      ),
    ).toEqual([
      "10: scenarios/x.yaml: services[0].sessionAffinityConfig.clientIP.timeoutSeconds: 1e+100 is not a timeout in seconds (1-86400)",
    ]);
  });

  it("bounds what a scenario may list: its size, and its probes", () => {
    expect(problems(`${base}#${"x".repeat(MAX_SCENARIO_BYTES)}\n`)).toEqual([
      "?: scenarios/x.yaml: larger than 4 MiB: not a scenario (a large cluster is generated with a generate: block, not listed)",
    ]);
    const probes = "  - { from: node1, to: node2 }\n".repeat(10_001);
    expect(problems(`${base}traffic:\n${probes}`)).toEqual([
      "10: scenarios/x.yaml: traffic: 10,001 probes: a scenario lists at most 10,000 (the reachability matrix checks every pair without a list)",
    ]);
    expect(problems(`${base}traffic:\n${"  - { from: node1, to: node2 }\n".repeat(10_000)}`)).toEqual([]);
  });

  it("exports a JSON Schema editors can use", () => {
    const schema = scenarioJsonSchema() as { properties: Record<string, unknown>; required: string[] };
    expect(schema.required).toEqual(expect.arrayContaining(["name", "underlay"]));
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining([
        "cluster",
        "underlay",
        "nodes",
        "pods",
        "services",
        "traffic",
        "events",
        "generate",
      ]),
    );
  });
});
