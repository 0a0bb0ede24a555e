import { describe, expect, it } from "vitest";
import { addNetworkList, checkNetworkList, delNetworkList, requestConfig } from "./chain.js";
import type { CniPlugin, PluginConfig } from "./plugin.js";
import { NetConfListSchema, type CniResult } from "./schemas.js";
import { resultForVersion } from "./version.js";

/** A plugin that records what it was given and appends its name to the result's interfaces. */
function recorder(
  name: string,
  calls: { plugin: string; command: string; config: PluginConfig }[],
): CniPlugin {
  return {
    about: name,
    supportedVersions: ["1.0.0"],
    async add(_p, config) {
      calls.push({ plugin: name, command: "ADD", config });
      const prev = config.prevResult ?? { cniVersion: "1.0.0" };
      return { ...prev, interfaces: [...(prev.interfaces ?? []), { name }] };
    },
    async del(_p, config) {
      calls.push({ plugin: name, command: "DEL", config });
    },
    async check(_p, config) {
      calls.push({ plugin: name, command: "CHECK", config });
    },
  };
}

const list = NetConfListSchema.parse({
  cniVersion: "1.0.0",
  name: "cbr0",
  plugins: [
    { type: "bridge", bridge: "cbr0" },
    { type: "portmap", capabilities: { portMappings: true } },
    { type: "tuning" },
  ],
});

describe("running a .conflist", () => {
  it("adds in order with each result as the next prevResult, deletes in reverse, checks forward with the final result", async () => {
    const calls: { plugin: string; command: string; config: PluginConfig }[] = [];
    const registry = (type: string) => recorder(type, calls);
    const runtime = {
      containerId: "c1",
      netns: "/run/netns/c1",
      ifname: "eth0",
      capabilityArgs: {
        portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }],
        mac: "aa:bb:cc:dd:ee:ff",
      },
    };
    const result = await addNetworkList(list, runtime, registry);
    expect(result.interfaces!.map((i) => i.name)).toEqual(["bridge", "portmap", "tuning"]);
    await checkNetworkList(list, runtime, registry, result);
    await delNetworkList(list, runtime, registry, result);
    expect(calls.map((c) => `${c.command} ${c.plugin}`)).toEqual([
      "ADD bridge",
      "ADD portmap",
      "ADD tuning",
      "CHECK bridge",
      "CHECK portmap",
      "CHECK tuning",
      "DEL tuning",
      "DEL portmap",
      "DEL bridge",
    ]);
    // The first ADD gets no prevResult; every later call gets one; DEL and CHECK get the final result.
    expect(calls[0]!.config.prevResult).toBeUndefined();
    expect(calls[1]!.config.prevResult!.interfaces!.map((i) => i.name)).toEqual(["bridge"]);
    for (const c of calls.slice(3)) expect(c.config.prevResult).toEqual(result);
    // cniVersion and name come from the list; capabilities become runtimeConfig, only those declared.
    expect(calls[1]!.config).toMatchObject({
      cniVersion: "1.0.0",
      name: "cbr0",
      type: "portmap",
      runtimeConfig: { portMappings: runtime.capabilityArgs.portMappings },
    });
    expect(calls[1]!.config).not.toHaveProperty("capabilities");
    expect(calls[0]!.config).not.toHaveProperty("runtimeConfig");
  });

  it("skips CHECK when the list disables it, and names a missing plugin", async () => {
    const calls: { plugin: string; command: string; config: PluginConfig }[] = [];
    await checkNetworkList(
      { ...list, disableCheck: true },
      { containerId: "c", netns: "/x", ifname: "eth0" },
      (t) => recorder(t, calls),
      { cniVersion: "1.0.0" },
    );
    expect(calls).toEqual([]);
    await expect(
      addNetworkList(list, { containerId: "c", netns: "/x", ifname: "eth0" }, () => undefined),
    ).rejects.toThrow('failed to find plugin "bridge" in path');
    expect(requestConfig(list, 2, undefined)).toEqual({ type: "tuning", cniVersion: "1.0.0", name: "cbr0" });
  });

  it("rejects a list without plugins or with a bad name, naming the field", () => {
    expect(NetConfListSchema.safeParse({ cniVersion: "1.0.0", name: "x", plugins: [] }).success).toBe(false);
    const bad = NetConfListSchema.safeParse({
      cniVersion: "1.0.0",
      name: "-x",
      plugins: [{ type: "bridge" }],
    });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]!.path).toEqual(["name"]);
  });
});

describe("results in each spec version", () => {
  const result: CniResult = {
    cniVersion: "1.0.0",
    ips: [{ address: "10.99.0.2/29", gateway: "10.99.0.1" }],
    routes: [{ dst: "0.0.0.0/0" }],
    dns: {},
  };

  it("adds ips[].version before 1.0.0 and uses the ip4 block before 0.3.0, as the reference plugins print", () => {
    expect(resultForVersion(result, "1.1.0")).toEqual({ ...result, cniVersion: "1.1.0" });
    expect(resultForVersion(result, "0.3.1")).toEqual({
      ...result,
      cniVersion: "0.3.1",
      ips: [{ version: "4", address: "10.99.0.2/29", gateway: "10.99.0.1" }],
    });
    expect(resultForVersion(result, "0.2.0")).toEqual({
      cniVersion: "0.2.0",
      ip4: { ip: "10.99.0.2/29", gateway: "10.99.0.1", routes: [{ dst: "0.0.0.0/0" }] },
      dns: {},
    });
  });
});
