/**
 * The random draws kube-proxy's rules make — iptables' `statistic --mode random --probability p`
 * and nftables' `numgen random mod N` — from one seeded stream, so the same scenario gives the same
 * traces; and, for one send, a chosen outcome instead: a trace through the endpoint a user names.
 */
import { SeededRandom } from "@podnet/core";

export class Draws extends SeededRandom {
  /**
   * The place of the endpoint the next Service draw picks, in the order its rules list the
   * endpoints (kube-proxy writes both modes' from the same list): the statistic rules before it do
   * not match, its own does; `numgen` gives it. Undefined: drawn at random.
   */
  private pick: number | undefined;

  /** Makes the next Service draw pick the endpoint at `place` (0-based), then draws at random again. */
  force(place: number | undefined): void {
    this.pick = place;
  }

  /** xt_statistic: a random 31-bit number below the fixed-point probability matches. */
  statistic(threshold: number): boolean {
    if (this.pick === undefined) return (this.nextUint32() & 0x7fffffff) < threshold;
    if (this.pick > 0) {
      this.pick--;
      return false;
    }
    this.pick = undefined;
    return true;
  }

  /** nft's numgen random mod `mod`: one of 0 … mod − 1. */
  numgen(mod: number): number {
    const pick = this.pick;
    this.pick = undefined;
    return pick ?? this.nextUint32() % mod;
  }
}
