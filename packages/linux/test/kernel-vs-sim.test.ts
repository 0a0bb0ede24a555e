// The invariant behind every trace podnet draws: the simulator and the kernel agree. Each topology
// of the original notes is built twice through the same builder — on the simulator and on real
// namespaces — then probed the same way: the outcome and the TTL the answer arrives with must match.
import { formatIpv4 } from "@podnet/core";
import { LabTopology } from "@podnet/netlink/lab";
import { SimKernel } from "@podnet/sim";
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { connectTcp, listenTcp, ping, removeNamespaces, run } from "../src/index.js";
import { answerTtl, kernelTestRun, tcpOutcome } from "./kernel.js";
import {
  formatIptablesRule,
  rule,
  type IptablesRule,
  parseAddrArgument as cidr,
  parseAddressArgument as ip,
  parseLinkAddress as mac,
  parseRouteDst as net,
} from "@podnet/netlink";

const { system, linux, nextPrefix } = kernelTestRun(["ip", "bridge", "iptables", "sysctl", "ping", "socat"]);

type Build = (lab: LabTopology) => Promise<void>;

async function dockerNode(lab: LabTopology, node: string, address: string, pods: [string, string][]) {
  await lab.host(node, "lan", `${address}/24`);
  await lab.bridge(node, "docker0", "172.17.0.1/16");
  for (const [pod, ip] of pods) await lab.pod(node, pod, "docker0", `${ip}/16`, "172.17.0.1");
}

async function hostGw(lab: LabTopology, routesOnGateway: boolean) {
  const gateway = routesOnGateway ? { gateway: "10.100.0.1" } : {};
  await lab.host("node1", "lan", "10.100.0.2/24", gateway);
  await lab.host("node2", "lan", "10.100.0.3/24", gateway);
  await lab.bridge("node1", "cbr0", "10.0.1.1/24");
  await lab.bridge("node2", "cbr0", "10.0.2.1/24");
  await lab.pod("node1", "pod1", "cbr0", "10.0.1.2/24", "10.0.1.1");
  await lab.pod("node2", "pod2", "cbr0", "10.0.2.2/24", "10.0.2.1");
  const [a, b] = routesOnGateway ? ["gw", "gw"] : ["node1", "node2"];
  if (routesOnGateway) await lab.host("gw", "lan", "10.100.0.1/24", { forwarding: true });
  await lab.k.route.add(lab.ns(a), { dst: net("10.0.2.0/24"), via: ip("10.100.0.3") });
  await lab.k.route.add(lab.ns(b), { dst: net("10.0.1.0/24"), via: ip("10.100.0.2") });
}

async function vxlan(lab: LabTopology) {
  await lab.host("router", "seg-a", "192.168.1.1/24", { forwarding: true });
  await lab.host("router", "seg-b", "192.168.2.1/24", { nic: "eth1" });
  await lab.host("node1", "seg-a", "192.168.1.2/24", { gateway: "192.168.1.1" });
  await lab.host("node2", "seg-b", "192.168.2.2/24", { gateway: "192.168.2.1" });
  const nodes = [
    { name: "node1", ip: "192.168.1.2", n: 1 },
    { name: "node2", ip: "192.168.2.2", n: 2 },
  ] as const;
  for (const node of nodes) {
    const ns = lab.ns(node.name);
    await lab.k.link.add(ns, {
      kind: "vxlan",
      name: "flannel.1",
      vni: 1,
      local: ip(node.ip),
      dev: "eth0",
      dstport: 8472,
      learning: false,
    });
    await lab.k.addr.add(ns, "flannel.1", cidr(`10.244.${node.n}.0/32`));
    await lab.k.link.set(ns, "flannel.1", { up: true });
    await lab.bridge(node.name, "cni0", `10.244.${node.n}.1/24`, 1450);
    await lab.pod(node.name, `pod${node.n}`, "cni0", `10.244.${node.n}.2/24`, `10.244.${node.n}.1`, 1450);
  }
  for (const [a, b] of [
    [nodes[0], nodes[1]],
    [nodes[1], nodes[0]],
  ] as const) {
    const vtep = mac((await lab.k.link.list(lab.ns(b.name))).find((l) => l.ifname === "flannel.1")!.address);
    await lab.k.neigh.replace(lab.ns(a.name), {
      dst: ip(`10.244.${b.n}.0`),
      dev: "flannel.1",
      lladdr: vtep,
      state: "permanent",
    });
    await lab.k.fdb.append(lab.ns(a.name), {
      mac: vtep,
      dev: "flannel.1",
      dst: ip(b.ip),
      self: true,
      permanent: true,
    });
    await lab.k.route.replace(lab.ns(a.name), {
      dst: net(`10.244.${b.n}.0/24`),
      via: ip(`10.244.${b.n}.0`),
      dev: "flannel.1",
      onlink: true,
    });
  }
}

/**
 * A client, a server and a router on one LAN; the client sends 10.96.0.0/16 to the router, which
 * translates 10.96.0.10 to the server (a Service's DNAT, one hop away).
 */
async function translatingRouter(lab: LabTopology) {
  await lab.host("client", "lan", "10.100.0.5/24");
  await lab.host("server", "lan", "10.100.0.9/24");
  await lab.host("router", "lan", "10.100.0.1/24", { forwarding: true });
  await lab.k.route.add(lab.ns("client"), { dst: net("10.96.0.0/16"), via: ip("10.100.0.1") });
  await lab.k.iptables.append(
    lab.ns("router"),
    "nat",
    "PREROUTING",
    rule`-d 10.96.0.10/32 -j DNAT --to-destination 10.100.0.9`,
  );
}

