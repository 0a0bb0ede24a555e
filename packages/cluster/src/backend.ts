/**
 * What the cluster runtime needs from a place to build a cluster: a host API, a name prefix for the
 * namespaces it makes, sockets that listen, a way to attach a pod through the provider's CNI plugin,
 * and probes. The simulator is one backend (here); real network namespaces are another (@podnet/lab).
 * The runtime is the same code over both.
 */
import { addPod, delPod, type CniResult, type NetworkProvider, type PodAttachment } from "@podnet/cni";
import type { Netlink } from "@podnet/netlink";
import { SimKernel, type SendOptions, type Trace, type TraceSummary } from "@podnet/sim";

export type { PodAttachment };

export interface ProbeRequest {
  /** The namespace the probe starts in, and the process ("pod/container") it starts from. */
  fromNs: string;
  owner?: string;
  to: string;
  protocol: "icmp" | "tcp" | "udp";
  port?: number;
  /** Payload bytes after the ICMP/UDP/TCP header, as ping -s counts them. */
  size?: number;
  /** ping -M: true = do, false = dont, unset = want (ping's default). */
  dontFragment?: boolean;
  ttl?: number;
  srcPort?: number;
  /** The namespace the sender means to reach; arriving elsewhere is a wrong destination. */
  expectNs?: string;
  /** What the expected listener answers with (its owner), to tell a wrong pod on real sockets. */
  expectOwner?: string;
  /**
   * For a Service's ClusterIP or NodePort: the Service and its endpoints (by selector, not by
   * address: under docker-bridge an endpoint's address is another pod's too). An answer, even a RST,
   * from anyone else is a wrong destination, as it is for a pod target.
   */
  service?: { name: string; endpointNs: string[]; owners: string[] };
}

/** What a probe's socket saw, in classes both backends can tell apart. */
export interface ProbeResult {
  outcome: "reached" | "refused" | "wrong-destination" | "unreachable" | "dropped";
  /** TTL of the answer as it arrived at the sender (ICMP echo). */
  ttl?: number;
  /** A sentence: what happened. */
  detail: string;
}

export interface ClusterBackend {
  readonly netlink: Netlink;
  /** Prefix of every namespace this cluster makes ("" in the simulator). */
  readonly prefix: string;
  /** Whether pods of different nodes may be attached at the same time (real processes: yes). */
  readonly parallelNodes?: boolean;
  /** A socket that accepts connections (TCP) or datagrams (UDP) on `port` in `ns`. */
  listen(ns: string, socket: { protocol: "tcp" | "udp"; port: number; owner: string }): Promise<void>;
  /** Attaches a pod through the provider's CNI plugin, as a container runtime would. */
  attachPod(provider: NetworkProvider, pod: PodAttachment): Promise<CniResult>;
  detachPod(provider: NetworkProvider, pod: PodAttachment): Promise<void>;
  /**
   * Ends what runs in a namespace about to be deleted (a pod's containers, a node's listeners): a
   * process keeps a namespace alive after its name is gone. Backends whose sockets go with the
   * namespace (the simulator) need none.
   */
  stopProcessesIn?(ns: string): Promise<void>;
  probe(request: ProbeRequest): Promise<ProbeResult>;
  /**
   * How many routes, permanent neighbours and remote FDB entries a namespace holds, when the backend
   * can count without listing them (the simulator); otherwise the metrics read the entries.
   */
  tableSizes?(ns: string): TableSizes;
}

export interface TableSizes {
  routes: number;
  permanentNeighbours: number;
  remoteFdb: number;
}

/** The simulated kernel as a backend: sockets are simulated, probes are traces. */
export class SimBackend implements ClusterBackend {
  readonly prefix = "";
  readonly netlink: SimKernel;

  /** `flowCache: false` walks every probe (the flow cache's differential tests). */
  constructor(seed: string, options: { flowCache?: boolean } = {}) {
    this.netlink = new SimKernel({ seed, ...options });
  }

  async listen(ns: string, socket: { protocol: "tcp" | "udp"; port: number; owner: string }): Promise<void> {
    this.netlink.listen(ns, socket);
  }

  tableSizes(ns: string): TableSizes {
    return this.netlink.tableSizes(ns);
  }

  attachPod(provider: NetworkProvider, pod: PodAttachment): Promise<CniResult> {
    return addPod(provider, this.netlink, pod);
  }

  detachPod(provider: NetworkProvider, pod: PodAttachment): Promise<void> {
    return delPod(provider, this.netlink, pod);
  }

  /**
   * One simulated exchange, hop by hop: what `ClusterRuntime.trace` returns. `endpoint` makes its
   * Service draw pick that endpoint; `hooks` adds a hop at every filter hook passed.
   */
  send(request: ProbeRequest, extra: Pick<SendOptions, "endpoint" | "hooks"> = {}): Trace {
    return judged(request, this.netlink.send({ ...sendOptions(request), ...extra }));
  }

  /** The same exchange summarised; a repeated one is answered from the simulator's flow cache. */
  summary(request: ProbeRequest): TraceSummary {
    return judged(request, this.netlink.probe(sendOptions(request)));
  }

