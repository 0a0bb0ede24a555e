// Bad CNI_NETNS values and DELs of unknown containers, given to podnet-bridge and to the reference
// bridge (Debian 1.1.1) side by side, each plugin running in its own throwaway "node" namespace that
// has a veth and a default route of its own (what a careless plugin would break). Every row says what
// podnet-bridge must answer (exit code, CNI code, message fragment) and what the reference answers:
// "agrees" means word for word (namespace names and PIDs aside). Whenever podnet-bridge refuses, and
// where a row says so, the node's and the container's namespaces must be exactly as they were.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { removeNamespaces } from "../src/index.js";
import { OURS, REFERENCE, bridgeConfig, cni, ipJson, normalize, type Plugin } from "./bridge-cni.js";
import { kernelTestRun } from "./kernel.js";

const { system, linux, nextPrefix } = kernelTestRun([
  "ip",
  "unshare",
  "nsenter",
  "flock",
  "findmnt",
  REFERENCE,
  "/usr/lib/cni/host-local",
]);
const data = mkdtempSync(join(tmpdir(), "podnet-bridge-bad-"));
afterAll(() => rmSync(data, { recursive: true, force: true }));

/** One plugin's surroundings in a row: its node namespace, a named pod namespace, an unnamed one's PID. */
interface Ctx {
  host: string;
  ctr: string;
  pid: number;
}

interface Answer {
  exitCode: number | null;
  code?: number;
  msg?: string;
}

interface Row {
  input: string;
  command: "ADD" | "DEL";
  netns: (ctx: Ctx) => string;
  containerId?: string;
  env?: Record<string, string | undefined>;
  /** Keys merged into the IPAM block, and into the whole config. */
  ipam?: Record<string, unknown>;
  config?: Record<string, unknown>;
  setup?: (ctx: Ctx) => Promise<void>;
  podnet: Answer;
  reference: "agrees" | (Answer & { why: string });
  /** podnet-bridge must change neither namespace (always checked when it refuses). */
  untouched?: boolean;
}

const failed = (msg: string, code = 999): Answer => ({ exitCode: 1, code, msg });
const THIS_FILE = fileURLToPath(import.meta.url);

