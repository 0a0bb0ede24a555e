// Bad input to podnet-ipam, side by side with the reference host-local (Debian 1.1.1). Every row is
// one invocation on a fresh data directory: what podnet-ipam must answer (exit code, CNI code, a
// message fragment) and what the reference answers. Where the reference agrees, both answers must
// be identical word for word; where it does not, the row pins the reference's answer and says why
// podnet differs. No row may hang (each run is killed after a bound), print a stack trace, or write
// outside its data directory.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireSystem } from "@podnet/testing";
import { afterAll, describe, expect, it } from "vitest";
import { HOST_LOCAL, PODNET_IPAM, invoke, type Outcome } from "./exec.js";

const system = requireSystem({ tools: [HOST_LOCAL, "mkfifo"] });
const root = mkdtempSync(join(tmpdir(), "podnet-ipam-bad-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A network name no other run uses, so the default /var/lib/cni/networks/<name> can be checked. */
const NET = `podnet-bad-${process.pid}`;
const RANGES = [[{ subnet: "10.99.0.0/24" }]];

interface Answer {
  exitCode: number | "timeout";
  code?: number;
  /** A fragment of msg (the whole msg is compared with the reference's where it agrees). */
  msg?: string;
}

interface Row {
  /** What is wrong, as a sentence. */
  input: string;
  command?: string;
  /** The whole config, given the row's data directory; by default a valid one with `ipam` merged in. */
  config?: (dataDir: string) => object;
  ipam?: (dataDir: string) => Record<string, unknown>;
  env?: Record<string, string | undefined>;
  /** Prepares the data directory (stray files) before the run. */
  setup?: (dataDir: string) => void;
  podnet: Answer;
  /** "agrees": the reference answers exactly the same; otherwise its answer and why podnet differs. */
  reference: "agrees" | (Answer & { why: string });
}

const ipamWith =
  (extra: Record<string, unknown>) =>
  (dataDir: string): Record<string, unknown> => ({ type: "host-local", dataDir, ranges: RANGES, ...extra });
const netWith =
  (extra: Record<string, unknown>) =>
  (dataDir: string): object => ({ cniVersion: "1.0.0", name: NET, ipam: ipamWith({})(dataDir), ...extra });
const typeError = (value: string, field: string, type: string) =>
  `json: cannot unmarshal ${value} into Go struct field ${field} of type ${type}`;
const failed = (msg?: string, code = 999): Answer => ({ exitCode: 1, code, ...(msg ? { msg } : {}) });

const FIFO = join(root, "resolv.fifo");
const BIG = join(root, "resolv.big");
const RESOLV_DIR = join(root, "resolv.d");
const A_FILE = join(root, "a-file");

const rows: Row[] = [
  // Keys of the wrong type: host-local's json.Unmarshal refuses them; nothing may fall back to a default.
  {
    input: "dataDir is a number (must not fall back to /var/lib/cni/networks)",
    ipam: ipamWith({ dataDir: 5 }),
    podnet: failed(typeError("number", "IPAMConfig.ipam.dataDir", "string")),
    reference: "agrees",
  },
  {
    input: "dataDir is spelled DATADIR and is a number (Go matches keys ignoring case)",
    ipam: (d) => ({ ...ipamWith({})(d), DATADIR: 7 }),
    podnet: failed(typeError("number", "IPAMConfig.ipam.dataDir", "string")),
    reference: "agrees",
  },
  {
    input: "resolvConf is a number",
    ipam: ipamWith({ resolvConf: 5 }),
    podnet: failed(typeError("number", "IPAMConfig.ipam.resolvConf", "string")),
    reference: "agrees",
  },
  {
    input: "type is a number",
    ipam: ipamWith({ type: 5 }),
    podnet: failed(typeError("number", "IPAMConfig.ipam.type", "string")),
    reference: "agrees",
  },
  {
    input: "ipam is a string",
    config: netWith({ ipam: "host-local" }),
    podnet: failed(typeError("string", "Net.ipam", "allocator.IPAMConfig")),
    reference: "agrees",
  },
  {
    input: "ipam is an array",
    config: netWith({ ipam: [] }),
    podnet: failed(typeError("array", "Net.ipam", "allocator.IPAMConfig")),
    reference: "agrees",
  },
  {
    input: "ipam is null",
    config: netWith({ ipam: null }),
    podnet: failed("IPAM config missing 'ipam' key"),
    reference: "agrees",
  },
  {
    input: "ranges is a number",
    ipam: ipamWith({ ranges: 5 }),
    podnet: failed(typeError("number", "IPAMConfig.ipam.ranges", "[]allocator.RangeSet")),
    reference: "agrees",
  },
  {
    input: "a range set is a number",
    ipam: ipamWith({ ranges: [5] }),
    podnet: failed(typeError("number", "IPAMConfig.ipam.ranges", "allocator.RangeSet")),
    reference: "agrees",
  },
  {
    input: "a range is a number",
    ipam: ipamWith({ ranges: [[5]] }),
    podnet: failed(typeError("number", "IPAMConfig.ipam.ranges", "allocator.Range")),
    reference: "agrees",
  },
  {
    input: "a range has no subnet",
    ipam: ipamWith({ ranges: [[{}]] }),
    podnet: failed("invalid range set 0: IP <nil> not v4 nor v6"),
    reference: "agrees",
  },
  {
    input: "a range set is null",
    ipam: ipamWith({ ranges: [null] }),
    podnet: failed("invalid range set 0: empty range set"),
    reference: "agrees",
  },
  {
    input: "a subnet is a number",
    ipam: ipamWith({ ranges: [[{ subnet: 5 }]] }),
    podnet: failed(typeError("number", "Range.ipam.ranges.subnet", "string")),
    reference: "agrees",
  },
  {
    input: "the legacy subnet is a number",
    ipam: (d) => ({ type: "host-local", dataDir: d, subnet: 5 }),
    podnet: failed(typeError("number", "IPAMConfig.ipam.subnet", "string")),
    reference: "agrees",
  },
  {
    input: "a subnet is not a CIDR",
    ipam: ipamWith({ ranges: [[{ subnet: "" }]] }),
    podnet: failed("invalid CIDR address: "),
    reference: "agrees",
  },
  {
    input: "rangeStart is a number",
    ipam: ipamWith({ ranges: [[{ subnet: "10.99.0.0/24", rangeStart: 5 }]] }),
    podnet: failed(typeError("number", "Range.ipam.ranges.rangeStart", "net.IP")),
    reference: "agrees",
  },
  {
    input: "rangeStart is an object",
    ipam: ipamWith({ ranges: [[{ subnet: "10.99.0.0/24", rangeStart: {} }]] }),
    podnet: failed(typeError("object", "Range.ipam.ranges.rangeStart", "net.IP")),
    reference: "agrees",
  },
  {
    input: "rangeStart has a prefix length",
    ipam: ipamWith({ ranges: [[{ subnet: "10.99.0.0/24", rangeStart: "10.99.0.1/24" }]] }),
    podnet: failed("invalid IP address: 10.99.0.1/24"),
    reference: "agrees",
  },
  {
    input: "a gateway is a number",
    ipam: ipamWith({ ranges: [[{ subnet: "10.99.0.0/24", gateway: 7 }]] }),
    podnet: failed(typeError("number", "Range.ipam.ranges.gateway", "net.IP")),
    reference: "agrees",
  },
  {
    input: "a bad IP after a key of the wrong type (the IP's own error stops decoding and wins)",
    ipam: ipamWith({ dataDir: 5, ranges: [[{ subnet: "10.99.0.0/24", rangeStart: "zz" }]] }),
    podnet: failed("invalid IP address: zz"),
    reference: "agrees",
  },
  {
    input: "rangeStart after rangeEnd (addresses past rangeEnd were handed out)",
    ipam: ipamWith({
      ranges: [[{ subnet: "10.99.0.0/24", rangeStart: "10.99.0.10", rangeEnd: "10.99.0.5" }]],
    }),
    podnet: failed("invalid range set 0: RangeStart 10.99.0.10 not in network 10.99.0.0/24"),
    reference: "agrees",
  },
  {
    input: "rangeEnd before the default rangeStart",
    ipam: ipamWith({ ranges: [[{ subnet: "10.99.0.0/24", rangeEnd: "10.99.0.0" }]] }),
    podnet: failed("invalid range set 0: RangeEnd 10.99.0.0 not in network 10.99.0.0/24"),
    reference: "agrees",
  },
  {
    input: "routes is a number",
    ipam: ipamWith({ routes: 5 }),
    podnet: failed(typeError("number", "IPAMConfig.ipam.routes", "[]*types.Route")),
    reference: "agrees",
  },
  {
    input: "a route is a number",
    ipam: ipamWith({ routes: [5] }),
    podnet: failed(typeError("number", "IPAMConfig.ipam.routes", "types.route")),
    reference: "agrees",
  },
  {
    input: "a route's dst is a number",
    ipam: ipamWith({ routes: [{ dst: 5 }] }),
    podnet: failed(typeError("number", "IPAMConfig.ipam.routes", "string")),
    reference: "agrees",
  },
  {
    input: "a route's gw is a number",
    ipam: ipamWith({ routes: [{ dst: "10.0.0.0/8", gw: 5 }] }),
    podnet: failed(typeError("number", "IPAMConfig.ipam.routes", "net.IP")),
    reference: "agrees",
  },
  {
    input: "a route's dst is not a CIDR",
    ipam: ipamWith({ routes: [{ dst: "abc" }] }),
    podnet: failed("invalid CIDR address: abc"),
    reference: "agrees",
  },
  {
    input: "a route has no dst",
    ipam: ipamWith({ routes: [{}] }),
    podnet: failed("invalid route: dst is required", 7),
    reference: {
      exitCode: 0,
      why: 'host-local answers a route {"dst":"<nil>"}, which no runtime can install',
    },
  },
  {
    input: "runtimeConfig is a number",
    config: netWith({ runtimeConfig: 5 }),
    podnet: failed("json: cannot unmarshal number into Go struct field Net.runtimeConfig of type struct {"),
    reference: "agrees",
  },
  {
    input: "runtimeConfig.ipRanges is a number",
    config: netWith({ runtimeConfig: { ipRanges: 5 } }),
    podnet: failed(typeError("number", ".runtimeConfig.ipRanges", "[]allocator.RangeSet")),
    reference: "agrees",
  },
  {
    input: "runtimeConfig.ips is a number",
    config: netWith({ runtimeConfig: { ips: 5 } }),
    podnet: failed(typeError("number", ".runtimeConfig.ips", "[]*ip.IP")),
    reference: "agrees",
  },
  {
    input: "args.cni is a number",
    config: netWith({ args: { cni: 5 } }),
    podnet: failed(typeError("number", ".args.cni", "allocator.IPAMArgs")),
    reference: "agrees",
  },
  {
    input: "args.cni.ips holds a number",
    config: netWith({ args: { cni: { ips: [5] } } }),
    podnet: failed(typeError("number", "IPAMArgs.args.cni.ips", "*ip.IP")),
    reference: "agrees",
  },
  {
    input: "args.cni.ips holds a non-address",
    config: netWith({ args: { cni: { ips: ["zz"] } } }),
    podnet: failed("invalid IP address zz"),
    reference: "agrees",
  },
  {
    input: "the network name is a number",
    config: netWith({ name: 5 }),
    podnet: failed("error unmarshall network config: " + typeError("number", ".name", "string"), 6),
    reference: "agrees",
  },
  {
    input: "cniVersion is a number",
    config: netWith({ cniVersion: 5 }),
    podnet: failed(
      "decoding version from network config: " + typeError("number", ".cniVersion", "string"),
      6,
    ),
    reference: "agrees",
  },
  // Paths that make a careless plugin hang, spin or read forever.
  {
    input: "dataDir under /proc (Node's recursive mkdir spins there)",
    ipam: ipamWith({ dataDir: "/proc/podnet-no-such-dir" }),
    podnet: failed("mkdir /proc/podnet-no-such-dir: no such file or directory"),
    reference: "agrees",
  },
  {
    input: "dataDir is a regular file",
    ipam: ipamWith({ dataDir: A_FILE }),
    podnet: failed(`mkdir ${A_FILE}: not a directory`),
    reference: "agrees",
  },
  {
    input: "resolvConf is /dev/zero",
    ipam: ipamWith({ resolvConf: "/dev/zero" }),
    podnet: failed("resolvConf /dev/zero: not a regular file"),
    reference: { ...failed("bufio.Scanner: token too long"), why: "podnet reads regular files only" },
  },
  {
    input: "resolvConf is a FIFO nobody writes to",
    ipam: ipamWith({ resolvConf: FIFO }),
    podnet: failed(`resolvConf ${FIFO}: not a regular file`),
    reference: { exitCode: "timeout", why: "host-local blocks in open(2) until a writer comes" },
  },
  {
    input: "resolvConf is larger than 64 KiB",
    ipam: ipamWith({ resolvConf: BIG }),
    podnet: failed(`resolvConf ${BIG}: larger than 65536 bytes`),
    reference: { exitCode: 0, why: "host-local reads any length of short lines" },
  },
  {
    input: "resolvConf is a directory",
    ipam: ipamWith({ resolvConf: RESOLV_DIR }),
    podnet: failed(`read ${RESOLV_DIR}: is a directory`),
    reference: "agrees",
  },
  {
    input: "resolvConf does not exist",
    ipam: ipamWith({ resolvConf: join(root, "no-such-resolv.conf") }),
    podnet: failed(`open ${join(root, "no-such-resolv.conf")}: no such file or directory`),
    reference: "agrees",
  },
  // Stray entries in the data directory are not reservations.
  {
    input: "directories named like the first addresses sit in the data directory (ADD takes the next)",
    setup: (d) => ["10.99.0.2", "10.99.0.3"].forEach((a) => mkdirSync(join(d, NET, a), { recursive: true })),
    podnet: { exitCode: 0 },
    reference: "agrees",
  },
  {
    input: "a directory named like an address sits in the data directory (DEL)",
    command: "DEL",
    setup: (d) => mkdirSync(join(d, NET, "10.99.0.2"), { recursive: true }),
    podnet: { exitCode: 0 },
    reference: "agrees",
  },
  {
    input: "a symbolic link to a FIFO is named like an address (DEL must not follow it)",
    command: "DEL",
    setup: (d) => {
      mkdirSync(join(d, NET), { recursive: true });
      symlinkSync(FIFO, join(d, NET, "10.99.0.2"));
    },
    podnet: { exitCode: 0 },
    reference: {
      exitCode: "timeout",
      why: "host-local's walk opens every entry named like an address, following links",
    },
  },
  {
    input: "the subnet is 0.0.0.0/0",
    ipam: ipamWith({ ranges: [[{ subnet: "0.0.0.0/0" }]] }),
    podnet: failed("Network 0.0.0.0/0 too large to allocate from"),
    reference: {
      ...failed("no IP addresses available in range set"),
      why: "host-local computes a range it cannot print and finds nothing in it; podnet said 0.0.0.2/0",
    },
  },
  {
    input: "the lock is a symbolic link (root must not create or lock what it names)",
    setup: (d) => {
      mkdirSync(join(d, NET), { recursive: true });
      symlinkSync(join(d, "elsewhere"), join(d, NET, "lock"));
    },
    podnet: failed("too many levels of symbolic links"),
    reference: { exitCode: 0, why: "host-local follows the link and creates the file it names" },
  },
  {
    input: "the lock is a FIFO",
    setup: (d) => {
      mkdirSync(join(d, NET), { recursive: true });
      execFileSync("mkfifo", [join(d, NET, "lock")]);
    },
    podnet: failed("lock"),
    reference: { exitCode: "timeout", why: "host-local opens the FIFO and waits for a writer" },
  },
  // CNI 1.1 commands carry no container.
  {
    input: "GC without CNI_CONTAINERID, CNI_IFNAME and CNI_NETNS (as CNI 1.1 sends it)",
    command: "GC",
    config: (d) => ({ ...netWith({})(d), cniVersion: "1.1.0" }),
    env: { CNI_CONTAINERID: undefined, CNI_IFNAME: undefined, CNI_NETNS: undefined },
    podnet: { exitCode: 0 },
    reference: { ...failed("missing containerID", 3), why: "host-local 1.1.1's skel predates CNI 1.1" },
  },
  {
    input: "STATUS without CNI_CONTAINERID, CNI_IFNAME and CNI_NETNS (as CNI 1.1 sends it)",
    command: "STATUS",
    config: (d) => ({ ...netWith({})(d), cniVersion: "1.1.0" }),
    env: { CNI_CONTAINERID: undefined, CNI_IFNAME: undefined, CNI_NETNS: undefined },
    podnet: { exitCode: 0 },
    reference: { ...failed("missing containerID", 3), why: "host-local 1.1.1's skel predates CNI 1.1" },
  },
];

/** The part of an outcome a row pins: exit code, and for errors the CNI code and message. */
function answerOf(outcome: Outcome): Answer {
  const out = outcome.stdout as { code?: number; msg?: string };
  if (outcome.exitCode === 0 || outcome.exitCode === "timeout") return { exitCode: outcome.exitCode };
  return { exitCode: outcome.exitCode, code: out.code, msg: out.msg };
}

function expectAnswer(got: Answer, want: Answer): void {
  expect({ exitCode: got.exitCode, code: got.code }).toEqual({ exitCode: want.exitCode, code: want.code });
  if (want.msg !== undefined) expect(got.msg).toContain(want.msg);
}

let runs = 0;
async function run(binary: string, row: Row): Promise<Answer> {
  const dataDir = join(root, `run-${runs++}`);
  mkdirSync(dataDir);
  row.setup?.(dataDir);
  const config = row.config
    ? row.config(dataDir)
    : { cniVersion: "1.0.0", name: NET, ipam: (row.ipam ?? ipamWith({}))(dataDir) };
  const outcome = await invoke(binary, {
    command: row.command ?? "ADD",
    config,
    ...(row.env ? { env: row.env } : {}),
    timeoutMs: 3000,
  });
  // A stack trace is not a CNI answer: stdout must be a CNI result or error, or empty.
  if (outcome.exitCode === 1) expect(outcome.stdout).toMatchObject({ code: expect.any(Number) });
  return answerOf(outcome);
}

describe.skipIf(system.skip)("podnet-ipam refuses bad input as a CNI error, beside host-local", () => {
  writeFileSync(A_FILE, "");
  mkdirSync(RESOLV_DIR, { recursive: true });
  writeFileSync(BIG, "# padding\n".repeat(7000));
  if (!existsSync(FIFO)) execFileSync("mkfifo", [FIFO]);

  it.each(rows.map((row) => [row.input, row] as const))("%s", async (_, row) => {
    const [podnet, reference] = [await run(PODNET_IPAM, row), await run(HOST_LOCAL, row)];
    expectAnswer(podnet, row.podnet);
    if (row.reference === "agrees") expect(podnet).toEqual(reference);
    else expectAnswer(reference, row.reference);
    // Nothing was written where the config did not say.
    expect(existsSync(join("/var/lib/cni/networks", NET))).toBe(false);
  });

  it("waits a bounded time for a lock another process holds, then says try again later (code 11)", async () => {
    const { DiskIpamStore } = await import("../src/disk-store.js");
    const store = new DiskIpamStore(join(root, "locked"), NET, { lockTimeoutSeconds: 1 });
    // Its own process group, so the sleeping shell that inherits the lock goes with it.
    const holder = spawn("flock", ["-x", join(store.dir, "lock"), "-c", "echo held; sleep 30"], {
      stdio: ["ignore", "pipe", "ignore"],
      detached: true,
    });
    await new Promise<void>((resolve) => holder.stdout.once("data", () => resolve()));
    try {
      await expect(store.withLock(() => "never")).rejects.toMatchObject({ cniCode: 11 });
    } finally {
      process.kill(-holder.pid!, "SIGKILL");
    }
  });
});