/** host-gw with node2 rejecting what is addressed to its pod subnet's broadcast (TCP with a reset). */
async function rejectBroadcast(lab: LabTopology) {
  await hostGw(lab, false);
  const node2 = lab.ns("node2");
  await lab.k.iptables.append(
    node2,
    "filter",
    "INPUT",
    rule`-d 10.0.2.255/32 -p tcp -j REJECT --reject-with tcp-reset`,
  );
  await lab.k.iptables.append(node2, "filter", "INPUT", rule`-d 10.0.2.255/32 -j REJECT`);
}

/** host-gw with one nat PREROUTING rule on node2 (the far node). */
const hostGwPrerouting = (prerouting: IptablesRule) => async (lab: LabTopology) => {
  await hostGw(lab, false);
  await lab.k.iptables.append(lab.ns("node2"), "nat", "PREROUTING", prerouting);
};

/**
 * A pod behind node1, masqueraded as Kubernetes nodes do for traffic leaving the cluster; node1 sits on
 * seg-a, a router joins seg-a to seg-b, whose links have a 1400-byte MTU, and an outside host sits
 * on seg-b (the routed-segments scenario with a smaller segment behind the router).
 */
async function behindRouter(lab: LabTopology) {
  await lab.host("router", "seg-a", "192.168.1.1/24", { forwarding: true });
  await lab.host("router", "seg-b", "192.168.2.1/24", { nic: "eth1", mtu: 1400 });
  await lab.host("node1", "seg-a", "192.168.1.2/24", { gateway: "192.168.1.1" });
  await lab.host("outside", "seg-b", "192.168.2.2/24", { gateway: "192.168.2.1", mtu: 1400 });
  await lab.bridge("node1", "cbr0", "10.0.1.1/24");
  await lab.pod("node1", "pod1", "cbr0", "10.0.1.2/24", "10.0.1.1");
  await lab.k.iptables.append(
    lab.ns("node1"),
    "nat",
    "POSTROUTING",
    rule`-s 10.0.0.0/16 ! -d 10.0.0.0/16 -j MASQUERADE`,
  );
}

/** behindRouter, plus a Service address on node1 translated to the outside host (kube-proxy's DNAT). */
async function serviceBehindRouter(lab: LabTopology) {
  await behindRouter(lab);
  await lab.k.iptables.append(
    lab.ns("node1"),
    "nat",
    "PREROUTING",
    rule`-d 10.96.0.10/32 -j DNAT --to-destination 192.168.2.2`,
  );
}

interface Case {
  name: string;
  build: Build;
  from: string;
  to: string;
  size?: number;
  outcome: "reached" | "unreachable" | "dropped";
  ttl?: number;
  /** A phrase both ping's line and the trace's reason must contain. */
  mtu?: number;
  /** The TTL the request leaves with (ping -t). */
  sendTtl?: number;
  /** Path MTU discovery as ping -M names it; "do" unless given ("want" is ping's default). */
  df?: "do" | "want" | "dont";
  /** The source of the ICMP error as it reaches the sender (ping's "From …"). */
  icmpFrom?: string;
  /** Words both ping's message and the trace's reason hold. */
  says?: string;
}

