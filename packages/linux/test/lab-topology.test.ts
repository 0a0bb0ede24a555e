// The lab builder on the real kernel where the simulator cannot show the difference: the kernel
// destroys a deleted namespace's devices later, from a work queue.
import { LabTopology } from "@podnet/netlink/lab";
import { describe, expect, it } from "vitest";
import { kernelTestRun } from "./kernel.js";

const { system, linux, nextPrefix } = kernelTestRun(["ip"]);

describe.skipIf(system.skip)("lab topology on the kernel", () => {
  it("plugs a machine of the same name in right after removing it", async () => {
    const lab = new LabTopology(linux, nextPrefix());
    // One round rarely loses the race against the kernel's teardown; twenty nearly always did when
    // only the namespace was deleted ("File exists" re-adding the machine's port).
    for (let round = 0; round < 20; round++) {
      await lab.host("n1", "seg", "192.168.7.2/24");
      await lab.removeHost("n1");
    }
    await lab.host("n1", "seg", "192.168.7.2/24");
    const ports = (await linux.link.list(lab.ns("underlay"))).map((l) => l.ifname);
    expect(ports.filter((p) => p.startsWith("n1-"))).toEqual(["n1-eth0"]);
  });
});
