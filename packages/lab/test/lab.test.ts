// Labs on the real kernel, as root: up, exec, down and Ctrl-C leave the machine as they found it,
// and `verify` agrees with the simulator on the notes' cluster under every provider. Each lab gets
// a per-run name, and everything it makes is inside its own namespaces.
import { spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { loadScenario } from "@podnet/cluster";
import { getProvider, providerNames } from "@podnet/providers";
import { requireSystem } from "@podnet/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ended } from "../src/processes.js";
import {
  benchDatapath,
  down,
  exec,
  labPrefix,
  list,
  namespacesNeeded,
  up,
  type verify,
} from "../src/index.js";
import { processStart } from "../src/processes.js";

const system = requireSystem({
  tools: ["ip", "iptables", "iptables-save", "nft", "ss", "socat", "ping", "iperf3"],
  root: true,
});
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const CLI = join(ROOT, "apps/cli/bin/podnet.mjs");
const scenarioFile = join(ROOT, "scenarios/two-nodes.yaml");
const UDP_SERVICE = fileURLToPath(new URL("fixtures/udp-service.yaml", import.meta.url));
const NODEPORT_NO_ENDPOINTS = fileURLToPath(new URL("fixtures/nodeport-no-endpoints.yaml", import.meta.url));
const UDP_SOFT_ERRORS = fileURLToPath(new URL("fixtures/udp-soft-errors.yaml", import.meta.url));
const ARP_FAILURE = fileURLToPath(new URL("fixtures/arp-failure.yaml", import.meta.url));
const CLUSTERIP_PORTS = fileURLToPath(new URL("fixtures/clusterip-ports.yaml", import.meta.url));
const MULTICAST = fileURLToPath(new URL("fixtures/multicast.yaml", import.meta.url));
const NAMED_TARGETPORT = fileURLToPath(new URL("fixtures/named-targetport.yaml", import.meta.url));
const TRAFFIC_POLICY = fileURLToPath(new URL("fixtures/traffic-policy.yaml", import.meta.url));
const TRAFFIC_POLICY_SOURCE = fileURLToPath(new URL("fixtures/traffic-policy-source.yaml", import.meta.url));
const SESSION_AFFINITY = fileURLToPath(new URL("fixtures/session-affinity.yaml", import.meta.url));
const HEADLESS = fileURLToPath(new URL("fixtures/headless.yaml", import.meta.url));
const twoNodes = loadScenario(readFileSync(scenarioFile, "utf8"), scenarioFile);
const labs = mkdtempSync(join(tmpdir(), "podnet-labs-"));
const run = randomBytes(2).toString("hex");

/** The root namespace as far as a lab could touch it: addresses, routes, rules (counters aside). */
function rootNamespace(): string {
  const sh = (argv: string[]) => spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8" }).stdout;
  return [
    sh(["ip", "-br", "addr"]),
    sh(["ip", "route", "show", "table", "all"]),
    sh(["iptables-save"])
      .replace(/\[\d+:\d+\]/g, "")
      .replace(/^#.*$/gm, ""),
  ].join("\n");
}

/** Every listener process on the machine (socat for TCP, the UDP echo), any lab's or none's. */
const allListeners = () =>
  spawnSync("pgrep", ["-f", "SYSTEM:echo |N receiving on udp"], { encoding: "utf8" })
    .stdout.split("\n")
    .filter(Boolean)
    .map(Number);
/** The listeners running in namespaces whose names start with `prefix`. */
const ownListeners = (prefix: string) =>
  allListeners().filter((pid) =>
    spawnSync("ip", ["netns", "identify", String(pid)], { encoding: "utf8" }).stdout.startsWith(prefix),
  );
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe.skipIf(system.skip)("labs on the real kernel", () => {
  let before = "";
  beforeAll(() => {
    process.env.PODNET_LABS = labs;
    before = rootNamespace();
  });
  afterAll(async () => {
    for (const l of await list()) await down(l.name).catch(() => undefined);
    rmSync(labs, { recursive: true, force: true });
  });

  it("up builds the scenario through the CNI executables; exec runs inside; down leaves nothing", async () => {
    const name = `t${run}a`;
    const { state } = await up(twoNodes, getProvider("cbr0-host-gw"), { name, scenarioFile });
    expect(state.status).toBe("up");
    expect(state.pods.map((p) => `${p.name} ${p.node} ${p.ip}`)).toEqual([
      "web node1 10.0.1.2",
      "client node1 10.0.1.3",
      "db node2 10.0.2.2",
    ]);
    // IPAM reservations are host-local's files, one folder per node; conflists are kept for DEL.
    const ipam = join(labs, name, "ipam", `${labPrefix(name)}node1`, "cbr0");
    expect(readdirSync(ipam).sort()).toEqual(["10.0.1.2", "10.0.1.3", "last_reserved_ip.0", "lock"]);
    expect(readdirSync(join(labs, name, "cni")).sort()).toEqual([
      "client.conflist",
      "db.conflist",
      "web.conflist",
    ]);
    const routes = spawnSync("ip", ["netns", "exec", `${labPrefix(name)}node1`, "ip", "route"], {
      encoding: "utf8",
    });
    expect(routes.stdout).toContain("10.0.2.0/24 via 10.100.0.3 dev eth0");
    const exec = spawnSync(
      process.execPath,
      [CLI, "exec", name, "client", "--", "ping", "-c1", "-W2", "10.0.2.2"],
      {
        encoding: "utf8",
        env: { ...process.env, PODNET_LABS: labs },
      },
    );
    expect(exec.status).toBe(0);
    expect(exec.stdout).toMatch(/64 bytes from 10\.0\.2\.2: icmp_seq=1 ttl=62/);
    // A command that is not there, or not executable, exits as in a shell, not with ip's 1; a
    // container is one of the pod's.
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [CLI, "exec", name, ...args], {
        encoding: "utf8",
        env: { ...process.env, PODNET_LABS: labs },
      });
    const missing = cli("client", "--", "no-such-command-podnet");
    expect([missing.status, missing.stderr]).toEqual([
      127,
      'error: "no-such-command-podnet": command not found\n',
    ]);
    expect(cli("client", "--", "/etc/passwd").status).toBe(126);
    // Killed by a signal: 128 + its number, as a shell says it.
    expect(cli("client", "--", "sh", "-c", "kill -KILL $$").status).toBe(137);
    expect(cli("client", "--", "sh", "-c", "kill -TERM $$").status).toBe(143);
    expect(cli("web/sidecar", "--", "true").status).toBe(0);
    expect(cli("web/nope", "--", "true").stderr).toBe(
      'error: pod web has no container "nope" (it has: nginx, sidecar)\n',
    );
    expect(cli("../../x", "--", "true").stderr).toMatch(
      /^error: lab \S+ has no pod, node, host or router "\.\.\/\.\.\/x"/,
    );
    // web and db listen on :80; down stops them, not only the namespaces' names.
    const listeners = ownListeners(labPrefix(name));
    expect(listeners.length).toBe(2);
    const removed = await down(name);
    expect(removed.namespaces.length).toBe(8);
    const left = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout;
    expect(left).not.toContain(labPrefix(name));
    expect(existsSync(join(labs, name))).toBe(false);
    expect(listeners.filter(alive)).toEqual([]);
    expect(rootNamespace()).toBe(before);
  }, 120_000);

  it("Ctrl-C during up removes what was built so far", async () => {
    const name = `t${run}b`;
    const child = spawn(process.execPath, [CLI, "up", "churn", "--provider", "overlay", "--name", name], {
      env: { ...process.env, PODNET_LABS: labs },
      stdio: "ignore",
    });
    // Interrupt once the first namespaces exist.
    for (let i = 0; i < 200; i++) {
      if (spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout.includes(labPrefix(name))) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    child.kill("SIGINT");
    const code = await new Promise((ok) => child.on("exit", (c, signal) => ok(c ?? signal)));
    expect(code).toBe(130);
    expect(spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout).not.toContain(labPrefix(name));
    expect(existsSync(join(labs, name))).toBe(false);
    expect(rootNamespace()).toBe(before);
  }, 120_000);

  it("Ctrl-C once listeners run stops every one, also those still starting", async () => {
    // Pods on six nodes attach in parallel, so listeners are being started when the signal comes:
    // one started after the removal had looked for them ran on with its namespace gone.
    const name = `t${run}i`;
    const earlier = new Set(allListeners());
    const child = spawn(
      process.execPath,
      [CLI, "up", "large", "--nodes", "6", "--pods-per-node", "6", "--provider", "overlay", "--name", name],
      { env: { ...process.env, PODNET_LABS: labs }, stdio: "ignore" },
    );
    const statePids = () => {
      try {
        return (JSON.parse(readFileSync(join(labs, name, "state.json"), "utf8")) as { pids: number[] }).pids;
      } catch {
        return [];
      }
    };
    for (let i = 0; i < 2000 && statePids().length < 3; i++) await new Promise((r) => setTimeout(r, 10));
    expect(statePids().length).toBeGreaterThanOrEqual(3);
    child.kill("SIGINT");
    const code = await new Promise((ok) => child.on("exit", (c, signal) => ok(c ?? signal)));
    expect(code).toBe(130);
    expect(spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout).not.toContain(labPrefix(name));
    expect(allListeners().filter((pid) => !earlier.has(pid))).toEqual([]);
  }, 120_000);

  it("Ctrl-C during verify's probes removes its lab", async () => {
    // It used to end the process with the verify lab left up: namespaces, listeners and state.
    const child = spawn(process.execPath, [CLI, "verify", "two-nodes", "--providers", "overlay"], {
      env: { ...process.env, PODNET_LABS: labs },
      stdio: "ignore",
    });
    const upLab = () =>
      readdirSync(labs).find((l) => {
        try {
          return JSON.parse(readFileSync(join(labs, l, "state.json"), "utf8")).status === "up";
        } catch {
          return false;
        }
      });
    let name: string | undefined;
    for (let i = 0; i < 3000 && !(name = upLab()); i++) await new Promise((r) => setTimeout(r, 10));
    expect(name).toBeDefined();
    const listeners = ownListeners(labPrefix(name!));
    expect(listeners.length).toBe(2);
    child.kill("SIGINT");
    const code = await new Promise((ok) => child.on("exit", (c, signal) => ok(c ?? signal)));
    expect(code).toBe(130);
    expect(spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout).not.toContain(labPrefix(name!));
    expect(existsSync(join(labs, name!))).toBe(false);
    expect(listeners.filter(alive)).toEqual([]);
  }, 120_000);

  it("down stops a lab's listener whose namespace was deleted by hand", async () => {
    const name = `t${run}j`;
    const { state } = await up(twoNodes, getProvider("cbr0-host-gw"), { name, scenarioFile });
    const web = ownListeners(`${labPrefix(name)}web`);
    expect(web.length).toBe(1);
    spawnSync("ip", ["netns", "del", `${labPrefix(name)}web`]);
    expect(alive(web[0]!)).toBe(true);
    expect((await list()).find((l) => l.name === name)).toMatchObject({
      namespaces: 7,
      expectedNamespaces: 8,
    });
    expect(() => exec(name, "web", ["true"])).toThrow(
      `${labPrefix(name)}web is gone (deleted outside podnet?): podnet down ${name} removes the rest of the lab`,
    );
    expect(await down(name)).toMatchObject({ processes: state.pids.length });
    expect(alive(web[0]!)).toBe(false);
  }, 120_000);

  it("ends a pod's listeners when an event removes the pod, as its namespace goes", async () => {
    const name = `t${run}r`;
    const scenario = { ...twoNodes, events: [{ at: 1, action: "removePod" as const, pod: "web" }] };
    const { state } = await up(scenario, getProvider("cbr0-host-gw"), { name, scenarioFile });
    // A listener left in the removed namespace would keep it alive, nameless: no exec reaches it.
    const stray = state.pids.filter(
      (pid) =>
        !ended(pid) &&
        !spawnSync("ip", ["netns", "identify", String(pid)], { encoding: "utf8" }).stdout.startsWith(
          labPrefix(name),
        ),
    );
    expect(stray).toEqual([]);
    expect(ownListeners(labPrefix(name)).length).toBe(1); // db's
    await down(name);
  }, 120_000);

  it("refuses a lab name twice, a bad name, and an unknown lab", async () => {
    await expect(up(twoNodes, getProvider("overlay"), { name: "Bad_Name", scenarioFile })).rejects.toThrow(
      'lab name "Bad_Name": 1-16 lowercase letters, digits and "-", starting and ending with a letter or digit',
    );
    await expect(down(`nope${run}`)).rejects.toThrow(`no lab named nope${run} (podnet ls lists them)`);
    await expect(down("../..")).rejects.toThrow('lab name "../..": 1-16 lowercase letters');
    expect(() => exec("../..", "web", ["true"])).toThrow('lab name "../..": 1-16 lowercase letters');
  });

  it("refuses a scenario that would make more namespaces than the limit, making none", async () => {
    const large = loadScenario(readFileSync(join(ROOT, "scenarios/large.yaml"), "utf8"), "large.yaml");
    expect(namespacesNeeded(large)).toBe(155_002);
    const name = `big${run}`;
    await expect(up(large, getProvider("cbr0-host-gw"), { name, scenarioFile })).rejects.toThrow(
      "large would make 155,002 network namespaces on this machine, more than 1,000",
    );
    await expect(
      up(twoNodes, getProvider("cbr0-host-gw"), {
        name,
        scenarioFile,
        maxNamespaces: namespacesNeeded(twoNodes) - 1,
      }),
    ).rejects.toThrow(`would make ${namespacesNeeded(twoNodes)} network namespaces`);
    expect((await list()).some((l) => l.name === name)).toBe(false);
    expect(spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout).not.toContain(labPrefix(name));
  });

  it("keeps labs whose names would share namespaces apart: x beside x-y is refused, and down x leaves x-y whole", async () => {
    const short = `o${run}`;
    const long = `${short}-y`;
    const { state } = await up(twoNodes, getProvider("overlay"), { name: long, scenarioFile });
    try {
      const held = (await list()).find((l) => l.name === long)!.namespaces;
      expect(held).toBeGreaterThan(0);
      await expect(up(twoNodes, getProvider("overlay"), { name: short, scenarioFile })).rejects.toThrow(
        `lab ${long} exists, and lab ${short}'s namespaces would share names with its (${labPrefix(long)}…); choose another name`,
      );
      // There is no lab `short`: its prefix matches only the other lab's namespaces, which stay.
      await expect(down(short)).rejects.toThrow(`no lab named ${short}`);
      expect((await list()).find((l) => l.name === long)!.namespaces).toBe(held);
      expect(await down(long)).toEqual({
        namespaces: expect.arrayContaining([`${labPrefix(long)}web`]),
        processes: state.pids.length,
      });
    } finally {
      await down(long).catch(() => undefined);
    }
  });

  it("takes nothing in a lab's state file on trust: ls lists a bad one as unreadable, down kills no process outside the lab", async () => {
    // A process of ours in the root namespace, listed as the lab's listener by a hand-written state
    // whose prefix is every lab's: down must neither kill it nor delete namespaces by that prefix.
    const bystander = spawn("sleep", ["60"], { detached: true, stdio: "ignore" });
    const write = (name: string, text: string) => {
      mkdirSync(join(labs, name), { recursive: true });
      writeFileSync(join(labs, name, "state.json"), text);
    };
    try {
      const forged = {
        name: `f${run}`,
        prefix: "pn-",
        provider: "overlay",
        scenario: "x",
        status: "up",
        createdAt: "",
        pids: [bystander.pid],
        nodes: [],
        pods: [],
        hosts: [],
        routers: [],
      };
      write(`f${run}`, JSON.stringify(forged));
      write(`e${run}`, "{}");
      write(`s${run}`, '"str"');
      // Listed, not hidden (its namespaces and listeners may be there), with nothing from the file.
      const listed = await list();
      for (const bad of [`f${run}`, `e${run}`, `s${run}`])
        expect(listed.find((l) => l.name === bad)).toMatchObject({
          unreadable: true,
          provider: "?",
          pids: [],
        });
      // Its prefix right, the bystander is still not in the lab's namespaces; with its true start
      // time, it is still in the machine's namespace, where no lab process runs.
      write(`g${run}`, JSON.stringify({ ...forged, name: `g${run}`, prefix: labPrefix(`g${run}`) }));
      write(
        `h${run}`,
        JSON.stringify({
          ...forged,
          name: `h${run}`,
          prefix: labPrefix(`h${run}`),
          starts: [processStart(bystander.pid!)],
        }),
      );
      expect((await list()).map((l) => l.name)).toEqual(expect.arrayContaining([`g${run}`, `h${run}`]));
      for (const name of [`f${run}`, `e${run}`, `s${run}`, `g${run}`, `h${run}`]) {
        expect(await down(name)).toEqual({ namespaces: [], processes: 0 });
        expect(existsSync(join(labs, name))).toBe(false);
      }
      expect(bystander.exitCode).toBeNull();
      expect(process.kill(bystander.pid!, 0)).toBe(true);
    } finally {
      bystander.kill("SIGKILL");
    }
  });

  it("refuses a lab whose programs this machine lacks, with their Debian package, making nothing", () => {
    // A PATH holding every program a lab runs but nft: kube-proxy's nftables mode needs it, and the
    // build used to fail halfway with a stack trace.
    const bin = mkdtempSync(join(tmpdir(), "podnet-path-"));
    try {
      for (const program of ["ip", "bridge", "iptables", "iptables-save", "sysctl", "socat", "ping"]) {
        const at = spawnSync("sh", ["-c", `command -v ${program}`], { encoding: "utf8" }).stdout.trim();
        symlinkSync(at, join(bin, program));
      }
      const name = `nft${run}`;
      const cli = (extra: string[]) =>
        spawnSync(
          process.execPath,
          [CLI, "up", "two-nodes", "--provider", "cbr0-host-gw", "--name", name, ...extra],
          {
            encoding: "utf8",
            env: { ...process.env, PATH: bin, PODNET_LABS: labs },
          },
        );
      const result = cli(["--proxy", "nftables"]);
      expect(result.stderr).toBe(
        "error: this machine lacks nft, which a lab under kube-proxy's nftables mode runs (Debian: apt-get install nftables)\n",
      );
      expect(result.status).toBe(2);
      expect(spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout).not.toContain(labPrefix(name));
      expect(existsSync(join(labs, name))).toBe(false);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  // CI runs `podnet verify` itself over every bundled scenario and every provider: `large` at a size
  // that fits in namespaces here (its shape, 4 nodes × 3 pods, instead of 5,000 × 30), and the
  // scenarios with Services again under kube-proxy's nftables mode. overlay-4789 differs from
  // overlay only in its VXLAN port: it is verified with the last set (and conformance-tested on the
  // kernel), not with every scenario (a minute of CI).
  const designs = providerNames.filter((p) => p !== "overlay-4789");
  it.each([
    [["two-nodes", "routed-segments", "single-pod", "churn", "service"], [], designs],
    [["large"], ["--nodes", "4", "--pods-per-node", "3"], designs],
    // The scenarios with Services once more, under kube-proxy's nftables mode, and a UDP Service.
    [["service", "two-nodes", UDP_SERVICE], ["--proxy", "nftables"], providerNames],
    // kube-proxy's rejects for a Service without endpoints, its NodePort's too, a named
    // targetPort's endpoints each at its own port, the Local traffic policies' drops and
    // short-circuits, session affinity, and a headless Service's nothing at all, under both proxies
    // (the provider changes none of them).
    [
      [NODEPORT_NO_ENDPOINTS, NAMED_TARGETPORT, TRAFFIC_POLICY, SESSION_AFFINITY, HEADLESS],
      [],
      ["cbr0-host-gw"],
    ],
    [
      [NODEPORT_NO_ENDPOINTS, NAMED_TARGETPORT, TRAFFIC_POLICY, SESSION_AFFINITY, HEADLESS],
      ["--proxy", "nftables"],
      ["cbr0-host-gw"],
    ],
    // The client's address a NetworkPolicy sees through a Local and a Cluster NodePort.
    [[TRAFFIC_POLICY_SOURCE], ["--policy", "iptables"], ["cbr0-host-gw"]],
    // nftables' cluster-ips-check: a ClusterIP's other ports rejected, an unallocated one dropped.
    [[CLUSTERIP_PORTS], ["--proxy", "nftables"], ["cbr0-host-gw"]],
    // A multicast group: sent to the link, not the gateway; nothing answers, TCP never connects.
    [[MULTICAST], [], ["cbr0-host-gw"]],
    // What a UDP socket is told of a host unreachable (nothing), where TCP and ping hear of it; and
    // a TCP connection that fails on ARP, after a Service's DNAT and from a pod, within the probe.
    [[UDP_SOFT_ERRORS, ARP_FAILURE], [], ["docker-bridge"]],
  ])(
    "podnet verify %j %j agrees on every cell under %j",
    async (names, scale, providers) => {
      const child = spawn(
        process.execPath,
        [CLI, "verify", ...names, "--providers", providers.join(","), ...scale, "--json"],
        { env: { ...process.env, PODNET_LABS: labs }, stdio: ["ignore", "pipe", "pipe"] },
      );
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise((ok) => child.on("exit", ok));
      expect(stderr).toBe("");
      const reports = JSON.parse(stdout) as Awaited<ReturnType<typeof verify>>[];
      expect(reports.map((r) => `${r.scenario}/${r.provider}`)).toEqual(
        names.flatMap((n) => providers.map((p) => `${basename(n, ".yaml")}/${p}`)),
      );
      const disagreements = reports.flatMap((r) =>
        r.cells
          .filter((c) => !c.agree)
          .map((c) => `${r.scenario}/${r.provider} ${c.kind} ${c.from} → ${c.to}: ${c.why}`),
      );
      expect(disagreements).toEqual([]);
      expect(code).toBe(0);
      // The notes' cluster: reachability, the scenario's own probes and both sides of the path MTU.
      for (const r of reports.filter((r) => r.scenario === "two-nodes")) {
        expect(r.total).toBe(27);
        const mtu = r.cells.filter((c) => c.kind === "path MTU");
        expect(mtu.map((c) => c.size)).toEqual(
          r.provider.startsWith("overlay") ? [1422, 1423] : [1472, 1473],
        );
        // docker-bridge: web and db both hold 172.17.0.2, so web's ping never leaves web.
        if (r.provider !== "docker-bridge")
          expect(mtu.map((c) => c.kernel.outcome)).toEqual(["reached", "unreachable"]);
      }
      // A Service with several endpoints is sampled on both backends, not decided by one random draw.
      const service = reports.find((r) => r.scenario === "service");
      if (service) expect(service.cells.filter((c) => c.samples).length).toBeGreaterThan(0);
    },
    900_000,
  );

  it("benchmarks the real datapath beside a bare veth pair, and removes its lab", async () => {
    const { baseline, rows } = await benchDatapath(twoNodes, getProvider("overlay"), `t${run}d`, {
      scenarioFile,
      runs: 1,
      seconds: 1,
    });
    expect(baseline.tcpGbps.median).toBeGreaterThan(0);
    expect(rows.map((r) => `${r.pair}: ${r.from} → ${r.to}, MTU ${r.podMtu}`)).toEqual([
      "same node: web → client, MTU 1450",
      "across nodes: web → db, MTU 1450",
      "through a Service: web → db, MTU 1450",
      "to an outside host: web → outside, MTU 1450",
      "across nodes, wrong MTU: web → db, MTU 1500",
    ]);
    for (const r of rows) {
      const f = r.figures!;
      expect(f.tcpGbps.median).toBeGreaterThan(0);
      expect(f.tcp4Gbps.median).toBeGreaterThan(0);
      expect(f.udpLossPercent.median).toBeGreaterThanOrEqual(0);
      expect(f.udpLossPercent.median).toBeLessThanOrEqual(100);
      expect(f.connectMs.median).toBeGreaterThan(0);
      expect(f.cpuSecondsPerGbit).toBeGreaterThan(0);
      for (const counter of [f.tcpRetransmits, f.tcpFragments, f.udpFragments])
        expect(Number.isInteger(counter.median) && counter.median >= 0).toBe(true);
      // The wrong-MTU row has a baseline of its own, measured again beside it.
      if (!r.wrongMtu)
        expect(r.ratioToBaseline!.tcp).toBeCloseTo(f.tcpGbps.median / baseline.tcpGbps.median, 2);
      // One run: the per-run ratio is the ratio of the medians, and nothing spreads.
      expect(r.ratioSpreads!.tcp).toMatchObject({ median: r.ratioToBaseline!.tcp, spreadPercent: 0 });
    }
    // Through the ClusterIP: one endpoint (the across pair's server), no ICMP to time.
    const service = rows.find((r) => r.service)!;
    expect(service.service).toMatchObject({ name: "podnet-bench", endpoint: "db" });
    expect(service.service!.clusterIP).toMatch(/^10\.96\./);
    expect([service.figures!.rttMs, service.ratioToBaseline!.rtt]).toEqual([undefined, undefined]);
    for (const r of rows.filter((r) => !r.service)) expect(r.figures!.rttMs!.median).toBeGreaterThan(0);
    // The wrong MTU: 1500 on both pods over flannel.1's 1450. TCP never fragments (DF) and learns
    // the path MTU; a UDP datagram sized for 1500 fails once with EMSGSIZE, then fits.
    const wrong = rows.at(-1)!;
    expect(wrong.wrongMtu).toEqual({ providerMtu: 1450 });
    expect(wrong.figures!.tcpFragments.median).toBe(0);
    expect(wrong.figures).toMatchObject({
      udpRetries: 1,
      udpFirstError: expect.stringContaining("Message too long"),
    });
    expect(rows[1]!.figures!.udpRetries).toBe(0);
    expect(spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout).not.toContain(
      labPrefix(`t${run}d`),
    );
  }, 180_000);

  // One CLI bench, side by side in blocks: the report's files, and each pair measured beside a baseline run of its own.
  it("podnet bench --backend linux --side-by-side --blocks writes the datapath beside the simulated figures, and removes its lab", async () => {
    const out = join(labs, "dp.json");
    const child = spawn(
      process.execPath,
      [
        CLI,
        "bench",
        "two-nodes",
        "--backend",
        "linux",
        "--providers",
        "cbr0-host-gw",
        "--runs",
        "1",
        "--side-by-side",
        "--blocks",
        "2",
        "--out",
        out,
      ],
      { env: { ...process.env, PODNET_LABS: labs }, stdio: "ignore" },
    );
    expect(await new Promise((ok) => child.on("exit", ok))).toBe(0);
    const report = JSON.parse(readFileSync(out, "utf8"));
    expect(report).toMatchObject({
      backend: "linux",
      runs: 1,
      seconds: 1,
      omit: 0,
      pin: false,
      sideBySide: true,
      blocks: 2,
      blockMegabytes: { tcp: 300, udp: 10 },
    });
    expect(report.partial).toBeUndefined();
    for (const load of [report.loadAverage.before, report.loadAverage.after]) {
      expect(load).toHaveLength(3);
      for (const n of load) expect(n).toBeGreaterThanOrEqual(0);
    }
    expect(report.elapsedSeconds).toBeGreaterThan(0);
    // No wrong-MTU row: host-gw's pod MTU is the underlay's.
    expect(report.results[0].rows.map((r: { pair: string }) => r.pair)).toEqual([
      "same node",
      "across nodes",
      "through a Service",
      "to an outside host",
    ]);
    expect(report.simulated).toMatchObject([
      { scenario: "two-nodes", provider: "cbr0-host-gw", podMtu: 1500 },
    ]);
    const markdown = readFileSync(out.replace(/json$/, "md"), "utf8");
    expect(markdown).toContain("| two-nodes | cbr0-host-gw | through a Service (web → 10.96.");
    expect(markdown).toContain("## The same scenarios in the simulator");
    expect(markdown).toContain("1 run, each transfer in 2 blocks (TCP 300 MB");
    // Two transfers at once share the machine's CPU: no CPU per gigabit is claimed for either.
    const { baseline, rows } = report.results[0] as Awaited<ReturnType<typeof benchDatapath>>;
    expect(baseline.cpuSecondsPerGbit).toBeUndefined();
    expect(baseline.tcpGbps.median).toBeGreaterThan(0);
    for (const r of rows) {
      expect(r.figures!.cpuSecondsPerGbit).toBeUndefined();
      expect(r.figures!.tcpGbps.median).toBeGreaterThan(0);
      // One run: one ratio, to the baseline run beside it; nothing spreads.
      expect(r.ratioSpreads!.tcp.spreadPercent).toBe(0);
      expect(r.ratioSpreads!.tcp.median).toBeGreaterThan(0);
      // Latencies in blocks alternated with the baseline's: a run's ratio is the blocks' median.
      if (r.service) expect(r.ratioSpreads!.rtt).toBeUndefined();
      else expect(r.ratioSpreads!.rtt!.median).toBeGreaterThan(0);
      expect(r.ratioSpreads!.connect.median).toBeGreaterThan(0);
      expect(r.figures!.connectMs.median).toBeGreaterThan(0);
    }
    // The baseline ran beside each of the four pairs: its spread is over four runs, not one.
    expect(baseline.tcpGbps.min).toBeLessThan(baseline.tcpGbps.max);
    expect(readdirSync(labs).filter((n) => n.startsWith("b"))).toEqual([]);
  }, 180_000);

  it("Ctrl-C during a linux bench stops the measurement, removes the lab and keeps the pairs measured", async () => {
    const iperfServers = () => spawnSync("pgrep", ["-f", "iperf3 -s -p 5201"], { encoding: "utf8" }).stdout;
    const servers = iperfServers();
    const out = join(labs, "stopped.json");
    const child = spawn(
      process.execPath,
      [
        CLI,
        "bench",
        "two-nodes",
        "--backend",
        "linux",
        "--providers",
        "cbr0-host-gw,overlay",
        "--runs",
        "1",
        "--out",
        out,
        "--json",
      ],
      { env: { ...process.env, PODNET_LABS: labs }, stdio: "ignore" },
    );
    // The first provider's figures are written as soon as they are in; interrupt once the second
    // provider's baseline pair exists: its lab is up and measuring.
    let prefix = "";
    for (let i = 0; i < 2400 && !prefix; i++) {
      await new Promise((r) => setTimeout(r, 50));
      if (!existsSync(out)) continue;
      const [name] = readdirSync(labs).filter((n) => n.startsWith("b"));
      if (
        name &&
        spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout.includes(`${labPrefix(name)}base-b`)
      )
        prefix = labPrefix(name);
    }
    expect(prefix).not.toBe("");
    child.kill("SIGINT");
    const code = await new Promise((ok) => child.on("exit", (c, signal) => ok(c ?? signal)));
    expect(code).toBe(130);
    expect(spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout).not.toContain(prefix);
    expect(readdirSync(labs).filter((n) => n.startsWith("b"))).toEqual([]);
    expect(iperfServers()).toBe(servers);
    expect(rootNamespace()).toBe(before);
    const report = JSON.parse(readFileSync(out, "utf8"));
    expect(report.partial).toEqual({ measured: 1, of: 2 });
    expect(report.results.map((r: { provider: string }) => r.provider)).toEqual(["cbr0-host-gw"]);
    expect(report.simulated.map((r: { provider: string }) => r.provider)).toEqual(["cbr0-host-gw"]);
    expect(readFileSync(out.replace(/json$/, "md"), "utf8")).toContain("**Partial**: 1 of 2");
  }, 180_000);
});