const rows: Row[] = [
  {
    input: "CNI_NETNS is /run/netns/, a directory (ADD used to configure the node itself)",
    command: "ADD",
    netns: () => "/run/netns/",
    podnet: failed('failed to open netns "/run/netns/": unknown FS magic on "/run/netns/": '),
    reference: "agrees",
  },
  {
    input:
      "CNI_NETNS is /run/netns/ and CNI_IFNAME a node veth (DEL used to delete it and the default route)",
    command: "DEL",
    netns: () => "/run/netns/",
    env: { CNI_IFNAME: "hv1" },
    podnet: failed('unknown FS magic on "/run/netns/": '),
    reference: "agrees",
  },
  {
    input: "CNI_NETNS is /run/netns without the slash",
    command: "ADD",
    netns: () => "/run/netns",
    podnet: failed('failed to open netns "/run/netns": unknown FS magic on "/run/netns": '),
    reference: "agrees",
  },
  {
    input: "CNI_NETNS is /dev/null",
    command: "ADD",
    netns: () => "/dev/null",
    podnet: failed('failed to open netns "/dev/null": unknown FS magic on "/dev/null": 1021994'),
    reference: "agrees",
  },
  {
    input: "CNI_NETNS is a regular file",
    command: "ADD",
    netns: () => THIS_FILE,
    podnet: failed(`failed to open netns "${THIS_FILE}": unknown FS magic on "${THIS_FILE}": `),
    reference: "agrees",
  },
  {
    input: "CNI_NETNS does not exist (ADD)",
    command: "ADD",
    netns: () => "/nonexistent/netns",
    podnet: failed(
      'failed to open netns "/nonexistent/netns": failed to Statfs "/nonexistent/netns": no such file or directory',
    ),
    reference: "agrees",
  },
  {
    input: "CNI_NETNS no longer exists (DEL succeeds, as the spec asks)",
    command: "DEL",
    netns: () => "/nonexistent/netns",
    podnet: { exitCode: 0 },
    reference: "agrees",
    untouched: true,
  },
  {
    input: "CNI_NETNS is a relative path",
    command: "ADD",
    netns: () => "relative-netns",
    podnet: failed('failed to open netns "relative-netns": failed to Statfs "relative-netns"'),
    reference: "agrees",
  },
  {
    input: "CNI_NETNS is missing",
    command: "ADD",
    netns: () => "",
    podnet: failed("required env variables [CNI_NETNS] missing", 4),
    reference: "agrees",
  },
  {
    input: "CNI_NETNS is a mount namespace",
    command: "ADD",
    netns: (c) => `/proc/${c.pid}/ns/mnt`,
    podnet: failed("not a network namespace"),
    reference: {
      ...failed("error switching to ns"),
      why: "the reference takes any nsfs file, makes the bridge, then fails in setns",
    },
  },
  {
    input: "CNI_NETNS is the plugin's own namespace (ADD)",
    command: "ADD",
    netns: () => "/proc/self/ns/net",
    podnet: failed('CNI_NETNS "/proc/self/ns/net" is the namespace the plugin runs in', 4),
    reference: { exitCode: 0, why: "the reference puts eth0 and a new default route on the node" },
  },
  {
    input: "CNI_NETNS is the plugin's own namespace and CNI_IFNAME a node veth (DEL)",
    command: "DEL",
    netns: () => "/proc/self/ns/net",
    env: { CNI_IFNAME: "hv1" },
    podnet: failed('CNI_NETNS "/proc/self/ns/net" is the namespace the plugin runs in', 4),
    reference: { exitCode: 0, why: "the reference deletes the node's hv1, and the default route with it" },
  },
  {
    input: "a DEL for a container never added, whose namespace has an eth0 of its own",
    command: "DEL",
    containerId: "neverseen",
    netns: (c) => `/run/netns/${c.ctr}`,
    setup: async (c) => linux.link.add(c.ctr, { kind: "veth", name: "eth0", peer: { name: "other0" } }),
    podnet: { exitCode: 0 },
    reference: { exitCode: 0, why: "the reference deletes whatever link is called CNI_IFNAME there" },
    untouched: true,
  },
  // Keys of the wrong type: refused as the reference's json.Unmarshal refuses them, before anything is made.
  ...(
    [
      ["bridge", 5, "number", "NetConf.bridge", "string"],
      ["mtu", "abc", "string", "NetConf.mtu", "int"],
      ["mtu", 1.5, "number 1.5", "NetConf.mtu", "int"],
      ["isGateway", "yes", "string", "NetConf.isGateway", "bool"],
      ["ipam", 5, "number", "NetConf.ipam", "types.IPAM"],
      ["ipam", { type: 5 }, "number", "IPAM.ipam.type", "string"],
    ] as const
  ).map(([key, value, kind, field, type]): Row => ({
    input: `the bridge config's ${key} is ${JSON.stringify(value)}`,
    command: "ADD",
    netns: (c) => `/run/netns/${c.ctr}`,
    config: { [key]: value },
    podnet: failed(
      `failed to load netconf: json: cannot unmarshal ${kind} into Go struct field ${field} of type ${type}`,
    ),
    reference: "agrees",
  })),
  // The IPAM block is checked before any link is made (the reference makes the bridge first).
  {
    input: "the IPAM block's dataDir is a number",
    command: "ADD",
    netns: (c) => `/run/netns/${c.ctr}`,
    ipam: { dataDir: 5 },
    podnet: failed(
      "json: cannot unmarshal number into Go struct field IPAMConfig.ipam.dataDir of type string",
    ),
    reference: "agrees",
  },
  {
    input: "the IPAM block's resolvConf is /dev/zero",
    command: "ADD",
    netns: (c) => `/run/netns/${c.ctr}`,
    ipam: { resolvConf: "/dev/zero" },
    podnet: failed("resolvConf /dev/zero: not a regular file"),
    reference: { ...failed("bufio.Scanner: token too long"), why: "podnet reads regular files only" },
  },
  // The forms runtimes pass, which must work.
  {
    input: "CNI_NETNS spelled /var/run/netns/NAME (containerd, CRI-O)",
    command: "ADD",
    netns: (c) => `/var/run/netns/${c.ctr}`,
    podnet: { exitCode: 0 },
    reference: "agrees",
  },
  {
    input: "CNI_NETNS spelled /proc/PID/ns/net, a namespace without a name (dockershim)",
    command: "ADD",
    netns: (c) => `/proc/${c.pid}/ns/net`,
    podnet: { exitCode: 0 },
    reference: "agrees",
  },
];

