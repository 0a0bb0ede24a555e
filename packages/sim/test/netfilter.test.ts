import { formatIpv4, type Ipv4Header } from "@podnet/core";
import { parseIptablesRule, rule } from "@podnet/netlink";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Lab } from "./lab.js";
import { DEFAULT_ROUTE, parseAddressArgument as ip, parseRouteDst as net } from "@podnet/netlink";

async function dockerNodeWithOutsideHost() {
  const lab = new Lab();
  await lab.host("node1", "lan", "10.100.0.2/24");
  await lab.host("outside", "lan", "10.100.0.9/24");
  await lab.bridge("node1", "docker0", "172.17.0.1/16");
  await lab.pod("node1", "pod-a", "docker0", "172.17.0.2/16", "172.17.0.1");
  await lab.k.route.add("node1", { dst: DEFAULT_ROUTE, via: ip("10.100.0.9") });
  return lab;
}

describe("netfilter in the simulated kernel", () => {
  it("masquerades pod egress behind the node's address and un-SNATs the answer", async () => {
    const lab = await dockerNodeWithOutsideHost();
    // Without masquerade the outside host has no route back to 172.17.0.0/16.
    const bare = lab.k.send({ from: "pod-a", to: "10.100.0.9" });
    expect(bare.outcome).toBe("dropped");
    expect(bare.reason).toContain(
      "the answer was dropped: connect: Network is unreachable (no route to 172.17.0.2)",
    );

    await lab.k.iptables.append(
      "node1",
      "nat",
      "POSTROUTING",
      rule`-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE`,
    );
    const trace = lab.k.send({ from: "pod-a", to: "10.100.0.9" });
    expect(trace.outcome).toBe("reached");
    const seen = trace.hops.find((h) => h.ns === "outside" && h.event === "deliver")!;
    expect(formatIpv4((seen.packet.headers[0] as Ipv4Header).src)).toBe("10.100.0.2"); // the pod's address is hidden
    expect(trace.hops.filter((h) => h.event === "nat").map((h) => h.detail)).toEqual([
      "nat POSTROUTING: MASQUERADE source 172.17.0.2 → 10.100.0.2 by -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE",
      "conntrack (reply): destination 10.100.0.2 → 172.17.0.2",
    ]);
  });

  it("says a MASQUERADE that would not change the source changed nothing, unless it draws a random port", async () => {
    const lab = await dockerNodeWithOutsideHost();
    await lab.k.iptables.append("node1", "nat", "POSTROUTING", rule`-o eth0 -j MASQUERADE`);
    const own = lab.k.send({ from: "node1", to: "10.100.0.9" });
    expect(own.outcome).toBe("reached");
    // The node's own address on eth0: the tuple MASQUERADE would make is the one it has (nf_nat_setup_info
    // then sets no SNAT status), so no un-SNAT on the way back either.
    expect(own.hops.filter((h) => h.event === "nat").map((h) => h.detail)).toEqual([
      "nat POSTROUTING: MASQUERADE by -A POSTROUTING -o eth0 -j MASQUERADE leaves source 10.100.0.2 as it is",
    ]);
    const pod = lab.k.send({ from: "pod-a", to: "10.100.0.9" });
    expect(pod.hops.filter((h) => h.event === "nat").map((h) => h.detail)).toEqual([
      "nat POSTROUTING: MASQUERADE source 172.17.0.2 → 10.100.0.2 by -A POSTROUTING -o eth0 -j MASQUERADE",
      "conntrack (reply): destination 10.100.0.2 → 172.17.0.2",
    ]);
    await lab.k.iptables.flush("node1", "nat", "POSTROUTING");
    await lab.k.iptables.append("node1", "nat", "POSTROUTING", rule`-o eth0 -j MASQUERADE --random-fully`);
    const random = lab.k.send({ from: "node1", to: "10.100.0.9" });
    expect(random.hops.find((h) => h.event === "nat")?.detail).toBe(
      "nat POSTROUTING: MASQUERADE source 10.100.0.2 → 10.100.0.2 by -A POSTROUTING -o eth0 -j MASQUERADE --random-fully",
    );
    // A TCP flow gets a source port drawn at random from 1024-65535, even with its address kept; the
    // answer comes back to the port it was sent from.
    lab.k.listen("outside", { protocol: "tcp", port: 22, owner: "sshd" });
    const ports = [0, 1, 2].map(() => {
      const tcp = lab.k.send({ from: "node1", to: "10.100.0.9", protocol: "tcp", port: 22 });
      expect(tcp.outcome).toBe("reached");
      const seen = tcp.hops.find((h) => h.ns === "outside" && h.event === "deliver")!;
      const port = (seen.packet.headers[1] as { srcPort: number }).srcPort;
      expect(tcp.hops.find((h) => h.event === "nat")?.detail).toMatch(
        new RegExp(
          `^nat POSTROUTING: MASQUERADE source 10\\.100\\.0\\.2:\\d+ → 10\\.100\\.0\\.2:${port} \\(a port drawn at random: --random-fully\\)`,
        ),
      );
      const sent = (tcp.hops[0]!.packet.headers[1] as { srcPort: number }).srcPort;
      const back = tcp.hops.at(-1)!;
      expect([back.ns, (back.packet.headers[1] as { dstPort: number }).dstPort]).toEqual(["node1", sent]);
      expect(port).not.toBe(sent);
      return port;
    });
    for (const port of ports) expect(port).toBeGreaterThanOrEqual(1024);
    expect(new Set(ports).size).toBe(3);
  });

  it("answers UDP to a closed port with ICMP port unreachable, and a listener takes it", async () => {
    const lab = await dockerNodeWithOutsideHost();
    const closed = lab.k.send({ from: "outside", to: "10.100.0.2", protocol: "udp", port: 53 });
    expect(closed.outcome).toBe("refused");
    expect(closed.reason).toBe("ICMP port unreachable from 10.100.0.2 (node1: no listener on udp 53)");
    expect(closed.hops.at(-1)!.packet.headers[1]).toMatchObject({ kind: "icmp", type: 3, code: 3 });
    lab.k.listen("node1", { protocol: "udp", port: 53, owner: "coredns" });
    const open = lab.k.send({ from: "outside", to: "10.100.0.2", protocol: "udp", port: 53 });
    expect(open.outcome).toBe("reached");
    expect(open.deliveredTo).toMatchObject({ ns: "node1", owner: "coredns", port: 53 });
  });

  it("spreads new connections over endpoints with statistic random as kube-proxy writes it, per connection", async () => {
    const lab = await dockerNodeWithOutsideHost();
    for (const ip of ["172.17.0.3", "172.17.0.4"])
      await lab.pod("node1", `pod-${ip.split(".")[3]}`, "docker0", `${ip}/16`, "172.17.0.1");
    const endpoints = ["172.17.0.2", "172.17.0.3", "172.17.0.4"];
    for (const [i, ip] of endpoints.entries()) {
      lab.k.listen(i === 0 ? "pod-a" : `pod-${ip.split(".")[3]}`, {
        protocol: "tcp",
        port: 8080,
        owner: "web",
      });
      await lab.k.iptables.newChain("node1", "nat", `SEP-${i}`);
      await lab.k.iptables.append(
        "node1",
        "nat",
        `SEP-${i}`,
        rule`-p tcp -j DNAT --to-destination ${ip}:8080`,
      );
    }
    await lab.k.iptables.newChain("node1", "nat", "SVC");
    await lab.k.iptables.append(
      "node1",
      "nat",
      "SVC",
      rule`-m statistic --mode random --probability 0.3333333333 -j SEP-0`,
    );
    await lab.k.iptables.append(
      "node1",
      "nat",
      "SVC",
      rule`-m statistic --mode random --probability 0.5000000000 -j SEP-1`,
    );
    await lab.k.iptables.append("node1", "nat", "SVC", rule`-j SEP-2`);
    await lab.k.iptables.append(
      "node1",
      "nat",
      "PREROUTING",
      rule`-d 10.100.0.2/32 -p tcp --dport 80 -j SVC`,
    );
    const counts = new Map<string, number>();
    for (let i = 0; i < 600; i++) {
      const trace = lab.k.send({ from: "outside", to: "10.100.0.2", protocol: "tcp", port: 80 });
      expect(trace.outcome).toBe("reached");
      counts.set(trace.deliveredTo!.address, (counts.get(trace.deliveredTo!.address) ?? 0) + 1);
    }
    for (const ip of endpoints) expect(counts.get(ip)).toBeGreaterThan(150); // each ≈ 200 of 600
    // One connection keeps its endpoint: the nat table sees only its first packet.
    const again = lab.k.send({
      from: "outside",
      to: "10.100.0.2",
      protocol: "tcp",
      port: 80,
      srcPort: 40000,
    });
    const replay = lab.k.send({
      from: "outside",
      to: "10.100.0.2",
      protocol: "tcp",
      port: 80,
      srcPort: 40000,
    });
    expect(replay.deliveredTo).toEqual(again.deliveredTo);
    expect(replay.hops.find((h) => h.event === "nat")!.detail).toMatch(
      /^conntrack \(original\): destination 10\.100\.0\.2:80 → 172\.17\.0\.\d:8080$/,
    );
  });

  it("times conntrack entries out as the kernel does, one second a send: the table holds the last half minute", async () => {
    const lab = await dockerNodeWithOutsideHost();
    await lab.k.iptables.append(
      "node1",
      "nat",
      "POSTROUTING",
      rule`-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE`,
    );
    const node = lab.k.namespaces.get("node1")!;
    const ping = (srcPort?: number) =>
      lab.k.send({ from: "pod-a", to: "10.100.0.9", ...(srcPort === undefined ? {} : { srcPort }) });
    const natHops = (t: ReturnType<typeof ping>) =>
      t.hops.filter((h) => h.event === "nat").map((h) => h.detail);
    expect(natHops(ping(40000))[0]).toMatch(/^nat POSTROUTING: MASQUERADE/);
    // The same identifier a second later continues the flow: conntrack translates it, the nat table is not asked.
    expect(natHops(ping(40000))[0]).toMatch(/^conntrack \(original\): source 172\.17\.0\.2 → 10\.100\.0\.2/);
    // Thirty seconds (sends) without a packet and the ICMP entry is gone: the same identifier is a new flow.
    for (let i = 0; i < 30; i++) ping();
    expect(natHops(ping(40000))[0]).toMatch(/^nat POSTROUTING: MASQUERADE/);
    // Thousands of pings later the table holds what the last 30 seconds left, not every ping's entry.
    for (let i = 0; i < 5000; i++) expect(ping().outcome).toBe("reached");
    expect(node.conntrackSize).toBeLessThanOrEqual(2048);
    // Once the 28,232 ephemeral identifiers have come round, a ping is still a new connection.
    for (let i = 0; i < 28_232 - 5000; i++) ping();
    expect(natHops(ping())[0]).toMatch(/^nat POSTROUTING: MASQUERADE/);
    // TCP lives 120 s (a trace's process closes its connection: TIME_WAIT)...
    lab.k.listen("outside", { protocol: "tcp", port: 22, owner: "sshd" });
    const connect = (port: number) =>
      lab.k.send({ from: "pod-a", to: "10.100.0.9", protocol: "tcp", port, srcPort: 41000 + port });
    expect(natHops(connect(22))[0]).toMatch(/^nat POSTROUTING/);
    for (let i = 0; i < 100; i++) ping();
    expect(natHops(connect(22))[0]).toMatch(/^conntrack/);
    for (let i = 0; i < 120; i++) ping();
    expect(natHops(connect(22))[0]).toMatch(/^nat POSTROUTING/);
    // ...and 10 s once a RST closed it (nf_conntrack_tcp_timeout_close): a refused connection.
    expect(connect(23).outcome).toBe("refused");
    for (let i = 0; i < 8; i++) ping();
    expect(natHops(connect(23))[0]).toMatch(/^conntrack/);
    for (let i = 0; i < 10; i++) ping();
    expect(natHops(connect(23))[0]).toMatch(/^nat POSTROUTING/);
  }, 60_000);

  it("drops and rejects in the filter table, naming the rule", async () => {
    const lab = await dockerNodeWithOutsideHost();
    await lab.k.iptables.append(
      "node1",
      "filter",
      "FORWARD",
      rule`-d 172.17.0.2/32 -p tcp --dport 22 -j DROP`,
    );
    await lab.k.iptables.append(
      "node1",
      "filter",
      "FORWARD",
      rule`-d 172.17.0.2/32 -p tcp --dport 23 -j REJECT --reject-with tcp-reset`,
    );
    await lab.k.iptables.append("node1", "filter", "FORWARD", rule`-d 172.17.0.2/32 -p udp -j REJECT`);
    await lab.k.route.add("outside", { dst: net("172.17.0.0/16"), via: ip("10.100.0.2") });
    const dropped = lab.k.send({ from: "outside", to: "172.17.0.2", protocol: "tcp", port: 22 });
    expect(dropped.outcome).toBe("dropped");
    expect(dropped.reason).toBe(
      "dropped by filter FORWARD: -A FORWARD -d 172.17.0.2/32 -p tcp -m tcp --dport 22 -j DROP (at node1)",
    );
    // FORWARD runs once the route is chosen: its verdict sits on the output device, after the forward
    // hop there, not back on the input device (a walk on the map never steps backwards).
    const [forward, filter, drop] = dropped.hops.slice(-3);
    expect([forward!.event, filter!.event, drop!.event]).toEqual(["forward", "filter", "drop"]);
    expect([filter!.dev, drop!.dev]).toEqual([forward!.dev, forward!.dev]);
    expect(forward!.dev).toBe("docker0");
    const reset = lab.k.send({ from: "outside", to: "172.17.0.2", protocol: "tcp", port: 23 });
    expect(reset.outcome).toBe("refused");
    expect(reset.reason).toBe("connection refused: RST from the firewall of node1");
    const rejected = lab.k.send({ from: "outside", to: "172.17.0.2", protocol: "udp", port: 9 });
    expect(rejected.outcome).toBe("unreachable");
    expect(rejected.reason).toBe(
      "rejected by node1: -A FORWARD -d 172.17.0.2/32 -p udp -j REJECT --reject-with icmp-port-unreachable",
    );
    const allowed = lab.k.send({ from: "outside", to: "172.17.0.2" });
    expect(allowed.outcome).toBe("reached");
  });
});

