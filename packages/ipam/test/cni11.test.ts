// podnet-ipam's CNI 1.1.0 commands, which the reference plugins 1.1.1 do not have.
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PODNET_IPAM, invoke } from "./exec.js";

const root = mkdtempSync(join(tmpdir(), "podnet-ipam-11-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("podnet-ipam speaks CNI 1.1.0", () => {
  const config = (extra: Record<string, unknown> = {}) => ({
    cniVersion: "1.1.0",
    name: "gcnet",
    ipam: { type: "host-local", dataDir: root, ranges: [[{ subnet: "10.98.0.0/29" }]] },
    ...extra,
  });

  it("GC releases the reservations of attachments that are no longer valid, under either key name", async () => {
    for (const id of ["keep", "stale"])
      expect(
        (await invoke(PODNET_IPAM, { command: "ADD", containerId: id, config: config() })).exitCode,
      ).toBe(0);
    expect(readdirSync(join(root, "gcnet")).filter((f) => f.startsWith("10."))).toHaveLength(2);
    // CNI 1.1 sends GC without CNI_CONTAINERID, CNI_IFNAME and CNI_NETNS: none is demanded.
    const gc = await invoke(PODNET_IPAM, {
      command: "GC",
      config: config({ "cni.dev/valid-attachments": [{ containerID: "keep", ifname: "eth0" }] }),
      env: { CNI_CONTAINERID: undefined, CNI_IFNAME: undefined, CNI_NETNS: undefined },
    });
    expect(gc).toEqual({ exitCode: 0, stdout: "" });
    expect(readdirSync(join(root, "gcnet")).filter((f) => f.startsWith("10."))).toHaveLength(1);
    const again = await invoke(PODNET_IPAM, {
      command: "GC",
      config: config({ "cni.dev/attachments": [{ containerID: "keep", ifname: "eth0" }] }),
    });
    expect(again).toEqual({ exitCode: 0, stdout: "" });
    expect(
      (await invoke(PODNET_IPAM, { command: "CHECK", containerId: "keep", config: config() })).exitCode,
    ).toBe(0);
    expect(
      await invoke(PODNET_IPAM, { command: "CHECK", containerId: "stale", config: config() }),
    ).toMatchObject({
      exitCode: 1,
      stdout: { msg: "host-local: Failed to find address added by container stale" },
    });
  });

  it("STATUS says code 50 when a range set has no address left, and refuses configs older than 1.1.0", async () => {
    const net = (name: string, version = "1.1.0") => ({
      cniVersion: version,
      name,
      ipam: { type: "host-local", dataDir: root, ranges: [[{ subnet: "10.97.0.0/30" }]] },
    });
    expect(await invoke(PODNET_IPAM, { command: "STATUS", config: net("full") })).toEqual({
      exitCode: 0,
      stdout: "",
    });
    expect(
      (await invoke(PODNET_IPAM, { command: "ADD", containerId: "only", config: net("full") })).exitCode,
    ).toBe(0);
    expect(await invoke(PODNET_IPAM, { command: "STATUS", config: net("full") })).toEqual({
      exitCode: 1,
      stdout: { code: 50, msg: "range set 0 has no free addresses" },
    });
    expect(await invoke(PODNET_IPAM, { command: "STATUS", config: net("full", "1.0.0") })).toEqual({
      exitCode: 1,
      stdout: { code: 1, msg: "config version does not allow STATUS" },
    });
  });
});
