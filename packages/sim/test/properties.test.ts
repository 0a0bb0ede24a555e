// Random topologies: segments, hosts (some routing between segments), random static routes
// (loops included), then packets to held and unheld addresses.
import fc from "fast-check";
import type { Ipv4Header } from "@podnet/core";
import { NetlinkError } from "@podnet/netlink";
import { describe, expect, it } from "vitest";
import type { Trace } from "../src/index.js";
import { ArpHost } from "../src/link.js";
import { Lab } from "./lab.js";
import { parseAddressArgument as ip, parseRouteDst as net } from "@podnet/netlink";

interface Topology {
  hosts: { segments: number[]; forwarding: boolean }[];
  routes: { host: number; dst: number; via: number }[];
  probes: { from: number; to: number; protocol: "icmp" | "tcp" | "udp"; ttl: number }[];
}

const topology: fc.Arbitrary<Topology> = fc.integer({ min: 2, max: 7 }).chain((hostCount) =>
  fc.record({
    hosts: fc.array(
      fc.record({
        segments: fc.uniqueArray(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 2 }),
        forwarding: fc.boolean(),
      }),
      { minLength: hostCount, maxLength: hostCount },
    ),
    routes: fc.array(
      fc.record({
        host: fc.nat(hostCount - 1),
        dst: fc.integer({ min: 0, max: 4 }),
        via: fc.nat(hostCount * 2),
      }),
      { maxLength: 12 },
    ),
    probes: fc.array(
      fc.record({
        from: fc.nat(hostCount - 1),
        to: fc.nat(hostCount * 2 + 3),
        protocol: fc.constantFrom("icmp" as const, "tcp" as const, "udp" as const),
        ttl: fc.integer({ min: 1, max: 64 }),
      }),
      { minLength: 1, maxLength: 6 },
    ),
  }),
);

/** Host i on segment s holds 10.s.0.(i+1); destinations 3 and 4 are networks nobody holds. */
const addressOf = (host: number, segment: number) => `10.${segment}.0.${host + 1}`;
const destinations = ["10.0.0.0/24", "10.1.0.0/24", "10.2.0.0/24", "10.9.0.0/24", "10.9.1.0/24"];

async function build(
  t: Topology,
  options: ConstructorParameters<typeof Lab>[1] = {},
): Promise<{ lab: Lab; held: Map<string, string>; candidates: string[] }> {
  const lab = new Lab("property", options);
  const held = new Map<string, string>();
  for (const [i, host] of t.hosts.entries()) {
    for (const [n, segment] of host.segments.entries()) {
      await lab.host(`h${i}`, `seg${segment}`, `${addressOf(i, segment)}/24`, {
        nic: `eth${n}`,
        forwarding: host.forwarding && n === 0,
      });
      held.set(addressOf(i, segment), `h${i}`);
    }
  }
  const candidates = [...held.keys(), "10.0.0.200", "10.1.0.200", "10.9.0.5", "10.9.1.5"];
  for (const r of t.routes) {
    const via = candidates[r.via % candidates.length]!;
    await lab.k.route
      .replace(`h${r.host}`, { dst: net(destinations[r.dst]!), via: ip(via) })
      .catch((error: unknown) => {
        if (!(error instanceof NetlinkError)) throw error; // refusals (gateway not on-link) are part of the game
      });
  }
  return { lab, held, candidates };
}

function requestTtls(trace: Trace): number[] {
  return trace.hops
    .filter((h) => h.direction === "request" && h.event === "forward")
    .map((h) => (h.packet.headers[0] as Ipv4Header).ttl);
}

