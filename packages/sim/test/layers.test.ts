// Layers kept once for all members must be indistinguishable from the same layers written into every
// member one by one (LayerFanout, the Linux backend's way): random sequences of layer writes, members
// joining and leaving, and the members' own writes touching layer entries, on two kernels, compared
// dump for dump and refusal for refusal.
import fc from "fast-check";
import { Ipv4Prefix } from "@podnet/core";
import {
  LayerFanout,
  NetlinkError,
  parseAddrArgument as cidr,
  parseAddressArgument as ip,
  parseLinkAddress as mac,
  type LayerEntries,
  type LayerRefusal,
  type Netlink,
} from "@podnet/netlink";
import { describe, expect, it } from "vitest";
import { SimKernel } from "../src/index.js";

const MEMBERS = 4;
const OWNERS = ["n0", "n1", "n2", "n3", "away"];
const DEVICES = ["eth0", "flannel.1", "eth1", "nowhere"];
const subnet = (k: number) => Ipv4Prefix.parse(`10.244.${k}.0/24`);

const entries: fc.Arbitrary<LayerEntries> = fc
  .record({
    routes: fc.array(
      fc.record({
        k: fc.nat(5),
        via: fc.constantFrom("10.100.0.1", "10.100.0.3", "10.100.0.9", "10.200.0.1", "10.244.2.0"),
        dev: fc.constantFrom(...DEVICES),
        onlink: fc.boolean(),
        metric: fc.constantFrom(undefined, undefined, undefined, 100),
      }),
      { maxLength: 2 },
    ),
    neighbours: fc.array(fc.record({ k: fc.nat(5), dev: fc.constantFrom(...DEVICES), m: fc.nat(3) }), {
      maxLength: 2,
    }),
    fdb: fc.array(fc.record({ m: fc.nat(3), dev: fc.constantFrom(...DEVICES), d: fc.nat(5) }), {
      maxLength: 2,
    }),
  })
  .map(({ routes, neighbours, fdb }) => ({
    routes: routes.map((r) => ({
      dst: subnet(r.k),
      via: ip(r.via),
      dev: r.dev,
      ...(r.onlink ? { onlink: true } : {}),
      ...(r.metric !== undefined ? { metric: r.metric } : {}),
    })),
    neighbours: neighbours.map((n) => ({
      dst: ip(`10.244.${n.k}.0`),
      dev: n.dev,
      lladdr: mac(`02:00:00:00:00:0${n.m}`),
      state: "permanent" as const,
    })),
    fdb: fdb.map((f) => ({
      mac: mac(`02:00:00:00:00:0${f.m}`),
      dev: f.dev,
      dst: ip(`10.100.0.${f.d + 1}`),
      self: true,
      permanent: true,
    })),
  }));

type Op =
  | { kind: "attach" | "detach" | "delete"; member: number }
  | { kind: "set"; owner: number; entries: LayerEntries }
  | { kind: "route"; member: number; verb: "replace" | "del"; k: number; via: string }
  | { kind: "neigh"; member: number; verb: "replace" | "del"; k: number }
  | { kind: "fdb"; member: number; verb: "append" | "del"; m: number; d: number }
  | { kind: "link"; member: number; dev: string; up: boolean };

const member = fc.nat(MEMBERS - 1);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("attach" as const), member }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constantFrom("detach" as const, "delete" as const), member }),
  },
  {
    weight: 5,
    arbitrary: fc.record({ kind: fc.constant("set" as const), owner: fc.nat(OWNERS.length - 1), entries }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("route" as const),
      member,
      verb: fc.constantFrom("replace" as const, "del" as const),
      k: fc.nat(5),
      via: fc.constantFrom("10.100.0.1", "10.100.0.3"),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("neigh" as const),
      member,
      verb: fc.constantFrom("replace" as const, "del" as const),
      k: fc.nat(5),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("fdb" as const),
      member,
      verb: fc.constantFrom("append" as const, "del" as const),
      m: fc.nat(3),
      d: fc.nat(5),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("link" as const),
      member,
      dev: fc.constantFrom("eth0", "flannel.1"),
      up: fc.boolean(),
    }),
  },
);

/** A kernel with the members' namespaces: eth0 on 10.100.0.0/24, flannel.1 (VXLAN), eth1 down. */
async function cluster(): Promise<SimKernel> {
  const k = new SimKernel({ seed: "layers" });
  for (let i = 0; i < MEMBERS; i++) {
    const ns = `n${i}`;
    await k.netns.add(ns);
    await k.link.add(ns, { kind: "dummy", name: "eth0" });
    await k.addr.add(ns, "eth0", cidr(`10.100.0.${i + 1}/24`));
    await k.link.set(ns, "eth0", { up: true });
    await k.link.add(ns, { kind: "vxlan", name: "flannel.1", vni: 1, dev: "eth0", learning: false });
    await k.addr.add(ns, "flannel.1", cidr(`10.244.${i}.0/32`));
    await k.link.set(ns, "flannel.1", { up: true });
    await k.link.add(ns, { kind: "dummy", name: "eth1" });
  }
  return k;
}

