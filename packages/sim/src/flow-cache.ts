/**
 * The flow cache: a probe the simulator has walked since the last change of state is answered by
 * replaying what the walk did, not by walking it again — the way a kernel's or a vswitch's flow cache
 * spares the classifier, and for the same reason: a warm pair's exchange interprets every table on
 * its path (routes, neighbours, FDBs, kube-proxy's chains rule by rule) to reach the answer it reached
 * the time before.
 *
 * What may differ between two probes of the same exchange is the ephemeral port (ICMP identifier)
 * and what derives from it: conntrack tuples, and the VXLAN outer source port hashed from the inner
 * flow. A walk is replayable only when nothing else it read can differ:
 * - no state changed since it was recorded: every host API call that changes state, and every
 *   learning during a walk (ARP, a bridge's or a VXLAN device's FDB, a path MTU), bumps the kernel's
 *   `epoch`, and a walk that learned something is not kept;
 * - it chose no NAT translation and drew no random number (a Service's endpoint pick);
 * - no rule compared its port (a `--sport` match, a reply's `--dport`), and no text it produced
 *   names it;
 * - every conntrack entry it found was one it made; the lookups that found nothing find nothing for
 *   the new port's tuples too (checked at replay), and namespaces without rules track or not as
 *   they did.
 * A replay then makes the walk's conntrack entries with the new port's tuples, as the walk would.
 * Probes give summaries (outcome, reason, hop count, the answer): a trace's hop records come from a
 * walk, always.
 */
import {
  hashTuple,
  replayedEntry,
  sameTuple,
  tupleHash,
  type ConnTuple,
  type ConntrackEntry,
  type SimNamespace,
} from "./namespace.js";
import type { TraceSummary } from "./trace.js";
import type { SendOptions } from "./walk.js";

/**
 * Linux picks a VXLAN packet's outer source port by hashing the inner flow (its Ethernet source when
 * it carries none) into 32768-60999: one flow keeps one port, and a replayed flow gets its own.
 */
export function outerSourcePort(inner: ConnTuple | undefined, srcMac: number): number {
  return outerPort(inner ? tupleHash(inner) : (srcMac % 0x100000000) ^ Math.floor(srcMac / 0x100000000));
}

const outerPort = (hash: number) => 32768 + ((hash >>> 0) % (60999 - 32768 + 1));

/**
 * Port values the rule evaluators compared while a walk was recorded; undefined when none is being
 * recorded, so a port match outside a recording costs one check.
 */
export const portWatch: { values: number[] | undefined } = { values: undefined };

/** A port a rule compares, noted when a walk is being recorded. */
export function watchedPort<T extends number | undefined>(port: T): T {
  if (portWatch.values !== undefined && port !== undefined) portWatch.values.push(port);
  return port;
}

/** What a walk being recorded did that a replay must redo or re-check. */
export class FlowRecording {
  replayable = true;
  /** Conntrack lookups that found nothing. */
  readonly misses: { ns: SimNamespace; tuple: ConnTuple }[] = [];
  /** Entries confirmed, in order. */
  readonly confirmed: { ns: SimNamespace; entry: ConntrackEntry }[] = [];
  /** Namespaces without rules, which track only while they hold entries: whether they did. */
  readonly tracking: { ns: SimNamespace; tracked: boolean }[] = [];
  /** VXLAN encapsulations of a tracked inner flow, and the outer source port it got. */
  readonly encaps: { inner: ConnTuple; port: number }[] = [];
  /** Entries this walk made: finding any other is depending on state a replay cannot assume. */
  readonly own = new Set<ConntrackEntry>();
  /** The port values rules compared (portWatch's, while this walk ran). */
  readonly ports: number[] = [];
}

/**
 * The recorded walk's tuples as templates, seven numbers each in one flat array (a replay reads
 * numbers, making no object but the entries it files): protocol, src, srcPort, srcAt, dst, dstPort,
 * dstAt. `srcAt`/`dstAt` index a replay's derived ports (its ephemeral port, then the outer ports in
 * the order of `encaps`), -1 where the port is fixed (a destination's, VXLAN's).
 */
const T = 7;

interface Flow {
  options: SendOptions;
  summary: TraceSummary;
  /** The inner flows encapsulated, in order: each one's outer port is the next derived port. */
  encaps: number[];
  /** Lookups that found nothing, and where. */
  misses: number[];
  missIn: SimNamespace[];
  /** Entries confirmed, in order: two templates each (original, reply), where, and for how long. */
  confirmed: number[];
  confirmIn: SimNamespace[];
  timeouts: number[];
  /** For each entry confirmed, the miss with its original tuple in the same namespace (-1: none). */
  missOf: number[];
  tracking: FlowRecording["tracking"];
}

