// The walk's logic against real traces: the scenarios built by @podnet/cluster under real providers.
import { readFileSync } from "node:fs";
import { ClusterRuntime, loadScenario } from "@podnet/cluster";
import { getProvider } from "@podnet/providers";
import { describe, expect, it } from "vitest";
import { layout } from "../src/topology.js";
import {
  failureStep,
  fragmentsAt,
  headerDiff,
  hopLocator,
  legsBetween,
  phases,
  previousStep,
  quotedDiff,
  walkSteps,
} from "../src/walk.js";
import { snapshotOf } from "../src/snapshot.js";

async function walk(
  scenario: string,
  provider: string,
  from: string,
  to: string,
  options: Parameters<ClusterRuntime["trace"]>[2] = {},
  edit: (yaml: string) => string = (y) => y,
) {
  const text = edit(readFileSync(new URL(`../../../scenarios/${scenario}.yaml`, import.meta.url), "utf8"));
  const rt = await ClusterRuntime.build(loadScenario(text, `${scenario}.yaml`), getProvider(provider));
  await rt.runEvents();
  const snapshot = await snapshotOf(rt);
  const view = layout(snapshot);
  const trace = rt.trace(from, to, options);
  const steps = walkSteps(trace, true, hopLocator(snapshot, new Set(view.boxes.map((b) => b.id))));
  return { trace, steps, view };
}

