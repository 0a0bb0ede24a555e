// The built `podnet` binary, run as a user runs it.
import { spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodePacket, decodePcapng } from "@podnet/core";
import { afterAll, describe, expect, it } from "vitest";

import { BIN, ROOT, podnet } from "./podnet.js";
const tmp = mkdtempSync(join(tmpdir(), "podnet-cli-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("podnet", () => {
  it("lists the providers, for people and for machines", async () => {
    const human = await podnet(["providers"]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain("docker-bridge");
    const list = (await podnet(["providers", "--json"])).json() as { name: string; podMtuAt1500: number }[];
    expect(list.map((p) => [p.name, p.podMtuAt1500])).toEqual([
      ["docker-bridge", 1500],
      ["cbr0-host-gw", 1500],
      ["cbr0-host-gw-gateway", 1500],
      ["overlay", 1450],
      ["overlay-4789", 1450],
    ]);
    // On a 100-column terminal the table wraps its long cells to fit, never cutting a word; into a
    // pipe (above) its lines stay whole.
    const tty = spawnSync(
      "script",
      ["-qec", `stty cols 100; NO_COLOR=1 ${process.execPath} ${BIN} providers`, "/dev/null"],
      { encoding: "utf8" },
    );
    expect(tty.status).toBe(0);
    const lines = tty.stdout.split(/\r?\n/).filter((l) => l.startsWith("│") || l.startsWith("┌"));
    expect(lines.length).toBeGreaterThan(10);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(100);
    expect(tty.stdout).toContain("cbr0-host-gw-gateway");
    expect(tty.stdout).not.toContain("…");
    expect(Math.max(...human.stdout.split("\n").map((l) => l.length))).toBeGreaterThan(100);
  });

  it("chooses kube-proxy's mode with --proxy, compares both side by side, and refuses an unknown one", async () => {
    const nft = await podnet([
      "run",
      "service",
      "--provider",
      "cbr0-host-gw",
      "--proxy",
      "nftables",
      "--json",
    ]);
    const result = nft.json();
    expect(result).toMatchObject({ scenario: "service", provider: "cbr0-host-gw", proxy: "nftables" });
    expect(result.probes.find((p: { to: string }) => p.to === "svc/web")).toMatchObject({ reached: true });
    const compared = await podnet([
      "compare",
      "service",
      "--providers",
      "cbr0-host-gw",
      "--proxy",
      "iptables,nftables",
      "--json",
    ]);
    expect((JSON.parse(compared.stdout) as { proxy: string }[]).map((r) => r.proxy)).toEqual([
      "iptables",
      "nftables",
    ]);
    const bad = await podnet(["run", "service", "--provider", "cbr0-host-gw", "--proxy", "ipvs"]);
    expect([bad.code, bad.stderr.trim()]).toEqual([
      2,
      'error: --proxy: "ipvs" is not a proxy (iptables, nftables)',
    ]);
    const two = await podnet([
      "run",
      "service",
      "--provider",
      "cbr0-host-gw",
      "--proxy",
      "iptables,nftables",
    ]);
    expect([two.code, two.stderr.trim()]).toEqual([2, 'error: --proxy: one proxy, not "iptables,nftables"']);
  });

  it("runs the notes' two nodes: every probe passes under cbr0-host-gw, and docker-bridge answers no with the reason", async () => {
    const ok = await podnet(["run", "scenarios/two-nodes.yaml", "--provider", "cbr0-host-gw", "--json"]);
    expect(ok.code).toBe(0);
    const result = ok.json();
    expect(result).toMatchObject({ schemaVersion: 1, scenario: "two-nodes", provider: "cbr0-host-gw" });
    expect(result.nodes).toEqual([
      { name: "node1", address: "10.100.0.2", podCidr: "10.0.1.0/24" },
      { name: "node2", address: "10.100.0.3", podCidr: "10.0.2.0/24" },
    ]);
    expect(result.summary.reached).toBe(result.summary.total);
    // db's hostPort is published by the portmap chained after the bridge, as under flannel.
    expect(result.probes.find((p: { to: string }) => p.to === "node2:8080")).toMatchObject({
      reached: true,
      reason: "connected: SYN-ACK from 10.0.2.2:80 (db/postgres in db)",
    });
    expect(result.notes).toBeUndefined();
    expect(result.tables.node1.routes).toContainEqual({
      dst: "10.0.2.0/24",
      gateway: "10.100.0.3",
      dev: "eth0",
      flags: [],
    });
    expect(
      (await podnet(["run", "scenarios/two-nodes.yaml", "--provider", "cbr0-host-gw"])).stdout,
    ).toContain("  10.0.2.0/24 via 10.100.0.3 dev eth0");
    // A big cluster's node and pod tables stop after 20 rows (150,000 pods overflowed cli-table3).
    const large = await podnet([
      "run",
      "large",
      "--nodes",
      "25",
      "--pods-per-node",
      "2",
      "--provider",
      "overlay",
    ]);
    expect(large.code).toBe(0);
    expect(large.stdout).toContain("… 5 more (--json lists all)");
    expect(large.stdout).toContain("… 30 more (--json lists all)");
    expect(result.probes.map((p: { to: string; outcome: string }) => `${p.to} ${p.outcome}`)).toEqual([
      "db reached",
      "db:80 reached",
      "node2:8080 reached",
      "outside reached",
    ]);
    const dockerRun = await podnet([
      "run",
      "scenarios/two-nodes.yaml",
      "--provider",
      "docker-bridge",
      "--json",
    ]);
    expect(dockerRun.code).toBe(1);
    const docker = dockerRun.json();
    expect(docker.probes[0]).toMatchObject({
      outcome: "wrong-destination",
      reason: "reached web, which also holds 172.17.0.2, not db",
    });
    expect(docker.probes[2]).toMatchObject({ to: "node2:8080", outcome: "reached" }); // the published port
  });

  it("lists at most 200 probes, the failed ones first", async () => {
    // cli-table3 lays a table out in time quadratic in its rows: 20,000 probes took 15 s to print.
    const pods = Array.from({ length: 20 }, (_, i) => `  - { name: p${i}, node: node${1 + (i % 2)} }`);
    const traffic = Array.from(
      { length: 2_000 },
      (_, k) => `  - { from: p${k % 20}, to: p${(k * 7 + 3) % 20} }`,
    );
    const file = join(tmp, "many-probes.yaml");
    writeFileSync(
      file,
      [
        "name: many",
        "underlay: { segments: [{ name: lan, subnet: 10.100.0.0/24 }] }",
        "cluster: { serviceCidr: 10.96.0.0/16 }",
        "nodes:",
        "  - { name: node1, segment: lan, address: 10.100.0.2 }",
        "  - { name: node2, segment: lan, address: 10.100.0.3 }",
        "pods:",
        ...pods,
        "traffic:",
        ...traffic,
        "",
      ].join("\n"),
    );
    const r = await podnet(["run", file, "--provider", "docker-bridge"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("… 1,800 more (--json lists all)");
    const rows = r.stdout.split("\n").filter((l) => / → p\d+ \(icmp\)/.test(l));
    expect(rows).toHaveLength(200);
    // Across nodes docker-bridge reaches the wrong pod: those come first.
    expect(rows[0]).toContain("wrong-destination");
  }, 60_000);

  it("traces a pod pair hop by hop, exits 1 when not delivered, and writes a pcap", async () => {
    const pcap = join(tmp, "overlay.pcap");
    // Through a link to a file not there yet: written through it, as a shell's `>` would, the link kept.
    const link = join(tmp, "link.pcap");
    symlinkSync(pcap, link);
    const overlay = await podnet([
      "trace",
      "scenarios/two-nodes.yaml",
      "--provider",
      "overlay",
      "--from",
      "client",
      "--to",
      "db",
      "--pcap",
      link,
    ]);
    expect(overlay.code).toBe(0);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(overlay.stdout).toMatch(/encap\s+flannel\.1: VXLAN vni 1 to 10\.100\.0\.3:8472/);
    expect(overlay.stdout).toContain("reached: echo reply from 10.0.2.2 (db)");
    // pcapng, an interface per device: the VXLAN packet is on node1's eth0, the pod's on its eth0.
    const capture = decodePcapng(readFileSync(pcap));
    const frames = capture.records.map(
      (r) =>
        `${capture.interfaces[r.interface]!.name} ${decodePacket(r.data)
          .headers.map((h) => h.kind)
          .join("/")}`,
    );
    expect(frames).toContain("node1/eth0 ethernet/ipv4/udp/vxlan/ethernet/ipv4/icmp");
    expect(frames[0]).toMatch(/^client\/eth0 ethernet\//);
    // Stamped with the time it was written, not 1970.
    expect(capture.records[0]!.timestampMicros / 1e6).toBeGreaterThan(Date.now() / 1000 - 600);
    const docker = await podnet([
      "trace",
      "scenarios/two-nodes.yaml",
      "--provider",
      "docker-bridge",
      "--from",
      "client",
      "--to",
      "db",
      "--json",
    ]);
    expect(docker.code).toBe(1);
    expect(docker.json()).toMatchObject({
      provider: "docker-bridge",
      trace: { outcome: "wrong-destination" },
    });
    // Addresses as text and bytes as hex, not numbers and index-keyed objects.
    const first = docker.json().trace.hops[0].packet;
    expect(first).toEqual({
      headers: [
        expect.objectContaining({ kind: "ipv4", src: "172.17.0.3", dst: "172.17.0.2" }),
        expect.objectContaining({ kind: "icmp", type: 8 }),
      ],
      payloadLength: 56,
      payload: "00".repeat(56),
    });
    const frame = docker
      .json()
      .trace.hops.find(
        (h: { packet: { headers: { kind: string }[] } }) => h.packet.headers[0]!.kind === "ethernet",
      ).packet.headers[0];
    expect(frame.src).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  });

  it("names sizes as ping does: --size is payload, --pmtudisc is ping -M", async () => {
    const trace = (...args: string[]) =>
      podnet(["trace", "two-nodes", "--provider", "overlay", "--from", "client", "--to", "db", ...args]);
    const refused = await trace("--size", "1460", "--pmtudisc", "do");
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain(
      "unreachable: message too long, mtu=1450: 1488-byte IP packet (1460-byte payload) with DF over eth0 (at client)",
    );
    // ping's default fragments what does not fit the route, in the sender.
    const fragmented = await trace("--size", "1460");
    expect(fragmented.code).toBe(0);
    expect(fragmented.stdout).toMatch(
      /client eth0 +fragment +1488-byte IP packet \(1460-byte payload\) over mtu 1450: sent as 2 fragments/,
    );
    expect((await trace("--pmtudisc", "maybe")).stderr).toContain(
      "error: option '--pmtudisc <mode>' argument 'maybe' is invalid. Allowed choices are want, do, dont.",
    );
  });

  it("traces after the scenario's events, as run probes, unless told --no-events", async () => {
    const trace = (...args: string[]) =>
      podnet(["trace", "churn", "--provider", "overlay", "--from", "a", "--to", "d", ...args]);
    // d is added on node4, which joins in an event.
    const after = await trace("--json");
    expect(after.code).toBe(0);
    expect(after.json().trace).toMatchObject({ outcome: "reached", deliveredTo: { ns: "d" } });
    const before = await trace("--no-events");
    expect(before.stderr).toBe(
      'error: --to: unknown target "d": not a pod, node, host, svc/<name>[.<namespace>] or IPv4 address\n',
    );
    expect(before.code).toBe(2);
  });

  it("compares providers side by side", async () => {
    const out = await podnet([
      "compare",
      "scenarios/routed-segments.yaml",
      "--providers",
      "cbr0-host-gw,overlay",
      "--json",
    ]);
    expect(out.code).toBe(0);
    const [hostGw, overlay] = out.json();
    expect(hostGw.probes[0].reached).toBe(false);
    const failure = hostGw.reachability.find(
      (c: { kind: string; reached: boolean }) => c.kind === "pod→pod (across nodes)" && !c.reached,
    );
    expect(failure.reason).toContain("Nexthop has invalid gateway");
    expect(overlay.probes[0]).toMatchObject({ outcome: "reached" });
    expect(overlay.path).toMatchObject({ encapsulations: 1, podMtu: 1450, sourcePreserved: true });
  });

  it("leaves out of a comparison a provider that cannot take the scenario, and says where when none can", async () => {
    const file = join(tmp, "docker-range.yaml");
    writeFileSync(
      file,
      `name: docker-range
cluster: { serviceCidr: 10.96.0.0/16 }
underlay:
  segments: [{ name: lan, subnet: 172.17.5.0/24 }]
nodes: [{ name: node1, segment: lan, address: 172.17.5.2 }]
pods: [{ name: a, node: node1 }]
`,
    );
    const both = await podnet(["compare", file, "--providers", "docker-bridge,overlay"]);
    expect(both.code).toBe(0);
    expect(both.stdout).toContain(
      'note: docker-bridge is not compared: segment "lan" 172.17.5.0/24 overlaps 172.17.0.0/16',
    );
    expect(both.stdout).toMatch(/│ reachability\s+│ overlay\s+│/);
    const alone = await podnet(["compare", file, "--providers", "docker-bridge"]);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toMatch(
      /^error: \S+docker-range\.yaml:4:35: underlay\.segments\[0\]\.subnet: segment "lan"/,
    );
  });
  it("keeps the bundled scenarios' promises under each provider", async () => {
    for (const provider of ["docker-bridge", "cbr0-host-gw", "overlay"]) {
      const single = await podnet(["run", "scenarios/single-pod.yaml", "--provider", provider, "--json"]);
      expect(single.code).toBe(0);
      expect(single.json().probes[0]).toMatchObject({
        from: "web/sidecar",
        to: "127.0.0.1:80",
        outcome: "reached",
      });
    }
    for (const provider of ["cbr0-host-gw", "overlay"]) {
      const svc = (await podnet(["run", "scenarios/service.yaml", "--provider", provider, "--json"])).json();
      // kube-proxy's REJECT answers a connect with a port unreachable: ECONNREFUSED, as on the kernel
      // (podnet verify), and not reached: no endpoint answered.
      expect(svc.probes.map((p: { outcome: string }) => p.outcome)).toEqual([
        "reached",
        "refused",
        "reached",
        "reached",
      ]);
      expect(svc.probes[1]).toMatchObject({ reached: false });
      expect(svc.probes[1].reason).toContain("has no endpoints");
      // trace names the path's end (a REJECT on the way) and what the socket sees, as run reports it
      // (TCP, the Service port's protocol, without --proto).
      const traceTo = (to: string) => [
        "trace",
        "scenarios/service.yaml",
        "--provider",
        provider,
        "--from",
        "client",
        "--to",
        to,
      ];
      const toEmpty = traceTo("svc/empty");
      const empty = await podnet(toEmpty);
      const emptyJson = await podnet([...toEmpty, "--json"]);
      expect(emptyJson.json()).toMatchObject({ trace: { outcome: "unreachable" }, socketOutcome: "refused" });
      expect(empty.stdout).toMatch(
        /\nunreachable: rejected by node\d: .*has no endpoints.*\nto the sending socket this is refused \(ECONNREFUSED\), as `podnet run` reports it\n/,
      );
      // A Service of several endpoints: one trace is one of kube-proxy's draws, and says so.
      const web = await podnet(traceTo("svc/web"));
      expect(web.stdout).toContain(
        "svc/web has 3 endpoints (web-a, web-b, web-c): kube-proxy picks one at random for each connection, and this trace is one draw (--endpoint <pod> chooses it); `podnet run` probes them all\n",
      );
      expect(empty.stdout).not.toContain("kube-proxy picks one at random");
      // The NodePort on 127.0.0.1: iptables mode's localhost NodePorts; nftables mode has none.
      const nft = await podnet([
        "run",
        "scenarios/service.yaml",
        "--provider",
        provider,
        "--proxy",
        "nftables",
        "--json",
      ]);
      expect(nft.json().probes[3]).toMatchObject({ to: "127.0.0.1:30080", outcome: "refused" });
      const churn = (await podnet(["run", "scenarios/churn.yaml", "--provider", provider, "--json"])).json();
      expect(churn.controlPlane.events.map((e: { description: string }) => e.description)).toEqual([
        "node node4 joins",
        "pod d starts on node4",
        "node node2 leaves",
        "node node5 joins",
        "pod e starts on node5",
      ]);
      expect(churn.probes.every((p: { reached: boolean }) => p.reached)).toBe(true);
    }
    {
      // A node finding no one at a pod address answers host unreachable, which a UDP socket is never
      // told of: dropped to the socket (the lab fixture is verified on the kernel), unreachable to TCP.
      const soft = join(ROOT, "packages/lab/test/fixtures/udp-soft-errors.yaml");
      const args = [
        "trace",
        soft,
        "--provider",
        "docker-bridge",
        "--from",
        "outside",
        "--to",
        "172.17.0.9:53",
      ];
      const udp = await podnet([...args, "--proto", "udp"]);
      expect(udp.stdout).toMatch(
        /\nunreachable: host unreachable: no ARP reply for 172\.17\.0\.9 on docker0.*\nto the sending socket this is dropped \(a UDP socket is not told of a host or network unreachable or a time exceeded\), as `podnet run` reports it\n/,
      );
      expect((await podnet([...args, "--proto", "tcp", "--json"])).json()).toMatchObject({
        trace: { outcome: "unreachable" },
        socketOutcome: "unreachable",
      });
    }
    // Eleven runs, each a process that builds a cluster: past 30 s on a 2-core machine whose other
    // packages' tests run beside it (CI timed it out once).
  }, 120_000);

  it("shows each filter hook passed with --hooks, and what accepted the packet there", async () => {
    const args = ["trace", "netpol", "--provider", "cbr0-host-gw", "--policy", "iptables", "--from", "web"];
    const plain = await podnet([...args, "--to", "api:8080"]);
    expect(plain.stdout).not.toContain("filter FORWARD: ACCEPT");
    const hooks = await podnet([...args, "--to", "api:8080", "--hooks"]);
    expect(hooks.code).toBe(0);
    const lines = hooks.stdout.split("\n").filter((l) => /filter FORWARD: ACCEPT by /.test(l));
    expect(lines.map((l) => /^ *\d+ ([→←] \S+ \S+)/.exec(l)?.[1])).toEqual([
      "→ node1 eth0",
      "→ node2 cbr0",
      "← node2 eth0",
      "← node1 cbr0",
    ]);
    expect(lines[1]).toContain('--comment "shop/api-from-web ingress[0]" -j RETURN');
  }, 60_000);

  it("traces through the endpoint --endpoint names, and refuses one the Service does not draw", async () => {
    const args = ["trace", "service", "--provider", "overlay", "--from", "client", "--to", "svc/web"];
    const chosen = await podnet([...args, "--endpoint", "web-c", "--json"]);
    expect(chosen.code).toBe(0);
    expect(chosen.json()).toMatchObject({ trace: { outcome: "reached", deliveredTo: { ns: "web-c" } } });
    // The note that one trace is one draw says how to choose it, and is not said once chosen.
    expect((await podnet(args)).stdout).toContain("this trace is one draw (--endpoint <pod> chooses it)");
    expect((await podnet([...args, "--endpoint", "web-c"])).stdout).not.toContain("one draw");
    const wrong = await podnet([...args, "--endpoint", "client"]);
    expect([wrong.code, wrong.stderr]).toEqual([
      2,
      'error: --endpoint: "client" is not an endpoint of svc/web (endpoints: web-a, web-b, web-c)\n',
    ]);
    // A packet that nothing translated is shown, with why no endpoint was drawn (exit 1).
    const local = join(ROOT, "packages/lab/test/fixtures/traffic-policy.yaml");
    const dropped = await podnet([
      ...["trace", local, "--provider", "overlay", "--from", "outside", "--to", "node1:30080"],
      ...["--endpoint", "web1"],
    ]);
    expect(dropped.code).toBe(1);
    expect(dropped.stdout).toContain(
      "--endpoint web1: no endpoint was drawn on the packet's way (nothing translated it)\n",
    );
    const pod = await podnet([...args.slice(0, -1), "web-a:8080", "--endpoint", "web-a"]);
    expect([pod.code, pod.stderr]).toEqual([
      2,
      `error: --endpoint: "web-a:8080" is not a Service's port, so there is no endpoint to choose (a Service is svc/<name>[:port], its ClusterIP or a node's NodePort)\n`,
    ]);
  }, 60_000);

  it("refuses bad input with a located message and exit status 2", async () => {
    const bad = join(tmp, "bad.yaml");
    writeFileSync(
      bad,
      readFileSync(join(ROOT, "scenarios/two-nodes.yaml"), "utf8").replace(
        "address: 10.100.0.3",
        "address: 10.100.0.300",
      ),
    );
    const copy = join(tmp, "copy.yaml");
    writeFileSync(copy, readFileSync(join(ROOT, "scenarios/two-nodes.yaml")));
    // Another name for the same file: a path comparison let --out overwrite the scenario through it.
    const hard = join(tmp, "hard.json");
    linkSync(copy, hard);
    const fifo = join(tmp, "fifo");
    spawnSync("mkfifo", [fifo]);
    // Past 4 MiB: read, a YAML document of that size took 2.3 GB.
    const huge = join(tmp, "huge.yaml");
    writeFileSync(huge, `name: huge\n#${"x".repeat(4 * 2 ** 20)}\n`);
    const trace = (...args: string[]) => ["trace", "two-nodes", "--provider", "overlay", ...args];
    // 300 pods sharing 300 ports through one YAML alias: a 27-million-cell matrix from 30 KB.
    const ports = join(tmp, "ports.yaml");
    writeFileSync(
      ports,
      [
        "name: ports",
        "cluster: { clusterCidr: 10.0.0.0/16, nodeMaskSize: 22, serviceCidr: 10.96.0.0/16 }",
        "underlay: { segments: [{ name: lan, subnet: 10.100.0.0/24 }] }",
        "nodes: [{ name: n1, segment: lan, address: 10.100.0.2 }]",
        "pods:",
        `  - { name: p0, node: n1, containers: &c [{ name: app, ports: [${Array.from({ length: 300 }, (_, i) => `{ containerPort: ${1000 + i} }`).join(", ")}] }] }`,
        ...Array.from({ length: 299 }, (_, i) => `  - { name: p${i + 1}, node: n1, containers: *c }`),
        "",
      ].join("\n"),
    );
    // [arguments, the whole of stderr]
    const cases: [string[], string][] = [
      [
        ["run", bad, "--provider", "overlay"],
        `${bad}:34:14: nodes[1].address: "10.100.0.300" is not an IPv4 address`,
      ],
      [
        ["run", "scenarios/two-nodes.yaml", "--provider", "flannel"],
        'unknown provider "flannel"; choose one of: docker-bridge, cbr0-host-gw, cbr0-host-gw-gateway, overlay, overlay-4789',
      ],
      [
        ["run", "nope.yaml", "--provider", "overlay"],
        "nope.yaml: cannot read the scenario file: no such file (ENOENT)",
      ],
      // Control characters are shown escaped, not sent to the terminal.
      [
        ["run", "two-nodes", "--provider", "\u001b[31mred"],
        'unknown provider "\\u001b[31mred"; choose one of: docker-bridge, cbr0-host-gw, cbr0-host-gw-gateway, overlay, overlay-4789',
      ],
      [
        ["run", "\u001b[31mred", "--provider", "overlay"],
        '"\\u001b[31mred": no such scenario file, nor a bundled scenario (bundled: churn, large, netpol, routed-segments, service, single-pod, two-nodes)',
      ],
      // Given but empty is an empty list, said under its own flag.
      [
        ["trace", "two-nodes", "--providers", "", "--from", "client", "--to", "db"],
        '--providers: "" names no provider (docker-bridge, cbr0-host-gw, cbr0-host-gw-gateway, overlay, overlay-4789)',
      ],
      [
        ["run", "nope", "--provider", "overlay"],
        "nope: no such scenario file, nor a bundled scenario (bundled: churn, large, netpol, routed-segments, service, single-pod, two-nodes)",
      ],
      [
        ["run", "", "--provider", "overlay"],
        "\"\": a scenario file's path or a bundled scenario's name, not empty",
      ],
      [
        ["run", "/dev/zero", "--provider", "overlay"],
        "/dev/zero: not a regular file (a device, FIFO or socket), not a scenario file",
      ],
      [
        ["run", fifo, "--provider", "overlay"],
        `${fifo}: not a regular file (a device, FIFO or socket), not a scenario file`,
      ],
      [["run", tmp, "--provider", "overlay"], `${tmp}: is a directory, not a scenario file`],
      [
        ["run", huge, "--provider", "overlay"],
        `${huge}: ${4 * 2 ** 20 + 13} bytes is larger than a scenario file can be (4 MiB): a large cluster is generated with a generate: block, not listed`,
      ],
      [
        trace("--from", "ghost", "--to", "db"),
        '--from: unknown source "ghost": not a pod, pod/container, node or host',
      ],
      [
        trace("--from", "web/redis", "--to", "db"),
        '--from: pod web has no container "redis" (containers: nginx, sidecar)',
      ],
      [
        trace("--from", "web/", "--to", "db"),
        '--from: pod web has no container "" (containers: nginx, sidecar)',
      ],
      [trace("--from", "node1/app", "--to", "db"), '--from: node1 is not a pod: it has no container "app"'],
      [
        trace("--from", "web", "--to", "10.0.0.999"),
        '--to: unknown target "10.0.0.999": not a pod, node, host, svc/<name>[.<namespace>] or IPv4 address',
      ],
      [trace("--from", "web", "--to", "svc/"), '--to: "svc/": svc/ needs a Service\'s name (svc/<name>)'],
      [trace("--from", "gw", "--to", "db"), "--from: gw is a router: probes start from a pod, node or host"],
      [trace("--from", "web", "--to", "gw"), "--to: gw is a router: probe one of its addresses instead"],
      // Two colons, but no IPv6 address: a port left empty.
      [trace("--from", "db", "--to", "web::"), '--to: "" in "web::" is not a port (1-65535)'],
      [
        trace("--from", "web", "--to", "[fe80::1%eth0]:80"),
        '--to: "[fe80::1%eth0]:80" is an IPv6 address: podnet\'s clusters are IPv4 only (dual-stack is not modelled yet)',
      ],
      [
        trace("--from", "web", "--to", "::1"),
        '--to: "::1" is an IPv6 address: podnet\'s clusters are IPv4 only (dual-stack is not modelled yet)',
      ],
      [trace("--from", "web", "--to", "db:0"), '--to: "0" in "db:0" is not a port (1-65535)'],
      [trace("--from", "web", "--to", "db:70000"), '--to: "70000" in "db:70000" is not a port (1-65535)'],
      [trace("--from", "web", "--to", "db:abc"), '--to: "abc" in "db:abc" is not a port (1-65535)'],
      [
        trace("--from", "web", "--to", "db", "--size", "big"),
        '--size: "big" is not a number of bytes (0-65000)',
      ],
      [
        ["trace", copy, "--provider", "overlay", "--from", "web", "--to", "db", "--pcap", copy],
        `--pcap: ${copy} is an input of this command; refusing to overwrite it`,
      ],
      [trace("--from", "web", "--to", "db", "--pcap", tmp), `--pcap: ${tmp} is a directory`],
      [
        trace("--from", "web", "--to", "db", "--pcap", "/proc/x.pcap"),
        "--pcap: cannot write /proc/x.pcap (ENOENT)",
      ],
      [trace("--from", "web", "--to", "db", "--pcap", fifo), `--pcap: cannot write ${fifo} (ENXIO)`],
      [trace("--from", "web", "--to", "db", "--pcap", ""), "--pcap: needs a file name"],
      [
        [
          "trace",
          "two-nodes",
          "--providers",
          "overlay,cbr0-host-gw",
          "--from",
          "web",
          "--to",
          "db",
          "--pcap",
          "",
        ],
        "--pcap: needs a file name",
      ],
      [trace("--from", "web", "--to", "db", "--proto", "tcp"), '--to: a tcp probe needs a port: "db:<port>"'],
      [["bench", "two-nodes", "--out", ""], "--out: needs a file name"],
      [
        ["bench", copy, "--providers", "overlay", "--out", copy],
        `--out: ${copy} is an input of this command; refusing to overwrite it`,
      ],
      [
        ["bench", copy, "--providers", "overlay", "--out", hard],
        `--out: ${hard} is an input of this command; refusing to overwrite it`,
      ],
      [
        ["bench", "two-nodes", "--out", "/nonexistent/b.json"],
        "--out: cannot write /nonexistent/b.json (ENOENT)",
      ],
      [
        ["run", "two-nodes", "--provider", "overlay", "--provider", "cbr0-host-gw"],
        '--provider: given more than once ("overlay", then "cbr0-host-gw"); it takes one value (--providers a,b compares several)',
      ],
      [
        ["compare", "two-nodes", "--providers", "overlay", "--providers=cbr0-host-gw"],
        '--providers: given more than once ("overlay", then "cbr0-host-gw"); it takes one value',
      ],
      [["bench", "two-nodes", "--endpoints", "7"], "--endpoints: endpoints per Service, with --services"],
      [
        ["bench", "--services", "1", "--nodes", "5"],
        "--nodes: scale a scenario; --services measures kube-proxy on one node (--endpoints sets its endpoints)",
      ],
      [
        ["policy", "check", ports],
        `${ports}: 300 pods and their ports make a policy matrix of 27,000,000 cells; it is made for at most 20,000,000 (every pod and host against every pod's and host's port); \`podnet trace --policy\` checks single connections at any size`,
      ],
      [
        ["policy", "check", "large"],
        "large: 150,000 pods; a policy matrix is made for at most 3,000 (every pod against every pod and port); `podnet trace --policy` checks single connections at any size",
      ],
      [
        ["bench", "two-nodes", "--backend", "linux", "--omit", "11"],
        '--omit: "11" is not a number of seconds (0-10)',
      ],
      [
        ["bench", "two-nodes", "--side-by-side"],
        "--side-by-side: measure the real datapath, with --backend linux",
      ],
      [
        ["bench", "two-nodes", "--backend", "linux", "--blocks", "8"],
        "--blocks: measures each pair's transfers in blocks beside the baseline's, with --side-by-side",
      ],
      [
        [
          "bench",
          "two-nodes",
          "--backend",
          "linux",
          "--side-by-side",
          "--blocks",
          "8",
          "--seconds",
          "2",
          "--pin",
        ],
        "--seconds, --pin: --blocks measures each transfer in blocks of a fixed size, each TCP flow's ends on a CPU of their own; leave --seconds, --pin out",
      ],
      [["bench"], "bench: name a scenario, or --services <counts>"],
      [["bench", "--services", "0"], '--services: "0" is not a Service count (1-10000)'],
      [["bench", "--services", "1000,x"], '--services: "x" is not a Service count (1-10000)'],
      [
        ["bench", "two-nodes", "--services", "10"],
        "--services measures kube-proxy alone: name no scenario with it",
      ],
      [
        ["bench", "--services", "10", "--backend", "linux"],
        "--services runs on the simulated kernel (--backend sim)",
      ],
      [
        ["compare", "two-nodes", "--providers", ","],
        '--providers: "," names no provider (docker-bridge, cbr0-host-gw, cbr0-host-gw-gateway, overlay, overlay-4789)',
      ],
      [["compare", "two-nodes", "--providers", "overlay,overlay"], '--providers: "overlay" is named twice'],
      // Every list option reads its entries alike: an empty entry or one named twice is refused.
      [
        ["compare", "two-nodes", "--providers", "overlay,"],
        '--providers: "overlay," has an empty entry (the 2nd of 2)',
      ],
      [
        ["compare", "two-nodes", "--proxy", "iptables,,nftables"],
        '--proxy: "iptables,,nftables" has an empty entry (the 2nd of 3)',
      ],
      [["bench", "--services", "5,"], '--services: "5," has an empty entry (the 2nd of 2)'],
      [["bench", "--services", "1000,1_000"], "--services: 1000 is named twice"],
      [["bench", "two-nodes", "two-nodes"], 'scenario "two-nodes" is named twice'],
      [["bench", "two-nodes", "scenarios/two-nodes.yaml"], "scenarios/two-nodes.yaml is two-nodes again"],
      // It wrote the JSON to x.md and the Markdown to x.md.md.
      [
        ["bench", "two-nodes", "--out", "x.md"],
        "--out x.md: name the JSON file (x.json); its Markdown twin is written beside it as .md",
      ],
      [["web", "--port", "99999"], '--port: "99999" is not a port (0-65535)'],
      [["run", "scenarios/two-nodes.yaml", "--provider", "overlay", "--colour"], "unknown option '--colour'"],
      [["run", "scenarios/two-nodes.yaml"], "required option '--provider <name>' not specified"],
    ];
    for (const [args, message] of cases) {
      const r = await podnet(args);
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({
        args,
        code: 2,
        stderr: `error: ${message}\n`,
      });
    }
    // A bench whose Markdown twin would overwrite its input is refused before it runs.
    const md = join(tmp, "input.md");
    writeFileSync(md, readFileSync(join(ROOT, "scenarios/two-nodes.yaml")));
    expect(await podnet(["bench", md, "--out", join(tmp, "input.json")])).toMatchObject({ code: 2 });
    expect(readFileSync(md, "utf8")).toBe(readFileSync(join(ROOT, "scenarios/two-nodes.yaml"), "utf8"));
    expect(readFileSync(copy, "utf8")).toBe(readFileSync(join(ROOT, "scenarios/two-nodes.yaml"), "utf8"));
  }, 120_000); // some thirty runs of the CLI

  it("prints an error object on stdout with --json, on every command", async () => {
    const scenario = await podnet([
      "run",
      join(ROOT, "packages/cluster/test/corpus/yaml-syntax.yaml"),
      "--provider",
      "overlay",
      "--json",
    ]);
    expect(scenario.code).toBe(2);
    expect(scenario.json().error).toMatchObject({ code: "ESCENARIO", issues: [{ line: 14, column: 1 }] });
    expect((await podnet(["compare", "two-nodes", "--providers", ",", "--json"])).json()).toEqual({
      error: {
        code: "EUSAGE",
        message:
          '--providers: "," names no provider (docker-bridge, cbr0-host-gw, cbr0-host-gw-gateway, overlay, overlay-4789)',
      },
    });
    expect((await podnet(["run", "two-nodes", "--provider", "nope", "--json"])).json().error.code).toBe(
      "EPROVIDER",
    );
    const traceTo = (...rest: string[]) =>
      podnet(["trace", "two-nodes", "--provider", "overlay", "--from", "client", "--to", ...rest]);
    const target = await traceTo("nobody", "--json");
    expect([target.code, target.json().error.code]).toEqual([2, "ETARGET"]);
    expect(target.json().error.message).toMatch(/^--to: unknown target "nobody"/);
    expect(
      (await podnet(["run", "two-nodes", "--provider", "overlay", "--bogus", "--json"])).json().error,
    ).toEqual({
      code: "EUSAGE",
      message: "unknown option '--bogus'",
    });
    // "--json" as another option's value is that value, not a request for JSON (it was both).
    const asValue = await traceTo("--json");
    expect([asValue.code, asValue.stdout]).toEqual([2, ""]);
    expect(asValue.stderr).toContain('unknown target "--json"');
    for (const command of ["providers", "scenarios", "schema"]) {
      const r = await podnet([command, "--json"]);
      expect(r.code).toBe(0);
      expect(() => r.json()).not.toThrow();
    }
  });

  it("reads bundled scenarios by name, lists them, and knows its version", async () => {
    const list = (await podnet(["scenarios", "--json"])).json() as {
      name: string;
      nodes: number;
      description: string;
    }[];
    expect(list.map((s) => s.name)).toEqual([
      "churn",
      "large",
      "netpol",
      "routed-segments",
      "service",
      "single-pod",
      "two-nodes",
    ]);
    expect(list.find((s) => s.name === "large")).toMatchObject({ nodes: 5000, pods: 150000 });
    expect(
      (await podnet(["compare", "two-nodes", "--providers", "cbr0-host-gw", "--json"])).json()[0].scenario,
    ).toBe("two-nodes");
    const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    expect((await podnet(["--version"])).stdout.trim()).toBe(manifest.version);
  });

  it("resizes a generated scenario with --nodes and --pods-per-node, and only a generated one", async () => {
    const small = await podnet([
      "run",
      "large",
      "--provider",
      "overlay",
      "--nodes",
      "3",
      "--pods-per-node",
      "2",
      "--json",
    ]);
    expect(small.code).toBe(0);
    const result = small.json();
    expect(result.nodes.map((n: { name: string }) => n.name)).toEqual(["node-0", "node-1", "node-2"]);
    expect(
      result.reachability.filter((c: { kind: string }) => c.kind === "pod→pod (across nodes)").length,
    ).toBe(24);
    const listed = await podnet(["run", "two-nodes", "--provider", "overlay", "--nodes", "3"]);
    expect(listed.code).toBe(2);
    expect(listed.stderr).toBe(
      `error: ${join(ROOT, "scenarios/two-nodes.yaml")}:1:1: lists its nodes, so it has no size to change: --nodes and --pods-per-node resize a scenario with a generate block (such as large)\n`,
    );
    expect((await podnet(["compare", "large", "--nodes", "0"])).stderr).toBe(
      'error: --nodes: "0" is not a node count (1-5000)\n',
    );
    // A size the flags made too large is the flags' to change, not the file's line.
    expect((await podnet(["run", "large", "--provider", "overlay", "--pods-per-node", "31"])).stderr).toBe(
      `error: ${join(ROOT, "scenarios/large.yaml")}: --pods-per-node 31: 155,000 pods is beyond Kubernetes' envelope of 150,000 pods, which podnet supports\n`,
    );
  });

  it("stops quietly when its reader goes away (| head -1)", async () => {
    const r = spawnSync(
      "sh",
      ["-c", `"${process.execPath}" "${BIN}" run two-nodes --provider overlay | head -1`],
      {
        cwd: ROOT,
        encoding: "utf8",
        env: { PATH: process.env.PATH ?? "", NO_COLOR: "1" },
      },
    );
    expect(r.stdout).toBe("two-nodes under overlay (kube-proxy iptables): 21/21 reachable\n");
    expect(r.stderr).toBe("");
  });

  it.skipIf(!existsSync("/dev/full"))(
    "says in one line when it cannot write its output (a full disk), exit 2, no stack trace",
    () => {
      for (const args of [
        "run two-nodes --provider overlay",
        "schema",
        "run two-nodes --provider bogus --json",
      ]) {
        const r = spawnSync("sh", ["-c", `"${process.execPath}" "${BIN}" ${args} > /dev/full`], {
          cwd: ROOT,
          encoding: "utf8",
          env: { PATH: process.env.PATH ?? "", NO_COLOR: "1" },
        });
        expect(r.status).toBe(2);
        expect(r.stderr).toContain("error: cannot write standard output (ENOSPC)\n");
        expect(r.stderr).not.toMatch(/\n\s+at /);
      }
    },
  );

  it("has help with an example on every command", async () => {
    for (const command of [
      "providers",
      "scenarios",
      "run",
      "trace",
      "compare",
      "bench",
      "schema",
      "web",
      "up",
      "exec",
      "ls",
      "down",
      "verify",
      "policy",
      "policy check",
      "policy diff",
    ]) {
      const help = await podnet([...command.split(" "), "--help"]);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/Examples?:\n {2}podnet /);
    }
    // Fifteen process starts: well past the default timeout on a loaded 2-core machine.
  }, 120_000);

  it("lists labs with their provider, kube-proxy mode and policy engine in columns of their own", async () => {
    const labs = mkdtempSync(join(tmp, "labs-"));
    const state = (name: string, extra: object) => {
      mkdirSync(join(labs, name));
      writeFileSync(
        join(labs, name, "state.json"),
        JSON.stringify({
          name,
          prefix: `pn-${name}-`,
          provider: "overlay",
          scenario: "two-nodes.yaml",
          status: "up",
          createdAt: "2026-11-27T10:00:00.000Z",
          pids: [],
          nodes: [],
          pods: [],
          hosts: [],
          routers: [],
          ...extra,
        }),
      );
    };
    state("old", {});
    state("tuned", { proxy: "nftables", policy: "iptables" });
    const ls = await podnet(["ls"], { PODNET_LABS: labs });
    expect(ls.code).toBe(0);
    const row = (name: string) =>
      ls.stdout
        .split("\n")
        .find((l) => l.startsWith(`│ ${name} `))!
        .split("│")
        .map((c) => c.trim())
        .slice(1, 5);
    expect(row("lab")).toEqual(["lab", "provider", "kube-proxy", "policy"]);
    expect(row("old")).toEqual(["old", "overlay", "iptables", "none"]);
    expect(row("tuned")).toEqual(["tuned", "overlay", "nftables", "iptables"]);
  });

  it("serves the web app on 127.0.0.1 only", async () => {
    const child = spawn(process.execPath, [BIN, "web", "--port", "0"], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? "", NO_COLOR: "1" },
    });
    try {
      const line = await new Promise<string>((ok) =>
        child.stdout.once("data", (c: Buffer) => ok(c.toString())),
      );
      const url = /serving (http:\/\/127\.0\.0\.1:\d+\/)/.exec(line)![1]!;
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<div id="root"></div>');
      expect(await podnet(["web", "--port", "99999"])).toMatchObject({ code: 2 });
      const port = new URL(url).port;
      expect(await podnet(["web", "--port", port])).toMatchObject({
        code: 2,
        stderr: `error: --port: port ${port} on 127.0.0.1 is already in use (try --port 0 for a free one)\n`,
      });
    } finally {
      child.kill();
    }
  });

  it("prints the scenario JSON Schema", async () => {
    const schema = (await podnet(["schema"])).json();
    expect(schema.title).toBe("podnet scenario");
    expect(schema.properties.nodes.type).toBe("array");
  });

  it("colours only when asked: never with NO_COLOR or into a pipe", async () => {
    const ESC = String.fromCharCode(27);
    expect((await podnet(["providers"])).stdout).not.toContain(`${ESC}[`);
    expect((await podnet(["providers"], { FORCE_COLOR: "1", NO_COLOR: "" })).stdout).toContain(`${ESC}[`);
  });

  it("benchmarks scenarios across providers, writing JSON and Markdown", async () => {
    const out = join(tmp, "bench.json");
    const run = await podnet([
      "bench",
      "scenarios/two-nodes.yaml",
      "--providers",
      "cbr0-host-gw,overlay,cbr0-host-gw-gateway",
      "--out",
      out,
    ]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const report = JSON.parse(readFileSync(out, "utf8"));
    // Each row is measured in a process that looks the provider up by the name given here, and
    // is named by it: what --providers takes back.
    expect(report.rows.map((r: { provider: string; pods: number }) => [r.provider, r.pods])).toEqual([
      ["cbr0-host-gw", 3],
      ["overlay", 3],
      ["cbr0-host-gw-gateway", 3],
    ]);
    for (const row of report.rows) {
      expect(row.tracesPerSecond).toBeGreaterThan(0);
      expect(row.laterTracesPerSecond).toBeGreaterThan(0);
      expect(row.replayedTracesPerSecond).toBeGreaterThan(0);
      // Three pods make six pairs: walked once each (and again after a change), then replayed.
      expect(row.tracesWalkedPercent).toBeGreaterThan(0);
      expect(row.tracesWalkedPercent).toBeLessThan(1);
    }
    // Written after each row marked partial, and whole at the end.
    expect(report.partial).toBeUndefined();
    expect(readFileSync(out.replace(/\.json$/, ".md"), "utf8")).toContain(
      "| scenario | provider | proxy | policy | nodes |",
    );
  }, 30_000);

  it("measures each bench row in a process of its own, which ends with the bench", async () => {
    // A row's peak RSS is then its own cluster's: in one process a provider measured second at
    // 5,000 nodes read 2,018 MiB against 1,032 alone (V8 keeps the pages the first one grew to).
    const bench = spawn(process.execPath, [BIN, "bench", "large", "--nodes", "2000", "--json"], {
      cwd: ROOT,
      stdio: "ignore",
    });
    const rows = () =>
      spawnSync("ps", ["-eo", "args"], { encoding: "utf8" })
        .stdout.split("\n")
        .filter((line) => line.includes(`--bench-row-of=${bench.pid}`));
    await expect.poll(rows, { timeout: 20_000, interval: 50 }).toHaveLength(1);
    // Into its build (about 3 s at 2,000 nodes, then seconds of traces).
    await new Promise((r) => setTimeout(r, 1500));
    // Only the bench is told to stop (a TERM from a supervisor, not the terminal's Ctrl-C to the
    // whole group): the process measuring for it ends too, at once (the row would take seconds more).
    bench.kill("SIGTERM");
    await expect.poll(rows, { timeout: 1_500, interval: 50 }).toHaveLength(0);
  }, 60_000);

  it("benchmarks kube-proxy's two modes at a number of Services", async () => {
    const out = join(tmp, "services.json");
    const run = await podnet([
      "bench",
      "--services",
      "20,200",
      "--endpoints",
      "3",
      "--providers",
      "cbr0-host-gw",
      "--out",
      out,
    ]);
    expect(run.code).toBe(0);
    const rows = JSON.parse(readFileSync(out, "utf8")).services;
    const shape = rows.map((r: Record<string, unknown>) => [
      r.proxy,
      r.services,
      r.entries,
      r.changeTouched,
      r.addTouched,
      r.deleteTouched,
      r.evaluationsFirst,
      r.evaluationsLast,
    ]);
    // iptables: per Service a KUBE-SERVICES rule, a KUBE-SVC chain (the masquerade mark and a rule per
    // endpoint) and per endpoint a KUBE-SEP chain of two: 11. Shifting the endpoints by one rewrites
    // the SVC chain (4 out, 4 in) and swaps one SEP chain (2 out, 2 in). The first packet walks
    // KUBE-SERVICES up to its Service's rule: the last one costs a rule per Service.
    // nftables: per Service a service-ips element, its ClusterIP in cluster-ips, a service chain of two
    // and three endpoint chains of two: 10 (and the node address in nodeport-ips, once); a change
    // rewrites the service chain and swaps one endpoint chain (8); the first packet costs one map
    // lookup, however many Services there are, and after the DNAT the cluster-ips check (3 rules).
    // Both count the no-endpoint NodePort check on the reply's way in (INPUT's KUBE-EXTERNAL-SERVICES
    // jump; nftables' filter-input chain); nftables holds its fixed rules in kube-proxy's table.
    // iptables' other filter jumps, on the way out and in (the load balancer firewall, health-check
    // node ports, the localnet firewall and its rule), add six; nftables' firewall check before DNAT
    // and the endpoints check on input (kube-proxy 1.34's layout: four more rules held), three.
    expect(shape).toEqual([
      ["iptables", 20, 20 * 11 + 9, 12, 11, 11, 22, 20 + 20],
      ["iptables", 200, 200 * 11 + 9, 12, 11, 11, 22, 200 + 20],
      ["nftables", 20, 20 * 10 + 24, 8, 10, 10, 21, 21],
      ["nftables", 200, 200 * 10 + 24, 8, 10, 10, 21, 21],
    ]);
    expect(run.stdout).toContain("1st packet evals");
    expect(readFileSync(out.replace(/\.json$/, ".md"), "utf8")).toContain(
      "| cbr0-host-gw | nftables | 200 |",
    );
  }, 30_000);
});

// On a terminal: `script` gives the command a pseudo-terminal, as a user's shell would.
describe.skipIf(spawnSync("script", ["--version"]).status !== 0)("podnet on a terminal", () => {
  function onTerminal(command: string, input?: { when: string; send: string }) {
    return new Promise<{ code: number | null; output: string }>((ok) => {
      const child = spawn("script", ["-q", "-e", "-c", command, "/dev/null"], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? "", TERM: "xterm" },
      });
      let output = "";
      let sent = false;
      child.stdin.on("error", () => {}); // podnet may have exited before the keystroke arrives
      child.stdout.on("data", (d: Buffer) => {
        output += d.toString();
        if (input && !sent && output.includes(input.when)) {
          sent = true;
          child.stdin.write(input.send);
        }
      });
      child.on("close", (code) => ok({ code, output }));
    });
  }
  const ESC = String.fromCharCode(27);

  it("colours each stream by its own terminal", async () => {
    // stderr on the terminal, stdout into a pipe: the error is red, the answer is plain.
    const error = await onTerminal(`node ${BIN} run nope --provider overlay 2>&1 >/dev/null`);
    expect(error.output).toContain(`${ESC}[31merror${ESC}[39m: nope: no such scenario file`);
    const plain = await onTerminal(`node ${BIN} providers 2>/dev/null | cat`);
    expect(plain.output).not.toContain(`${ESC}[`);
  });

  it("Ctrl-C during bench stops the bar, turns line wrap back on and exits 130", async () => {
    const { code, output } = await onTerminal(`node ${BIN} bench large --providers overlay`, {
      when: "bench [",
      send: String.fromCharCode(3),
    });
    expect(output).toContain(`${ESC}[?7l`); // the bar turned wrap off…
    expect(output.slice(output.lastIndexOf(`${ESC}[?7l`))).toContain(`${ESC}[?7h`); // …and on again
    expect(code).toBe(130);
  }, 60_000);

  it("Ctrl-C after a bench's first row leaves that row in --out, marked partial", async () => {
    const out = join(tmp, "partial.json");
    const { code } = await onTerminal(`node ${BIN} bench two-nodes large --providers overlay --out ${out}`, {
      when: " 1/2 ",
      send: String.fromCharCode(3),
    });
    expect(code).toBe(130);
    const report = JSON.parse(readFileSync(out, "utf8"));
    expect(report.partial).toEqual({ measured: 1, of: 2 });
    expect(report.rows.map((r: { scenario: string }) => r.scenario)).toEqual(["two-nodes"]);
    expect(readFileSync(out.replace(/\.json$/, ".md"), "utf8")).toContain(
      "**Partial**: 1 of 2 rows measured when this was written; the bench did not finish.",
    );
  }, 60_000);
});
