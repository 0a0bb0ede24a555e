/** The spread of a measurement's runs, and a mean robust to a few outliers: what the bench reports. */
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

/**
 * The mean of the middle half of `values` (from the first to the third quartile, by rank): as
 * robust as the median to a few outliers, and not stuck on the values' grain. Connect times come in
 * whole microseconds (the kernel's `tcpi_rtt`): a bare veth pair's handshake takes 6–9 µs, so a
 * median moves by a seventh with one tick, where this mean moves by a fraction of one.
 */
export function interquartileMean(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.slice(Math.floor(sorted.length / 4), Math.ceil((sorted.length * 3) / 4));
  // Rounded to 0.1 µs: what the microsecond values can say, without float noise in the JSON.
  return Math.round((middle.reduce((sum, v) => sum + v, 0) / middle.length) * 1e4) / 1e4;
}
