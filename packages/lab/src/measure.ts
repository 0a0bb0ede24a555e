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
import { ConnectTimer, handshakeTimes } from "./connect-timer.js";
import { interquartileMean, spread } from "./stats.js";

const median = (values: number[]) => spread(values).median;

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
  /**
   * Side by side: each run's transfers as this many blocks of a fixed size (`BLOCK_MEGABYTES`),
   * each TCP flow's ends on a CPU of their own; 0 for one transfer of `seconds` each.
   */
  blocks: number;
}

/** The figures a run gives as ratios to the baseline. */
export type RatioKey = "tcp" | "tcp4" | "udp" | "rtt" | "connect";

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
  /**
   * Side by side: the run's ratios to the baseline, each the median of its blocks' ratios — TCP and
   * UDP transfers (`transfersBeside`), pings and connects (`latencyBeside`).
   */
  blockRatios?: Partial<Record<RatioKey, number>>;
  /** Kernel jiffies of the whole machine during the one-stream TCP run, and the gigabits it moved. */
  jiffies: number;
  gigabits: number;
  retransmits: number;
  tcpFragments: number;
  udpFragments: number;
  /** The UDP run failed once (and was run again): iperf3's message. */
  udpError?: string;
}

/** A sample's UDP figures (`Measurer.udp`). */
type UdpPart = "udp" | "loss" | "jitter" | "udpFragments" | "udpError";
/** A sample's transfer figures (`Measurer.throughput`). */
type Transfers = Omit<Sample, "rtt" | "connect" | "blockRatios">;

export const IPERF_PORT = 5201;
export const CONNECT_PORT = 5202;
/**
 * Alternated blocks of 50 connects per run, each side's block about 18 ms (a block of pings takes
 * 110): forty cost a second and a half per pair and run, and the run-to-run spread of their median ratio was
 * 2–11 % against 3–42 % for ten (BENCHMARKS.md, "Forty connect blocks").
 */
const CONNECT_BLOCKS = 40;

/**
 * The size of a transfer block (`MeasureSettings.blocks`): on this kind of machine a transfer's rate
 * moves by 13–16 % from one flow to the next (one standard deviation), whether it lasts a quarter of
 * a second or a whole one, and holds within one flow, so a run is steadied by more flows, not longer
 * ones — up to about 16, past which the machine's shifts from run to run dominate (BENCHMARKS.md,
 * "Transfers in blocks"). A TCP block (300 MB) takes a quarter to half a second here; smaller ones
 * read low (100 MB: one stream's ratio 8 % under 200 and 600 MB's, four streams' 7 %), the flow's
 * start weighing more. A UDP block is 10 MB at 1 Gbit/s offered, a tenth to a fifth of a second: its
 * ratio and spread match 40 MB blocks' at a quarter of the time ("Smaller UDP blocks").
 */
export const BLOCK_MEGABYTES = { tcp: 300, udp: 10 } as const;

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

/** How one iperf3 transfer runs (`Measurer.iperf`). */
interface IperfRun {
  learned?: boolean;
  seconds?: number;
  megabytes?: number;
  cpu?: number;
}

/** UDP at a fixed 1 Gbit/s offered. */
const UDP = ["-u", "-b", "1G"];

