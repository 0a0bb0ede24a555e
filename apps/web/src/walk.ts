/**
 * The packet walk as data: which hops are steps (numbered 1…n), which box of the map each step is at,
 * the links the packet crosses between two steps, and each step's headers compared with the step before.
 * Pure functions, so the view only draws and the unit tests can check the walk without a browser.
 */
import { IcmpType, TcpFlags, decodeHeader, formatHeader, type Header } from "@podnet/core";
import type { Trace, TraceHop } from "@podnet/sim";
import type { Snapshot } from "./protocol.js";
import type { Box, Edge, Layout } from "./topology.js";

export interface Step {
  /** 1-based, without gaps: the number the user sees. */
  n: number;
  /** Index into trace.hops. */
  index: number;
  hop: TraceHop;
  /** The map box the packet is at, if the map draws that place. */
  box?: string;
}

/**
 * The steps of a walk: every decision, not the wire crossings between them (the packet moving along a
 * link shows those), optionally without the reply leg.
 */
export function walkSteps(
  trace: Trace,
  withReply: boolean,
  boxOf: (hop: TraceHop) => string | undefined,
): Step[] {
  const steps: Step[] = [];
  trace.hops.forEach((hop, index) => {
    if (hop.event === "transmit" || hop.event === "receive") return;
    if (!withReply && hop.direction === "reply") return;
    const box = boxOf(hop);
    steps.push({ n: steps.length + 1, index, hop, ...(box ? { box } : {}) });
  });
  return steps;
}

/**
 * Where a hop happened on the map: the bridge or VXLAN device box when the map draws it (a veth's host
 * end counts as its bridge), else the namespace's box; the underlay's hops are at their segment. A pod
 * the map does not draw is in its node's box; in a collapsed segment, in the segment's summary box.
 */
export function hopLocator(s: Snapshot, boxes: ReadonlySet<string>): (hop: TraceHop) => string | undefined {
  const nodes = new Map(s.nodes.map((n) => [n.name, n]));
  const pods = new Map(s.pods.map((p) => [p.name, p]));
  const segmentOf = new Map<string, string>();
  for (const n of s.nodes) segmentOf.set(n.name, n.segment);
  for (const h of s.hosts) segmentOf.set(h.name, h.segment);
  for (const r of s.routers) if (r.interfaces[0]) segmentOf.set(r.name, r.interfaces[0].segment);
  const summary = (node: string | undefined) => {
    const segment = node ? nodes.get(node)?.segment : undefined;
    return segment && boxes.has(`sum:${segment}`) ? `sum:${segment}` : undefined;
  };
  return (hop) => {
    if (hop.ns === "underlay") {
      if (hop.dev && boxes.has(`seg:${hop.dev}`)) return `seg:${hop.dev}`;
      // A port of the segment's bridge is named after what it connects: node1-eth0.
      const owner = hop.dev?.replace(/-[^-]+$/, "");
      const segment = owner ? segmentOf.get(owner) : undefined;
      return segment ? `seg:${segment}` : undefined;
    }
    const node = nodes.get(hop.ns);
    if (node && hop.dev) {
      const device = node.devices.find((d) => d.name === hop.dev);
      for (const name of [hop.dev, device?.master])
        if (name && boxes.has(`dev:${hop.ns}:${name}`)) return `dev:${hop.ns}:${name}`;
    }
    if (boxes.has(`ns:${hop.ns}`)) return `ns:${hop.ns}`;
    // A pod the map does not draw on its own is in its node's box.
    const host = node?.name ?? pods.get(hop.ns)?.node;
    return host && boxes.has(`ns:${host}`) ? `ns:${host}` : summary(host);
  };
}

export interface Leg {
  edge: Edge;
  /** True when the packet crosses the edge from its `from` end to its `to` end. */
  forward: boolean;
}

/** The links between two boxes (breadth-first over the map's edges, which are undirected for packets). */
export function legsBetween(edges: readonly Edge[], from: string | undefined, to: string | undefined): Leg[] {
  if (!from || !to || from === to) return [];
  const via = new Map<string, Leg | null>([[from, null]]);
  const queue = [from];
  while (queue.length) {
    const at = queue.shift()!;
    if (at === to) break;
    for (const edge of edges) {
      const next = edge.from === at ? edge.to : edge.to === at ? edge.from : undefined;
      if (next === undefined || via.has(next)) continue;
      via.set(next, { edge, forward: edge.from === at });
      queue.push(next);
    }
  }
  if (!via.has(to)) return [];
  const legs: Leg[] = [];
  for (let at = to; at !== from;) {
    const leg = via.get(at)!;
    legs.unshift(leg);
    at = leg.forward ? leg.edge.from : leg.edge.to;
  }
  return legs;
}

export interface Point {
  x: number;
  y: number;
}

/** Where the packet rests at a box: just above it, so the box's own words stay readable. */
const anchor = (b: Box): Point => ({ x: b.x + b.width / 2, y: b.y - 14 });

