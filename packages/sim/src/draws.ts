/**
 * The random draws kube-proxy's rules make — iptables' `statistic --mode random --probability p`
 * and nftables' `numgen random mod N` — from one seeded stream, so the same scenario gives the same
 * traces; and, for one send, a wanted endpoint instead: each draw is decided by where its rule
 * leads (the DNAT of the chain it jumps to, the element of the verdict map), so whichever list of
 * endpoints the packet meets — a node's own under a Local traffic policy, the Service's — the one
 * wanted is picked when the list holds it.
 */
import { SeededRandom } from "@podnet/core";

/** An endpoint as kube-proxy's rules translate to it. */
export interface Offer {
  address: number;
  port: number | undefined;
}

const sameOffer = (a: Offer, b: Offer): boolean => a.address === b.address && a.port === b.port;

export class Draws extends SeededRandom {
  private wantedOffer: Offer | undefined;
  /** The decision for the statistic rule about to be matched, made by `decide`. */
  private decision: boolean | undefined;
  /**
   * The first draw met while an endpoint was wanted: the namespace whose rules drew and the
   * endpoints they offered. Kept after the send, for the caller to say why the wanted one was not
   * picked.
   */
  seen: { ns: string; offered: Offer[] } | undefined;

  /** Makes the next Service draw pick `endpoint` where its rules offer it; undefined: random again. */
  want(endpoint: Offer | undefined): void {
    this.wantedOffer = endpoint;
    this.decision = undefined;
    if (endpoint) this.seen = undefined;
  }

  get wanted(): Offer | undefined {
    return this.wantedOffer;
  }

  /** Before a statistic rule is matched while an endpoint is wanted: whether it leads there. */
  decide(ns: string, offered: () => Offer[], leads: Offer | undefined): void {
    this.seen ??= { ns, offered: offered() };
    this.decision = leads !== undefined && sameOffer(leads, this.wantedOffer!);
  }

  /** xt_statistic: a random 31-bit number below the fixed-point probability matches. */
  statistic(threshold: number): boolean {
    const decision = this.decision;
    if (decision === undefined) return (this.nextUint32() & 0x7fffffff) < threshold;
    this.decision = undefined;
    if (decision) this.wantedOffer = undefined;
    return decision;
  }

  /**
   * nft's numgen random mod `mod`: one of 0 … mod − 1. While an endpoint is wanted, `offered` (the
   * verdict map's endpoints by key) decides: the wanted one's key, or a random one when it is not
   * among them.
   */
  numgen(mod: number, ns?: string, offered?: () => Offer[]): number {
    const want = this.wantedOffer;
    if (want && ns !== undefined && offered) {
      const offers = offered();
      this.seen ??= { ns, offered: offers };
      const at = offers.findIndex((o) => sameOffer(o, want));
      if (at >= 0) {
        this.wantedOffer = undefined;
        return at;
      }
    }
    return this.nextUint32() % mod;
  }
}
