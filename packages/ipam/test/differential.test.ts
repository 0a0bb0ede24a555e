// podnet-ipam against the reference host-local (Debian containernetworking-plugins 1.1.1): the same
// configs and the same sequences of ADD/DEL/CHECK through both executables, each on its own data
// directory; parsed stdout and exit codes must be identical, step by step.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { requireSystem } from "@podnet/testing";
import { afterAll, describe, expect, it } from "vitest";
import { HOST_LOCAL, PODNET_IPAM, invoke, type Invocation } from "./exec.js";

const system = requireSystem({ tools: [HOST_LOCAL] });
const root = mkdtempSync(join(tmpdir(), "podnet-ipam-diff-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let runs = 0;

type Step = Omit<Invocation, "config"> & { config?: string | object };

/** Runs the steps through both executables with fresh data dirs; returns both transcripts. */
async function both(
  ipam: Record<string, unknown> | undefined,
  steps: Step[],
  extra: Record<string, unknown> = {},
) {
  const transcripts: Record<"reference" | "podnet", unknown[]> = { reference: [], podnet: [] };
  const run = runs++;
  for (const [who, binary] of [
    ["reference", HOST_LOCAL],
    ["podnet", PODNET_IPAM],
  ] as const) {
    const dataDir = join(root, `${run}-${who}`);
    const config = {
      cniVersion: "1.0.0",
      name: "testnet",
      ...extra,
      ...(ipam ? { ipam: { type: "host-local", dataDir, ...ipam } } : {}),
    };
    for (const step of steps) {
      const outcome = await invoke(binary, { ...step, config: step.config ?? config });
      transcripts[who].push({
        step: `${step.command} ${step.containerId ?? "c1"}/${step.ifname ?? "eth0"}`,
        ...outcome,
      });
    }
  }
  return transcripts;
}

async function expectSame(
  ipam: Record<string, unknown> | undefined,
  steps: Step[],
  extra?: Record<string, unknown>,
) {
  const { reference, podnet } = await both(ipam, steps, extra);
  expect(podnet).toEqual(reference);
  return reference;
}

const add = (containerId: string, ifname = "eth0", env?: Record<string, string>): Step => ({
  command: "ADD",
  containerId,
  ifname,
  ...(env ? { env } : {}),
});
const del = (containerId: string, ifname = "eth0"): Step => ({ command: "DEL", containerId, ifname });
const check = (containerId: string, ifname = "eth0"): Step => ({ command: "CHECK", containerId, ifname });

describe.skipIf(system.skip)("podnet-ipam answers exactly as the reference host-local", () => {
  it("allocates sequentially, round-robin, wraps around, runs out, and refuses a duplicate ADD", async () => {
    const transcript = await expectSame(
      { ranges: [[{ subnet: "10.99.0.0/29" }]], routes: [{ dst: "0.0.0.0/0" }] },
      [
        add("c1"),
        add("c2"),
        add("c3"),
        del("c1"),
        add("c4"),
        add("c5"),
        add("c6"),
        add("c7"),
        add("c2"),
        check("c2"),
        check("c1"),
        del("c2"),
        del("c2"),
        del("nosuch"),
        add("c2", "eth1"),
      ],
    );
    // And the reference said what the notes recorded: round robin skips the freed .2 until it wraps.
    expect((transcript[6] as { stdout: { ips: { address: string }[] } }).stdout.ips[0]!.address).toBe(
      "10.99.0.2/29",
    );
    expect(transcript[7]).toMatchObject({
      exitCode: 1,
      stdout: {
        code: 999,
        msg: "failed to allocate for range 0: no IP addresses available in range set: 10.99.0.1-10.99.0.6",
      },
    });
  });

  it("walks several ranges of one set, and one address per range set", async () => {
    await expectSame({ ranges: [[{ subnet: "10.99.5.0/30" }, { subnet: "10.99.6.0/30" }]] }, [
      add("a"),
      add("b"),
      add("c"),
      del("a"),
      add("d"),
    ]);
    await expectSame(
      { ranges: [[{ subnet: "10.99.5.0/30" }], [{ subnet: "10.99.7.0/29", rangeStart: "10.99.7.3" }]] },
      [add("a"), add("b"), del("a"), add("c"), check("c"), del("c"), check("c")],
    );
  });

  it("honours rangeStart/rangeEnd (an explicit broadcast end is handed out) and a gateway elsewhere", async () => {
    await expectSame(
      { ranges: [[{ subnet: "10.99.10.0/29", rangeStart: "10.99.10.6", rangeEnd: "10.99.10.7" }]] },
      [add("e1"), add("e2"), add("e3")],
    );
    await expectSame({ ranges: [[{ subnet: "10.99.3.0/29", gateway: "10.99.3.6" }]] }, [
      add("g1"),
      add("g2"),
      add("g3"),
      add("g4"),
      add("g5"),
      add("g6"),
    ]);
    await expectSame({ subnet: "10.99.1.0/30" }, [add("a1"), add("a2")]);
  });

  it("gives requested addresses from CNI_ARGS, args.cni.ips and runtimeConfig.ips, and refuses taken ones", async () => {
    const ipam = { ranges: [[{ subnet: "10.99.4.0/24", rangeStart: "10.99.4.10", rangeEnd: "10.99.4.20" }]] };
    await expectSame(ipam, [
      add("o1"),
      add("o2", "eth0", { CNI_ARGS: "IP=10.99.4.15" }),
      add("o3", "eth0", { CNI_ARGS: "IP=10.99.4.15" }),
      add("o4"),
      add("o5", "eth0", { CNI_ARGS: "IP=10.99.4.1" }),
      add("o6", "eth0", { CNI_ARGS: "IP=10.99.9.9" }),
      add("o7", "eth0", { CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAME=web-0;IP=10.99.4.18" }),
      add("o8", "eth0", { CNI_ARGS: "IP=10.99.4.11;IP=10.99.4.19" }),
    ]);
    await expectSame(ipam, [add("p1"), add("p2")], { args: { cni: { ips: ["10.99.4.12"] } } });
    await expectSame(ipam, [add("r1"), add("r2")], { runtimeConfig: { ips: ["10.99.4.13/24"] } });
  });

  it("answers in the config's spec version, copies routes, and reads resolvConf", async () => {
    const resolv = join(root, "resolv.conf");
    writeFileSync(
      resolv,
      "nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local\noptions ndots:5\n",
    );
    const ipam = {
      ranges: [[{ subnet: "10.99.8.0/24" }]],
      routes: [{ dst: "10.244.0.0/16" }, { dst: "0.0.0.0/0", gw: "10.99.8.1" }],
      resolvConf: resolv,
    };
    for (const cniVersion of ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"])
      await expectSame(ipam, [add("d1"), check("d1")], { cniVersion });
  });

  it("reads CIDRs as net.ParseCIDR: a prefix length with leading zeros, a route's dst with host bits", async () => {
    await expectSame(
      {
        ranges: [[{ subnet: "10.99.3.0/024" }]],
        routes: [{ dst: "10.0.0.0/008" }, { dst: "10.244.1.7/16" }, { dst: "0.0.0.0/00", gw: "10.99.3.1" }],
      },
      [add("z1"), check("z1"), del("z1")],
    );
    for (const subnet of [
      "10.99.3.0/",
      "10.99.3.0/+24",
      "10.99.3.0/ 24",
      "10.99.3.0/0033",
      "10.99.3.0/99999999999999999999",
    ])
      await expectSame({ ranges: [[{ subnet }]] }, [add("z2")]);
  });

  it("refuses bad configs with the reference's codes and messages", async () => {
    const steps = [add("x")];
    for (const ipam of [
      { ranges: [[{ subnet: "10.99.2.0/31" }]] },
      { ranges: [[{ subnet: "10.99.2.0/33" }]] },
      { ranges: [[{ subnet: "10.99.9.5/24" }]] },
      { ranges: [[{ subnet: "10.99.2.0/24", rangeStart: "10.99.3.1" }]] },
      { ranges: [[{ subnet: "10.99.2.0/24", rangeEnd: "10.99.3.1" }]] },
      { ranges: [[{ subnet: "10.99.2.0/24" }, { subnet: "10.99.2.0/25" }]] },
      { ranges: [[{ subnet: "10.99.2.0/24" }], [{ subnet: "10.99.2.0/25" }]] },
      { ranges: [] },
      { ranges: [[]] },
      { ranges: [[{ subnet: "10.99.2.0/24", gateway: "10.99.2.300" }]] },
    ])
      await expectSame(ipam, steps);
    await expectSame(undefined, steps);
    await expectSame({ ranges: [[{ subnet: "10.99.2.0/24" }]] }, [
      add("x", "eth0", { CNI_ARGS: "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0" }),
      add("x", "eth0", { CNI_ARGS: "IP=10.99.2.5;Foo" }),
    ]);
    await expectSame({ ranges: [[{ subnet: "10.99.2.0/24" }], [{ subnet: "10.99.3.0/24" }]] }, steps, {
      cniVersion: "0.2.0",
    });
  });

  it("refuses bad invocations as the reference library does", async () => {
    const ipam = { ranges: [[{ subnet: "10.99.2.0/24" }]] };
    await expectSame(ipam, [
      { command: "ADD", env: { CNI_NETNS: undefined } },
      { command: "ADD", env: { CNI_PATH: undefined } },
      {
        command: "ADD",
        env: { CNI_CONTAINERID: undefined, CNI_NETNS: undefined, CNI_IFNAME: undefined, CNI_PATH: undefined },
      },
      { command: "DEL", env: { CNI_NETNS: undefined } },
      { command: "ADD", containerId: "-bad/id" },
      { command: "ADD", ifname: "way-too-long-ifname0" },
      { command: "ADD", ifname: "a:b" },
      { command: "NOPE" },
      { command: "ADD", config: '{"cniVersion":' },
      { command: "ADD", config: "" },
      { command: "ADD", config: "xyz" },
      { command: "ADD", config: { cniVersion: "1.0.0" } },
      { command: "ADD", config: { cniVersion: "1.0.0", name: "bad name" } },
      {
        command: "CHECK",
        config: {
          cniVersion: "0.3.1",
          name: "n",
          ipam: { type: "host-local", ranges: [[{ subnet: "10.99.2.0/24" }]] },
        },
      },
    ]);
  });

  it("differs only by also speaking CNI 1.1.0 (GC and STATUS), which the reference 1.1.1 refuses", async () => {
    const ipam = { type: "host-local", ranges: [[{ subnet: "10.99.2.0/24" }]] };
    const version = await both(undefined, [{ command: "VERSION", config: {} }]);
    const [ref, ours] = [
      version.reference[0] as { stdout: { supportedVersions: string[] } },
      version.podnet[0] as { stdout: { cniVersion: string; supportedVersions: string[] } },
    ];
    expect(ours.stdout.supportedVersions).toEqual([...ref.stdout.supportedVersions, "1.1.0"]);
    expect(ours.stdout.cniVersion).toBe("1.1.0");
    const refused = await both(undefined, [
      { command: "ADD", config: { cniVersion: "9.9.9", name: "n", ipam } },
    ]);
    const [r, o] = [
      refused.reference[0] as { stdout: { details: string } },
      refused.podnet[0] as { stdout: { details: string } },
    ];
    expect(o).toEqual({
      ...r,
      stdout: { ...r.stdout, details: r.stdout.details.replace(/\]$/, ' "1.1.0"]') },
    });
    const v11 = await both(undefined, [
      {
        command: "ADD",
        config: { cniVersion: "1.1.0", name: "n", ipam: { ...ipam, dataDir: join(root, `v11-${runs}`) } },
      },
    ]);
    expect(v11.reference[0]).toMatchObject({
      exitCode: 1,
      stdout: { code: 1, msg: "incompatible CNI versions" },
    });
    expect(v11.podnet[0]).toMatchObject({
      exitCode: 0,
      stdout: { cniVersion: "1.1.0", ips: [{ address: "10.99.2.2/24", gateway: "10.99.2.1" }] },
    });
  });

  const pool = fc.constantFrom("a", "b", "c", "d", "e");
  const op: fc.Arbitrary<Step> = fc.oneof(
    {
      weight: 5,
      arbitrary: fc.tuple(pool, fc.constantFrom("eth0", "eth1")).map(([id, ifname]) => add(id, ifname)),
    },
    {
      weight: 3,
      arbitrary: fc.tuple(pool, fc.constantFrom("eth0", "eth1")).map(([id, ifname]) => del(id, ifname)),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(pool, fc.constantFrom("eth0", "eth1")).map(([id, ifname]) => check(id, ifname)),
    },
  );
  const config = fc.constantFrom(
    { ranges: [[{ subnet: "10.99.0.0/29" }]] },
    { ranges: [[{ subnet: "10.99.0.0/30" }, { subnet: "10.99.1.0/30" }]] },
    { ranges: [[{ subnet: "10.99.0.0/30" }], [{ subnet: "10.99.1.0/29", rangeStart: "10.99.1.4" }]] },
    { ranges: [[{ subnet: "10.99.2.0/29", gateway: "10.99.2.3", rangeEnd: "10.99.2.7" }]] },
  );

  it("agrees on random sequences of ADD, DEL and CHECK", async () => {
    await fc.assert(
      fc.asyncProperty(config, fc.array(op, { minLength: 4, maxLength: 12 }), async (ipam, steps) => {
        await expectSame(ipam, steps);
      }),
      { numRuns: 12 },
    );
  }, 180_000);
});