/** A replay's derived ports, and the hashes of the tuples its lookups missed, reused: one replay at a time. */
const PORTS: number[] = [0, 0, 0, 0, 0, 0, 0, 0];
const MISS_HASHES: number[] = [0, 0, 0, 0, 0, 0, 0, 0];

/** Fills `out` with the tuple of the template at `at` and the replay's derived ports. */
function fill(out: ConnTuple, t: number[], at: number): void {
  out.protocol = t[at]!;
  out.src = t[at + 1]!;
  out.srcPort = t[at + 3]! < 0 ? t[at + 2]! : PORTS[t[at + 3]!]!;
  out.dst = t[at + 4]!;
  out.dstPort = t[at + 6]! < 0 ? t[at + 5]! : PORTS[t[at + 6]!]!;
}

/**
 * A summary made immutable, all the way down: a replay returns the stored one to every caller, so
 * a caller changing it would change what the next replay says.
 */
export function frozen(s: TraceSummary): TraceSummary {
  if (s.deliveredTo) Object.freeze(s.deliveredTo);
  if (s.data) Object.freeze(s.data);
  if (s.answer?.icmp) Object.freeze(s.answer.icmp);
  if (s.answer) Object.freeze(s.answer);
  return Object.freeze(s);
}

/**
 * Flows kept before the cache starts again: random pairs rarely repeat and must not fill memory (a
 * flow under overlay holds about 2 KB of templates: 30 MB at most); a reachability matrix has a few
 * hundred cells.
 */
const CAPACITY = 1 << 14;
const ICMP = 1;

/** The options other than the endpoints that can change a walk (its owner names the sender's hop only). */
const sameExchange = (a: SendOptions, b: SendOptions) =>
  a.protocol === b.protocol &&
  a.port === b.port &&
  a.size === b.size &&
  a.ttl === b.ttl &&
  a.dontFragment === b.dontFragment &&
  a.expectNamespace === b.expectNamespace;

export class FlowCache {
  /**
   * By sender, then destination, then the other options compared. Not one string key: making and
   * hashing a fresh string per probe was a fifth of a replay; the endpoint names are strings already
   * hashed.
   */
  private readonly flows = new Map<string, Map<string, Flow[]>>();
  private size = 0;
  private epoch = -1;

  /** The flow recorded for these options at this epoch (a new epoch forgets every flow). */
  get(options: SendOptions, epoch: number): Flow | undefined {
    if (epoch !== this.epoch) {
      this.flows.clear();
      this.size = 0;
      this.epoch = epoch;
      return undefined;
    }
    const list = this.flows.get(options.from)?.get(options.to);
    if (list) for (const flow of list) if (sameExchange(flow.options, options)) return flow;
    return undefined;
  }

  /** Keeps a walk recorded at `epoch` and time `now` (unchanged while it ran) if it can be replayed. */
  store(
    options: SendOptions,
    epoch: number,
    now: number,
    port: number,
    rec: FlowRecording,
    summary: TraceSummary,
  ): void {
    if (!rec.replayable || epoch !== this.epoch) return;
    const flow = portGeneric(options, now, port, rec, summary);
    if (!flow) return;
    if (this.size >= CAPACITY) {
      this.flows.clear();
      this.size = 0;
    }
    let byTo = this.flows.get(options.from);
    if (!byTo) this.flows.set(options.from, (byTo = new Map()));
    let list = byTo.get(options.to);
    if (!list) byTo.set(options.to, (list = []));
    list.push(flow);
    this.size++;
  }

