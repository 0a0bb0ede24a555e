/**
 * The Service proxy as a plugin: kube-proxy's iptables mode (one chain walked rule by rule) or its
 * nftables mode (verdict maps looked up once). Both keep every node's Service NAT in step with the
 * cluster, with a full sync per node and a partial sync per changed Service.
 */
import type { ClusterNetwork, NodeNetwork } from "@podnet/cni";
import type { Netlink } from "@podnet/netlink";
import type { Tally } from "./apply.js";
import { IptablesProxy } from "./proxy.js";
import { NftablesProxy } from "./proxy-nftables.js";
import type { Service } from "./services.js";

export interface ServiceProxy {
  readonly name: ProxyName;
  /** The Services, by "namespace/name". */
  readonly services: Map<string, Service>;
  /** Records a Service; returns the value it replaces. */
  set(service: Service): Service | undefined;
  replaceAll(services: Iterable<Service>): void;
  /** Forgets a Service; returns the value it had. */
  delete(namespace: string, name: string): Service | undefined;
  /** A node that left: should it come back, it takes a full sync first. */
  forget(node: string): void;
  /** A full sync of one node: reads what it holds, writes the difference. */
  sync(tally: Tally, node: NodeNetwork): Promise<void>;
  /** One Service went from `before` to `after` (absent: created, deleted): a partial sync of one node. */
  changed(tally: Tally, node: NodeNetwork, before?: Service, after?: Service): Promise<void>;
}

export const SERVICE_PROXIES = {
  iptables: (n: Netlink, cluster: ClusterNetwork): ServiceProxy => new IptablesProxy(n, cluster),
  nftables: (n: Netlink, cluster: ClusterNetwork): ServiceProxy => new NftablesProxy(n, cluster),
} as const;

export type ProxyName = keyof typeof SERVICE_PROXIES;
export const PROXY_NAMES = Object.keys(SERVICE_PROXIES) as [ProxyName, ...ProxyName[]];
