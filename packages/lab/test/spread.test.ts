// How a measurement's runs are summarised: the median, the range over it, and the interquartile
// range over it (what one run falling away does not move).
import { describe, expect, it } from "vitest";
import { ratiosOf } from "../src/datapath.js";
import type { Sample } from "../src/measure.js";
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
  const sample = (tcp: number, rtt: number, rttRatio?: number, connectRatio?: number): Sample => ({
    tcp,
    tcp4: tcp,
    udp: 1,
    loss: 0,
    jitter: 0.01,
    rtt,
    ...(rttRatio !== undefined ? { rttRatio } : {}),
    connect: 0.1,
    ...(connectRatio !== undefined ? { connectRatio } : {}),
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

  it("takes a run's latency ratios from its alternated blocks when it has them (side by side)", () => {
    const { ratioToBaseline, ratioSpreads } = ratiosOf(
      [sample(10, 0.1, 2.5, 1.25), sample(12, 0.3, 2.7, 1.5)],
      [sample(20, 0.05), sample(20, 0.1)],
      true,
    );
    // The ratio of the medians stays the medians'; the per-run ratios are the blocks' medians.
    expect(ratioToBaseline.rtt).toBe(3);
    expect(ratioSpreads.rtt).toMatchObject({ min: 2.5, max: 2.7, median: 2.7 });
    expect(ratioToBaseline.connect).toBe(1);
    expect(ratioSpreads.connect).toMatchObject({ min: 1.25, max: 1.5 });
    // Throughput keeps the per-run quotient.
    expect(ratioSpreads.tcp).toMatchObject({ min: 0.5, max: 0.6 });
  });
});