  /**
   * The recorded exchange again with ephemeral port `port` at time `now`: its conntrack entries made
   * with the new tuples, its summary returned. Undefined, with nothing changed, when state the walk
   * relied on is not there any more: the caller walks instead.
   */
  replay(flow: Flow, port: number, now: number): TraceSummary | undefined {
    // This replay's derived ports, in the order of the recorded walk's (templates index them). A
    // template's port is read in place (`t[at + 3] < 0 ? t[at + 2] : PORTS[t[at + 3]]`) in each loop
    // below rather than through a helper: with helpers a warm overlay pair measured 3–10 % slower.
    PORTS[0] = port;
    const { encaps, misses, confirmed } = flow;
    let derived = 1;
    for (let at = 0; at < encaps.length; at += T) {
      const next = outerPort(
        hashTuple(
          encaps[at]!,
          encaps[at + 1]!,
          encaps[at + 3]! < 0 ? encaps[at + 2]! : PORTS[encaps[at + 3]!]!,
          encaps[at + 4]!,
          encaps[at + 6]! < 0 ? encaps[at + 5]! : PORTS[encaps[at + 6]!]!,
        ),
      );
      // Two derived ports falling together would make the new tuples ambiguous: walk instead.
      for (let i = 0; i < derived; i++) if (PORTS[i] === next) return undefined;
      PORTS[derived++] = next;
    }
    for (const t of flow.tracking) if ((t.ns.conntrackSize !== 0) !== t.tracked) return undefined;
    for (let at = 0, i = 0; at < misses.length; at += T, i++) {
      const protocol = misses[at]!;
      const src = misses[at + 1]!;
      const srcPort = misses[at + 3]! < 0 ? misses[at + 2]! : PORTS[misses[at + 3]!]!;
      const dst = misses[at + 4]!;
      const dstPort = misses[at + 6]! < 0 ? misses[at + 5]! : PORTS[misses[at + 6]!]!;
      const hash = hashTuple(protocol, src, srcPort, dst, dstPort);
      MISS_HASHES[i] = hash;
      if (flow.missIn[i]!.conntrack.holds(hash, protocol, src, srcPort, dst, dstPort, now)) return undefined;
    }
    for (let at = 0, i = 0; at < confirmed.length; at += 2 * T, i++) {
      const entry = replayedEntry();
      fill(entry.original, confirmed, at);
      fill(entry.reply, confirmed, at + T);
      entry.expires = now + flow.timeouts[i]!;
      // A new entry's original tuple is mostly one a lookup missed: its hash is known.
      const miss = flow.missOf[i]!;
      flow.confirmIn[i]!.conntrack.confirm(
        entry,
        now,
        miss < 0 ? tupleHash(entry.original) : MISS_HASHES[miss]!,
      );
    }
    return flow.summary;
  }
}

/**
 * The walk as a flow to replay, if its only dependence on its port is through the fields that carry
 * it: the derived ports (the port, the outer ports hashed from it) are distinct, every tuple carries
 * exactly one of them per direction (ICMP echo: its identifier, both), no rule compared one, and no
 * text names one.
 */
function portGeneric(
  options: SendOptions,
  now: number,
  port: number,
  rec: FlowRecording,
  summary: TraceSummary,
): Flow | undefined {
  const derived = [port];
  for (const e of rec.encaps) {
    if (derived.includes(e.port)) return undefined;
    derived.push(e.port);
  }
  for (const p of rec.ports) if (derived.includes(p)) return undefined;
  if (summary.deliveredTo?.port !== undefined && derived.includes(summary.deliveredTo.port)) return undefined;
  for (const p of derived) if (summary.reason.includes(String(p))) return undefined;
  let generic = true;
  // `known`: how many derived ports exist where the tuple is met (an inner flow cannot name the
  // outer port hashed from it, nor a later one).
  const template = (out: number[], t: ConnTuple, known = derived.length) => {
    const srcAt = derived.indexOf(t.srcPort);
    const dstAt = derived.indexOf(t.dstPort);
    const carries = t.protocol === ICMP ? srcAt >= 0 && srcAt === dstAt : srcAt >= 0 !== dstAt >= 0;
    if (!carries || srcAt >= known || dstAt >= known) generic = false;
    out.push(t.protocol, t.src, t.srcPort, srcAt, t.dst, t.dstPort, dstAt);
  };
  const flow: Flow = {
    options: { ...options },
    summary,
    encaps: [],
    misses: [],
    missIn: rec.misses.map((m) => m.ns),
    confirmed: [],
    confirmIn: rec.confirmed.map((c) => c.ns),
    // What the walk left them with: a RST after the SYN shortens an entry's life.
    timeouts: rec.confirmed.map((c) => c.entry.expires - now),
    missOf: rec.confirmed.map((c) =>
      rec.misses.findIndex((m) => m.ns === c.ns && sameTuple(m.tuple, c.entry.original)),
    ),
    tracking: rec.tracking,
  };
  rec.encaps.forEach((e, i) => template(flow.encaps, e.inner, i + 1));
  for (const m of rec.misses) template(flow.misses, m.tuple);
  for (const { entry } of rec.confirmed) {
    template(flow.confirmed, entry.original);
    template(flow.confirmed, entry.reply);
  }
  return generic ? flow : undefined;
}
