/**
 * Benchmarks on the real datapath: a scenario realised as a lab, then between chosen pod pairs (same
 * node, across nodes, through a Service, to an outside host) TCP throughput on one and on four
 * streams, UDP throughput with loss and jitter (iperf3), round-trip time (ping) and TCP connect time,
 * each run several times (median and spread). UDP is offered at 1 Gbit/s; TCP connect time is the
 * median of ten connects from one process. A bare veth pair between two namespaces of the same lab
 * is measured the same way, and every figure is also given as a ratio to it: the only form that holds
 * on a shared machine. Kernel CPU per gigabit is the whole machine's system + softirq time (from
 * /proc/stat) over the TCP runs, divided by the gigabits moved: namespaces have no accounting of
 * their own, so the figure includes both ends and anything else the machine did meanwhile.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { ClusterRuntime, type Scenario } from "@podnet/cluster";
import type { NetworkProvider } from "@podnet/cni";
import { LinuxNetlink, run } from "@podnet/linux";
import { parseAddrArgument } from "@podnet/netlink";
import { listening, stopProcesses } from "./backend.js";
import { down, up } from "./lab.js";

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** (max − min) / median, in percent. */
  spreadPercent: number;
}

export interface DatapathFigures {
  tcpGbps: Spread;
  tcp4Gbps: Spread;
  udpGbps: Spread;
  udpLossPercent: Spread;
  udpJitterMs: Spread;
  rttMs: Spread;
  connectMs: Spread;
  /** System + softirq CPU-seconds of the whole machine per gigabit moved over TCP (one stream). */
  cpuSecondsPerGbit: number;
}

export interface DatapathRow {
  provider: string;
  pair: string;
  from: string;
  to: string;
  podMtu: number;
  /** Absent when the pair cannot talk (docker-bridge across nodes): then `unreachable` says why. */
  figures?: DatapathFigures;
  unreachable?: string;
  /** figure ÷ baseline (throughput: higher is better; times: lower is better). */
  ratioToBaseline?: { tcp: number; tcp4: number; udp: number; rtt: number; connect: number };
}

export interface DatapathOptions {
  /** Seconds per iperf3 run (1 by default). */
  seconds?: number;
  /** Runs per measurement (3 by default). */
  runs?: number;
  scenarioFile: string;
}

const PORT = 5201;
const CONNECT_PORT = 5202;

function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  const min = sorted[0]!;
  const max = sorted.at(-1)!;
  return { median, min, max, spreadPercent: median ? Math.round(((max - min) / median) * 1000) / 10 : 0 };
}

/** Jiffies the whole machine spent in the kernel (system + irq + softirq), from /proc/stat. */
function kernelJiffies(): number {
  const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0]!.split(/\s+/).slice(1).map(Number);
  return cpu[2]! + cpu[5]! + cpu[6]!;
}

/** The parts of `iperf3 -J` read here. */
interface IperfReport {
  error?: string;
  end: {
    sum_received: { bytes: number; bits_per_second: number };
    sum: { bits_per_second: number; lost_percent: number; jitter_ms: number };
  };
}

async function iperf(fromNs: string, to: string, args: string[]): Promise<IperfReport> {
  const { stdout, code, stderr } = await run([
    "ip",
    "netns",
    "exec",
    fromNs,
    "iperf3",
    "-J",
    "-c",
    to,
    "-p",
    String(PORT),
    ...args,
  ]);
  let report: Partial<IperfReport> = {};
  try {
    report = JSON.parse(stdout) as IperfReport;
  } catch {
    // reported below
  }
  if (code !== 0 || report.error || !report.end)
    throw new Error(`iperf3 ${fromNs} → ${to}: ${report.error ?? stderr.trim()}`);
  return report as IperfReport;
}

