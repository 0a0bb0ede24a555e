// `podnet policy check|diff` and `podnet trace --policy`, as a user runs them.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT, podnet } from "./podnet.js";

const tmp = mkdtempSync(join(tmpdir(), "podnet-policy-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("podnet policy", () => {
  it("prints the allowed-connection matrix as truth tables and as JSON", async () => {
    const text = await podnet(["policy", "check", "scenarios/netpol.yaml"]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(
      [
        'tcp/5432  (rows: from, columns: to; "." allowed, "X" denied)',
        "              1",
        "shop/web      X",
        "shop/api      .",
        // A pod cannot block access to itself.
        "shop/db       .",
        "ops/monitor   X",
        "outside       X",
        "  columns: 1=shop/db",
      ].join("\n"),
    );
    expect(text.stdout).toContain("5 policies; 18 connections allowed, 12 denied");
    expect(text.stdout).not.toContain("note:");
    // Under docker-bridge pods of different nodes share addresses, which policies match by: said.
    const shared = await podnet(["policy", "check", "scenarios/netpol.yaml", "--provider", "docker-bridge"]);
    expect(shared.stdout).toContain(
      "note: NetworkPolicy matches pods by address, and under docker-bridge pods of different nodes share 2",
    );
    const json = (await podnet(["policy", "check", "scenarios/netpol.yaml", "--json"])).json();
    const at = (from: string, to: string, port: number) =>
      json.allowed[json.sources.indexOf(from)][
        json.targets.findIndex((t: { name: string; port: number }) => t.name === to && t.port === port)
      ];
    expect([
      at("shop/api", "shop/db", 5432),
      at("ops/monitor", "shop/api", 9100),
      at("outside", "shop/api", 8080),
    ]).toEqual(["1", "1", "0"]);
  });

  it("checks the cluster after the scenario's events, or before them with --no-events", async () => {
    const file = join(tmp, "events.yaml");
    writeFileSync(
      file,
      [
        "name: policy-events",
        "underlay: { segments: [{ name: lan, subnet: 10.100.0.0/24 }] }",
        "cluster: { serviceCidr: 10.96.0.0/16 }",
        "nodes: [{ name: node1, segment: lan, address: 10.100.0.2 }]",
        "pods:",
        "  - { name: a, node: node1, labels: { app: a }, containers: [{ name: c, ports: [{ containerPort: 80 }] }] }",
        "events:",
        "  - { at: 1, action: addPod, pod: { name: b, node: node1, labels: { app: b } } }",
        "  - at: 2",
        "    action: setNetworkPolicy",
        "    networkPolicy:",
        "      apiVersion: networking.k8s.io/v1",
        "      kind: NetworkPolicy",
        "      metadata: { name: only-self }",
        "      spec: { podSelector: { matchLabels: { app: a } }, policyTypes: [Ingress] }",
        "",
      ].join("\n"),
    );
    const after = (await podnet(["policy", "check", file, "--json"])).json();
    expect(after.sources).toEqual(["default/a", "default/b"]);
    // b may not reach a:80 once the policy is set; a may reach itself.
    expect(after.allowed).toEqual(["1", "0"]);
    expect((await podnet(["policy", "check", file])).stdout).toContain("1 policies;");
    const before = (await podnet(["policy", "check", file, "--no-events", "--json"])).json();
    expect(before.sources).toEqual(["default/a"]);
    expect(before.allowed).toEqual(["1"]);
  });

  it("refuses policies whose chains would pass the engine's limit, before building them", async () => {
    // 200 pods each allowed in from and out to every pod on 100 ports: 4 million rules (3 GB) before
    // multiport rules and the limit; 280,000 on each node with them.
    const file = join(tmp, "many-rules.yaml");
    const ports = Array.from({ length: 100 }, (_, i) => `{ port: ${1000 + i} }`).join(", ");
    writeFileSync(
      file,
      [
        "name: many-rules",
        "cluster: { clusterCidr: 10.0.0.0/16, nodeMaskSize: 22, serviceCidr: 10.96.0.0/16 }",
        "underlay: { segments: [{ name: lan, subnet: 10.100.0.0/24 }] }",
        "nodes: [{ name: n1, segment: lan, address: 10.100.0.2 }, { name: n2, segment: lan, address: 10.100.0.3 }]",
        "pods:",
        ...Array.from({ length: 200 }, (_, i) => `  - { name: p${i}, node: n${1 + (i % 2)} }`),
        "networkPolicies:",
        "  - apiVersion: networking.k8s.io/v1",
        "    kind: NetworkPolicy",
        "    metadata: { name: all }",
        "    spec:",
        "      podSelector: {}",
        `      ingress: [{ from: [{ podSelector: {} }], ports: [${ports}] }]`,
        `      egress: [{ to: [{ podSelector: {} }], ports: [${ports}] }]`,
        "",
      ].join("\n"),
    );
    const r = await podnet(["run", file, "--provider", "overlay", "--policy", "iptables"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^error: node n1: the NetworkPolicies make at least 250,\d{3} iptables rules \(one per peer pod and port, in each selected pod's chain\); the iptables engine writes at most 250,000 per node: select fewer peers or ports per rule \(an ipBlock is one rule\)\n$/,
    );
  });

  it("lists what applying a manifest opens and closes", async () => {
    const r = await podnet([
      "policy",
      "diff",
      "scenarios/netpol.yaml",
      "--with",
      "scenarios/policies/lockdown.yaml",
      "--json",
    ]);
    expect(r.code).toBe(0);
    expect(r.json()).toMatchObject({ opened: 1, closed: 4 });
    expect(r.json().changes[0]).toEqual({
      from: "shop/web",
      to: "shop/db",
      protocol: "tcp",
      port: 5432,
      change: "opened",
    });
  });

  it("refuses bad manifests with a located error and exit status 2", async () => {
    const bad = join(tmp, "bad.yaml");
    writeFileSync(
      bad,
      "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: p }\nspec:\n  podSelector: {}\n  ingress: [{ ports: [{ protocol: SCTP }] }]\n",
    );
    const r = await podnet(["policy", "diff", "scenarios/netpol.yaml", "--with", bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `${bad}:6:35: spec.ingress[0].ports[0].protocol: SCTP is not supported: no podnet backend carries SCTP (use TCP or UDP)`,
    );
    expect((await podnet(["policy", "check", "scenarios/netpol.yaml", "--provider", "nope"])).code).toBe(2);
    // A policy for a namespace the cluster lacks (kubectl: not found) selected nothing and read
    // "0 opened, 0 closed"; one the same file creates is fine.
    const policy =
      "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: p, namespace: nowhere }\nspec: { podSelector: {} }\n";
    writeFileSync(bad, policy);
    const missing = await podnet(["policy", "diff", "scenarios/netpol.yaml", "--with", bad]);
    expect([missing.code, missing.stderr]).toEqual([
      2,
      `error: ${bad}:3:33: metadata.namespace: namespace "nowhere" does not exist: no pod runs in it, the scenario does not declare it and this file has no Namespace for it (kubectl apply says namespaces "nowhere" not found)\n`,
    ]);
    writeFileSync(bad, `apiVersion: v1\nkind: Namespace\nmetadata: { name: nowhere }\n---\n${policy}`);
    const created = await podnet(["policy", "diff", "scenarios/netpol.yaml", "--with", bad]);
    expect([created.code, created.stdout]).toEqual([0, "0 opened, 0 closed\n"]);
    // A URL is not a path: it was reported missing with its "//" collapsed by the path join.
    const remote = join(tmp, "remote.yaml");
    writeFileSync(
      remote,
      `${readFileSync(join(ROOT, "scenarios/two-nodes.yaml"), "utf8")}manifests: [https://example.com/policies.yaml]\n`,
    );
    const url = await podnet(["run", remote, "--provider", "overlay"]);
    expect([url.code, url.stderr]).toEqual([
      2,
      `error: ${remote}:57:13: manifests[0]: "https://example.com/policies.yaml" is a URL: manifests are read from files (download it first)\n`,
    ]);
  });

  /** A connection netpol's db-from-api policy denies. */
  const monitorToDb = [
    "trace",
    "scenarios/netpol.yaml",
    "--provider",
    "overlay",
    "--from",
    "monitor",
    "--to",
    "db:5432",
    "--proto",
    "tcp",
  ];

  it("says on a trace, and in compare, that policies nothing enforces pass every packet", async () => {
    const args = monitorToDb;
    const note =
      "the scenario's 5 NetworkPolicies are not enforced: no policy engine runs beside the provider (--policy iptables enforces them)";
    const open = await podnet(args);
    expect([open.code, open.stdout]).toEqual([0, expect.stringContaining(`note: ${note}\n`)]);
    expect((await podnet([...args, "--json"])).json().notes).toEqual([note]);
    expect((await podnet([...args, "--policy", "iptables"])).stdout).not.toContain("not enforced");
    const compared = await podnet([
      "compare",
      "scenarios/netpol.yaml",
      "--providers",
      "overlay",
      "--policy",
      "none,iptables",
    ]);
    expect(compared.stdout.split("\n")[0]).toBe(`note (overlay / policy none): ${note}`);
  });

  it("names the verdict on a trace through an enforcing node", async () => {
    const denied = await podnet([...monitorToDb, "--policy", "iptables"]);
    expect(denied.code).toBe(1);
    expect(denied.stdout).toContain(
      'filter FORWARD: -A PNP-I-308CAAC0 -m comment --comment "default deny ingress of shop/db: selected by shop/default-deny-ingress, shop/db-from-api" -j DROP',
    );
    expect(denied.stdout).toContain(
      [
        "policy (iptables): denied",
        "  egress from ops/monitor: allowed, no policy selects ops/monitor for egress",
        "  ingress to shop/db: denied by default: selected by shop/default-deny-ingress (policyTypes include Ingress), shop/db-from-api (policyTypes defaulted include Ingress), and no rule of them allows it",
      ].join("\n"),
    );
    const allowed = await podnet([
      "trace",
      "scenarios/netpol.yaml",
      "--provider",
      "cbr0-host-gw",
      "--policy",
      "iptables",
      "--from",
      "web",
      "--to",
      "api:8080",
      "--proto",
      "tcp",
      "--json",
    ]);
    expect(allowed.code).toBe(0);
    expect(allowed.json().policy.explanation).toEqual([
      "egress from shop/web: allowed, no policy selects shop/web for egress",
      "ingress to shop/api: allowed by shop/api-from-web ingress[0] ports[0]",
    ]);
    // A packet stopped before any node (the gateway has no route to the pods under host-gw) still
    // gets the policy's verdict on its connection, not on the router's ICMP error about it.
    const stopped = await podnet(
      ["trace", "netpol", "--provider", "cbr0-host-gw", "--policy", "iptables"].concat([
        "--from",
        "outside",
        "--to",
        "db:5432",
        "--proto",
        "tcp",
        "--json",
      ]),
    );
    expect(stopped.code).toBe(1);
    expect(stopped.json().policy).toMatchObject({
      allowed: false,
      explanation: [expect.stringMatching(/^ingress to shop\/db: denied by default/)],
    });
  });

  it("enforces the policies in run, compare and bench when --policy says so, and only then", async () => {
    type Cell = { from: string; to: string; reached: boolean; reason: string };
    const cell = (r: { reachability: Cell[] }, from: string, to: string) =>
      r.reachability.find((c) => c.from === from && c.to === to)!;
    const open = await podnet(["run", "scenarios/netpol.yaml", "--provider", "cbr0-host-gw", "--json"]);
    expect(open.json().policy).toBe("none");
    expect(cell(open.json(), "web", "api").reached).toBe(true);
    // Said, so the open cells are not read as what the policies allow.
    expect(open.json().notes).toEqual([
      "the scenario's 5 NetworkPolicies are not enforced: no policy engine runs beside the provider (--policy iptables enforces them)",
    ]);
    const enforced = await podnet([
      "run",
      "scenarios/netpol.yaml",
      "--provider",
      "docker-bridge",
      "--policy",
      "iptables",
    ]);
    expect(enforced.stdout).toContain(
      "netpol under docker-bridge (kube-proxy iptables, NetworkPolicy iptables)",
    );
    expect(enforced.stdout).not.toContain("not enforced");
    // Its pods of different nodes share addresses, and policies match by address: said.
    expect(enforced.stdout).toContain(
      "NetworkPolicy matches pods by address, and under docker-bridge pods of different nodes share",
    );
    const compared = (
      await podnet([
        "compare",
        "scenarios/netpol.yaml",
        "--providers",
        "cbr0-host-gw,overlay",
        "--policy",
        "iptables",
        "--json",
      ])
    ).json() as { provider: string; policy: string; reachability: Cell[] }[];
    for (const r of compared) {
      expect(r.policy).toBe("iptables");
      // A ping is a new connection: shop's default-deny ingress drops it at api's node, under either provider.
      expect(cell(r, "web", "api")).toMatchObject({ reached: false });
      expect(cell(r, "web", "api").reason).toContain("default deny ingress of shop/api");
      expect(cell(r, "api", "web").reached).toBe(false);
      expect(cell(r, "web", "monitor").reached).toBe(true); // nothing selects ops/monitor
    }
    const bench = await podnet([
      "bench",
      "scenarios/netpol.yaml",
      "--providers",
      "overlay",
      "--policy",
      "iptables",
      "--json",
    ]);
    expect(bench.json().rows[0]).toMatchObject({
      provider: "overlay",
      policy: "iptables",
      reachable: "20/32",
    });
    expect(
      (await podnet(["run", "scenarios/netpol.yaml", "--provider", "overlay", "--policy", "calico"])).code,
    ).toBe(2);
  });

  it("compares and benches several policy engines side by side", async () => {
    const side = await podnet([
      "compare",
      "scenarios/netpol.yaml",
      "--providers",
      "overlay",
      "--policy",
      "none,iptables",
    ]);
    expect(side.code).toBe(0);
    expect(side.stdout).toMatch(/│ pod→pod \(across nodes\), icmp │ 8\/8 +│ 2\/8 +│/);
    expect(side.stdout).toContain("overlay / policy none");
    expect(side.stdout).toContain("overlay / policy iptables");
    const rows = (
      await podnet([
        "bench",
        "scenarios/netpol.yaml",
        "--providers",
        "overlay",
        "--policy",
        "none,iptables",
        "--json",
      ])
    ).json().rows as { policy: string; reachable: string }[];
    expect(rows.map((r) => [r.policy, r.reachable])).toEqual([
      ["none", "32/32"],
      ["iptables", "20/32"],
    ]);
    const twice = await podnet(["compare", "scenarios/netpol.yaml", "--policy", "iptables,iptables"]);
    expect([twice.code, twice.stderr]).toEqual([2, 'error: --policy: "iptables" is named twice\n']);
    const linux = await podnet(["bench", "two-nodes", "--backend", "linux", "--policy", "none,iptables"]);
    expect([linux.code, linux.stderr]).toEqual([
      2,
      "error: --policy: --backend linux measures one policy engine per run\n",
    ]);
  });
});