describe("the packet walk on random topologies", () => {
  it("terminates, never delivers to an address nobody holds, and only ever lowers the TTL", async () => {
    await fc.assert(
      fc.asyncProperty(topology, async (t) => {
        const { lab, held, candidates } = await build(t);
        for (const p of t.probes) {
          const to = candidates[p.to % candidates.length]!;
          const trace = lab.k.send({ from: `h${p.from}`, to, protocol: p.protocol, port: 80, ttl: p.ttl });
          if (trace.deliveredTo) {
            expect(held.get(trace.deliveredTo.address)).toBe(trace.deliveredTo.ns);
            expect(trace.deliveredTo.address).toBe(to);
          }
          if (trace.outcome === "reached" || trace.outcome === "refused") expect(held.has(to)).toBe(true);
          if (!held.has(to)) expect(["unreachable", "dropped"]).toContain(trace.outcome);
          const ttls = requestTtls(trace);
          for (let i = 1; i < ttls.length; i++) expect(ttls[i]).toBeLessThan(ttls[i - 1]!);
          expect(ttls.every((ttl) => ttl >= 0 && ttl < p.ttl)).toBe(true);
          expect(trace.hops.length).toBeLessThan(4000);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("gives the same trace for the same topology and traffic", async () => {
    await fc.assert(
      fc.asyncProperty(topology, async (t) => {
        const first = await build(t);
        const second = await build(t);
        for (const p of t.probes) {
          const to = first.candidates[p.to % first.candidates.length]!;
          const a = first.lab.k.send({ from: `h${p.from}`, to, protocol: p.protocol, port: 80, ttl: p.ttl });
          const b = second.lab.k.send({ from: `h${p.from}`, to, protocol: p.protocol, port: 80, ttl: p.ttl });
          expect(b).toEqual(a);
        }
      }),
      { numRuns: 40 },
    );
  });

  it("resolves ARP through the bridges' index, or a look at their ports, exactly as by walking every flooded copy", async () => {
    // Walking every copy is what both replace: a degenerate index (every port "other") does it.
    const walkEveryCopy = (lab: Lab) => {
      for (const ns of lab.k.namespaces.values())
        for (const link of ns.links.values())
          if (link.ports)
            link.arpIndex = {
              version: lab.k.topologyVersion,
              ports: [...link.ports],
              hosts: [...link.ports].map(() => ArpHost.OTHER),
              carriers: [...link.ports].filter((port) => port.carrier).length,
              first: {
                all: [...link.ports].slice(0, 7),
                withCarrier: [...link.ports].filter((port) => port.carrier).slice(0, 7),
              },
            };
    };
    await fc.assert(
      fc.asyncProperty(topology, async (t) => {
        // Every bridge indexed, every bridge looked at port by port, every copy walked.
        const indexed = await build(t, { arpIndexFrom: 0 });
        const scanned = await build(t, { arpIndexFrom: Infinity });
        const flooded = await build(t, { arpIndexFrom: 0 });
        for (const p of t.probes) {
          const to = indexed.candidates[p.to % indexed.candidates.length]!;
          const send = { from: `h${p.from}`, to, protocol: p.protocol, port: 80, ttl: p.ttl };
          walkEveryCopy(flooded.lab);
          const expected = flooded.lab.k.send(send);
          expect(indexed.lab.k.send(send)).toEqual(expected);
          expect(scanned.lab.k.send(send)).toEqual(expected);
        }
      }),
      { numRuns: 150 },
    );
  });

  it("answers a forwarding loop with ICMP time exceeded, not an endless walk", async () => {
    const lab = new Lab();
    await lab.host("a", "lan", "10.0.0.1/24", { forwarding: true });
    await lab.host("b", "lan", "10.0.0.2/24", { forwarding: true });
    await lab.host("c", "lan", "10.0.0.3/24");
    await lab.k.route.add("a", { dst: net("10.9.0.0/24"), via: ip("10.0.0.2") });
    await lab.k.route.add("b", { dst: net("10.9.0.0/24"), via: ip("10.0.0.1") });
    await lab.k.route.add("c", { dst: net("10.9.0.0/24"), via: ip("10.0.0.1") });
    const trace = lab.k.send({ from: "c", to: "10.9.0.7" });
    expect(trace.outcome).toBe("unreachable");
    expect(trace.reason).toMatch(/^time exceeded: TTL ran out at (a|b)$/);
    expect(requestTtls(trace)).toHaveLength(63);
    expect(trace.replyReceived).toBe(true); // the ICMP error made it back to c
    expect(trace.hops.at(-1)).toMatchObject({ ns: "c", event: "deliver" });
  });
});
