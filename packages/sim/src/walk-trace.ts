/** What a walk records of each hop, and the trace that formats those records when read. */
import { formatIpv4 } from "@podnet/core";
import type { SimRoute } from "./route-table.js";
import type { Trace, TraceEvent, TraceHop } from "./trace.js";
import { packetOf, type PacketSource } from "./skb.js";

/**
 * A hop as the walk records it: references, not text or packets. Formatting a packet snapshot for
 * every hop was a measured share of a trace that nobody reads when only the outcome is wanted (a
 * bench, a reachability matrix); `Trace.hops` makes them on first read.
 */
export interface HopRecord {
  direction: "request" | "reply";
  ns: string;
  event: TraceEvent;
  /** The sentence, or what makes it: a function of values captured when the hop happened. */
  detail: Detail;
  source: PacketSource;
  dev: string | undefined;
  wire: "in" | "out" | undefined;
}

/**
 * A hop's sentence made when read. Only values that cannot change afterwards may be captured —
 * numbers, names, skbs, frames, routes (route values are replaced, never edited) — never a device's
 * MAC or a bridge's port set, which later commands change.
 */
export type Detail = string | (() => string);

/**
 * The detail of a transmit or receive: "out eth0", "in veth1", made from the record's own `wire` and
 * `dev` when read. Two hops of every device crossed made a string each (a tenth of what a random
 * trace allocated, with the record).
 */
export const ON_WIRE: Detail = () => "";

export function hopOf(r: HopRecord): TraceHop {
  const hop: TraceHop = {
    direction: r.direction,
    ns: r.ns,
    event: r.event,
    detail:
      typeof r.detail === "string" ? r.detail : r.detail === ON_WIRE ? `${r.wire} ${r.dev}` : r.detail(),
    packet: packetOf(r.source),
  };
  if (r.dev !== undefined) hop.dev = r.dev;
  if (r.wire !== undefined) hop.wire = r.wire;
  const skb = "headers" in r.source ? undefined : "eth" in r.source ? r.source.skb : r.source;
  const outer = skb?.fragments?.cuts;
  const inner = skb?.vxlan ? skb.inner?.skb?.fragments?.cuts : undefined;
  if (outer || inner) hop.fragmentation = { ...(outer ? { outer } : {}), ...(inner ? { inner } : {}) };
  return hop;
}

/**
 * A trace whose `hops` are an own enumerable accessor (JSON, spreads and structured clones read it),
 * made from the walk's records on first read and kept; the records are private, so two traces are
 * equal by what they show. One descriptor for every trace: per-trace closures, or a WeakMap entry
 * per trace, cost more than the snapshots they save (measured).
 */
export class WalkTrace {
  outcome: Trace["outcome"] = "dropped";
  reason = "";
  declare hops: TraceHop[];
  declare deliveredTo?: Trace["deliveredTo"];
  declare data?: Trace["data"];
  #records: HopRecord[] | undefined;

  constructor(
    public replyReceived: boolean,
    records: HopRecord[],
    public hopCount = records.length,
  ) {
    this.#records = records;
    Object.defineProperty(this, "hops", WalkTrace.HOPS);
  }

  private static readonly HOPS: PropertyDescriptor = {
    enumerable: true,
    configurable: true,
    get(this: WalkTrace) {
      return this.keep((this.#records ?? []).map(hopOf));
    },
    set(this: WalkTrace, hops: TraceHop[]) {
      this.keep(hops);
    },
  };

  /** `hops` becomes a plain data property holding these, and the records go. */
  private keep(hops: TraceHop[]): TraceHop[] {
    this.#records = undefined;
    Object.defineProperty(this, "hops", {
      value: hops,
      enumerable: true,
      configurable: true,
      writable: true,
    });
    return hops;
  }
}

export function routeText(r: SimRoute): string {
  const dst = r.dst.length === 0 ? "default" : r.dst.toString();
  return `${dst}${r.gateway !== undefined ? ` via ${formatIpv4(r.gateway)}` : ""} dev ${r.dev.name}${r.onlink ? " onlink" : ""}${r.metric ? ` metric ${r.metric}` : ""}`;
}
