/**
 * What the scenario check holds while it reads a scenario in the runtime's order: the names,
 * addresses, subnets, ports and ClusterIPs in use, the runtime's allocators, and the issues found.
 * The checks themselves are by subsystem: check-network.ts (cluster CIDRs, underlay, envelope),
 * check-workload.ts (nodes, pods, hostPorts, events), check-objects.ts (Services, namespaces,
 * NetworkPolicies) and check-traffic.ts.
 */
import { Ipv4Prefix, isIpv4, quoteInput as q } from "@podnet/core";
import type { NodeCidrAllocator } from "@podnet/ipam";
import type { ScenarioIssue } from "./load.js";
import type { PodSpec, Scenario } from "./schema.js";
import { existingNamespaces, missingNamespace } from "./check-objects.js";
import { generates } from "./generate.js";
import { ServiceIndex } from "./service-ref.js";

export { SCENARIO_LIMITS, beyondEnvelope, plural } from "./schema.js";

/** kube-controller-manager refuses a node mask more than 16 bits longer than the cluster CIDR's. */
export const CLUSTER_SUBNET_MAX_DIFF = 16;

export type Path = (string | number)[];

/** The namespaces and NetworkPolicies (namespace/name) a scenario's manifest files declare. */
export interface ManifestNames {
  namespaces: string[];
  policies: string[];
}

export class CheckState {
  readonly issues: ScenarioIssue[] = [];
  readonly cluster: Ipv4Prefix;
  readonly services: Ipv4Prefix;
  readonly segments = new Map<string, Ipv4Prefix>();
  /** Every name in use now, and what holds it. */
  readonly names = new Map<string, string>();
  /** Every underlay address in use now, and who holds it. */
  readonly addresses = new Map<number, string>();
  readonly nodes = new Map<string, { podCidr?: string; pods: number; address: number }>();
  readonly pods = new Map<string, PodSpec>();
  /** Published ports by node, port and protocol: the pods holding them, and on which address. */
  readonly hostPorts = new Map<string, { pod: string; hostIP: number }[]>();
  /** Each Service as the check has it so far; `path`: where it was first defined. */
  readonly serviceState = new ServiceIndex<{
    clusterIP?: string;
    nodePorts: string[];
    /** Its ports' names, for a target that names one (`svc/web:http`). */
    ports: { name: string }[];
    path: Path;
  }>();
  /** ClusterIPs and NodePorts (`port/protocol`) taken: the Service holding each, `namespace/name`. */
  readonly clusterIPs = new Map<string, string>();
  readonly nodePorts = new Map<string, string>();
  readonly podCidrs = new Map<string, string>();
  /** `existingNamespaces` of the scenario, made once. */
  namespaces?: Set<string>;
  /** The pod subnets and ClusterIPs in those maps that the allocators gave out (none was pinned). */
  readonly allocated = new Set<string>();
  /**
   * The runtime's allocators, driven as it drives them (pinned values reserved first, then the
   * others handed out in order, events after): an event that pins a pod subnet or ClusterIP the
   * allocator gave away is refused here, at its place, not by the runtime halfway through a build.
   * Undefined when the cluster or service CIDR is refused already.
   */
  podSubnets?: NodeCidrAllocator;
  serviceIps?: NodeCidrAllocator;
  readonly nodeCapacity: number;
  readonly podCapacity: number;
  readonly serviceCapacity: number;
  /** The generate block, when it could not be made (said at its field). */
  unmade?: NonNullable<Scenario["generate"]>;

  constructor(
    readonly s: Scenario,
    /** What the scenario's `manifests:` files hold, read before the check: events may name them. */
    readonly manifests: ManifestNames = { namespaces: [], policies: [] },
  ) {
    this.cluster = Ipv4Prefix.parse(s.cluster.clusterCidr);
    this.services = Ipv4Prefix.parse(s.cluster.serviceCidr);
    const mask = s.cluster.nodeMaskSize;
    this.nodeCapacity =
      mask < this.cluster.length || mask - this.cluster.length > CLUSTER_SUBNET_MAX_DIFF
        ? Infinity // reported below; no capacity check on top of that
        : this.cluster.subnetCount(mask);
    // host-local hands out a node subnet less its network, gateway and broadcast addresses.
    this.podCapacity = Math.max(0, 2 ** (32 - mask) - 3);
    // The service allocator holds back the network address, .1 and the broadcast address.
    this.serviceCapacity = Math.max(0, this.services.size - 3);
  }

  /** `first`: where the one this path repeats is defined, said after the message with its place. */
  fail(path: Path, message: string, first?: Path): void {
    // A generated node or pod has no fields in the file: its problem is the generate field that
    // made it (and, resized, the flag that set that field), said once, not once per node or pod.
    if (path[0] === "generate") {
      const field = path.slice(0, 2);
      if (!this.issues.some((i) => i.path[0] === "generate" && i.path[1] === field[1]))
        this.issues.push({ path: field, message });
    } else this.issues.push({ path, message, ...(first ? { first: { path: first } } : {}) });
  }

  /**
   * An unknown name that the generate block would have made, had it not failed: its problem was
   * said at the block, so a pod, event or probe using it is not refused again for it.
   */
  unmadeName(name: string): boolean {
    return this.unmade !== undefined && generates(this.unmade, name);
  }

  claim(path: Path, name: string, what: string): boolean {
    if (name === "underlay") {
      this.fail(path, `"underlay" is reserved for the underlay's own namespace`);
      return false;
    }
    // Probes name their targets by name or address: a name that is an address would take the
    // address's probes (a pod "10.0.0.5" answering for whatever holds 10.0.0.5).
    if (isIpv4(name)) {
      this.fail(path, `${what} name ${q(name)} reads as an IPv4 address: probes could not tell them apart`);
      return false;
    }
    const previous = this.names.get(name);
    if (previous) {
      this.fail(path, `${what} name ${q(name)} is already used by a ${previous}`);
      return false;
    }
    this.names.set(name, what);
    return true;
  }

  /** An object (a policy, a Service) goes into a namespace that exists. */
  requireNamespace(path: Path, namespace: string): void {
    this.namespaces ??= new Set([...existingNamespaces(this.s), ...this.manifests.namespaces]);
    if (!this.namespaces.has(namespace))
      this.fail(path, missingNamespace(namespace, " and namespaces: does not declare it"));
  }

  /**
   * One step of an allocator; undefined when it refuses: none left (reported by count) or a value
   * outside its range (reported where it is written).
   */
  drive<T>(allocator: NodeCidrAllocator | undefined, step: (a: NodeCidrAllocator) => T): T | undefined {
    try {
      return allocator ? step(allocator) : undefined;
    } catch {
      return undefined;
    }
  }
}