describe("a long chain's destination index", () => {
  // Read through the index or rule by rule, a chain gives the same verdicts, the same rules named in
  // a trace, the same random draws and the same count of rules evaluated (the kernel's linear cost).
  it("changes nothing but the time, on random chains and packets", async () => {
    const address = fc.integer({ min: 1, max: 12 }).map((k) => `10.96.0.${k}`);
    const port = fc.constantFrom(80, 443, 8080);
    const target = fc.oneof(
      fc.integer({ min: 1, max: 255 }).map((m) => `-j MARK --set-xmark 0x${m.toString(16)}/0xff`),
      fc.constant("-j RETURN"),
      port.map((p) => `-j DNAT --to-destination 10.100.0.9:${p}`),
    );
    const keyed = fc
      .tuple(address, fc.option(port), fc.boolean(), target)
      .map(
        ([d, p, random, t]) =>
          `-d ${d}/32${p ? ` -p tcp -m tcp --dport ${p}` : ""}${random ? " -m statistic --mode random --probability 0.50000000000" : ""} ${t}`,
      );
    const other = fc.oneof(
      fc.tuple(port, target).map(([p, t]) => `-p tcp -m tcp --dport ${p} ${t}`),
      fc.tuple(address, target).map(([d, t]) => `! -d ${d}/32 ${t}`),
      target.map((t) => `-d 10.96.0.0/29 ${t}`),
    );
    const chain = fc.array(fc.oneof({ weight: 5, arbitrary: keyed }, { weight: 1, arbitrary: other }), {
      minLength: 64,
      maxLength: 160,
    });
    const packets = fc.array(fc.tuple(address, port), { minLength: 1, maxLength: 12 });
    await fc.assert(
      fc.asyncProperty(chain, packets, async (rules, sends) => {
        const seen = [];
        for (const chainIndexFrom of [1, Infinity]) {
          const lab = new Lab("index", { chainIndexFrom, flowCache: false });
          await lab.host("node1", "lan", "10.100.0.2/24");
          await lab.host("outside", "lan", "10.100.0.9/24");
          await lab.k.route.add("node1", { dst: DEFAULT_ROUTE, via: ip("10.100.0.9") });
          await lab.k.iptables.newChain("node1", "nat", "BIG");
          for (const r of rules) await lab.k.iptables.append("node1", "nat", "BIG", parseIptablesRule(r));
          await lab.k.iptables.append("node1", "nat", "OUTPUT", rule`-j BIG`);
          const traces = sends.map(([to, port]) => {
            const t = lab.k.send({ from: "node1", to, protocol: "tcp", port });
            return { outcome: t.outcome, reason: t.reason, hops: t.hops.map((h) => `${h.ns} ${h.detail}`) };
          });
          seen.push({ traces, evaluations: lab.k.ns("node1").ruleEvaluations });
        }
        expect(seen[0]).toEqual(seen[1]);
      }),
      { numRuns: 40 },
    );
  });
});