type Layers = Netlink["layer"];

/** What an operation gave: refusals (sorted, in words) or the refusal thrown. */
async function perform(k: SimKernel, layers: Layers, gone: Set<number>, o: Op): Promise<unknown> {
  const words = (r: LayerRefusal[]) =>
    r.map((x) => `${x.ns} ${x.owner}: ${x.entry}: ${x.error.message}`).sort();
  const ns = `n${"member" in o ? o.member : 0}`;
  if ("member" in o && gone.has(o.member)) return "gone";
  try {
    switch (o.kind) {
      case "attach":
        return words(await layers.attach("peers", ns, ns));
      case "detach":
        return await layers.detach("peers", ns);
      case "delete":
        gone.add(o.member);
        return await k.netns.del(ns);
      case "set":
        return words(await layers.set("peers", OWNERS[o.owner]!, o.entries));
      case "route": {
        const spec = { dst: subnet(o.k), via: ip(o.via), dev: "eth0" };
        return await (o.verb === "replace" ? k.route.replace(ns, spec) : k.route.del(ns, spec));
      }
      case "neigh": {
        const spec = { dst: ip(`10.244.${o.k}.0`), dev: "flannel.1", lladdr: mac("02:00:00:00:00:0f") };
        return await (o.verb === "replace" ? k.neigh.replace(ns, spec) : k.neigh.del(ns, spec));
      }
      case "fdb": {
        const spec = {
          mac: mac(`02:00:00:00:00:0${o.m}`),
          dev: "flannel.1",
          dst: ip(`10.100.0.${o.d + 1}`),
          self: true,
        };
        return await (o.verb === "append" ? k.fdb.append(ns, spec) : k.fdb.del(ns, spec));
      }
      case "link":
        return await k.link.set(ns, o.dev, { up: o.up });
    }
  } catch (error) {
    if (error instanceof NetlinkError) return error.message;
    throw error;
  }
}

async function state(k: SimKernel, gone: Set<number>) {
  const out: unknown[] = [];
  for (let i = 0; i < MEMBERS; i++) {
    if (gone.has(i)) continue;
    const ns = `n${i}`;
    const gets = [];
    for (const to of ["10.244.0.5", "10.244.2.5", "10.244.4.5", "10.100.0.3"])
      gets.push(await k.route.get(ns, ip(to)).catch((e: NetlinkError) => e.message));
    out.push({
      ns,
      routes: await k.route.list(ns),
      neighbours: await k.neigh.list(ns),
      fdb: await k.fdb.list(ns),
      gets,
      size: k.namespaces.get(ns)!.routes.size,
    });
  }
  return out;
}

describe("layers", () => {
  it("shared storage and per-member writes are indistinguishable", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
        const shared = await cluster();
        const written = await cluster();
        const fanout = new LayerFanout((ns, batch) => written.batch(ns, batch));
        const goneA = new Set<number>();
        const goneB = new Set<number>();
        for (const o of ops) {
          const a = await perform(shared, shared.layer, goneA, o);
          if (o.kind === "delete") fanout.forget(`n${o.member}`);
          const b = await perform(written, fanout, goneB, o);
          expect(a).toEqual(b);
          expect(await state(shared, goneA)).toEqual(await state(written, goneB));
        }
      }),
      { numRuns: 300 },
    );
  });

  it("keeps a peer's entries once for every member, and each member skips its own", async () => {
    const k = await cluster();
    for (let i = 0; i < MEMBERS; i++) {
      await k.layer.set("peers", `n${i}`, {
        routes: [{ dst: subnet(i), via: ip(`10.100.0.${i + 1}`), dev: "eth0" }],
        neighbours: [],
        fdb: [],
      });
    }
    for (let i = 0; i < MEMBERS; i++) expect(await k.layer.attach("peers", `n${i}`, `n${i}`)).toEqual([]);
    for (let i = 0; i < MEMBERS; i++) {
      const ns = k.namespaces.get(`n${i}`)!;
      // Shared, not copied: the table's own routes are its connected ones.
      expect(ns.layer).toBeDefined();
      expect((await k.route.list(`n${i}`)).map((r) => r.dst)).toEqual(
        ["10.100.0.0/24", "10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24"].filter(
          (d) => d !== `10.244.${i}.0/24`,
        ),
      );
    }
    // A member's own write touching a layer route makes it hold its routes itself, and only it.
    await k.route.del("n0", { dst: subnet(1), via: ip("10.100.0.2") });
    expect(k.namespaces.get("n0")!.layer).toBeUndefined();
    expect(k.namespaces.get("n1")!.layer).toBeDefined();
    expect((await k.route.list("n0")).map((r) => r.dst)).toEqual([
      "10.100.0.0/24",
      "10.244.2.0/24",
      "10.244.3.0/24",
    ]);
    expect((await k.route.list("n2")).map((r) => r.dst)).toContain("10.244.1.0/24");
  });
});
