// How a measurement's runs are summarised: the median, the range over it, and the interquartile
// range over it (what one run falling away does not move).
import { describe, expect, it } from "vitest";
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