const cases: Case[] = [
  {
    name: "docker0: two pods on one node, over the bridge",
    build: (l) =>
      dockerNode(l, "node1", "10.100.0.2", [
        ["pod-a", "172.17.0.2"],
        ["pod-b", "172.17.0.3"],
      ]),
    from: "pod-a",
    to: "172.17.0.3",
    outcome: "reached",
    ttl: 64,
  },
  {
    // br_netfilter is loaded (Docker and kubelet load it): a new namespace starts with
    // bridge-nf-call-iptables = 1, so a frame between two ports of one bridge meets filter FORWARD.
    name: "docker0 with filter FORWARD dropping everything: bridged frames meet it by default",
    build: async (l) => {
      await dockerNode(l, "node1", "10.100.0.2", [
        ["pod-a", "172.17.0.2"],
        ["pod-b", "172.17.0.3"],
      ]);
      await l.k.iptables.append(l.ns("node1"), "filter", "FORWARD", rule`-j DROP`);
    },
    from: "pod-a",
    to: "172.17.0.3",
    outcome: "dropped",
  },
  {
    name: "docker0 on two nodes: a pod on the other node is unreachable",
    build: async (l) => {
      await dockerNode(l, "node1", "10.100.0.2", [["pod-a", "172.17.0.2"]]);
      await dockerNode(l, "node2", "10.100.0.3", [["pod-b", "172.17.0.3"]]);
    },
    from: "pod-a",
    to: "172.17.0.3",
    outcome: "unreachable",
  },
  {
    name: "cbr0 + host-gw routes on every node",
    build: (l) => hostGw(l, false),
    from: "pod1",
    to: "10.0.2.2",
    outcome: "reached",
    ttl: 62,
  },
  {
    name: "cbr0 + routes on the underlay gateway",
    build: (l) => hostGw(l, true),
    from: "pod1",
    to: "10.0.2.2",
    outcome: "reached",
    ttl: 61,
  },
  {
    name: "cbr0 + host-gw: an address nobody holds in the other node's subnet",
    build: (l) => hostGw(l, false),
    from: "pod1",
    to: "10.0.2.99",
    outcome: "unreachable",
  },
  {
    // kube-proxy's NodePort match: node2's cbr0 address is LOCAL there, so the ping is DNAT'ed to pod2,
    // whose answer is routed twice (TTL 62; node2 answering itself would arrive with 63).
    name: "cbr0 + host-gw: -m addrtype --dst-type LOCAL takes a node's bridge address too",
    build: hostGwPrerouting(
      rule`! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DNAT --to-destination 10.0.2.2`,
    ),
    from: "pod1",
    to: "10.0.2.1",
    outcome: "reached",
    ttl: 62,
  },
  {
    name: "cbr0 + host-gw: ! --dst-type LOCAL leaves a node's own address alone",
    build: hostGwPrerouting(rule`-m addrtype ! --dst-type LOCAL -j DNAT --to-destination 10.0.2.2`),
    from: "pod1",
    to: "10.100.0.3",
    outcome: "reached",
    ttl: 63,
  },
  {
    name: "cbr0 + host-gw with forwarding off on the far node",
    build: async (l) => {
      await hostGw(l, false);
      await l.k.sysctl.set(l.ns("node2"), "net.ipv4.ip_forward", "0");
    },
    from: "pod1",
    to: "10.0.2.2",
    // Not forwarding is silent: no ICMP error comes back.
    outcome: "dropped",
  },
  {
    name: "VXLAN between nodes on two routed subnets",
    build: vxlan,
    from: "pod1",
    to: "10.244.2.2",
    outcome: "reached",
    ttl: 62,
  },
  {
    // node1's ARP for the VTEP fails: the outer packet is lost, and ping hears nothing of it (the host
    // unreachable the kernel makes is about node1's own UDP packet, not the pod's echo request).
    name: "VXLAN to a VTEP nobody answers ARP for on node1's segment: the pod's ping goes unanswered",
    build: async (l) => {
      await vxlan(l);
      const vtep = mac((await l.k.link.list(l.ns("node2"))).find((x) => x.ifname === "flannel.1")!.address);
      await l.k.fdb.replace(l.ns("node1"), {
        mac: vtep,
        dev: "flannel.1",
        dst: ip("192.168.1.77"),
        self: true,
        permanent: true,
      });
    },
    from: "pod1",
    to: "10.244.2.2",
    outcome: "dropped",
  },
  {
    name: "VXLAN: a 1500-byte DF packet from a pod left at MTU 1500",
    build: async (l) => {
      await vxlan(l);
      await l.k.link.set(l.ns("pod1"), "eth0", { mtu: 1500 });
      await l.k.link.set(l.ns("node1"), "veth-pod1", { mtu: 1500 });
      await l.k.link.set(l.ns("node1"), "cni0", { mtu: 1500 });
    },
    from: "pod1",
    to: "10.244.2.2",
    size: 1472,
    outcome: "unreachable",
    mtu: 1450,
  },
  {
    // conntrack RELATED: the router's error names node1's address inside; node1 un-NATs it to the pod.
    name: "masqueraded pod: fragmentation needed from a router comes back to the pod",
    build: behindRouter,
    from: "pod1",
    to: "192.168.2.2",
    size: 1472,
    outcome: "unreachable",
    mtu: 1400,
    icmpFrom: "192.168.1.1",
  },
  {
    // For a DNAT'ed flow the error's outer source becomes the Service address too, as ping shows.
    name: "Service address DNAT'ed past a router: fragmentation needed comes back from the Service address",
    build: serviceBehindRouter,
    from: "pod1",
    to: "10.96.0.10",
    size: 1472,
    outcome: "unreachable",
    mtu: 1400,
    icmpFrom: "10.96.0.10",
  },
  {
    // ping's default (-M want): DF on what fits the first link, so the router still says too big.
    name: "ping's default past a smaller link behind a router: DF set, fragmentation needed",
    build: behindRouter,
    from: "pod1",
    to: "192.168.2.2",
    size: 1472,
    df: "want",
    outcome: "unreachable",
    mtu: 1400,
    icmpFrom: "192.168.1.1",
  },
  {
    name: "ping's default over a pod link of MTU 1400: the sender fragments, no DF",
    build: async (l) => {
      await behindRouter(l);
      await l.k.link.set(l.ns("pod1"), "eth0", { mtu: 1400 });
      await l.k.link.set(l.ns("node1"), "veth-pod1", { mtu: 1400 });
    },
    from: "pod1",
    to: "192.168.2.2",
    size: 1472,
    df: "want",
    outcome: "reached",
    ttl: 62,
  },
  {
    name: "ping -M dont past a smaller link: the router fragments",
    build: behindRouter,
    from: "pod1",
    to: "192.168.2.2",
    size: 1472,
    df: "dont",
    outcome: "reached",
    ttl: 62,
  },
  {
    name: "Service address DNAT'ed past a router: TTL exceeded at the router comes back to the pod",
    build: serviceBehindRouter,
    from: "pod1",
    to: "10.96.0.10",
    sendTtl: 2,
    outcome: "unreachable",
    icmpFrom: "10.96.0.10",
  },
  {
    // The error quotes the packet as the sender sent it, from the Service address: REJECT's ICMP
    // error carries the packet's conntrack entry (DNAT chosen, not yet confirmed), which undoes it.
    name: "Service address DNAT'ed, then REJECTed in FORWARD: port unreachable comes back from the Service address",
    build: async (l) => {
      await serviceBehindRouter(l);
      await l.k.iptables.append(l.ns("node1"), "filter", "FORWARD", rule`-d 192.168.2.2/32 -j REJECT`);
    },
    from: "pod1",
    to: "10.96.0.10",
    outcome: "unreachable",
    icmpFrom: "10.96.0.10",
  },
  {
    // The same at the node that translated it: ip_forward's TTL check comes after PREROUTING's DNAT.
    name: "Service address DNAT'ed, TTL exceeded at the same node: the error comes back from the Service address",
    build: serviceBehindRouter,
    from: "pod1",
    to: "10.96.0.10",
    sendTtl: 1,
    outcome: "unreachable",
    icmpFrom: "10.96.0.10",
  },
  {
    // br_netfilter: a Service translated to an address behind the same bridge is bridged after its
    // neighbour resolves; one nobody holds fails there, and the link failure comes back as host
    // unreachable from the Service address (a TCP connect says EHOSTUNREACH, not a timeout).
    name: "docker0: a Service DNAT'ed to an address nobody on the bridge holds: host unreachable from the Service address",
    build: async (l) => {
      await dockerNode(l, "node1", "10.100.0.2", [["pod-a", "172.17.0.2"]]);
      await l.k.iptables.append(
        l.ns("node1"),
        "nat",
        "PREROUTING",
        rule`-d 10.96.0.10/32 -j DNAT --to-destination 172.17.0.9`,
      );
    },
    from: "pod-a",
    to: "10.96.0.10",
    outcome: "unreachable",
    icmpFrom: "10.96.0.10",
  },
  // Broadcast destinations (the kernel's local table): ping refuses one without -b, and a node
  // ignores an echo request sent to its own subnet's broadcast.
  {
    name: "ping to the pod's own subnet broadcast: refused without -b",
    build: (l) => hostGw(l, false),
    from: "pod1",
    to: "10.0.1.255",
    outcome: "unreachable",
    says: "Do you want to ping broadcast? Then -b",
  },
  {
    name: "ping to 255.255.255.255: refused without -b",
    build: (l) => hostGw(l, false),
    from: "pod1",
    to: "255.255.255.255",
    outcome: "unreachable",
    says: "Do you want to ping broadcast? Then -b",
  },
  {
    name: "ping to 127.255.255.255, lo's broadcast: refused without -b",
    build: (l) => hostGw(l, false),
    from: "pod1",
    to: "127.255.255.255",
    outcome: "unreachable",
    says: "Do you want to ping broadcast? Then -b",
  },
  {
    name: "host-gw: ping to the far node's pod subnet broadcast is routed there and ignored",
    build: (l) => hostGw(l, false),
    from: "pod1",
    to: "10.0.2.255",
    outcome: "dropped",
  },
  {
    name: "host-gw: a REJECT in INPUT answers nothing about a broadcast (no ICMP error)",
    build: rejectBroadcast,
    from: "pod1",
    to: "10.0.2.255",
    outcome: "dropped",
  },
  {
    name: "VXLAN: ping to the far node's pod subnet broadcast crosses the tunnel and is ignored",
    build: vxlan,
    from: "pod1",
    to: "10.244.2.255",
    outcome: "dropped",
  },
];