/** Average round-trip time of 10 pings, 0.2 s apart. */
async function rttMs(fromNs: string, to: string): Promise<number> {
  const { stdout } = await run([
    "ip",
    "netns",
    "exec",
    fromNs,
    "ping",
    "-n",
    "-q",
    "-c",
    "10",
    "-i",
    "0.2",
    to,
  ]);
  const avg = /= [\d.]+\/([\d.]+)\//.exec(stdout)?.[1];
  if (!avg) throw new Error(`ping ${fromNs} → ${to}: no answer`);
  return Number(avg);
}

/** Median time of 10 TCP connects in a row from one process (its start-up not counted). */
async function connectMs(fromNs: string, to: string, port: number): Promise<number> {
  const code = `const net = require("net"); const times = [];
const once = () => { const t = process.hrtime.bigint(); const s = net.connect(${port}, ${JSON.stringify(to)});
  s.on("connect", () => { times.push(Number(process.hrtime.bigint() - t) / 1e6); s.destroy();
    if (times.length < 10) once(); else { times.sort((a, b) => a - b); console.log(times[5]); } });
  s.on("error", (e) => console.log("error " + e.code)); };
once();`;
  const { stdout } = await run(["ip", "netns", "exec", fromNs, process.execPath, "-e", code]);
  const ms = Number(stdout.trim());
  if (!Number.isFinite(ms)) throw new Error(`TCP connect ${fromNs} → ${to}:${port}: ${stdout.trim()}`);
  return ms;
}

/** One pair measured: iperf3 server in `serverNs`, the client in `fromNs` aimed at `to`. */
async function measure(
  fromNs: string,
  serverNs: string,
  to: string,
  options: Required<Omit<DatapathOptions, "scenarioFile">>,
): Promise<DatapathFigures> {
  // iperf3's server, and a plain listener for connect times (iperf3 resets bare connections).
  const servers: ChildProcess[] = [
    ["iperf3", "-s", "-p", String(PORT)],
    ["socat", `TCP4-LISTEN:${CONNECT_PORT},fork,reuseaddr`, "SYSTEM:true"],
  ].map((argv) => spawn("ip", ["netns", "exec", serverNs, ...argv], { stdio: "ignore", detached: true }));
  try {
    for (const port of [PORT, CONNECT_PORT]) await listening(serverNs, "tcp", port);
    const t = String(options.seconds);
    const tcp: number[] = [];
    const tcp4: number[] = [];
    const udp: number[] = [];
    const loss: number[] = [];
    const jitter: number[] = [];
    let jiffies = 0;
    let gigabits = 0;
    for (let r = 0; r < options.runs; r++) {
      const before = kernelJiffies();
      const one = await iperf(fromNs, to, ["-t", t]);
      jiffies += kernelJiffies() - before;
      gigabits += (one.end.sum_received.bytes * 8) / 1e9;
      tcp.push(one.end.sum_received.bits_per_second / 1e9);
      tcp4.push((await iperf(fromNs, to, ["-t", t, "-P", "4"])).end.sum_received.bits_per_second / 1e9);
      // UDP at a fixed 1 Gbit/s offered: what arrives, what is lost, and the jitter.
      const u = (await iperf(fromNs, to, ["-t", t, "-u", "-b", "1G"])).end.sum;
      udp.push((u.bits_per_second * (1 - u.lost_percent / 100)) / 1e9);
      loss.push(u.lost_percent);
      jitter.push(u.jitter_ms);
    }
    const rtt: number[] = [];
    const connects: number[] = [];
    for (let r = 0; r < options.runs; r++) {
      rtt.push(await rttMs(fromNs, to));
      connects.push(await connectMs(fromNs, to, CONNECT_PORT));
    }
    const ticks = 100; // USER_HZ: /proc/stat counts in 1/100 s on Linux
    return {
      tcpGbps: spread(tcp),
      tcp4Gbps: spread(tcp4),
      udpGbps: spread(udp),
      udpLossPercent: spread(loss),
      udpJitterMs: spread(jitter),
      rttMs: spread(rtt),
      connectMs: spread(connects),
      cpuSecondsPerGbit: gigabits ? Math.round((jiffies / ticks / gigabits) * 1000) / 1000 : 0,
    };
  } finally {
    stopProcesses(servers.flatMap((server) => (server.pid ? [server.pid] : [])));
  }
}