describe("compiled tables shared by namespaces holding the same rules", () => {
  // Every node holds the same kube-proxy table, so its compiled form is shared by content. Sharing must
  // change nothing: each namespace below is checked against a lab of its own, whose distinct
  // chainIndexFrom (no chain here is long enough to be indexed) gives it compiled tables of its own.
  it("changes nothing: namespaces with equal, near and changed tables each meet their own rules", async () => {
    const address = fc.integer({ min: 1, max: 6 }).map((k) => `10.96.0.${k}`);
    const port = fc.constantFrom(80, 443);
    const natRule = fc.oneof(
      fc
        .tuple(address, port)
        .map(([d, p]) => `-d ${d}/32 -p tcp -m tcp --dport ${p} -j DNAT --to-destination 10.100.0.9:8080`),
      fc
        .tuple(address, port)
        .map(([d, p]) => `-d ${d}/32 -p tcp -m tcp --dport ${p} -j DNAT --to-destination 10.100.0.9:8081`),
      fc.integer({ min: 1, max: 3 }).map((m) => `-j MARK --set-xmark 0x${m}/0xff`),
      fc.constant("-d 10.96.0.0/30 -j RETURN"),
    );
    const filterRule = fc.oneof(
      fc.integer({ min: 1, max: 3 }).map((m) => `-m mark --mark 0x${m}/0xff -j DROP`),
      fc.integer({ min: 1, max: 3 }).map((m) => `-m mark ! --mark 0x${m}/0xff -j REJECT`),
      fc
        .tuple(address, port)
        .map(([d, p]) => `-d ${d}/32 -p tcp -m tcp --dport ${p} -j REJECT --reject-with tcp-reset`),
      port.map((p) => `-p tcp -m tcp --dport ${p} -m conntrack --ctstate NEW -j DROP`),
    );
    const tables = fc.record({
      nat: fc.array(natRule, { maxLength: 6 }),
      filter: fc.array(filterRule, { maxLength: 4 }),
    });
    // node2's tables: node1's, node1's with one rule changed, or others altogether.
    const pair = fc.tuple(tables, fc.integer({ min: 0, max: 2 }), tables, natRule, filterRule);
    const sends = fc.array(fc.tuple(fc.constantFrom(0, 1), address, port), { minLength: 1, maxLength: 10 });
    // After the first sends, node1 gains one rule in each table: node2 must keep meeting its own.
    const later = fc.tuple(natRule, filterRule);
    let solo = 10_000;
    await fc.assert(
      fc.asyncProperty(
        pair,
        sends,
        later,
        async ([t1, how, other, natChange, filterChange], probes, [n, f]) => {
          const t2 =
            how === 0
              ? t1
              : how === 1
                ? {
                    nat: t1.nat.length ? [natChange, ...t1.nat.slice(1)] : [natChange],
                    filter: t1.filter.length ? [...t1.filter.slice(0, -1), filterChange] : [filterChange],
                  }
                : other;
          // Every lab holds both nodes, created in the same order, and each node has learned the
          // gateway before any rule: a probe's trace then depends on the rules in force, not on
          // what earlier probes left behind.
          const lab = async (chainIndexFrom?: number) => {
            const l = new Lab("shared", { flowCache: false, ...(chainIndexFrom ? { chainIndexFrom } : {}) });
            await l.host("outside", "lan", "10.100.0.9/24");
            for (const [node, address] of [
              ["node1", "10.100.0.2/24"],
              ["node2", "10.100.0.3/24"],
            ] as const) {
              await l.host(node, "lan", address);
              await l.k.route.add(node, { dst: DEFAULT_ROUTE, via: ip("10.100.0.9") });
            }
            for (const node of ["node1", "node2"]) l.k.send({ from: node, to: "10.100.0.9" });
            return l;
          };
          const write = async (l: Lab, node: string, t: { nat: string[]; filter: string[] }) => {
            await l.k.iptables.newChain(node, "nat", "SVC");
            for (const r of t.nat) await l.k.iptables.append(node, "nat", "SVC", parseIptablesRule(r));
            await l.k.iptables.append(node, "nat", "OUTPUT", rule`-j SVC`);
            for (const r of t.filter)
              await l.k.iptables.append(node, "filter", "OUTPUT", parseIptablesRule(r));
          };
          const change = async (l: Lab) => {
            await l.k.iptables.append("node1", "nat", "SVC", parseIptablesRule(n));
            await l.k.iptables.append("node1", "filter", "OUTPUT", parseIptablesRule(f));
          };
          const probe = (l: Lab, node: string, to: string, port: number) => {
            const t = l.k.send({ from: node, to, protocol: "tcp", port });
            return `${t.outcome} ${t.reason} | ${t.hops.map((h) => h.detail).join(" | ")}`;
          };
          const shared = await lab();
          await write(shared, "node1", t1);
          await write(shared, "node2", t2);
          // Each node's own lab (its own chainIndexFrom: tables of its own); node1's changed one is
          // written changed from the start, compiled only after the change.
          const own1 = await lab(solo++);
          await write(own1, "node1", t1);
          const own2 = await lab(solo++);
          await write(own2, "node2", t2);
          const changed1 = await lab(solo++);
          await write(changed1, "node1", t1);
          await change(changed1);
          // At least one probe meets node1 changed (the last).
          const half = Math.floor(probes.length / 2);
          for (const [i, [which, to, port]] of probes.entries()) {
            if (i === half) await change(shared);
            const node = which ? "node2" : "node1";
            const reference = which ? own2 : i < half ? own1 : changed1;
            expect(probe(shared, node, to, port)).toBe(probe(reference, node, to, port));
          }
          expect(shared.k.ns("node2").ruleEvaluations).toBe(own2.k.ns("node2").ruleEvaluations);
          expect(shared.k.ns("node1").ruleEvaluations).toBe(
            own1.k.ns("node1").ruleEvaluations + changed1.k.ns("node1").ruleEvaluations,
          );
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("a listener's answer", () => {
  // The kernel backend's listeners answer a datagram with their name and its probe waits for that
  // answer on a connected socket: a way back that fails is a failed probe there, and so here.
  async function lanWithRouter() {
    const lab = new Lab("udp-answer");
    await lab.host("client", "lan", "10.100.0.5/24");
    await lab.host("server", "lan", "10.100.0.9/24");
    await lab.host("router", "lan", "10.100.0.1/24", { forwarding: true });
    lab.k.listen("server", { protocol: "udp", port: 53, owner: "dns" });
    return lab;
  }

  /** The client sends 10.96.0.0/16 to the router, which translates 10.96.0.10 to the server. */
  async function translateAtRouter(lab: Lab) {
    await lab.k.route.add("client", { dst: net("10.96.0.0/16"), via: ip("10.100.0.1") });
    await lab.k.iptables.append(
      "router",
      "nat",
      "PREROUTING",
      rule`-d 10.96.0.10/32 -j DNAT --to-destination 10.100.0.9`,
    );
  }

  it("reaches the sender from where the datagram went: reached", async () => {
    const lab = await lanWithRouter();
    const t = lab.k.send({ from: "client", to: "10.100.0.9", protocol: "udp", port: 53 });
    expect(t.outcome).toBe("reached");
    expect(t.replyReceived).toBe(true);
    expect(t.hops.map((h) => h.detail)).toEqual(
      expect.arrayContaining([
        "udp to 10.100.0.9:53 taken by dns, which answers",
        "the answer from 10.100.0.9 reaches the sender in client",
      ]),
    );
  });

  it("fails the probe when the answer has no way back, as ICMP and TCP do", async () => {
    const lab = await lanWithRouter();
    // The server sends anything for the client to a gateway that is not there.
    await lab.k.route.add("server", { dst: net("10.100.0.5/32"), via: ip("10.100.0.77") });
    lab.k.listen("server", { protocol: "tcp", port: 53, owner: "dns" });
    for (const protocol of ["udp", "tcp", "icmp"] as const) {
      const t = lab.k.send({
        from: "client",
        to: "10.100.0.9",
        protocol,
        ...(protocol === "icmp" ? {} : { port: 53 }),
      });
      expect(t.outcome, protocol).toBe("dropped");
      expect(t.replyReceived, protocol).toBe(false);
    }
    const udp = lab.k.send({ from: "client", to: "10.100.0.9", protocol: "udp", port: 53 });
    expect(udp.reason).toMatch(
      /^delivered to dns on 10\.100\.0\.9:53 \(server\), but the answer was dropped: /,
    );
  });

  it("is lost without a word to a UDP socket when the next hop never answers ARP; TCP is told", async () => {
    const lab = await lanWithRouter();
    await lab.k.route.add("client", { dst: net("10.200.0.0/16"), via: ip("10.100.0.77") });
    const udp = lab.k.send({ from: "client", to: "10.200.0.1", protocol: "udp", port: 53 });
    expect([udp.outcome, udp.reason]).toEqual([
      "dropped",
      "no ARP reply for 10.100.0.77 on eth0: host unreachable; the datagram is lost, and a UDP socket is not told (at client)",
    ]);
    const tcp = lab.k.send({ from: "client", to: "10.200.0.1", protocol: "tcp", port: 53 });
    expect([tcp.outcome, tcp.reason]).toEqual([
      "unreachable",
      "connect: No route to host (no ARP reply for 10.100.0.77 on eth0: host unreachable) (at client)",
    ]);
  });

  it("comes, from a socket bound to 0.0.0.0, from the address the route back chooses", async () => {
    // A pod sends to its node's eth0 address; the node's listener answers by the route back to the
    // pod, over docker0, from docker0's address: the pod's socket, connected to eth0's, drops it.
    const lab = new Lab("answer-source");
    await lab.host("node1", "lan", "10.100.0.2/24");
    await lab.bridge("node1", "docker0", "172.17.0.1/16");
    await lab.pod("node1", "pod-a", "docker0", "172.17.0.2/16", "172.17.0.1");
    lab.k.listen("node1", { protocol: "udp", port: 53, owner: "dns" });
    const t = lab.k.send({ from: "pod-a", to: "10.100.0.2", protocol: "udp", port: 53 });
    expect(t.outcome).toBe("dropped");
    expect(t.reason).toContain(
      "udp from 172.17.0.1:53: the sender's socket is connected to 10.100.0.2:53 and does not take it",
    );
    // To docker0's own address, the answer comes from it.
    expect(lab.k.send({ from: "pod-a", to: "172.17.0.1", protocol: "udp", port: 53 }).outcome).toBe(
      "reached",
    );
  });

  it("from a firewall's reset after a DNAT, is un-NATed as the kernel attaches the entry to it", async () => {
    const lab = await lanWithRouter();
    await translateAtRouter(lab);
    await lab.k.iptables.append(
      "router",
      "filter",
      "FORWARD",
      rule`-p tcp -j REJECT --reject-with tcp-reset`,
    );
    const t = lab.k.send({ from: "client", to: "10.96.0.10", protocol: "tcp", port: 53 });
    expect([t.outcome, t.reason]).toEqual(["refused", "connection refused: RST from the firewall of router"]);
  });

  it("is not taken, UDP or TCP, from another address than the one the sender's socket is connected to", async () => {
    const lab = await lanWithRouter();
    // A virtual address the router translates to the server, which answers the client directly over
    // the LAN: the answer is never un-NATed and comes from 10.100.0.9, not 10.96.0.10.
    await translateAtRouter(lab);
    lab.k.listen("server", { protocol: "tcp", port: 53, owner: "dns" });
    const t = lab.k.send({ from: "client", to: "10.96.0.10", protocol: "udp", port: 53 });
    expect(t.outcome).toBe("dropped");
    expect(t.replyReceived).toBe(false);
    expect(t.reason).toContain(
      "the answer was dropped: udp from 10.100.0.9:53: the sender's socket is connected to 10.96.0.10:53 and does not take it (at client)",
    );
    // TCP the same: the SYN-ACK from the server's own address is refused with a reset.
    const tcp = lab.k.send({ from: "client", to: "10.96.0.10", protocol: "tcp", port: 53 });
    expect(tcp.outcome).toBe("dropped");
    expect(tcp.reason).toContain(
      "the answer was dropped: tcp SYN-ACK from 10.100.0.9:53: the sender's socket is connected to 10.96.0.10:53 and does not take it (at client)",
    );
    expect(tcp.hops.at(-1)!.detail).toBe("tcp segment without a connection at server eth0");
    // Through the router both ways, the answer is un-NATed and taken.
    await lab.k.route.add("server", { dst: net("10.100.0.5/32"), via: ip("10.100.0.1") });
    for (const protocol of ["udp", "tcp"] as const)
      expect(lab.k.send({ from: "client", to: "10.96.0.10", protocol, port: 53 }).outcome).toBe("reached");
  });
});