/** ping's -M and -t as options both the simulator's send and the real ping take. */
function pingOptions(df: "do" | "want" | "dont", ttl?: number) {
  return {
    ...(df === "want" ? {} : { dontFragment: df === "do" }),
    ...(ttl === undefined ? {} : { ttl }),
  };
}

/** Who sent the ICMP error the sender received, as the trace shows it. */
function icmpSource(trace: ReturnType<SimKernel["send"]>, origin: string): string | undefined {
  const hop = trace.hops.find((h) => h.ns === origin && h.event === "deliver" && h.direction === "reply");
  const header = hop?.packet.headers[0];
  return header?.kind === "ipv4" ? formatIpv4(header.src) : undefined;
}

/**
 * A pod connecting to a Service address whose endpoint is the pod itself, on a bridge with
 * br_netfilter: the DNAT'ed frame is bridged back out of the port it came in on (hairpin), and the pod
 * takes it only when its source was masqueraded (kube-proxy's KUBE-MARK-MASQ for -s endpoint).
 */
async function selfService(lab: LabTopology, hairpin: boolean, masquerade: boolean) {
  await lab.host("node1", "lan", "10.100.0.2/24");
  await lab.bridge("node1", "cbr0", "10.0.1.1/24");
  await lab.pod("node1", "pod1", "cbr0", "10.0.1.2/24", "10.0.1.1");
  if (hairpin) await lab.k.link.set(lab.ns("node1"), "veth-pod1", { hairpin: true });
  const node = lab.ns("node1");
  await lab.k.iptables.append(
    node,
    "nat",
    "PREROUTING",
    rule`-d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.1.2:8080`,
  );
  if (masquerade)
    await lab.k.iptables.append(
      node,
      "nat",
      "POSTROUTING",
      rule`-s 10.0.1.2/32 -d 10.0.1.2/32 -j MASQUERADE`,
    );
}

/**
 * One TCP connection `from` → `to`:`port` on the simulator and on the kernel, each built by `build`
 * with a listener ("web") on pod1:8080: the outcome each gives.
 */
async function tcpOnBoth(
  seed: string,
  build: Build,
  from: string,
  to: string,
  port: number,
): Promise<{ kernel: string; sim: string }> {
  const { kernel, sim } = await tcpSeriesOnBoth(seed, build, from, to, port, 1);
  return { kernel: kernel[0]!, sim: sim[0]! };
}

/** `count` TCP connections in turn, each from a new port, on both: the outcomes in order. */
async function tcpSeriesOnBoth(
  seed: string,
  build: Build,
  from: string,
  to: string,
  port: number,
  count: number,
): Promise<{ kernel: string[]; sim: string[] }> {
  const sim = new LabTopology(new SimKernel({ seed }));
  await build(sim);
  sim.k.listen("pod1", { protocol: "tcp", port: 8080, owner: "web" });
  const simulated = Array.from(
    { length: count },
    () => sim.k.send({ from, to, protocol: "tcp", port }).outcome,
  );
  const real = new LabTopology(linux, nextPrefix());
  try {
    await build(real);
    const listener = await listenTcp(real.ns("pod1"), 8080, "web");
    try {
      const kernel: string[] = [];
      for (let i = 0; i < count; i++)
        kernel.push(tcpOutcome(await connectTcp(real.ns(from), to, port, 2000)));
      return { kernel, sim: simulated };
    } finally {
      listener.kill();
    }
  } finally {
    await removeNamespaces(linux, real.prefix);
  }
}

