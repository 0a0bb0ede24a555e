// podnet-bridge against the reference CNI `bridge` plugin (+ host-local), Debian 1.1.1: the same
// invocations, each plugin in its own throwaway host namespace; the results and the state they leave
// in the kernel (links, addresses, routes, iptables, IPAM files) must match, MACs and the random host
// veth name aside. One deliberate difference is pinned: DEL after the netns is gone.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { removeNamespaces } from "../src/index.js";
import { REFERENCE, cni, ipJson, normalize, type Plugin } from "./bridge-cni.js";
import { KERNEL_TOOLS, kernelTestRun } from "./kernel.js";

const { system, linux, nextPrefix } = kernelTestRun([...KERNEL_TOOLS, REFERENCE, "/usr/lib/cni/host-local"]);
const data = mkdtempSync(join(tmpdir(), "podnet-bridge-"));
afterAll(() => rmSync(data, { recursive: true, force: true }));

/** What the plugin left in the kernel, with names that are random by design replaced. */
function state(p: Plugin, ctr?: string) {
  const links = ipJson(p.host, "-d", "link", "show") as {
    ifname: string;
    mtu: number;
    master?: string;
    linkinfo?: { info_kind?: string; info_slave_data?: { hairpin?: boolean } };
  }[];
  const veth = links.find((l) => l.linkinfo?.info_kind === "veth");
  const inet = (ns: string, dev: string) =>
    (
      ipJson(ns, "addr", "show", "dev", dev) as {
        addr_info: { family: string; local: string; prefixlen: number; broadcast?: string }[];
      }[]
    )[0]?.addr_info
      .filter((a) => a.family === "inet")
      .map(({ local, prefixlen, broadcast }) => ({ local, prefixlen, broadcast }));
  const net = join(p.dataDir, "podnet");
  return {
    bridge: links
      .filter((l) => l.ifname === "cni0")
      .map((l) => ({ mtu: l.mtu, kind: l.linkinfo?.info_kind })),
    bridgeAddresses: inet(p.host, "cni0"),
    hostVeth: veth
      ? { master: veth.master, mtu: veth.mtu, hairpin: veth.linkinfo?.info_slave_data?.hairpin }
      : undefined,
    hostRoutes: ipJson(p.host, "route"),
    forwarding: spawnSync("ip", ["netns", "exec", p.host, "sysctl", "-n", "net.ipv4.ip_forward"], {
      encoding: "utf8",
    }).stdout.trim(),
    nat: spawnSync("ip", ["netns", "exec", p.host, "iptables-save", "-t", "nat"], { encoding: "utf8" })
      .stdout.split("\n")
      .filter((l) => l && !l.startsWith("#")),
    ipam: readdirSync(net)
      .filter((f) => f !== "lock")
      .sort()
      .map((f) => [f, readFileSync(join(net, f), "utf8")]),
    ...(ctr
      ? {
          podAddresses: inet(ctr, "eth0"),
          podRoutes: ipJson(ctr, "route"),
          podMtu: (ipJson(ctr, "link", "show", "eth0") as { mtu: number }[])[0]?.mtu,
        }
      : {}),
  };
}

describe.skipIf(system.skip)("podnet-bridge and the reference bridge plugin", () => {
  it("leave the same kernel state and answer alike through ADD, CHECK, a second ADD, DEL and DEL again", async () => {
    const prefix = nextPrefix();
    const plugins: Plugin[] = (["reference", "podnet"] as const).map((name) => ({
      name,
      host: `${prefix}h${name[0]}`,
      dataDir: join(data, name),
    }));
    try {
      const seen: Record<string, unknown[]> = { reference: [], podnet: [] };
      for (const p of plugins) {
        const ctr = `${p.host}c`;
        await linux.netns.add(p.host);
        await linux.netns.add(ctr);
        const add = cni(p, "ADD", "ctr1", `/run/netns/${ctr}`);
        const afterAdd = state(p, ctr);
        const check = cni(p, "CHECK", "ctr1", `/run/netns/${ctr}`, { prevResult: add.out });
        const again = cni(p, "ADD", "ctr1", `/run/netns/${ctr}`);
        const del = cni(p, "DEL", "ctr1", `/run/netns/${ctr}`);
        const afterDel = state(p);
        const delAgain = cni(p, "DEL", "ctr1", `/run/netns/${ctr}`);
        seen[p.name] = [
          { add: { code: add.code, out: normalize(add.out) } },
          { afterAdd },
          { check },
          { again },
          { del },
          { afterDel },
          { delAgain },
        ];
      }
      expect(seen.podnet).toEqual(seen.reference);
      // And the reference did what REFERENCE.md records: its chain, its address, its error.
      const ref = seen.reference as [
        { add: { out: { ips: unknown[] } } },
        { afterAdd: { nat: string[] } },
        unknown,
        { again: { out: { msg: string } } },
      ];
      expect(ref[0].add.out.ips).toEqual([{ interface: 2, address: "10.244.1.2/24", gateway: "10.244.1.1" }]);
      expect(ref[1].afterAdd.nat).toContain(":CNI-ee871de47c845415462ccc60 - [0:0]");
      expect(ref[3].again.out.msg).toBe("container veth name provided (eth0) already exists");
    } finally {
      await removeNamespaces(linux, prefix);
    }
  }, 60_000);

  it("differ on purpose after the netns is gone: DEL releases the address under both, but only podnet removes the masquerade chain", async () => {
    const prefix = nextPrefix();
    try {
      const leftovers: Record<string, string[]> = {};
      for (const name of ["reference", "podnet"] as const) {
        const p: Plugin = { name, host: `${prefix}h${name[0]}`, dataDir: join(data, `stale-${name}`) };
        const ctr = `${p.host}c`;
        await linux.netns.add(p.host);
        await linux.netns.add(ctr);
        expect(cni(p, "ADD", "ctr2", `/run/netns/${ctr}`).code).toBe(0);
        await linux.netns.del(ctr);
        expect(cni(p, "DEL", "ctr2", `/run/netns/${ctr}`)).toEqual({ code: 0, out: "" });
        expect(state(p).ipam.map(([f]) => f)).toEqual(["last_reserved_ip.0"]);
        leftovers[name] = state(p).nat.filter((l) => l.includes("CNI-"));
      }
      expect(leftovers.reference!.length).toBeGreaterThan(0); // REFERENCE.md §3.3: the reference leaks them
      expect(leftovers.podnet).toEqual([]);
    } finally {
      await removeNamespaces(linux, prefix);
    }
  }, 60_000);
});