  /** What the sending socket sees (`socketOutcome`). */
  async probe(request: ProbeRequest): Promise<ProbeResult> {
    const summary = this.summary(request);
    const ttl = request.protocol === "icmp" ? summary.answer?.ttl : undefined;
    return {
      outcome: socketOutcome(request.protocol, summary),
      ...(ttl !== undefined ? { ttl } : {}),
      detail: socketReason(request.protocol, summary, summary.reason),
    };
  }
}

/**
 * A walk's outcome as the sending socket sees it, the way a probe on the kernel reports it. A TCP or
 * UDP socket that gets an ICMP port unreachable (kube-proxy's REJECT for a Service with no
 * endpoints) fails with ECONNREFUSED, as for a RST: that is "refused", although the trace calls the
 * path unreachable (no endpoint was reached). A UDP socket is told only of the errors Linux holds
 * fatal (`icmp_err_convert`, and fragmentation needed): a time exceeded, or a network or host
 * unreachable (a router's, or a node finding no one at a pod's address), is a soft error it never
 * hears of — its datagram was lost, as far as it can tell. TCP hears of them all while connecting.
 */
export function socketOutcome(
  protocol: ProbeRequest["protocol"],
  summary: Pick<TraceSummary, "outcome" | "answer">,
): TraceSummary["outcome"] {
  const icmp = summary.answer?.icmp;
  if (protocol === "icmp" || summary.outcome !== "unreachable" || !icmp) return summary.outcome;
  if (icmp.type === 3 && icmp.code === 3) return "refused";
  if (protocol === "udp" && (icmp.type === 11 || (icmp.type === 3 && SOFT_UNREACHABLE.has(icmp.code))))
    return "dropped";
  return summary.outcome;
}

/**
 * The walk's reason with what the socket makes of it, where the two differ in a way the reason does
 * not say: a UDP probe that is dropped to its socket while the path ends in an ICMP error.
 */
export function socketReason(
  protocol: ProbeRequest["protocol"],
  summary: Pick<TraceSummary, "outcome" | "answer">,
  reason: string,
): string {
  return summary.outcome === "unreachable" && socketOutcome(protocol, summary) === "dropped"
    ? `${reason} (an error a UDP socket is not told of: no answer, as far as it can tell)`
    : reason;
}

/** ICMP destination unreachable codes Linux does not report to a UDP socket: net, host, source route, and by TOS. */
const SOFT_UNREACHABLE = new Set([0, 1, 5, 11, 12]);

/**
 * `socketOutcome` of a trace with its hops: the protocol is the one its first packet carried, the
 * answer the last reply delivered where the trace began, as a summary takes it.
 */
export function traceSocketOutcome(trace: Trace): TraceSummary["outcome"] {
  const first = trace.hops[0]?.packet.headers.find(
    (h) => h.kind === "tcp" || h.kind === "udp" || h.kind === "icmp",
  );
  const origin = trace.hops[0]?.ns;
  const hop = trace.hops.findLast((h) => h.direction === "reply" && h.event === "deliver" && h.ns === origin);
  const icmp = hop?.packet.headers.find((h) => h.kind === "icmp");
  return socketOutcome(first?.kind === "tcp" || first?.kind === "udp" ? first.kind : "icmp", {
    outcome: trace.outcome,
    ...(icmp?.kind === "icmp" ? { answer: { ttl: 0, icmp: { type: icmp.type, code: icmp.code } } } : {}),
  });
}

/**
 * How the sending socket sees a trace whose path ends otherwise, in a sentence (`podnet trace`, the
 * web app's walk); undefined when the two agree.
 */
export function traceSocketNote(trace: Trace): string | undefined {
  const socket = traceSocketOutcome(trace);
  if (socket === trace.outcome) return undefined;
  const why =
    socket === "refused"
      ? "ECONNREFUSED"
      : "a UDP socket is not told of a host or network unreachable or a time exceeded";
  return `to the sending socket this is ${socket} (${why}), as \`podnet run\` reports it`;
}

/** The hop where the request was translated on its way (its first DNAT): kube-proxy took an endpoint. */
export function translationHop(trace: Trace): Trace["hops"][number] | undefined {
  return trace.hops.find((h) => h.direction === "request" && h.event === "nat" && / DNAT /.test(h.detail));
}

/** Whether the request was translated on its way (a DNAT hop): kube-proxy's rules met, an endpoint taken. */
export const requestTranslated = (trace: Trace): boolean => translationHop(trace) !== undefined;

function sendOptions(request: ProbeRequest): SendOptions {
  return {
    from: request.fromNs,
    owner: request.owner,
    to: request.to,
    protocol: request.protocol,
    port: request.port,
    srcPort: request.srcPort,
    size: request.size,
    ttl: request.ttl,
    dontFragment: request.dontFragment,
    expectNamespace: request.expectNs,
  };
}

/** A Service's probe that landed on a pod outside its endpoints reached the wrong destination. */
function judged<T extends TraceSummary | Trace>(request: ProbeRequest, trace: T): T {
  const { service } = request;
  const landed = trace.deliveredTo?.ns;
  if (!service || !landed || service.endpointNs.includes(landed)) return trace;
  return {
    ...trace,
    outcome: "wrong-destination",
    reason: `reached ${landed}, which is not an endpoint of svc/${service.name} (endpoints: ${service.endpointNs.join(", ") || "none"}): ${trace.reason}`,
  };
}