/**
 * host-gw with a Service on node2 (10.96.0.10:80 DNAT-ed to pod1:8080 on node1) and one filter
 * FORWARD rule on node2 over conntrack states, DNAT's virtual one among them.
 */
const dnatState = (forward: IptablesRule) => async (lab: LabTopology) => {
  await hostGwPrerouting(
    rule`-d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.1.2:8080`,
  )(lab);
  await lab.k.iptables.append(lab.ns("node2"), "filter", "FORWARD", forward);
};

describe.skipIf(system.skip)("the simulator agrees with the kernel", () => {
  // xt_conntrack's virtual DNAT state, plain and negated (kube-proxy's KUBE-FIREWALL reads
  // `! --ctstate RELATED,ESTABLISHED,DNAT`): a connection to the Service is translated, one straight
  // to the pod is not.
  for (const [forward, service, direct] of [
    [rule`-m conntrack --ctstate DNAT -j DROP`, "dropped", "reached"],
    [rule`-m conntrack ! --ctstate ESTABLISHED,DNAT -j DROP`, "reached", "dropped"],
  ] as const) {
    it(`FORWARD ${formatIptablesRule(forward)}: the Service ${service}, the pod itself ${direct}`, async () => {
      const build = dnatState(forward);
      expect(await tcpOnBoth("dnat-state", build, "pod2", "10.96.0.10", 80)).toEqual({
        kernel: service,
        sim: service,
      });
      expect(await tcpOnBoth("dnat-state", build, "pod2", "10.0.1.2", 8080)).toEqual({
        kernel: direct,
        sim: direct,
      });
    });
  }

  for (const [hairpin, masquerade, outcome] of [
    [false, true, "dropped"],
    [true, false, "dropped"],
    [true, true, "reached"],
  ] as const) {
    it(`a pod reaching a Service that picks itself: hairpin ${hairpin ? "on" : "off"}, ${masquerade ? "" : "no "}masquerade → ${outcome}`, async () => {
      const build: Build = (lab) => selfService(lab, hairpin, masquerade);
      expect(await tcpOnBoth("hairpin", build, "pod1", "10.96.0.10", 80)).toEqual({
        kernel: outcome,
        sim: outcome,
      });
    });
  }

  // A NodePort on 127.0.0.1, as kube-proxy's iptables mode writes it: OUTPUT DNATs the loopback
  // destination to a pod, which only route_localnet lets leave lo, and only masquerade lets the pod
  // answer (a source in 127/8 is a martian to it).
  for (const [localnet, masquerade, outcome] of [
    [false, true, "dropped"],
    [true, true, "reached"],
    [true, false, "dropped"],
  ] as const) {
    it(`a node connecting to 127.0.0.1 DNAT'ed to a pod: route_localnet ${localnet ? 1 : 0}, ${masquerade ? "" : "no "}masquerade → ${outcome}`, async () => {
      const build = async (lab: LabTopology) => {
        await hostGw(lab, false);
        const node = lab.ns("node1");
        await lab.k.sysctl.set(node, "net.ipv4.conf.all.route_localnet", localnet ? "1" : "0");
        await lab.k.iptables.append(
          node,
          "nat",
          "OUTPUT",
          rule`-d 127.0.0.1/32 -p tcp -m tcp --dport 30080 -j DNAT --to-destination 10.0.1.2:8080`,
        );
        if (masquerade)
          await lab.k.iptables.append(node, "nat", "POSTROUTING", rule`-s 127.0.0.0/8 -j MASQUERADE`);
      };
      expect(await tcpOnBoth("localnet", build, "node1", "127.0.0.1", 30080)).toEqual({
        kernel: outcome,
        sim: outcome,
      });
    });
  }

  // kube-proxy's session affinity: xt_recent files a client's address with --set and finds it again
  // with --rcheck. The first connection is filed and sent to 9090 (nobody listens: refused); the
  // next ones find the client and go to 8080.
  it("-m recent: a client filed by --set is found by --rcheck on its next connections", async () => {
    const build: Build = async (lab) => {
      await hostGw(lab, false);
      const node2 = lab.ns("node2");
      for (const r of [
        rule`-d 10.96.0.10/32 -p tcp -m tcp --dport 80 -m recent --rcheck --seconds 10800 --reap --name AFF -j DNAT --to-destination 10.0.1.2:8080`,
        rule`-d 10.96.0.10/32 -p tcp -m recent --set --name AFF -m tcp --dport 80 -j DNAT --to-destination 10.0.1.2:9090`,
      ])
        await lab.k.iptables.append(node2, "nat", "PREROUTING", r);
    };
    expect(await tcpSeriesOnBoth("recent", build, "pod2", "10.96.0.10", 80, 3)).toEqual({
      kernel: ["refused", "reached", "reached"],
      sim: ["refused", "reached", "reached"],
    });
  });

  it("a TCP reset REJECT answers nothing about a broadcast: the SYN goes unanswered", async () => {
    expect(await tcpOnBoth("reject", rejectBroadcast, "pod1", "10.0.2.255", 80)).toEqual({
      kernel: "dropped",
      sim: "dropped",
    });
  });

  it("UDP to 127.0.0.1 DNAT'ed off lo without route_localnet: the sender is told EINVAL", async () => {
    const build: Build = async (lab) => {
      await hostGw(lab, false);
      await lab.k.sysctl.set(lab.ns("node1"), "net.ipv4.conf.all.route_localnet", "0");
      await lab.k.iptables.append(
        lab.ns("node1"),
        "nat",
        "OUTPUT",
        rule`-d 127.0.0.1/32 -j DNAT --to-destination 10.0.1.2`,
      );
    };
    const sim = new LabTopology(new SimKernel({ seed: "localnet-udp" }));
    await build(sim);
    const trace = sim.k.send({ from: "node1", to: "127.0.0.1", protocol: "udp", port: 53 });
    const real = new LabTopology(linux, nextPrefix());
    try {
      await build(real);
      const code = `require("dgram").createSocket("udp4").send("x", 53, "127.0.0.1", (e) => { console.log(e ? e.code : "sent"); process.exit(0); });`;
      const { stdout } = await run(["ip", "netns", "exec", real.ns("node1"), process.execPath, "-e", code]);
      expect({ kernel: stdout.trim(), sim: trace.outcome }).toEqual({ kernel: "EINVAL", sim: "unreachable" });
      expect(trace.reason).toContain("sendto: Invalid argument");
    } finally {
      await removeNamespaces(linux, real.prefix);
    }
  });

  it("UDP and TCP: the answer must come back from where the sender sent, or the probe fails", async () => {
    // A client, a server whose listeners answer their name (as the lab's do), and a router on one LAN.
    // The client sends to the server, and to 10.96.0.10, which the router translates to it.
    const variants: [string, (lab: LabTopology) => Promise<unknown>][] = [
      ["direct", async () => {}],
      [
        "no way back",
        (lab) => lab.k.route.add(lab.ns("server"), { dst: net("10.100.0.5/32"), via: ip("10.100.0.77") }),
      ],
      // The server answers 10.96.0.10's packets straight over the LAN: never un-NATed.
      ["translated, answered around the router", async () => {}],
      [
        "translated, answered through the router",
        (lab) => lab.k.route.add(lab.ns("server"), { dst: net("10.100.0.5/32"), via: ip("10.100.0.1") }),
      ],
    ];
    const build = async (lab: LabTopology, variant: (lab: LabTopology) => Promise<unknown>) => {
      await translatingRouter(lab);
      await variant(lab);
    };
    const target = (name: string) => (name.startsWith("translated") ? "10.96.0.10" : "10.100.0.9");
    const simulated: string[] = [];
    for (const [name, variant] of variants) {
      const sim = new LabTopology(new SimKernel({ seed: "answer" }));
      await build(sim, variant);
      for (const protocol of ["udp", "tcp"] as const) {
        sim.k.listen("server", { protocol, port: 53, owner: "dns" });
        simulated.push(
          `${protocol} ${sim.k.send({ from: "client", to: target(name), protocol, port: 53 }).outcome}`,
        );
      }
    }
    const kernel: string[] = [];
    for (const [name, variant] of variants) {
      const real = new LabTopology(linux, nextPrefix());
      const listeners: ReturnType<typeof spawn>[] = [];
      try {
        await build(real, variant);
        const echo = `const s = require("dgram").createSocket("udp4");
s.on("message", (_m, peer) => s.send("dns\\n", peer.port, peer.address, () => {}));
s.bind(53, () => console.log("bound"));`;
        const udp = spawn("ip", ["netns", "exec", real.ns("server"), process.execPath, "-e", echo], {
          stdio: ["ignore", "pipe", "ignore"],
        });
        listeners.push(udp);
        await new Promise<void>((resolve) => udp.stdout!.once("data", () => resolve()));
        listeners.push(await listenTcp(real.ns("server"), 53, "dns"));
        const probe = `const s = require("dgram").createSocket("udp4");
const done = (o) => { console.log(o); process.exit(0); };
setTimeout(() => done("dropped"), 1500);
s.on("message", () => done("reached"));
s.on("error", () => done("unreachable"));
s.connect(53, ${JSON.stringify(target(name))}, () => s.send("probe"));`;
        const { stdout } = await run([
          "ip",
          "netns",
          "exec",
          real.ns("client"),
          process.execPath,
          "-e",
          probe,
        ]);
        kernel.push(`udp ${stdout.trim()}`);
        kernel.push(`tcp ${tcpOutcome(await connectTcp(real.ns("client"), target(name), 53, 1500))}`);
      } finally {
        for (const listener of listeners) listener.kill();
        await removeNamespaces(linux, real.prefix);
      }
    }
    const expected = [
      "reached",
      "reached",
      "dropped",
      "dropped",
      "dropped",
      "dropped",
      "reached",
      "reached",
    ].map((outcome, i) => `${i % 2 ? "tcp" : "udp"} ${outcome}`);
    expect({ kernel, sim: simulated }).toEqual({ kernel: expected, sim: expected });
  }, 60_000);

  it("a UDP answer's source is the route back's, and a firewall's reset after a DNAT is un-NATed", async () => {
    const echo = `const s = require("dgram").createSocket("udp4");
s.on("message", (_m, peer) => s.send("dns\\n", peer.port, peer.address, () => {}));
s.bind(53, () => console.log("bound"));`;
    const udpProbe = (to: string) => `const s = require("dgram").createSocket("udp4");
const done = (o) => { console.log(o); process.exit(0); };
setTimeout(() => done("dropped"), 1500);
s.on("message", () => done("reached"));
s.on("error", () => done("unreachable"));
s.connect(53, ${JSON.stringify(to)}, () => s.send("probe"));`;
    // A pod sending to its node's eth0 address and to docker0's; the node's listener is bound to 0.0.0.0.
    const node = async (lab: LabTopology) => {
      await dockerNode(lab, "node1", "10.100.0.2", [["pod-a", "172.17.0.2"]]);
    };
    // A client whose TCP to 10.96.0.10 a router translates to a server, then rejects with a reset.
    const rejecting = async (lab: LabTopology) => {
      await translatingRouter(lab);
      await lab.k.iptables.append(
        lab.ns("router"),
        "filter",
        "FORWARD",
        rule`-p tcp -j REJECT --reject-with tcp-reset`,
      );
    };
    const sim = new LabTopology(new SimKernel({ seed: "answer-source" }));
    await node(sim);
    sim.k.listen("node1", { protocol: "udp", port: 53, owner: "dns" });
    const simReset = new LabTopology(new SimKernel({ seed: "reset" }));
    await rejecting(simReset);
    const simulated = [
      ...["10.100.0.2", "172.17.0.1"].map(
        (to) => sim.k.send({ from: "pod-a", to, protocol: "udp", port: 53 }).outcome,
      ),
      simReset.k.send({ from: "client", to: "10.96.0.10", protocol: "tcp", port: 80 }).outcome,
    ];
    const kernel: string[] = [];
    const real = new LabTopology(linux, nextPrefix());
    const realReset = new LabTopology(linux, nextPrefix());
    let listener: ReturnType<typeof spawn> | undefined;
    try {
      await node(real);
      listener = spawn("ip", ["netns", "exec", real.ns("node1"), process.execPath, "-e", echo], {
        stdio: ["ignore", "pipe", "ignore"],
      });
      await new Promise<void>((resolve) => listener!.stdout!.once("data", () => resolve()));
      for (const to of ["10.100.0.2", "172.17.0.1"]) {
        const { stdout } = await run([
          "ip",
          "netns",
          "exec",
          real.ns("pod-a"),
          process.execPath,
          "-e",
          udpProbe(to),
        ]);
        kernel.push(stdout.trim());
      }
      await rejecting(realReset);
      kernel.push(tcpOutcome(await connectTcp(realReset.ns("client"), "10.96.0.10", 80, 1500)));
    } finally {
      listener?.kill();
      await removeNamespaces(linux, real.prefix);
      await removeNamespaces(linux, realReset.prefix);
    }
    expect({ kernel, sim: simulated }).toEqual({
      kernel: ["dropped", "reached", "refused"],
      sim: ["dropped", "reached", "refused"],
    });
  }, 60_000);

  it("UDP to a far subnet's broadcast: a listener there takes it, and its answer, from another address, is not the sender's", async () => {
    // The echo says what it took, so the kernel's side shows the datagram arrived.
    const echo = `const s = require("dgram").createSocket("udp4");
s.on("message", (_m, peer) => { console.log("took " + peer.address); s.send("dns\\n", peer.port, peer.address, () => {}); });
s.bind(53, () => console.log("bound"));`;
    const probe = `const s = require("dgram").createSocket("udp4");
const done = (o) => { console.log(o); process.exit(0); };
setTimeout(() => done("dropped"), 1500);
s.on("message", () => done("reached"));
s.on("error", () => done("unreachable"));
s.connect(53, "10.0.2.255", () => s.send("probe"));`;
    const sim = new LabTopology(new SimKernel({ seed: "far-broadcast" }));
    await hostGw(sim, false);
    sim.k.listen("node2", { protocol: "udp", port: 53, owner: "dns" });
    const trace = sim.k.send({ from: "pod1", to: "10.0.2.255", protocol: "udp", port: 53 });
    const real = new LabTopology(linux, nextPrefix());
    let listener: ReturnType<typeof spawn> | undefined;
    let heard = "";
    let outcome = "";
    try {
      await hostGw(real, false);
      listener = spawn("ip", ["netns", "exec", real.ns("node2"), process.execPath, "-e", echo], {
        stdio: ["ignore", "pipe", "ignore"],
      });
      listener.stdout!.on("data", (d: Buffer) => (heard += d.toString()));
      await new Promise<void>((resolve) => listener!.stdout!.once("data", () => resolve()));
      const { stdout } = await run(["ip", "netns", "exec", real.ns("pod1"), process.execPath, "-e", probe]);
      outcome = stdout.trim();
    } finally {
      listener?.kill();
      await removeNamespaces(linux, real.prefix);
    }
    expect({ kernel: outcome, sim: trace.outcome }).toEqual({ kernel: "dropped", sim: "dropped" });
    expect(heard).toContain("took 10.0.1.2");
    expect(trace.reason).toBe(
      "delivered to dns on broadcast 10.0.2.255:53 (node2), but the answer was dropped: udp from 10.100.0.3:53: the sender's socket is connected to 10.0.2.255:53 and does not take it (at pod1)",
    );
  }, 30_000);

  it("TCP to a broadcast address: connect() refuses the pod's own, and a SYN to a far subnet's goes unanswered", async () => {
    const sim = new LabTopology(new SimKernel({ seed: "broadcast" }));
    await hostGw(sim, false);
    sim.k.listen("node2", { protocol: "tcp", port: 80, owner: "web" });
    const targets = ["10.0.1.255", "255.255.255.255", "10.0.2.255"];
    const simulated = targets.map(
      (to) => sim.k.send({ from: "pod1", to, protocol: "tcp", port: 80 }).outcome,
    );
    const real = new LabTopology(linux, nextPrefix());
    try {
      await hostGw(real, false);
      const listener = await listenTcp(real.ns("node2"), 80, "web");
      try {
        const kernel: string[] = [];
        for (const to of targets) kernel.push(tcpOutcome(await connectTcp(real.ns("pod1"), to, 80, 1500)));
        expect({ kernel, sim: simulated }).toEqual({
          kernel: ["unreachable", "unreachable", "dropped"],
          sim: ["unreachable", "unreachable", "dropped"],
        });
      } finally {
        listener.kill();
      }
    } finally {
      await removeNamespaces(linux, real.prefix);
    }
  });

  it("TCP sizes its segments by the MSS and the learned path MTU: 4000 bytes cross a 1400-byte link", async () => {
    // The outside host's link is 1500, so it offers MSS 1460; only the router's port is 1400. The
    // first full segment meets "fragmentation needed"; the sender learns 1400 and sends smaller ones.
    const build = async (lab: LabTopology) => {
      await behindRouter(lab);
      await lab.k.link.set(lab.ns("outside"), "eth0", { mtu: 1500 });
      await lab.k.link.set(lab.ns("underlay"), "outside-eth0", { mtu: 1500 });
    };
    const sim = new LabTopology(new SimKernel({ seed: "mss" }));
    await build(sim);
    sim.k.listen("outside", { protocol: "tcp", port: 8080, owner: "counter" });
    const trace = sim.k.send({ from: "pod1", to: "192.168.2.2", protocol: "tcp", port: 8080, size: 4000 });
    const real = new LabTopology(linux, nextPrefix());
    const outside = ip("192.168.2.2");
    try {
      await build(real);
      const listener = await listenTcp(real.ns("outside"), 8080, "", { count: true });
      try {
        const result = await connectTcp(real.ns("pod1"), "192.168.2.2", 8080, 5000, 4000);
        expect(result).toEqual({ outcome: "connected", reply: "4000" });
      } finally {
        listener.kill();
      }
      expect({ kernel: "reached", sim: trace.outcome }).toEqual({ kernel: "reached", sim: "reached" });
      expect(trace.data).toEqual({ bytes: 4000, segments: 3, largest: 1360 });
      expect({
        kernel: (await real.k.route.get(real.ns("pod1"), outside)).mtu,
        sim: (await sim.k.route.get("pod1", outside)).mtu,
      }).toEqual({ kernel: 1400, sim: 1400 });
    } finally {
      await removeNamespaces(linux, real.prefix);
    }
  });

  it("learns a path MTU from fragmentation needed: route get shows it, DF sends are refused, the default fragments", async () => {
    const sim = new LabTopology(new SimKernel({ seed: "pmtu" }));
    await behindRouter(sim);
    const real = new LabTopology(linux, nextPrefix());
    const outside = ip("192.168.2.2");
    try {
      await behindRouter(real);
      const steps: { df: "do" | "want"; outcome: string }[] = [
        { df: "do", outcome: "unreachable" },
        { df: "do", outcome: "unreachable" },
        { df: "want", outcome: "reached" },
      ];
      for (const [i, step] of steps.entries()) {
        const options = { size: 1472, ...pingOptions(step.df) };
        const trace = sim.k.send({ from: "pod1", to: "192.168.2.2", ...options });
        const result = await ping(real.ns("pod1"), "192.168.2.2", options);
        expect({ step: i, kernel: result.outcome, sim: trace.outcome }).toEqual({
          step: i,
          kernel: step.outcome,
          sim: step.outcome,
        });
        if (i === 1) {
          // The second DF send fails in the sender: ping's "local error: message too long, mtu=1400".
          expect(result.detail).toContain("message too long, mtu=1400");
          expect(trace.reason).toContain("message too long, mtu=1400");
        }
        if (i === 0) {
          const learned = await real.k.route.get(real.ns("pod1"), outside);
          expect({ kernel: learned.mtu, sim: (await sim.k.route.get("pod1", outside)).mtu }).toEqual({
            kernel: 1400,
            sim: 1400,
          });
          // The node only forwarded the error (conntrack RELATED): it learned nothing.
          expect((await real.k.route.get(real.ns("node1"), outside)).mtu).toBeUndefined();
          expect((await sim.k.route.get("node1", outside)).mtu).toBeUndefined();
        }
      }
    } finally {
      await removeNamespaces(linux, real.prefix);
    }
  });

  it("a new namespace starts with the kernel's bridge-nf-call-iptables", async () => {
    const sim = new SimKernel();
    await sim.netns.add("fresh");
    const name = `${nextPrefix()}fresh`;
    await linux.netns.add(name);
    try {
      const key = "net.bridge.bridge-nf-call-iptables";
      expect(await sim.sysctl.get("fresh", key)).toBe(await linux.sysctl.get(name, key));
    } finally {
      await linux.netns.del(name);
    }
  });

  for (const c of cases) {
    it(c.name, async () => {
      const sim = new LabTopology(new SimKernel({ seed: "diff" }));
      await c.build(sim);
      const options = { size: c.size ?? 56, ...pingOptions(c.df ?? "do", c.sendTtl) };
      const trace = sim.k.send({ from: c.from, to: c.to, ...options });

      const real = new LabTopology(linux, nextPrefix());
      try {
        await c.build(real);
        const result = await ping(real.ns(c.from), c.to, options);
        expect({ kernel: result.outcome, sim: trace.outcome }).toEqual({ kernel: c.outcome, sim: c.outcome });
        if (c.ttl !== undefined)
          expect({ kernel: result.ttl, sim: answerTtl(trace, c.from) }).toEqual({
            kernel: c.ttl,
            sim: c.ttl,
          });
        if (c.mtu !== undefined) {
          expect(result.detail).toContain(`mtu = ${c.mtu}`);
          expect(trace.reason).toContain(`mtu ${c.mtu}`);
        }
        if (c.says !== undefined) {
          expect(result.detail).toContain(c.says);
          expect(trace.reason).toContain(c.says);
        }
        if (c.icmpFrom !== undefined)
          expect({ kernel: result.from, sim: icmpSource(trace, c.from) }).toEqual({
            kernel: c.icmpFrom,
            sim: c.icmpFrom,
          });
      } finally {
        await removeNamespaces(linux, real.prefix);
      }
    });
  }
});
