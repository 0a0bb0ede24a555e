/**
 * One run of the datapath measurements between two namespaces: iperf3 (TCP on one and on four
 * streams, UDP at 1 Gbit/s offered), ping and TCP connect time, with the kernel's own counters read
 * around the transfers (IP fragments created in every namespace of the lab, TCP retransmits from
 * iperf3, the machine's kernel CPU time). Every process it starts is tracked, so that Ctrl-C can stop
 * a measurement half-way and the lab be removed at once.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** (max − min) / median, in percent. */
  spreadPercent: number;
  /**
   * The interquartile range over the median, in percent (quartiles interpolated between the
   * sorted runs): the spread of the middle half, which one run falling away does not move. Says
   * little under 5 runs.
   */
  iqrPercent: number;
}

export function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  const min = sorted[0]!;
  const max = sorted.at(-1)!;
  const quartile = (q: number) => {
    const at = (sorted.length - 1) * q;
    const low = Math.floor(at);
    return sorted[low]! + (sorted[Math.min(low + 1, sorted.length - 1)]! - sorted[low]!) * (at - low);
  };
  const percent = (x: number) => (median ? Math.round((x / median) * 1000) / 10 : 0);
  return {
    median,
    min,
    max,
    spreadPercent: percent(max - min),
    iqrPercent: percent(quartile(0.75) - quartile(0.25)),
  };
}

export interface MeasureSettings {
  /** Seconds per iperf3 run, after the omitted ones. */
  seconds: number;
  /** Seconds at the start of each iperf3 run left out of its figures (TCP slow start, warm-up). */
  omit: number;
  /**
   * Pin iperf3's client to CPU 0 and its server to CPU 1 (`iperf3 -A 0,1`), on 2 CPUs or more. Off
   * by default: on a machine shared with other work, a pinned end waits when its CPU is busy.
   */
  pin: boolean;
}

/** Who is measured: the client's namespace, the address it aims at, and whether ICMP answers there. */
export interface Target {
  fromNs: string;
  to: string;
  /** A ClusterIP answers only on its Service's ports (kube-proxy DNATs those): no ping. */
  ping: boolean;
  /**
   * The namespaces whose counters (IP fragments) this target's figures read: all the lab's by
   * default; a part when another target is measured at the same time (side by side).
   */
  counts?: (ns: string) => boolean;
}

/** One run's figures for one target. */
export interface Sample {
  tcp: number;
  tcp4: number;
  udp: number;
  loss: number;
  jitter: number;
  rtt?: number;
  connect: number;
  /** Kernel jiffies of the whole machine during the one-stream TCP run, and the gigabits it moved. */
  jiffies: number;
  gigabits: number;
  retransmits: number;
  tcpFragments: number;
  udpFragments: number;
  /** The UDP run failed once (and was run again): iperf3's message. */
  udpError?: string;
}

export const IPERF_PORT = 5201;
export const CONNECT_PORT = 5202;

/** Jiffies the whole machine spent in the kernel (system + irq + softirq), from /proc/stat. */
function kernelJiffies(): number {
  const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0]!.split(/\s+/).slice(1).map(Number);
  return cpu[2]! + cpu[5]! + cpu[6]!;
}

/** One counter of the `Ip:` lines of a /proc/net/snmp text. */
function ipCounter(snmp: string, name: string): number {
  const lines = snmp.split("\n").filter((l) => l.startsWith("Ip:"));
  const names = lines[0]?.split(/\s+/) ?? [];
  return Number(lines[1]?.split(/\s+/)[names.indexOf(name)] ?? 0);
}

/** The parts of `iperf3 -J` read here. */
interface IperfReport {
  error?: string;
  end: {
    sum_received: { bytes: number; bits_per_second: number };
    sum_sent: { retransmits?: number };
    sum: { bits_per_second: number; lost_percent: number; jitter_ms: number };
  };
}

export class Measurer {
  private readonly children = new Set<ChildProcess>();
  /** A process in each namespace (`sleep`): its /proc/<pid>/net/snmp is that namespace's counters. */
  private readonly watchers: { ns: string; pid: number }[] = [];
  /** Set by `stop`: nothing more is started. */
  stopped = false;

  constructor(private readonly settings: MeasureSettings) {}

