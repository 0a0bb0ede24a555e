// Hairpin: a bridge sends a frame back out of the port it came in on only when that port is in
// hairpin mode. Two hosts sit behind one port of br0 (a switch hangs off it), so a frame between them
// that reaches br0 has its destination behind its own ingress port.
import { describe, expect, it } from "vitest";
import { Lab } from "./lab.js";
import {
  parseAddrArgument as cidr,
  parseAddressArgument as ip,
  parseLinkAddress as mac,
} from "@podnet/netlink";

async function topology() {
  const lab = new Lab("hairpin");
  const k = lab.k;
  for (const ns of ["node", "sw", "a", "b"]) {
    await k.netns.add(ns);
    await k.link.set(ns, "lo", { up: true });
  }
  await k.link.add("node", { kind: "bridge", name: "br0" });
  await k.link.add("sw", { kind: "bridge", name: "sw0" });
  await k.link.add("node", { kind: "veth", name: "up", peer: { name: "down", netns: "sw" } });
  await k.link.set("node", "up", { master: "br0", up: true });
  await k.link.set("sw", "down", { master: "sw0", up: true });
  for (const [host, ip] of [
    ["a", "10.0.0.2"],
    ["b", "10.0.0.3"],
  ] as const) {
    await k.link.add(host, { kind: "veth", name: "eth0", peer: { name: `p-${host}`, netns: "sw" } });
    await k.link.set("sw", `p-${host}`, { master: "sw0", up: true });
    await k.addr.add(host, "eth0", cidr(`${ip}/24`));
    await k.link.set(host, "eth0", { up: true });
  }
  for (const [ns, dev] of [
    ["node", "br0"],
    ["sw", "sw0"],
  ] as const)
    await k.link.set(ns, dev, { up: true });
  const bMac = mac((await k.link.list("b")).find((l) => l.ifname === "eth0")!.address);
  await k.neigh.replace("a", { dst: ip("10.0.0.3"), dev: "eth0", lladdr: bMac, state: "permanent" });
  // b speaks once (a broadcast): every bridge learns that b is behind its port towards sw.
  k.send({ from: "b", to: "10.0.0.9" });
  // The switch forgets b, so a's next frame to b is flooded to br0 too.
  await k.fdb.del("sw", { mac: bMac, dev: "p-b", self: false });
  return { lab, k };
}

describe("bridge hairpin mode", () => {
  it("drops a frame whose destination is behind its own ingress port while hairpin is off", async () => {
    const { k } = await topology();
    const trace = k.send({ from: "a", to: "10.0.0.3" });
    expect(trace.outcome).toBe("reached"); // b gets the switch's flooded copy
    const atBr0 = trace.hops.find((h) => h.ns === "node" && h.event === "drop")!;
    expect(atBr0.detail).toMatch(
      /^br0: [0-9a-f:]{17} is behind up, where the frame came from, and hairpin is off$/,
    );
  });

  it("sends it back out of the same port when hairpin is on", async () => {
    const { k } = await topology();
    await k.link.set("node", "up", { hairpin: true });
    const trace = k.send({ from: "a", to: "10.0.0.3" });
    expect(
      trace.hops.some(
        (h) => h.ns === "node" && h.event === "bridge" && /→ port up \(hairpin\)$/.test(h.detail),
      ),
    ).toBe(true);
  });
});
