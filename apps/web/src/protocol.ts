/** Messages between the page and the simulation worker. Everything is plain data. */
import type { RunResult, ScenarioIssue } from "@podnet/cluster";
import type { NodeTables } from "@podnet/cluster";
import type { Trace } from "@podnet/sim";
import type { TableChange } from "./tables.js";

export interface DeviceInfo {
  name: string;
  kind: string;
  addresses: string[];
  master?: string;
  mtu: number;
}

export interface Snapshot {
  scenario: string;
  description: string;
  provider: string;
  /** kube-proxy's mode the cluster was built with. */
  proxy: string;
  segments: { name: string; subnet: string }[];
  routers: { name: string; interfaces: { segment: string; address: string }[] }[];
  hosts: { name: string; segment: string; address: string }[];
  nodes: { name: string; segment: string; address: string; podCidr?: string; devices: DeviceInfo[] }[];
  /**
   * `ports`: the ports the pod's containers listen on; `containerPorts[i]`: container i's, as the map
   * writes them (`80`, `53/UDP`).
   */
  pods: {
    name: string;
    node: string;
    ip: string;
    containers: string[];
    containerPorts: string[][];
    ports: number[];
  }[];
  /**
   * `endpoints`: the addresses of the pods the selector picks that are an endpoint of at least one
   * port (a named targetPort leaves out a pod with no container port of that name and protocol);
   * a named port's `endpoints`, how many pods it resolved to.
   */
  services: {
    name: string;
    namespace: string;
    /** How a probe names it: `svc/<ref>`, the name, or `name.namespace` where two namespaces hold the name. */
    ref: string;
    type: "ClusterIP" | "NodePort";
    clusterIP: string;
    /** `name`: set when the port has one; `protocol` as Kubernetes writes it. */
    ports: {
      name?: string;
      port: number;
      protocol: "TCP" | "UDP";
      targetPort?: number | string;
      nodePort?: number;
      endpoints?: number;
    }[];
    /** Set only when Local: which traffic reaches only the endpoints on its own node. */
    externalTrafficPolicy?: "Local";
    internalTrafficPolicy?: "Local";
    /** Set only with sessionAffinity ClientIP: its timeout in seconds. */
    affinitySeconds?: number;
    endpoints: string[];
  }[];
  refusals: { node: string; entry: string; reason: string }[];
  /** Present when the scenario holds NetworkPolicies: who may open a connection to whom. */
  policy?: PolicyTable;
}

/**
 * The allowed-connection matrix (`podnet policy check`) with sources and targets named as the map
 * names them: pods by name, outside hosts by name.
 */
export interface PolicyTable {
  /** Pods, then outside hosts. `label` is what the table prints (namespace/pod for a pod). */
  sources: { name: string; label: string }[];
  /** Every port a pod's containers or an outside host listens on. */
  targets: { name: string; label: string; protocol: "tcp" | "udp"; port: number }[];
  /** allowed[s * targets.length + t] is 1 when source s may open a connection to target t. */
  allowed: Uint8Array;
}

export type Request =
  /** `proxy`: kube-proxy's mode, overriding the scenario's. */
  | { id: number; type: "build"; text: string; file: string; provider: string; proxy?: string }
  | {
      id: number;
      type: "trace";
      from: string;
      to: string;
      protocol?: "icmp" | "tcp" | "udp";
      size?: number;
      /** ping -M: true = do, false = dont, unset = want (ping's default). */
      dontFragment?: boolean;
      /** Trace in the cluster as it was after this many of its events (the timeline's position). */
      events?: number;
      /** Through this endpoint of the Service: kube-proxy's draw made to pick it (`trace --endpoint`). */
      endpoint?: string;
      /** A hop at every filter hook passed, with what accepted the packet (`trace --hooks`). */
      hooks?: boolean;
    }
  | { id: number; type: "tables"; node: string; events?: number }
  | { id: number; type: "compare"; text: string; file: string; proxy?: string }
  | { id: number; type: "providers" };

/** One moment of a scenario with events: after the event, the map and what changed in the tables. */
export interface TimelineStep {
  at: number;
  description: string;
  snapshot: Snapshot;
  changes: TableChange[];
}

export interface ProviderInfo {
  name: string;
  /** One line: what the provider is. */
  description: string;
}

/**
 * A trace, and when the scenario holds NetworkPolicies (enforced by the iptables engine), the
 * verdict on the connection it carried, in words: which policy and rule allowed it, or why not.
 */
export type WalkTrace = Trace & {
  policy?: { allowed: boolean; explanation: string[] };
  /** How the sending socket sees it, where that differs from the path's end (`traceSocketNote`). */
  socket?: string;
  /**
   * A Service of several endpoints picked where it went (`ClusterRuntime.serviceDraw`): its
   * endpoints, and the one the trace was asked to go through, if any (else a random draw).
   */
  draw?: { service: string; endpoints: string[]; chosen?: string };
};

export type Reply =
  | { id: number; ok: true; snapshot: Snapshot; timeline?: TimelineStep[] }
  | { id: number; ok: true; trace: WalkTrace; pcap: Uint8Array }
  | { id: number; ok: true; tables: NodeTables }
  | { id: number; ok: true; results: RunResult[] }
  | { id: number; ok: true; providers: ProviderInfo[] }
  | { id: number; ok: false; message: string; issues?: ScenarioIssue[] };