/** Links, addresses and routes of a namespace, and the IPAM files: what "untouched" compares. */
function snapshot(ns: string) {
  const links = (
    ipJson(ns, "-d", "link", "show") as { ifname: string; master?: string; linkinfo?: object }[]
  ).map((l) => [l.ifname, l.master, JSON.stringify(l.linkinfo ?? {})]);
  const addrs = (ipJson(ns, "addr", "show") as { ifname: string; addr_info: { local: string }[] }[]).map(
    // IPv6 link-local addresses appear on their own, a moment after a link comes up: not harm.
    (l) => [l.ifname, l.addr_info.map((a) => a.local).filter((a) => !a.startsWith("fe80:"))],
  );
  return { links, addrs, routes: ipJson(ns, "route", "show") };
}

function files(dir: string): string[] {
  try {
    // The lock file is host-local's too: opening the store creates it, and it holds no state.
    return readdirSync(join(dir, "podnet"))
      .filter((f) => f !== "lock")
      .sort();
  } catch {
    return [];
  }
}

/** The answer, with this plugin's namespace names and PID replaced so both plugins' answers compare. */
function answerOf(r: { code: number | null; out: unknown }, c: Ctx) {
  const out = r.out as { code?: number; msg?: string };
  // A stack trace is not a CNI answer: a failure prints a CNI error.
  if (r.code !== 0) expect(out).toMatchObject({ code: expect.any(Number), msg: expect.any(String) });
  const msg = out.msg
    ?.replaceAll(c.ctr, "<ctr>")
    .replaceAll(c.host, "<host>")
    .replaceAll(String(c.pid), "<pid>");
  return {
    exitCode: r.code,
    ...(r.code === 0 ? { result: normalize(r.out) } : { code: out.code, msg }),
  };
}

function expectAnswer(got: { exitCode: number | null; code?: number; msg?: string }, want: Answer): void {
  expect({ exitCode: got.exitCode, code: got.code }).toEqual({ exitCode: want.exitCode, code: want.code });
  if (want.msg !== undefined) expect(got.msg).toContain(want.msg);
}

