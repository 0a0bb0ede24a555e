// A backend whose nodes work side by side (real namespaces) attaches each node's pods at once; when
// one fails, or Ctrl-C stops a lab's build at its next step, the build must not reject while another
// node's pod is still being made: the lab's clean-up lists what to remove as soon as it does, and a
// namespace made after that outlived the lab (seen once in the lab tests, a pod of node-2).
import type { NetworkProvider } from "@podnet/cni";
import { getProvider } from "@podnet/providers";
import { describe, expect, it } from "vitest";
import { ClusterRuntime, SimBackend, loadScenario } from "../src/index.js";

type Attachment = Parameters<SimBackend["attachPod"]>[1];

/** The simulator, attaching pods node by node in parallel, slowly, with one pod's ADD failing. */
class SideBySide extends SimBackend {
  readonly parallelNodes = true;
  inFlight = 0;
  readonly started: string[] = [];
  readonly whenRejected: number[] = [];

  override async attachPod(provider: NetworkProvider, pod: Attachment) {
    this.inFlight++;
    this.started.push(pod.containerId);
    try {
      await new Promise((resolve) => setTimeout(resolve, pod.containerId === "bad" ? 5 : 60));
      if (pod.containerId === "bad") throw new Error("CNI ADD failed");
      return await super.attachPod(provider, pod);
    } finally {
      this.inFlight--;
    }
  }
}

const scenario = loadScenario(`
name: side-by-side
cluster: { serviceCidr: 10.96.0.0/16 }
underlay:
  segments: [{ name: lan, subnet: 10.100.0.0/24, gateway: 10.100.0.1 }]
nodes:
  - { name: node1, segment: lan, address: 10.100.0.2 }
  - { name: node2, segment: lan, address: 10.100.0.3 }
pods:
  - { name: bad, node: node1 }
  - { name: p1, node: node2 }
  - { name: p2, node: node2 }
  - { name: p3, node: node2 }
`);

describe("a build whose nodes work side by side", () => {
  it("fails only once no pod is being made, and starts no pod after the failure", async () => {
    const backend = new SideBySide("side-by-side");
    const build = ClusterRuntime.build(scenario, getProvider("cbr0-host-gw"), { backend });
    await expect(
      build.catch((error: unknown) => {
        backend.whenRejected.push(backend.inFlight);
        throw error;
      }),
    ).rejects.toThrow("CNI ADD failed");
    expect(backend.whenRejected).toEqual([0]);
    // p1 was on its way when bad failed; p2 and p3 were never begun.
    expect(backend.started).toEqual(["bad", "p1"]);
  });
});