describe("the walk", () => {
  it("numbers the steps 1…n and puts each at one box: the device where the map draws it", async () => {
    const { steps } = await walk("two-nodes", "overlay", "client", "db");
    expect(steps.map((s) => s.n)).toEqual(steps.map((_, i) => i + 1));
    const encap = steps.find((s) => s.hop.event === "encap")!;
    expect(encap.box).toBe("dev:node1:flannel.1");
    expect(steps.find((s) => s.hop.event === "decap")!.box).toBe("dev:node2:flannel.1");
    expect(steps.find((s) => s.hop.ns === "underlay")!.box).toBe("seg:lan");
    expect(steps[0]!.box).toBe("ns:client");
    expect(steps.every((s) => s.box)).toBe(true);
  });

  it("follows the map's links between two steps, in the direction travelled", async () => {
    const { view } = await walk("two-nodes", "overlay", "client", "db");
    const legs = legsBetween(view.edges, "dev:node1:flannel.1", "seg:lan");
    expect(legs.map((l) => [l.edge.from, l.edge.to, l.forward])).toEqual([
      ["dev:node1:eth0", "dev:node1:flannel.1", false],
      ["seg:lan", "dev:node1:eth0", false],
    ]);
    expect(legsBetween(view.edges, "seg:lan", "seg:lan")).toEqual([]);
  });

  it("shows encapsulation as added outer headers and decapsulation as removed ones, the inner packet kept", async () => {
    const { steps } = await walk("two-nodes", "overlay", "client", "db");
    const at = (event: string) => steps.findIndex((s) => s.hop.event === event);
    const encap = headerDiff(
      previousStep(steps, at("encap"))?.hop.packet.headers,
      steps[at("encap")]!.hop.packet.headers,
    );
    expect(encap.map((l) => [l.group, l.kind, l.status])).toEqual([
      ["outer", "ipv4", "added"],
      ["outer", "udp", "added"],
      ["outer", "vxlan", "added"],
      // The inner frame's Ethernet header travels inside the VXLAN payload.
      ["inner", "ethernet", "added"],
      ["inner", "ipv4", "same"],
      ["inner", "icmp", "same"],
    ]);
    const decap = headerDiff(
      previousStep(steps, at("decap"))?.hop.packet.headers,
      steps[at("decap")]!.hop.packet.headers,
    );
    expect(decap.map((l) => [l.kind, l.status])).toEqual([
      ["ethernet", "removed"],
      ["ipv4", "removed"],
      ["udp", "removed"],
      ["vxlan", "removed"],
      ["ethernet", "same"],
      ["ipv4", "same"],
      ["icmp", "same"],
    ]);
  });

  it("shows DNAT as the address before → after", async () => {
    const { steps } = await walk("service", "cbr0-host-gw", "client", "svc/web");
    const i = steps.findIndex((s) => s.hop.event === "nat");
    const lines = headerDiff(previousStep(steps, i)?.hop.packet.headers, steps[i]!.hop.packet.headers);
    const ip = lines.find((l) => l.kind === "ipv4")!;
    expect(ip.status).toBe("changed");
    expect(ip.tokens.find((t) => t.before)).toMatchObject({
      before: "10.96.0.10",
      text: expect.stringMatching(/^10\.0\.\d\.\d+$/),
    });
  });

  it("marks where a failed walk ended", async () => {
    const { trace, steps } = await walk("two-nodes", "docker-bridge", "client", "db");
    expect(trace.outcome).toBe("wrong-destination");
    // Where the request was taken by the wrong pod, not where the answer arrived.
    expect(failureStep(trace, steps)?.hop).toMatchObject({
      event: "deliver",
      direction: "request",
      ns: "web",
    });
    const ok = await walk("two-nodes", "overlay", "client", "db");
    expect(failureStep(ok.trace, ok.steps)).toBeUndefined();
  });

  it("reads an ICMP error's quoted packet, translated back by the masquerading node", async () => {
    // seg-b's links at MTU 1400: a full-size DF ping from a pod past the router gets "fragmentation
    // needed", which node1 un-masquerades, outer destination and quoted source alike.
    const { trace, steps } = await walk(
      "routed-segments",
      "cbr0-host-gw",
      "client",
      "node2",
      { size: 1472 },
      (y) => y.replace("gateway: 192.168.2.1 }", "gateway: 192.168.2.1, mtu: 1400 }"),
    );
    expect(trace.outcome).toBe("unreachable");
    const unNat = steps.findIndex((s) => s.hop.event === "nat" && s.hop.direction === "reply");
    const lines = quotedDiff(previousStep(steps, unNat)?.hop, steps[unNat]!.hop);
    expect(lines.map((l) => [l.group, l.kind, l.status])).toEqual([
      ["quoted", "ipv4", "changed"],
      ["quoted", "icmp", "same"],
    ]);
    expect(lines[0]!.tokens.find((t) => t.before)).toEqual({ text: "10.0.0.2", before: "192.168.1.2" });
    expect(lines[1]!.text).toMatch(/^icmp echo-request id \d+ seq 1$/);
    const names = phases(trace, steps);
    expect(names[0]).toBe("ICMP echo request");
    expect(names[unNat]).toBe("ICMP error back to the sender: dest-unreachable frag-needed mtu 1400");
    // Other packets quote nothing.
    expect(quotedDiff(undefined, steps[0]!.hop)).toEqual([]);
  });

  it("knows where the packet travels as fragments, and names the TCP handshake and data phases", async () => {
    const frag = await walk("two-nodes", "overlay", "client", "db", { size: 1460 });
    const cut = fragmentsAt(frag.steps);
    const first = frag.steps.findIndex((s) => s.hop.event === "fragment");
    expect(cut.slice(0, first).every((f) => f === undefined)).toBe(true);
    expect(cut[first]).toEqual({ count: 2, largest: 1444 });
    const joined = frag.steps.findIndex((s, i) => i > first && s.hop.event === "fragment");
    expect(frag.steps[joined]!.hop.detail).toMatch(/reassembles 2 fragments/);
    expect(cut[joined - 1]).toEqual({ count: 2, largest: 1444 });
    expect(cut[joined + 1]).toBeUndefined();

    const tcp = await walk("two-nodes", "overlay", "client", "db:80", { size: 4000 });
    expect([...new Set(phases(tcp.trace, tcp.steps))]).toEqual([
      "TCP handshake: SYN",
      "TCP handshake: SYN-ACK",
      "TCP data: 4000 bytes as 3 segments of at most 1410 bytes (the first walked)",
    ]);
  });
});