/** A process alone in a new network namespace that has no name. */
function unnamedNamespace(): Promise<ChildProcess> {
  const child = spawn("unshare", ["-n", "sh", "-c", "echo ready; exec sleep 120"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  return new Promise((resolve) => child.stdout!.once("data", () => resolve(child)));
}

describe.skipIf(system.skip)(
  "podnet-bridge refuses a bad CNI_NETNS as a CNI error and harms nothing, beside the reference",
  () => {
    it.each(rows.map((row) => [row.input, row] as const))(
      "%s",
      async (_, row) => {
        const prefix = nextPrefix();
        const sleepers: ChildProcess[] = [];
        try {
          const answers: Record<string, ReturnType<typeof answerOf>> = {};
          for (const name of ["reference", "podnet"] as const) {
            const p: Plugin = {
              name,
              host: `${prefix}h${name[0]}`,
              dataDir: join(data, `${prefix}-${name}`),
            };
            const sleeper = await unnamedNamespace();
            sleepers.push(sleeper);
            const c: Ctx = { host: p.host, ctr: `${p.host}c`, pid: sleeper.pid! };
            await linux.netns.add(c.host);
            await linux.netns.add(c.ctr);
            // The node's own uplink and default route: what the old bug replaced or deleted.
            for (const command of [
              "link add hv0 type veth peer name hv1",
              "link set hv0 up",
              "link set hv1 up",
              "addr add 192.0.2.1/24 dev hv0",
              "route add default via 192.0.2.2",
            ])
              expect(spawnSync("ip", ["-n", c.host, ...command.split(" ")]).status).toBe(0);
            await row.setup?.(c);
            const before = [snapshot(c.host), snapshot(c.ctr), files(p.dataDir)];
            const env = { ...(row.netns(c) === "" ? { CNI_NETNS: undefined } : {}), ...row.env };
            const ipam = { ...bridgeConfig(p.dataDir).ipam, ...row.ipam };
            const r = cni(
              p,
              row.command,
              row.containerId ?? "ctr1",
              row.netns(c),
              { ipam, ...row.config },
              env,
            );
            answers[name] = answerOf(r, c);
            if (name === "podnet" && (r.code !== 0 || row.untouched))
              expect([snapshot(c.host), snapshot(c.ctr), files(p.dataDir)]).toEqual(before);
          }
          expectAnswer(answers.podnet!, row.podnet);
          if (row.reference === "agrees") expect(answers.podnet).toEqual(answers.reference);
          else expectAnswer(answers.reference!, row.reference);
        } finally {
          for (const s of sleepers) s.kill("SIGKILL");
          await removeNamespaces(linux, prefix);
        }
      },
      60_000,
    );
  },
);

describe.skipIf(system.skip)("podnet-bridge stopped by the runtime mid-ADD", () => {
  /** An ADD into an unnamed namespace, with the IPAM lock held so that it waits with its bind mount made. */
  async function stuckAdd(prefix: string) {
    const host = `${prefix}hs`;
    const dataDir = join(data, `${prefix}-stopped`);
    const sleeper = await unnamedNamespace();
    mkdirSync(join(dataDir, "podnet"), { recursive: true });
    // -o: flock holds the lock itself, not its sleep, so killing it frees the lock.
    const holder = spawn("flock", ["-x", "-o", join(dataDir, "podnet", "lock"), "sleep", "30"], {
      stdio: "ignore",
    });
    await linux.netns.add(host);
    const add = (container: string, pid: number) => {
      // nsenter, not `ip netns exec`: that gives the plugin a mount namespace of its own, whose mounts
      // die with it; a runtime runs it in the host's, where a mount outlives a killed plugin.
      const plugin = spawn("nsenter", [`--net=/run/netns/${host}`, process.execPath, OURS], {
        env: {
          PATH: process.env.PATH,
          CNI_COMMAND: "ADD",
          CNI_CONTAINERID: container,
          CNI_NETNS: `/proc/${pid}/ns/net`,
          CNI_IFNAME: "eth0",
          CNI_PATH: "/usr/lib/cni",
        },
        stdio: ["pipe", "ignore", "ignore"],
      });
      plugin.stdin!.end(JSON.stringify(bridgeConfig(dataDir)));
      const exited = new Promise<number | null>((resolve) => plugin.on("exit", (code) => resolve(code)));
      return { plugin, exited };
    };
    const { plugin, exited } = add("ctr1", sleeper.pid!);
    const mounts = () => readdirSync("/run/netns").filter((n) => n.startsWith(`podnet-cni-${plugin.pid}-`));
    for (let i = 0; i < 200 && !mounts().length; i++) await new Promise((r) => setTimeout(r, 50));
    expect(mounts()).toHaveLength(1);
    const done = () => {
      holder.kill("SIGKILL");
      sleeper.kill("SIGKILL");
    };
    return { plugin, exited, mounts, add, holder, done };
  }
  const mounted = (text: string) => spawnSync("findmnt", ["-rn"], { encoding: "utf8" }).stdout.includes(text);

  it("removes the temporary name it gave an unnamed CNI_NETNS, so the pod's namespace can go", async () => {
    const prefix = nextPrefix();
    const stuck = await stuckAdd(prefix);
    try {
      stuck.plugin.kill("SIGTERM");
      expect(await stuck.exited).toBe(143);
      expect(stuck.mounts()).toEqual([]);
      expect(mounted(`podnet-cni-${stuck.plugin.pid}-`)).toBe(false);
    } finally {
      stuck.done();
      await removeNamespaces(linux, prefix);
    }
  }, 30_000);

  it("after a SIGKILL, the next plugin to open a sandbox removes the name the killed one left", async () => {
    const prefix = nextPrefix();
    const stuck = await stuckAdd(prefix);
    const other = await unnamedNamespace();
    try {
      stuck.plugin.kill("SIGKILL");
      await stuck.exited;
      // SIGKILL leaves no time to clean up: the name stays, and its mount holds the namespace.
      expect(stuck.mounts()).toHaveLength(1);
      expect(mounted(`podnet-cni-${stuck.plugin.pid}-`)).toBe(true);
      stuck.holder.kill("SIGKILL");
      const next = stuck.add("ctr2", other.pid!);
      expect(await next.exited).toBe(0);
      expect(stuck.mounts()).toEqual([]);
      expect(mounted(`podnet-cni-${stuck.plugin.pid}-`)).toBe(false);
      expect(mounted(`podnet-cni-${next.plugin.pid}-`)).toBe(false);
    } finally {
      other.kill("SIGKILL");
      stuck.done();
      await removeNamespaces(linux, prefix);
    }
  }, 30_000);
});
