import { describe, expect, it } from "vitest";
import { CniError } from "./errors.js";
import type { CniPlugin } from "./plugin.js";
import { runCniCommand } from "./skel.js";
import { LEGACY_VERSIONS } from "./version.js";

const plugin: CniPlugin = {
  about: "test",
  supportedVersions: LEGACY_VERSIONS,
  add: async () => ({ cniVersion: "1.0.0", ips: [{ address: "10.0.0.2/24", gateway: "10.0.0.1" }], dns: {} }),
  del: async () => {
    throw new Error("boom");
  },
  check: async () => {
    throw new CniError(11, "try again later");
  },
};
const env = (command: string) => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: "c1",
  CNI_NETNS: "/x",
  CNI_IFNAME: "eth0",
  CNI_PATH: "/opt/cni/bin",
});
const stdin = () => JSON.stringify({ cniVersion: "1.0.0", name: "n" });

describe("the CNI protocol adapter", () => {
  it("prints results and errors as the reference plugins do: four-space indent, no trailing newline", async () => {
    const added = await runCniCommand(plugin, { env: env("ADD"), stdin });
    expect(added.exitCode).toBe(0);
    expect(added.stdout).toBe(
      JSON.stringify(
        { cniVersion: "1.0.0", ips: [{ address: "10.0.0.2/24", gateway: "10.0.0.1" }], dns: {} },
        null,
        4,
      ),
    );
    const failed = await runCniCommand(plugin, { env: env("DEL"), stdin });
    expect(failed).toEqual({ exitCode: 1, stdout: '{\n    "code": 999,\n    "msg": "boom"\n}' });
    expect(await runCniCommand(plugin, { env: env("CHECK"), stdin })).toEqual({
      exitCode: 1,
      stdout: '{\n    "code": 11,\n    "msg": "try again later"\n}',
    });
  });

  it("counts an interface name's bytes, as Go does: fifteen at most", async () => {
    const add = (ifname: string) =>
      runCniCommand(plugin, { env: { ...env("ADD"), CNI_IFNAME: ifname }, stdin });
    expect((await add("ääääääää")).stdout).toBe(
      JSON.stringify(
        {
          code: 4,
          msg: "interface name is too long",
          details: "interface name should be less than 16 characters",
        },
        null,
        4,
      ),
    );
    expect((await add("äääääää")).exitCode).toBe(0);
  });

  it("answers VERSION on one line without reading stdin", async () => {
    const out = await runCniCommand(plugin, {
      env: { CNI_COMMAND: "VERSION" },
      stdin: () => {
        throw new Error("stdin read");
      },
    });
    expect(out).toEqual({
      exitCode: 0,
      stdout: `{"cniVersion":"1.0.0","supportedVersions":${JSON.stringify(LEGACY_VERSIONS)}}\n`,
    });
  });

  it("lists every missing variable in skel's order", async () => {
    const out = await runCniCommand(plugin, { env: { CNI_COMMAND: "ADD" }, stdin });
    expect(JSON.parse(out.stdout)).toEqual({
      code: 4,
      msg: "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing",
    });
  });
});
