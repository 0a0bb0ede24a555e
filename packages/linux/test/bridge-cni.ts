// Runs podnet-bridge or the reference bridge the way a runtime does, from inside a throwaway "host"
// namespace: CNI_* in the environment, the network config on stdin. Shared by the tests that put
// the two side by side.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { runCniPlugin } from "@podnet/testing";

export const REFERENCE = "/usr/lib/cni/bridge";
export const OURS = fileURLToPath(new URL("../bin/podnet-bridge.mjs", import.meta.url));

export interface Plugin {
  name: "reference" | "podnet";
  /** The namespace the plugin runs in: the node, as far as the plugin can tell. */
  host: string;
  dataDir: string;
}

/** The bridge config both tests use (every option the plugins share), with `extra` merged in. */
export function bridgeConfig(dataDir: string, extra: Record<string, unknown> = {}) {
  return {
    cniVersion: "1.0.0",
    name: "podnet",
    type: "bridge",
    bridge: "cni0",
    isGateway: true,
    isDefaultGateway: true,
    ipMasq: true,
    hairpinMode: true,
    mtu: 1450,
    ipam: { type: "host-local", ranges: [[{ subnet: "10.244.1.0/24" }]], dataDir },
    ...extra,
  };
}

/** One invocation; `env` overrides CNI_* (undefined leaves a variable out). Stops a plugin after 20 s. */
export function cni(
  p: Plugin,
  command: string,
  containerId: string,
  netns: string,
  extra: Record<string, unknown> = {},
  env: Record<string, string | undefined> = {},
) {
  const vars: Record<string, string | undefined> = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: containerId,
    CNI_NETNS: netns,
    CNI_IFNAME: "eth0",
    CNI_PATH: "/usr/lib/cni",
    ...env,
  };
  const binary = p.name === "reference" ? [REFERENCE] : [process.execPath, OURS];
  return runCniPlugin(p.host, binary, vars, bridgeConfig(p.dataDir, extra));
}

export const ipJson = (ns: string, ...args: string[]) =>
  JSON.parse(spawnSync("ip", ["-n", ns, "-j", ...args], { encoding: "utf8" }).stdout || "[]");

/** An ADD result with what is random by design (MACs, the reference's host veth name, the netns path) replaced. */
export function normalize(result: unknown): unknown {
  if (typeof result !== "object" || !result || !("interfaces" in result)) return result;
  const r = result as { interfaces: { name: string; mac?: string; sandbox?: string }[] };
  return {
    ...r,
    interfaces: r.interfaces.map((i, n) => ({
      ...i,
      name: n === 1 ? "<host veth>" : i.name,
      mac: i.mac ? "<mac>" : undefined,
      ...(i.sandbox ? { sandbox: "<netns>" } : {}),
    })),
  };
}
