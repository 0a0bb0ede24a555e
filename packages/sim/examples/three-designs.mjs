// The original notes' two nodes (10.100.0.2 and 10.100.0.3 on 10.100.0.0/24) built three ways in the
// simulated kernel — docker0 on each node, cbr0 with host-gw routes, and a VXLAN overlay — and the
// same pod-to-pod ping traced under each. Writes what crossed node1's eth0 as pcap files.
// Run: node packages/sim/examples/three-designs.mjs [out-dir]
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { formatHeader } from "@podnet/core";
import { LabTopology } from "@podnet/netlink/lab";
import { SimKernel, tracePcap } from "@podnet/sim";

async function dockerBridge(lab) {
  for (const [node, ip, pod, podIp] of [
    ["node1", "10.100.0.2", "pod1", "172.17.0.2"],
    ["node2", "10.100.0.3", "pod2", "172.17.0.3"],
  ]) {
    await lab.host(node, "lan", `${ip}/24`, { gateway: "10.100.0.1" });
    await lab.bridge(node, "docker0", "172.17.0.1/16");
    await lab.pod(node, pod, "docker0", `${podIp}/16`, "172.17.0.1");
  }
  return "172.17.0.3";
}

async function hostGw(lab) {
  for (const [node, ip, n] of [
    ["node1", "10.100.0.2", 1],
    ["node2", "10.100.0.3", 2],
  ]) {
    await lab.host(node, "lan", `${ip}/24`);
    await lab.bridge(node, "cbr0", `10.0.${n}.1/24`);
    await lab.pod(node, `pod${n}`, "cbr0", `10.0.${n}.2/24`, `10.0.${n}.1`);
  }
  await lab.k.route.add("node1", { dst: "10.0.2.0/24", via: "10.100.0.3" });
  await lab.k.route.add("node2", { dst: "10.0.1.0/24", via: "10.100.0.2" });
  return "10.0.2.2";
}

async function overlay(lab) {
  const nodes = [
    ["node1", "10.100.0.2", 1],
    ["node2", "10.100.0.3", 2],
  ];
  for (const [node, ip, n] of nodes) {
    await lab.host(node, "lan", `${ip}/24`);
    await lab.k.link.add(node, {
      kind: "vxlan",
      name: "flannel.1",
      vni: 1,
      local: ip,
      dev: "eth0",
      dstport: 8472,
      learning: false,
    });
    await lab.k.addr.add(node, "flannel.1", `10.0.${n}.0/32`);
    await lab.k.link.set(node, "flannel.1", { up: true });
    await lab.bridge(node, "cni0", `10.0.${n}.1/24`, 1450);
    await lab.pod(node, `pod${n}`, "cni0", `10.0.${n}.2/24`, `10.0.${n}.1`, 1450);
  }
  for (const [[a, ,], [b, bIp, bn]] of [
    [nodes[0], nodes[1]],
    [nodes[1], nodes[0]],
  ]) {
    const mac = (await lab.k.link.list(b)).find((l) => l.ifname === "flannel.1").address;
    await lab.k.neigh.replace(a, { dst: `10.0.${bn}.0`, dev: "flannel.1", lladdr: mac, state: "permanent" });
    await lab.k.fdb.append(a, { mac, dev: "flannel.1", dst: bIp, self: true, permanent: true });
    await lab.k.route.replace(a, {
      dst: `10.0.${bn}.0/24`,
      via: `10.0.${bn}.0`,
      dev: "flannel.1",
      onlink: true,
    });
  }
  return "10.0.2.2";
}

const out = resolve(process.argv[2] ?? "out");
mkdirSync(out, { recursive: true });
for (const [name, build] of [
  ["docker0 on each node", dockerBridge],
  ["cbr0 + host-gw routes", hostGw],
  ["VXLAN overlay", overlay],
]) {
  const lab = new LabTopology(new SimKernel({ seed: "quickstart" }));
  const target = await build(lab);
  const trace = lab.k.send({ from: "pod1", to: target, expectNamespace: "pod2" });
  console.log(`\n== ${name}: pod1 pings pod2 (${target}) → ${trace.outcome}: ${trace.reason}`);
  for (const hop of trace.hops.filter((h) => !["transmit", "receive"].includes(h.event))) {
    console.log(
      `  ${hop.direction.padEnd(7)} ${hop.ns.padEnd(8)} ${(hop.dev ?? "").padEnd(10)} ${hop.event.padEnd(11)} ${hop.detail}`,
    );
  }
  const onWire = trace.hops.find(
    (h) => h.ns === "node1" && h.dev === "eth0" && h.wire === "out" && h.packet.headers[1]?.kind === "ipv4",
  );
  if (onWire) console.log(`  on node1's eth0: ${onWire.packet.headers.map(formatHeader).join(" | ")}`);
  const file = join(out, `${name.split(" ")[0].toLowerCase()}-node1-eth0.pcap`);
  writeFileSync(file, tracePcap(trace, "node1", "eth0"));
  console.log(`  pcap of node1 eth0: ${file}`);
}