const gbps = (r: IperfReport) => r.end.sum_received.bits_per_second / 1e9;
/** The gigabits a TCP transfer moved, and the segments it sent again. */
const gigabitsOf = (r: IperfReport) => (r.end.sum_received.bytes * 8) / 1e9;
const retransmitsOf = (r: IperfReport) => r.end.sum_sent.retransmits ?? 0;
/** What a UDP transfer delivered: the offered rate less the loss. */
const delivered = (r: IperfReport) => (r.end.sum.bits_per_second * (1 - r.end.sum.lost_percent / 100)) / 1e9;

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
  /** Connect timers by client namespace (`connects`). */
  private readonly timers = new Map<string, ConnectTimer>();
  /** The pairs (client namespace, address) whose connect alternation is warm (`latencyBeside`). */
  private readonly warmed = new Set<string>();
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
    for (const timer of this.timers.values()) timer.stop();
    this.timers.clear();
  }

  /**
   * One iperf3 transfer, of the settings' seconds unless `megabytes` says how much. Unless `learned`,
   * it starts as a new pod's first one does: the client's route cache flushed, so no path MTU
   * learned by an earlier transfer helps it. `cpu`: both ends on that CPU (`iperf3 -A cpu,cpu`).
   */
  private async iperf(
    target: Target,
    args: string[],
    { learned = false, seconds = this.settings.seconds, megabytes, cpu }: IperfRun = {},
  ): Promise<IperfReport> {
    const { omit, pin } = this.settings;
    if (!learned) await this.run(["ip", "-n", target.fromNs, "route", "flush", "cache"]);
    const length = megabytes
      ? ["-n", `${megabytes}M`]
      : ["-t", String(seconds), ...(omit ? ["-O", String(omit)] : [])];
    const affinity =
      cpu !== undefined ? ["-A", `${cpu},${cpu}`] : pin && availableParallelism() > 1 ? ["-A", "0,1"] : [];
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
      ...length,
      ...affinity,
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
    return median(await this.pings(target, 50));
  }

  /** The round-trip times of `count` pings 10 ms apart, in ms. */
  private async pings(target: Target, count: number): Promise<number[]> {
    const { stdout } = await this.run(
      [
        "ip",
        "netns",
        "exec",
        target.fromNs,
        "ping",
        "-n",
        "-c",
        String(count),
        "-i",
        "0.01",
        "-w",
        "5",
      ].concat(target.to),
    );
    const times = [...stdout.matchAll(/ time=([\d.]+) ms/g)].map((m) => Number(m[1]));
    if (!times.length) throw new Error(`ping → ${target.to}: no answer`);
    return times;
  }

  /**
   * `blocks` blocks of a latency measured on `base`, then on `target`, alternated (each block's first
   * value, slow in a new ping process or after a pause, left out): each side's `centre` over all its
   * blocks, and the median of the blocks' ratios of centres. On this kind of machine a path's RTT
   * level moves by 20–30 % from one second to the next; blocks a tenth of a second apart meet the
   * same level, and the median of their ratios moved half as much from run to run as the ratio of
   * 50 pings each one after the other (BENCHMARKS.md).
   */
  private async alternated(
    block: (t: Target) => Promise<number[]>,
    target: Target,
    base: Target,
    centre: (values: number[]) => number,
    blocks: number,
  ): Promise<{ mine: number; theirs: number; ratio: number }> {
    const mine: number[] = [];
    const theirs: number[] = [];
    const ratios: number[] = [];
    for (let k = 0; k < blocks; k++) {
      const b = (await block(base)).slice(1);
      const t = (await block(target)).slice(1);
      theirs.push(...b);
      mine.push(...t);
      ratios.push(centre(t) / centre(b));
    }
    return { mine: centre(mine), theirs: centre(theirs), ratio: median(ratios) };
  }

  /**
   * Round-trip and connect times of `target` and `base` in alternated blocks (`alternated`), each
   * run's ratios the medians of the blocks'. A target without ICMP leaves the baseline's RTT
   * measured alone.
   */
  async latencyBeside(
    target: Target,
    base: Target,
  ): Promise<{
    mine: Pick<Sample, "rtt" | "connect" | "blockRatios">;
    theirs: Pick<Sample, "rtt" | "connect">;
  }> {
    const rtt = target.ping
      ? await this.alternated((t) => this.pings(t, 11), target, base, median, 10)
      : undefined;
    const blockOfConnects = (t: Target) => this.connects(t, 51);
    // The first alternations run slow, the baseline's most: its handshake goes from about 9 to 6 µs
    // over thousands of connects (the ratio across nodes under overlay 5.0 → 6.0), however many
    // each side made alone before. Unmeasured, once per pair.
    const key = `${target.fromNs} ${target.to}`;
    if (!this.warmed.has(key)) {
      for (let i = 0; i < 6; i++) await this.alternated(blockOfConnects, target, base, interquartileMean, 10);
      this.warmed.add(key);
    }
    const connect = await this.alternated(blockOfConnects, target, base, interquartileMean, CONNECT_BLOCKS);
    return {
      mine: {
        ...(rtt ? { rtt: rtt.mine } : {}),
        connect: connect.mine,
        blockRatios: { ...(rtt ? { rtt: rtt.ratio } : {}), connect: connect.ratio },
      },
      theirs: { rtt: rtt ? rtt.theirs : await this.rttMs(base), connect: connect.theirs },
    };
  }

  /** The interquartile mean of 21 TCP connects in a row (their handshakes, as the kernel timed them). */
  private async connectMs(target: Target): Promise<number> {
    return interquartileMean(await this.connects(target, 21));
  }

  /**
   * The times of `count` TCP connects in a row, in ms, from the client namespace's connect timer:
   * one Node process per namespace, started once, so that no process start-up lands between two
   * blocks of an alternation.
   */
  private async connects(target: Target, count: number): Promise<number[]> {
    if (this.stopped) throw new Error("stopped");
    let timer = this.timers.get(target.fromNs);
    if (!timer) this.timers.set(target.fromNs, (timer = new ConnectTimer(target.fromNs)));
    const answer = await timer.ask(`${target.to} ${CONNECT_PORT} ${count}`);
    const got = JSON.parse(answer || "null") as { ports: number[]; ss: string } | { error: string } | null;
    const fail = (why: string) => new Error(`TCP connect → ${target.to}:${CONNECT_PORT}: ${why}`);
    if (!got || "error" in got) throw fail(got?.error ?? "no answer");
    const times = handshakeTimes(got.ss, got.ports);
    if (times.length !== got.ports.length)
      throw fail(`ss showed the handshake of ${times.length} of ${got.ports.length} connections`);
    return times;
  }

  /**
   * Traffic before the first run, not measured: on this kind of machine (a virtual machine whose
   * CPUs idled while the lab was built) the first transfers of a series ran slow in most batches
   * tried — 10–17 Gbit/s on a bare veth pair against 19–21 for the rest (BENCHMARKS.md).
   */
  async warmUp(target: Target, seconds: number): Promise<void> {
    await this.iperf(target, [], { seconds });
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
  async throughput(target: Target): Promise<Transfers> {
    return { ...(await this.tcp(target)), ...(await this.udp(target)) };
  }

  /** TCP on one stream (with the kernel's CPU time and fragments meanwhile), then on four. */
  async tcp(target: Target): Promise<Omit<Transfers, UdpPart>> {
    const fragments = this.fragments(target.counts);
    const before = kernelJiffies();
    const one = await this.iperf(target, []);
    const jiffies = kernelJiffies() - before;
    const tcpFragments = this.fragments(target.counts) - fragments;
    const tcp4 = await this.iperf(target, ["-P", "4"]);
    return {
      tcp: gbps(one),
      tcp4: gbps(tcp4),
      jiffies,
      gigabits: gigabitsOf(one),
      retransmits: retransmitsOf(one),
      tcpFragments,
    };
  }

  /**
   * UDP at a fixed 1 Gbit/s offered: what arrives, what is lost, and the jitter. A datagram larger
   * than the path fails once with "Message too long" (the node's ICMP "fragmentation needed" sets
   * the connected socket's error); a retry, with the path MTU now learned, is what an app does.
   */
  async udp(target: Target): Promise<Pick<Sample, UdpPart>> {
    const fragments = this.fragments(target.counts);
    let udpError: string | undefined;
    const report = await this.udpOnce(target, true, undefined, (error) => (udpError = error));
    return {
      udp: delivered(report),
      loss: report.end.sum.lost_percent,
      jitter: report.end.sum.jitter_ms,
      udpFragments: this.fragments(target.counts) - fragments,
      ...(udpError ? { udpError } : {}),
    };
  }

  /** One UDP transfer; a first one that fails is run again (`udp`), its message given to `failed`. */
  private udpOnce(
    target: Target,
    first: boolean,
    megabytes: number | undefined,
    failed: (message: string) => void,
  ): Promise<IperfReport> {
    const run = (learned: boolean) =>
      this.iperf(target, UDP, { learned, ...(megabytes ? { megabytes } : {}) });
    return run(!first).catch((error: Error) => {
      if (this.stopped || !first) throw error;
      failed(error.message);
      return run(true);
    });
  }

  /**
   * Side by side: each transfer of `target` beside one of the baseline's — one of `seconds`, or
   * `blocks` blocks of `BLOCK_MEGABYTES`. TCP, on one stream then on four: the pair's transfer at the
   * same moment as the baseline's, so that a dip of the machine meets both. In blocks, each flow's
   * two ends are on a CPU of their own, the CPUs swapped from block to block (on one CPU, unpinned):
   * a flow then has one CPU for its sender, its receiver and the softirq work between them (a veth
   * delivers on the sending CPU). UDP one after the other, the baseline's first: two flows at
   * 1 Gbit/s at once overload the receivers (the delivered rate's ratio moved 4–124 % across runs,
   * where a flow alone loses 0.1–0.9 %), and pinned, a UDP flow's two ends on one CPU lost a fifth.
   * Each side's figures are the medians of its blocks, a run's ratio the median of its blocks'
   * ratios. Each series starts as a new pod's first transfer does (route cache flushed); the blocks
   * after it are that pod's next transfers. A failure of the pair's (a design that cannot carry it)
   * is returned, the baseline measured to the end alone; the baseline's own failure is thrown.
   */
  async transfersBeside(
    target: Target,
    base: Target,
  ): Promise<{ theirs: Transfers; mine?: Transfers & Pick<Sample, "blockRatios">; failure?: unknown }> {
    const { blocks } = this.settings;
    const pinned = blocks > 0 && availableParallelism() > 1;
    let failure: unknown;
    let mineError: string | undefined;
    let theirError: string | undefined;
    const series = async (
      together: boolean,
      transfer: (t: Target, first: boolean, cpu?: number) => Promise<IperfReport>,
    ) => {
      const mine: IperfReport[] = [];
      const theirs: IperfReport[] = [];
      const before = [this.fragments(target.counts), this.fragments(base.counts)];
      const mineBlock = async (first: boolean, cpu?: number) => {
        if (failure) return;
        try {
          mine.push(await transfer(target, first, cpu));
        } catch (error) {
          if (this.stopped) throw error;
          failure = error;
        }
      };
      for (let k = 0; k < Math.max(1, blocks); k++) {
        const first = k === 0;
        if (together) {
          const cpu = pinned ? k % 2 : undefined;
          const [, theirsBlock] = await Promise.all([
            mineBlock(first, cpu),
            transfer(base, first, cpu === undefined ? undefined : 1 - cpu),
          ]);
          theirs.push(theirsBlock);
        } else {
          theirs.push(await transfer(base, first));
          await mineBlock(first);
        }
      }
      const ratio = (of: (r: IperfReport) => number) => median(mine.map((m, k) => of(m) / of(theirs[k]!)));
      return {
        mine,
        theirs,
        ratio,
        fragments: [this.fragments(target.counts) - before[0]!, this.fragments(base.counts) - before[1]!],
      };
    };
    const tcp = (args: string[]) =>
      series(true, (t, first, cpu) =>
        this.iperf(t, args, {
          learned: !first,
          ...(blocks ? { megabytes: BLOCK_MEGABYTES.tcp } : {}),
          ...(cpu !== undefined ? { cpu } : {}),
        }),
      );
    const one = await tcp([]);
    const four = await tcp(["-P", "4"]);
    const udp = await series(false, (t, first) =>
      this.udpOnce(t, first, blocks ? BLOCK_MEGABYTES.udp : undefined, (error) => {
        if (t === base) theirError ??= error;
        else mineError ??= error;
      }),
    );
    const part = (side: "mine" | "theirs", fragments: 0 | 1, udpError: string | undefined): Transfers => ({
      tcp: median(one[side].map(gbps)),
      tcp4: median(four[side].map(gbps)),
      // No CPU per gigabit side by side: the machine served two flows at once.
      jiffies: 0,
      gigabits: one[side].reduce((sum, r) => sum + gigabitsOf(r), 0),
      retransmits: one[side].reduce((sum, r) => sum + retransmitsOf(r), 0),
      tcpFragments: one.fragments[fragments]!,
      udp: median(udp[side].map(delivered)),
      loss: median(udp[side].map((r) => r.end.sum.lost_percent)),
      jitter: median(udp[side].map((r) => r.end.sum.jitter_ms)),
      udpFragments: udp.fragments[fragments]!,
      ...(udpError ? { udpError } : {}),
    });
    const theirs = part("theirs", 1, theirError);
    if (failure) return { theirs, failure };
    return {
      theirs,
      mine: {
        ...part("mine", 0, mineError),
        blockRatios: { tcp: one.ratio(gbps), tcp4: four.ratio(gbps), udp: udp.ratio(delivered) },
      },
    };
  }

  /** iperf3's server and a plain TCP listener for connect times (iperf3 resets bare connections). */
  serve(ns: string): number[] {
    return [
      ["iperf3", "-s", "-p", String(IPERF_PORT)],
      // One process holding each connection until the client resets it (`ConnectTimer`): a forking
      // listener (socat) started a process per connection on the CPUs the next connects were being
      // timed on, and a listener closing first left a TIME_WAIT socket per connection.
      [
        process.execPath,
        "-e",
        `require("net").createServer((s) => s.on("error", () => {}).on("end", () => s.destroy())).listen(${CONNECT_PORT})`,
      ],
    ].flatMap((argv) => {
      const child = spawn("ip", ["netns", "exec", ns, ...argv], { stdio: "ignore", detached: true });
      child.unref();
      return child.pid ? [child.pid] : [];
    });
  }
}