/** The line the packet follows from one box to the next: through the bends of the links between them. */
export function travelLine(
  view: Layout,
  from: string | undefined,
  to: string | undefined,
  legs: Leg[],
): Point[] {
  const box = (id: string | undefined) => view.boxes.find((b) => b.id === id);
  const start = box(from);
  const end = box(to);
  if (!end) return [];
  const points: Point[] = start ? [anchor(start)] : [];
  for (const leg of legs) points.push(...(leg.forward ? leg.edge.points : [...leg.edge.points].reverse()));
  points.push(anchor(end));
  return points;
}

/** The point a fraction t (0…1) of the way along a polyline. */
export function pointAlong(points: readonly Point[], t: number): Point {
  if (points.length < 2) return points[0] ?? { x: 0, y: 0 };
  const lengths = points.slice(1).map((p, i) => Math.hypot(p.x - points[i]!.x, p.y - points[i]!.y));
  let remaining = Math.min(1, Math.max(0, t)) * lengths.reduce((a, b) => a + b, 0);
  for (let i = 0; i < lengths.length; i++) {
    const a = points[i]!;
    const b = points[i + 1]!;
    if (remaining <= lengths[i]! || i === lengths.length - 1) {
      const f = lengths[i] ? Math.min(1, remaining / lengths[i]!) : 1;
      return { x: a.x + (b.x - a.x) * f, y: a.y + (b.y - a.y) * f };
    }
    remaining -= lengths[i]!;
  }
  return points.at(-1)!;
}

/** A packet's headers split at the VXLAN header: the outer (underlay) ones and the inner (pod) ones. */
export function headerGroups(headers: readonly Header[]): { outer: Header[]; inner: Header[] } {
  const vxlan = headers.findIndex((h) => h.kind === "vxlan");
  return vxlan < 0
    ? { outer: [], inner: [...headers] }
    : { outer: headers.slice(0, vxlan + 1), inner: headers.slice(vxlan + 1) };
}

export type Token = { text: string; before?: string };

export interface HeaderLine {
  kind: Header["kind"];
  status: "same" | "changed" | "added" | "removed";
  text: string;
  /** Word by word, with the word it replaced where it changed (NAT's before → after). */
  tokens: Token[];
  /** `quoted`: the packet an ICMP error is about, as the error quotes it (IP header and 8 bytes). */
  group: "outer" | "inner" | "quoted";
}

function tokens(before: string | undefined, after: string): Token[] {
  const words = after.split(" ");
  const old = before?.split(" ");
  if (!old || old.length !== words.length) return words.map((text) => ({ text }));
  return words.map((text, i) => (old[i] === text ? { text } : { text, before: old[i]! }));
}

/**
 * Each header of a step against the step before, aligned from the innermost header out, so headers an
 * encapsulation put in front are "added" and those a decapsulation took off are "removed", while the
 * inner packet keeps its identity and only its changed words (TTL, a NAT-ed address) are marked.
 */
export function headerDiff(
  previous: readonly Header[] | undefined,
  current: readonly Header[],
): HeaderLine[] {
  const vxlanAt = (hs: readonly Header[]) => hs.findIndex((h) => h.kind === "vxlan");
  const group = (hs: readonly Header[], i: number): "outer" | "inner" =>
    vxlanAt(hs) >= 0 && i <= vxlanAt(hs) ? "outer" : "inner";
  const lines: HeaderLine[] = [];
  const prev = previous ?? [];
  const offset = prev.length - current.length;
  // Headers the previous step had in front of the ones still here: taken off at this step.
  if (previous)
    for (let i = 0; i < offset; i++) {
      const text = formatHeader(prev[i]!);
      lines.push({
        kind: prev[i]!.kind,
        status: "removed",
        text,
        tokens: tokens(undefined, text),
        group: "outer",
      });
    }
  current.forEach((h, i) => {
    const text = formatHeader(h);
    const before = previous ? prev[i + offset] : undefined;
    const beforeText = before && before.kind === h.kind ? formatHeader(before) : undefined;
    const status = !previous
      ? "same"
      : !before || before.kind !== h.kind
        ? "added"
        : beforeText === text
          ? "same"
          : "changed";
    lines.push({
      kind: h.kind,
      status,
      text,
      tokens: tokens(status === "changed" ? beforeText : undefined, text),
      group: group(current, i),
    });
  });
  return lines;
}

/**
 * The step whose packet this step's is compared with: the last earlier step of the same leg carrying the
 * same innermost protocol (so an ARP exchange in between does not make the whole ICMP packet "new").
 */
export function previousStep(steps: readonly Step[], at: number): Step | undefined {
  const current = steps[at];
  if (!current) return undefined;
  const inner = current.hop.packet.headers.at(-1)?.kind;
  for (let i = at - 1; i >= 0; i--) {
    const s = steps[i]!;
    if (s.hop.direction === current.hop.direction && s.hop.packet.headers.at(-1)?.kind === inner) return s;
  }
  return undefined;
}

/** Whether the packet at a hop travels inside another (a VXLAN-encapsulated frame). */
export const encapsulated = (hop: TraceHop): boolean => hop.packet.headers.some((h) => h.kind === "vxlan");

/**
 * The step where the walk went wrong, if it did: the drop or ICMP error, the delivery to the wrong
 * namespace, or else the last step of a failed trace.
 */