/** The bare veth baseline: two namespaces of the lab, one veth pair, nothing else. */
async function baseline(
  prefix: string,
  mtu: number,
  options: Required<Omit<DatapathOptions, "scenarioFile">>,
) {
  const k = new LinuxNetlink();
  const a = `${prefix}base-a`;
  const b = `${prefix}base-b`;
  await k.netns.add(a);
  await k.netns.add(b);
  for (const ns of [a, b]) await k.link.set(ns, "lo", { up: true });
  await k.link.add(a, { kind: "veth", name: "eth0", peer: { name: "eth0", netns: b }, mtu });
  // Addresses inside the lab's own namespaces only; never in the root namespace.
  await k.addr.add(a, "eth0", parseAddrArgument("10.255.255.1/30"));
  await k.addr.add(b, "eth0", parseAddrArgument("10.255.255.2/30"));
  await k.link.set(a, "eth0", { up: true });
  await k.link.set(b, "eth0", { up: true });
  return measure(a, b, "10.255.255.2", options);
}

/** The pod pairs a scenario offers: same node, across nodes, through a Service, to an outside host. */
function pairs(runtime: ClusterRuntime): { pair: string; from: string; server: string; to: string }[] {
  const pods = [...runtime.pods];
  const out: { pair: string; from: string; server: string; to: string }[] = [];
  const [first] = pods;
  if (!first) return out;
  const [from, src] = first;
  const same = pods.find(([n, p]) => n !== from && p.node === src.node);
  if (same) out.push({ pair: "same node", from, server: same[0], to: same[1].ip });
  const across = pods.find(([, p]) => p.node !== src.node);
  if (across) out.push({ pair: "across nodes", from, server: across[0], to: across[1].ip });
  const host = [...runtime.hosts][0];
  if (host) out.push({ pair: "to an outside host", from, server: host[0], to: host[1] });
  return out;
}

/** The scenario's pairs under `provider` on the kernel, beside the bare veth baseline. */
export async function benchDatapath(
  scenario: Scenario,
  provider: NetworkProvider,
  name: string,
  options: DatapathOptions,
): Promise<{ baseline: DatapathFigures; rows: DatapathRow[] }> {
  const settings = { seconds: options.seconds ?? 1, runs: options.runs ?? 3 };
  const { runtime, state } = await up(scenario, provider, { name, scenarioFile: options.scenarioFile });
  try {
    const base = await baseline(state.prefix, 1500, settings);
    const rows: DatapathRow[] = [];
    const ratio = (a: Spread, b: Spread) => (b.median ? Math.round((a.median / b.median) * 1000) / 1000 : 0);
    for (const p of pairs(runtime)) {
      const links = await runtime.k.link.list(runtime.ns(p.from));
      const row = {
        provider: provider.name,
        pair: p.pair,
        from: p.from,
        to: p.server,
        podMtu: links.find((l) => l.ifname === "eth0")?.mtu ?? 0,
      };
      let figures: DatapathFigures;
      try {
        figures = await measure(runtime.ns(p.from), runtime.ns(p.server), p.to, settings);
      } catch (error) {
        // A design that cannot carry the pair (docker-bridge's repeated addresses) is a result too.
        rows.push({ ...row, unreachable: (error as Error).message });
        continue;
      }
      rows.push({
        ...row,
        figures,
        ratioToBaseline: {
          tcp: ratio(figures.tcpGbps, base.tcpGbps),
          tcp4: ratio(figures.tcp4Gbps, base.tcp4Gbps),
          udp: ratio(figures.udpGbps, base.udpGbps),
          rtt: ratio(figures.rttMs, base.rttMs),
          connect: ratio(figures.connectMs, base.connectMs),
        },
      });
    }
    return { baseline: base, rows };
  } finally {
    await down(name);
  }
}