  /** Runs `argv`, tracked so that `stop` can kill it. */
  private run(argv: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
    if (this.stopped) return Promise.resolve({ stdout: "", stderr: "stopped", code: 130 });
    return new Promise((resolve) => {
      const child = execFile(argv[0]!, argv.slice(1), { encoding: "utf8" }, (error, stdout, stderr) => {
        this.children.delete(child);
        resolve({ stdout, stderr, code: error ? (typeof error.code === "number" ? error.code : 1) : 0 });
      });
      this.children.add(child);
    });
  }

  /** Starts the counter watchers, one per namespace, and waits until each is inside its namespace. */
  async watch(namespaces: string[]): Promise<void> {
    for (const ns of namespaces) {
      const child = spawn("ip", ["netns", "exec", ns, "sleep", "infinity"], {
        detached: true,
        stdio: "ignore",
      });
      child.unref();
      if (!child.pid) throw new Error(`cannot start a counter watcher in ${ns}`);
      this.watchers.push({ ns, pid: child.pid });
      // `ip netns exec` enters the namespace, then execs: once the process is `sleep`, it is inside.
      for (let i = 0; i < 400; i++) {
        if (readFileSync(`/proc/${child.pid}/comm`, "utf8").trim() === "sleep") break;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }

  /** IP fragments created so far in every watched namespace (/proc/net/snmp, Ip FragCreates). */
  private fragments(counts: (ns: string) => boolean = () => true): number {
    let sum = 0;
    for (const { ns, pid } of this.watchers)
      if (counts(ns)) sum += ipCounter(readFileSync(`/proc/${pid}/net/snmp`, "utf8"), "FragCreates");
    return sum;
  }

  /** Kills every process started here: the running measurement fails at once. */
  stop(): void {
    this.stopped = true;
    for (const child of this.children) child.kill("SIGKILL");
    for (const { pid } of this.watchers) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    this.watchers.length = 0;
  }

  /**
   * One iperf3 transfer. Unless `learned`, it starts as a new pod's first one does: the client's
   * route cache flushed, so no path MTU learned by an earlier transfer helps it.
   */
  private async iperf(
    target: Target,
    args: string[],
    learned = false,
    seconds = this.settings.seconds,
  ): Promise<IperfReport> {
    const { omit, pin } = this.settings;
    if (!learned) await this.run(["ip", "-n", target.fromNs, "route", "flush", "cache"]);
    const { stdout, code, stderr } = await this.run([
      "ip",
      "netns",
      "exec",
      target.fromNs,
      "iperf3",
      "-J",
      "-c",
      target.to,
      "-p",
      String(IPERF_PORT),
      "--connect-timeout",
      "2000",
      "-t",
      String(seconds),
      ...(omit ? ["-O", String(omit)] : []),
      ...(pin && availableParallelism() > 1 ? ["-A", "0,1"] : []),
      ...args,
    ]);
    let report: Partial<IperfReport> = {};
    try {
      report = JSON.parse(stdout) as IperfReport;
    } catch {
      // reported below
    }
    if (code !== 0 || report.error || !report.end)
      throw new Error(`iperf3 → ${target.to}: ${report.error ?? stderr.trim()}`);
    return report as IperfReport;
  }

  /**
   * Median round-trip time of 50 pings, 10 ms apart. The median, not ping's average: at 50–100 µs one
   * scheduling hiccup of a millisecond moves an average of ten by tens of percent. Not faster: pings
   * back to back keep the CPUs awake and measure 7–15 µs, printed in whole microseconds — a spread
   * of 100 % from rounding alone — where a pod's sparse traffic meets an idle CPU's wake-up.
   */
  private async rttMs(target: Target): Promise<number> {
    const { stdout } = await this.run(
      ["ip", "netns", "exec", target.fromNs, "ping", "-n", "-c", "50", "-i", "0.01", "-w", "5"].concat(
        target.to,
      ),
    );
    const times = [...stdout.matchAll(/ time=([\d.]+) ms/g)].map((m) => Number(m[1]));
    if (!times.length) throw new Error(`ping → ${target.to}: no answer`);
    return spread(times).median;
  }

  /** Median time of 21 TCP connects in a row from one process (its start-up not counted). */
  private async connectMs(target: Target): Promise<number> {
    const code = `const net = require("net"); const times = [];
const once = () => { const t = process.hrtime.bigint(); const s = net.connect(${CONNECT_PORT}, ${JSON.stringify(target.to)});
  s.setTimeout(2000, () => { console.log("timeout"); process.exit(0); });
  s.on("connect", () => { times.push(Number(process.hrtime.bigint() - t) / 1e6); s.destroy();
    if (times.length < 21) once(); else { times.sort((a, b) => a - b); console.log(times[10]); } });
  s.on("error", (e) => console.log("error " + e.code)); };
once();`;
    const { stdout } = await this.run(["ip", "netns", "exec", target.fromNs, process.execPath, "-e", code]);
    const ms = Number(stdout.trim());
    if (!Number.isFinite(ms)) throw new Error(`TCP connect → ${target.to}:${CONNECT_PORT}: ${stdout.trim()}`);
    return ms;
  }

  /**
   * Traffic before the first run, not measured: on this kind of machine (a virtual machine whose
   * CPUs idled while the lab was built) the first transfers of a series ran slow in most batches
   * tried — 10–17 Gbit/s on a bare veth pair against 19–21 for the rest (BENCHMARKS.md).
   */
  async warmUp(target: Target, seconds: number): Promise<void> {
    await this.iperf(target, [], false, seconds);
  }

  /** One run of every measurement against `target`, whose server side `serve` started. */
  async sample(target: Target): Promise<Sample> {
    return { ...(await this.throughput(target)), ...(await this.latency(target)) };
  }

  /** Round-trip time (no ping through a ClusterIP) and TCP connect time. */
  async latency(target: Target): Promise<Pick<Sample, "rtt" | "connect">> {
    const rtt = target.ping ? await this.rttMs(target) : undefined;
    return { ...(rtt !== undefined ? { rtt } : {}), connect: await this.connectMs(target) };
  }

  /** The transfers: TCP on one stream and on four, UDP, with what the kernel counted meanwhile. */
  async throughput(target: Target): Promise<Omit<Sample, "rtt" | "connect">> {
    let fragments = this.fragments(target.counts);
    const before = kernelJiffies();
    const one = await this.iperf(target, []);
    const jiffies = kernelJiffies() - before;
    const tcpFragments = this.fragments(target.counts) - fragments;
    const tcp4 = await this.iperf(target, ["-P", "4"]);
    fragments = this.fragments(target.counts);
    // UDP at a fixed 1 Gbit/s offered: what arrives, what is lost, and the jitter. A datagram larger
    // than the path fails once with "Message too long" (the node's ICMP "fragmentation needed" sets
    // the connected socket's error); a retry, with the path MTU now learned, is what an app does.
    const udp = ["-u", "-b", "1G"];
    let udpError: string | undefined;
    const u = (
      await this.iperf(target, udp).catch((error: Error) => {
        if (this.stopped) throw error;
        udpError = error.message;
        return this.iperf(target, udp, true);
      })
    ).end.sum;
    const udpFragments = this.fragments(target.counts) - fragments;
    return {
      tcp: one.end.sum_received.bits_per_second / 1e9,
      tcp4: tcp4.end.sum_received.bits_per_second / 1e9,
      udp: (u.bits_per_second * (1 - u.lost_percent / 100)) / 1e9,
      loss: u.lost_percent,
      jitter: u.jitter_ms,
      jiffies,
      gigabits: (one.end.sum_received.bytes * 8) / 1e9,
      retransmits: one.end.sum_sent.retransmits ?? 0,
      tcpFragments,
      udpFragments,
      ...(udpError ? { udpError } : {}),
    };
  }

  /** iperf3's server and a plain TCP listener for connect times (iperf3 resets bare connections). */
  serve(ns: string): number[] {
    return [
      ["iperf3", "-s", "-p", String(IPERF_PORT)],
      ["socat", `TCP4-LISTEN:${CONNECT_PORT},fork,reuseaddr`, "SYSTEM:true"],
    ].flatMap((argv) => {
      const child = spawn("ip", ["netns", "exec", ns, ...argv], { stdio: "ignore", detached: true });
      child.unref();
      return child.pid ? [child.pid] : [];
    });
  }
}
