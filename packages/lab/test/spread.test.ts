// How a measurement's runs are summarised: the median, the range over it, and the interquartile
// range over it (what one run falling away does not move).
import { describe, expect, it } from "vitest";
import { ratiosOf } from "../src/datapath.js";
import { handshakeTimes } from "../src/connect-timer.js";
import type { Sample } from "../src/measure.js";
import { interquartileMean } from "../src/stats.js";
import { spread } from "../src/index.js";

describe("spread", () => {
  it("gives the range and the interquartile range over the median, in percent", () => {
    // Five pinned 2-second runs of a bare veth pair on this machine: one fell away.
    expect(spread([20.81, 16.32, 20.76, 20.82, 20.23])).toEqual({
      median: 20.76,
      min: 16.32,
      max: 20.82,
      spreadPercent: 21.7,
      iqrPercent: 2.8,
    });
  });

  it("interpolates quartiles between runs, and takes the upper median of an even count", () => {
    expect(spread([4, 1, 3, 2])).toMatchObject({ median: 3, spreadPercent: 100, iqrPercent: 50 });
    expect(spread([7])).toMatchObject({ median: 7, spreadPercent: 0, iqrPercent: 0 });
  });
});

describe("ratios to the baseline", () => {
  const sample = (tcp: number, rtt: number, blockRatios?: Sample["blockRatios"]): Sample => ({
    tcp,
    tcp4: tcp,
    udp: 1,
    loss: 0,
    jitter: 0.01,
    rtt,
    connect: 0.1,
    ...(blockRatios ? { blockRatios } : {}),
    jiffies: 10,
    gigabits: tcp,
    retransmits: 0,
    tcpFragments: 0,
    udpFragments: 0,
  });

  it("divides each run by the baseline run beside it", () => {
    const { ratioToBaseline, ratioSpreads } = ratiosOf(
      [sample(10, 0.1), sample(12, 0.3)],
      [sample(20, 0.05), sample(20, 0.1)],
      false,
    );
    expect(ratioToBaseline).toMatchObject({ tcp: 0.6, rtt: 3 });
    expect(ratioSpreads.tcp).toMatchObject({ min: 0.5, max: 0.6 });
    expect(ratioSpreads.rtt).toMatchObject({ min: 2, max: 3 });
  });

  it("takes a run's ratios from its blocks when it has them (side by side)", () => {
    const { ratioToBaseline, ratioSpreads } = ratiosOf(
      [sample(10, 0.1, { rtt: 2.5, connect: 1.25 }), sample(12, 0.3, { rtt: 2.7, connect: 1.5, tcp: 0.55 })],
      [sample(20, 0.05), sample(20, 0.1)],
      true,
    );
    // The ratio of the medians stays the medians'; the per-run ratios are the blocks' medians.
    expect(ratioToBaseline.rtt).toBe(3);
    expect(ratioSpreads.rtt).toMatchObject({ min: 2.5, max: 2.7, median: 2.7 });
    expect(ratioToBaseline.connect).toBe(1);
    expect(ratioSpreads.connect).toMatchObject({ min: 1.25, max: 1.5 });
    // A run without a block ratio keeps the quotient of its figures (10 / 20).
    expect(ratioSpreads.tcp).toMatchObject({ min: 0.5, max: 0.55 });
    expect(ratioToBaseline.tcp).toBe(0.6);
  });
});

describe("connect times", () => {
  // `ss -tinH state established dst 127.0.0.1 dport = :46655` on this machine, two connections of a
  // Node client that had sent nothing yet (BBR's congestion control, as here).
  const ss = [
    "0      0      127.0.0.1:60074 127.0.0.1:46655",
    "\t bbr wscale:10,10 rto:200 rtt:0.034/0.017 mss:32741 pmtu:65535 rcvmss:536 advmss:65483 cwnd:10 bytes_acked:1 segs_out:2 segs_in:1 bbr:(bw:0bps,mrtt:0.034,pacing_gain:1,cwnd_gain:1) send 77037647059bps lastsnd:8 lastrcv:8 lastack:8 pacing_rate 220162146888bps delivered:1 app_limited rcv_space:65495 rcv_ssthresh:65495 minrtt:0.034 snd_wnd:65483 ",
    "0      0      127.0.0.1:60090 127.0.0.1:46655",
    "\t bbr wscale:10,10 rto:200 rtt:0.015/0.007 mss:32741 pmtu:65535 rcvmss:536 advmss:65483 cwnd:10 bytes_acked:1 segs_out:2 segs_in:1 bbr:(bw:0bps,mrtt:0.015,pacing_gain:1,cwnd_gain:1) send 174618666667bps lastsnd:8 lastrcv:8 lastack:8 pacing_rate 499034199624bps delivered:1 app_limited rcv_space:65495 rcv_ssthresh:65495 minrtt:0.011 snd_wnd:65483",
    "",
  ].join("\n");

  it("reads each connection's handshake time (its first RTT sample) from ss, for its ports only", () => {
    expect(handshakeTimes(ss, [60074, 60090])).toEqual([0.034, 0.015]);
    // Another process's connection to the same listener is not one of ours.
    expect(handshakeTimes(ss, [60090])).toEqual([0.015]);
    expect(handshakeTimes(ss, [])).toEqual([]);
  });

  it("averages the middle half of a block, so whole microseconds do not make the figure jump", () => {
    // A bare veth pair's handshakes, two blocks one value apart: the median jumps from 7 to 6 µs
    // (a seventh), the mean of the middle half from 6.5 to 6.3 (6.25, to a tenth of a µs).
    const us = (n: number[]) => n.map((v) => v / 1000);
    const a = us([6, 6, 6, 6, 7, 7, 7, 40]);
    const b = us([6, 6, 6, 6, 6, 7, 7, 40]);
    expect([spread(a).median, spread(b).median]).toEqual([0.007, 0.006]);
    expect([interquartileMean(a), interquartileMean(b)]).toEqual([0.0065, 0.0063]);
    // An odd count: the middle half by rank, from the first quartile's rank to the third's.
    expect(interquartileMean(us([9, 6, 6, 6, 7, 7, 7, 8, 40]))).toBe(0.007);
  });
});