export function failureStep(trace: Trace, steps: readonly Step[]): Step | undefined {
  const drop = steps.find((s) => s.hop.event === "drop" || s.hop.event === "icmp-error");
  if (drop) return drop;
  // A wrong destination went wrong where the request was taken, not where the answer came back.
  if (trace.outcome === "wrong-destination")
    return steps.find((s) => s.hop.event === "deliver" && s.hop.direction === "request") ?? steps.at(-1);
  return trace.outcome === "reached" || trace.outcome === "refused" ? undefined : steps.at(-1);
}

/** ICMP errors: they quote the packet they are about. */
const isIcmpError = (h: Header | undefined): boolean =>
  h?.kind === "icmp" && (h.type === IcmpType.DEST_UNREACHABLE || h.type === IcmpType.TIME_EXCEEDED);

/**
 * The packet an ICMP error quotes, decoded from the error's payload: its IP header and, when the 8
 * quoted bytes hold one whole, its ICMP or UDP header. Empty for any other packet. NAT rewrites the
 * quote too (conntrack's RELATED), so the walk shows it changing on the way back.
 */
export function quotedHeaders(hop: TraceHop): Header[] {
  if (!isIcmpError(hop.packet.headers.at(-1))) return [];
  const quote = hop.packet.payload;
  if (quote.length < 20) return [];
  // The quote stops 8 bytes after the IP header; the header's total length is the original packet's.
  const total = (quote[2]! << 8) | quote[3]!;
  const bytes = new Uint8Array(Math.max(quote.length, total));
  bytes.set(quote);
  try {
    const ip = decodeHeader("ipv4", bytes);
    const kind = { 1: "icmp", 17: "udp" }[ip.header.protocol as 1 | 17] as "icmp" | "udp" | undefined;
    if (!kind || quote.length < ip.end + 8) return [ip.header];
    return [ip.header, decodeHeader(kind, bytes, ip.end, ip.end + 8).header];
  } catch {
    return [];
  }
}

/** Each step's quoted packet against the step before's, as header lines grouped "quoted". */
export function quotedDiff(previous: TraceHop | undefined, current: TraceHop): HeaderLine[] {
  const now = quotedHeaders(current);
  if (!now.length) return [];
  const before = previous ? quotedHeaders(previous) : [];
  return headerDiff(before.length ? before : undefined, now).map((l) => ({ ...l, group: "quoted" }));
}

export interface Fragments {
  count: number;
  /** The longest fragment's IP packet, in bytes. */
  largest: number;
}

/**
 * Whether the packet travels as fragments at each step: from a `fragment` step that cut it ("sent as
 * 3 fragments of at most 1448 bytes") until the one that reassembled it, on the same leg.
 */
export function fragmentsAt(steps: readonly Step[]): (Fragments | undefined)[] {
  let now: Fragments | undefined;
  let leg: string | undefined;
  return steps.map((s) => {
    const { event, detail, direction } = s.hop;
    if (direction !== leg) now = undefined;
    leg = direction;
    if (event !== "fragment") return now;
    const cut = /as (\d+) fragments of at most (\d+) bytes/.exec(detail);
    if (cut) return (now = { count: Number(cut[1]), largest: Number(cut[2]) });
    // Reassembled here: this step still handles the fragments, the next ones see the whole packet.
    const at = now;
    now = undefined;
    return at;
  });
}

/**
 * The part of the exchange a step belongs to, in a few words — the TCP handshake's SYN and SYN-ACK, the
 * data segments, an echo request or reply, an ICMP error coming back — for the step list's headings.
 * ARP steps belong to the packet that waits for them.
 */
export function phases(trace: Trace, steps: readonly Step[]): string[] {
  let last = "";
  return steps.map((s) => {
    const inner = s.hop.packet.headers.at(-1);
    if (inner && inner.kind !== "arp" && inner.kind !== "ethernet") last = phaseOf(trace, inner, s.hop);
    return last;
  });
}

function phaseOf(trace: Trace, h: Header, hop: TraceHop): string {
  const leg = hop.direction === "reply" ? "back" : "there";
  if (h.kind === "tcp") {
    if (h.flags & TcpFlags.SYN)
      return h.flags & TcpFlags.ACK ? "TCP handshake: SYN-ACK" : "TCP handshake: SYN";
    if (h.flags & TcpFlags.RST) return `TCP reset (RST) ${leg}`;
    const d = trace.data;
    return d
      ? `TCP data: ${d.bytes} bytes as ${d.segments} segment${d.segments === 1 ? "" : "s"} of at most ${d.largest} bytes (the first walked)`
      : `TCP segment ${leg}`;
  }
  if (h.kind === "icmp") {
    if (isIcmpError(h)) return `ICMP error back to the sender: ${formatHeader(h).replace(/^icmp /, "")}`;
    if (h.type === IcmpType.ECHO_REQUEST) return "ICMP echo request";
    if (h.type === IcmpType.ECHO_REPLY) return "ICMP echo reply";
  }
  return `${h.kind.toUpperCase()} ${hop.direction}`;
}
