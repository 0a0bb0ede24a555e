// The walk's logic against real traces: the scenarios built by @podnet/cluster under real providers.
import { readFileSync } from "node:fs";
import { ClusterRuntime, loadScenario } from "@podnet/cluster";
import { getProvider } from "@podnet/providers";
import { describe, expect, it } from "vitest";
import { layout } from "../src/topology.js";
import { failureStep, headerDiff, hopLocator, legsBetween, previousStep, walkSteps } from "../src/walk.js";
import { snapshotOf } from "../src/snapshot.js";

async function walk(scenario: string, provider: string, from: string, to: string) {
  const text = readFileSync(new URL(`../../../scenarios/${scenario}.yaml`, import.meta.url), "utf8");
  const rt = await ClusterRuntime.build(loadScenario(text, `${scenario}.yaml`), getProvider(provider));
  await rt.runEvents();
  const snapshot = await snapshotOf(rt);
  const view = layout(snapshot);
  const trace = rt.trace(from, to);
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
});
