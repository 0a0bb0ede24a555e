/**
 * kube-proxy's job: every node's Service rules (ClusterIP, NodePort), written as kube-proxy's
 * iptables chains. A sync rewrites only the chains whose rules differ from what the node holds.
 */
import type { ClusterNetwork, NodeNetwork } from "@podnet/cni";
import { appendRuleOnce, sameRule, type NatTable, type Netlink } from "@podnet/netlink";
import type { Tally } from "./apply.js";
import { ServiceRuleCache, serviceTables, type Service } from "./services.js";

export class ServiceProxy {
  readonly services = new Map<string, Service>();
  /** Each Service's kube-proxy rules, computed once per Service value. */
  private readonly serviceRules = new ServiceRuleCache();

  constructor(
    private readonly n: Netlink,
    private readonly cluster: ClusterNetwork,
  ) {}

  set(service: Service): void {
    this.services.set(`${service.namespace}/${service.name}`, service);
  }

  replaceAll(services: Iterable<Service>): void {
    this.services.clear();
    for (const service of services) this.set(service);
  }

  delete(namespace: string, name: string): void {
    this.services.delete(`${namespace}/${name}`);
  }

  /** Writes kube-proxy's chains on one node, rewriting only chains whose rules differ. */
  async sync(tally: Tally, node: NodeNetwork): Promise<void> {
    const n = this.n;
    const ns = node.ns;
    const desired = serviceTables(
      this.services.values(),
      this.cluster.clusterCidr,
      node.address,
      this.serviceRules,
    );
    for (const table of ["nat", "filter"] as NatTable[]) {
      const want = table === "nat" ? desired.nat : desired.filter;
      const have = new Map(
        (await n.iptables.list(ns, table))
          .filter((c) => c.name.startsWith("KUBE-"))
          .map((c) => [c.name, c.rules]),
      );
      for (const chain of want) if (!have.has(chain.name)) await n.iptables.newChain(ns, table, chain.name);
      for (const chain of want) {
        const before = have.get(chain.name) ?? [];
        const after = chain.rules;
        if (before.length === after.length && before.every((r, i) => sameRule(r, after[i]!))) continue;
        if (before.length) await n.iptables.flush(ns, table, chain.name);
        for (const r of after) await n.iptables.append(ns, table, chain.name, r);
        tally.count(node.name, "removed", before.length);
        tally.count(node.name, "added", after.length);
      }
      for (const hook of desired.hooks.filter((h) => h.table === table)) {
        if (await appendRuleOnce(n, ns, table, hook.chain, hook.rule)) tally.count(node.name, "added");
      }
      const wanted = new Set(want.map((c) => c.name));
      const gone = [...have.keys()].filter((name) => !wanted.has(name));
      for (const name of gone) {
        await n.iptables.flush(ns, table, name);
        tally.count(node.name, "removed", have.get(name)!.length);
      }
      for (const name of gone) await n.iptables.deleteChain(ns, table, name);
    }
  }
}
