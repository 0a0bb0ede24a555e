import {
  DEFAULT_ROUTE,
  parseAddressArgument as ip,
  type NftCommand,
  type NftMapElement,
  type NftRule,
  type NftVerdict,
} from "@podnet/netlink";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Lab } from "./lab.js";

const T = { family: "ip", table: "t" } as const;
const daddr = { payload: { protocol: "ip" as const, field: "daddr" as const } };
const dport = { payload: { protocol: "tcp" as const, field: "dport" as const } };
const mark = { meta: { key: "mark" as const } };
const l4proto = { meta: { key: "l4proto" as const } };
const rule = (chain: string, ...expr: NftRule["expr"]): NftRule => ({ ...T, chain, expr });
const goto = (target: string): NftVerdict => ({ goto: { target } });

/** One namespace's table: its set's addresses, its map's elements, its two base chains' rules. */
interface Table {
  ips: string[];
  svc: [address: string, port: number, verdict: number][];
  nat: number[][];
  filter: number[][];
  /** The filter base chain's policy. */
  drop: boolean;
}

const address = fc.integer({ min: 1, max: 6 }).map((k) => `10.96.0.${k}`);
const port = fc.constantFrom(80, 443);
/** A map element's verdict, a nat rule, a filter rule: by number, so that a changed one is a draw. */
const verdicts: NftVerdict[] = [{ accept: null }, { drop: null }, goto("rej"), goto("dn1"), goto("dn2")];
const natRule = fc.tuple(fc.integer({ min: 0, max: 3 }), address, port);
const filterRule = fc.tuple(fc.integer({ min: 0, max: 3 }), address, port);
const table: fc.Arbitrary<Table> = fc.record({
  ips: fc.uniqueArray(address, { maxLength: 3 }),
  svc: fc.uniqueArray(fc.tuple(address, port, fc.integer({ min: 0, max: 4 })), {
    minLength: 1,
    maxLength: 4,
    selector: ([a, p]) => `${a} ${p}`,
  }),
  // The map is looked up first, so that what its elements say is always read.
  nat: fc
    .array(
      natRule.map(([k, a, p]) => [k, Number(a.split(".")[3]), p]),
      { maxLength: 3 },
    )
    .map((rules) => [[0, 0, 0], ...rules]),
  filter: fc.array(
    filterRule.map(([k, a, p]) => [k, Number(a.split(".")[3]), p]),
    { maxLength: 3 },
  ),
  drop: fc.boolean(),
});

const element = ([a, p, v]: Table["svc"][number]): NftMapElement => [{ concat: [a, "tcp", p] }, verdicts[v]!];

function natStatement([kind, host, p]: number[]): NftRule["expr"] {
  const to = `10.96.0.${host}`;
  switch (kind) {
    case 0:
      return [{ vmap: { key: { concat: [daddr, l4proto, dport] }, data: "@svc" } }];
    case 1:
      return [{ match: { op: "==", left: daddr, right: "@ips" } }, { jump: { target: "dn1" } }];
    case 2:
      return [
        { match: { op: "==", left: daddr, right: to } },
        { match: { op: "==", left: dport, right: p! } },
        { dnat: { addr: "10.100.0.9", port: 8082 } },
      ];
    default:
      return [{ mangle: { key: mark, value: { "|": [mark, host!] } } }];
  }
}

function filterStatement([kind, host, p]: number[]): NftRule["expr"] {
  switch (kind) {
    case 0:
      return [{ match: { op: "==", left: daddr, right: "@ips" } }, { drop: null }];
    case 1:
      return [{ match: { op: "==", left: { "&": [mark, 0xff] }, right: host! } }, { drop: null }];
    case 2:
      return [{ match: { op: "==", left: dport, right: p! } }, { jump: { target: "rej" } }];
    default:
      return [{ match: { op: "!=", left: daddr, right: "@ips" } }, { accept: null }];
  }
}

/** The commands writing a table; `pad` adds a second table large enough to keep a program of its own. */
function commands(t: Table, pad: boolean): NftCommand[] {
  const chain = (
    name: string,
    base?: { type: "nat" | "filter"; hook: "output"; prio: number; policy: "accept" | "drop" },
  ) => ({ add: { chain: { ...T, name, ...base } } });
  const out: NftCommand[] = [
    { add: { table: { family: "ip", name: "t" } } },
    { add: { set: { ...T, name: "ips", type: "ipv4_addr" } } },
    {
      add: { map: { ...T, name: "svc", type: ["ipv4_addr", "inet_proto", "inet_service"], map: "verdict" } },
    },
    chain("rej"),
    chain("dn1"),
    chain("dn2"),
    chain("out-nat", { type: "nat", hook: "output", prio: -100, policy: "accept" }),
    chain("out-filter", { type: "filter", hook: "output", prio: -10, policy: t.drop ? "drop" : "accept" }),
    { add: { rule: rule("rej", { reject: { type: "icmp", expr: "port-unreachable" } }) } },
    { add: { rule: rule("dn1", { dnat: { addr: "10.100.0.9", port: 8080 } }) } },
    { add: { rule: rule("dn2", { dnat: { addr: "10.100.0.9", port: 8081 } }) } },
  ];
  if (t.ips.length) out.push({ add: { element: { ...T, name: "ips", elem: t.ips } } });
  if (t.svc.length) out.push({ add: { element: { ...T, name: "svc", elem: t.svc.map(element) } } });
  for (const r of t.nat) out.push({ add: { rule: rule("out-nat", ...natStatement(r)) } });
  for (const r of t.filter) out.push({ add: { rule: rule("out-filter", ...filterStatement(r)) } });
  if (pad) {
    const P = { family: "ip", table: "pad" } as const;
    out.push(
      { add: { table: { family: "ip", name: "pad" } } },
      { add: { map: { ...P, name: "m", type: ["inet_proto", "inet_service"], map: "verdict" } } },
      {
        add: {
          element: {
            ...P,
            name: "m",
            elem: Array.from({ length: 2_001 }, (_, i): NftMapElement => [
              { concat: ["tcp", 10_000 + i] },
              { accept: null },
            ]),
          },
        },
      },
    );
  }
  return out;
}

describe("nftables sets and transactions as a packet meets them", () => {
  // The labs below compare sharing with not sharing; this pins what a set does by itself, and that a
  // refused transaction leaves what packets meet as it was (its changes undone, its program too).
  it("drops what a set holds, follows its elements, and forgets a refused transaction's", async () => {
    const l = new Lab("nft-set", { flowCache: false });
    await l.host("outside", "lan", "10.100.0.9/24");
    await l.host("node1", "lan", "10.100.0.2/24");
    await l.k.route.add("node1", { dst: DEFAULT_ROUTE, via: ip("10.100.0.9") });
    const t: Table = {
      ips: ["10.96.0.1"],
      svc: [["10.96.0.5", 80, 1]],
      nat: [[0, 0, 0]],
      filter: [[0, 0, 0]],
      drop: false,
    };
    await l.k.nft.run("node1", commands(t, false));
    const outcome = (to: string) => {
      const trace = l.k.send({ from: "node1", to, protocol: "tcp", port: 80 });
      return `${trace.outcome}: ${trace.reason}`;
    };
    const dropped = "dropped: dropped by filter OUTPUT: ip t out-filter: ip daddr @ips drop (at node1)";
    expect(outcome("10.96.0.1")).toBe(dropped);
    expect(outcome("10.96.0.2")).toMatch(/^dropped: 10.96.0.2 is not a local address/);
    // The map's element: a drop verdict in nat OUTPUT.
    expect(outcome("10.96.0.5")).toMatch(/^dropped: dropped by nat OUTPUT/);
    await l.k.nft.run("node1", [{ add: { element: { ...T, name: "ips", elem: ["10.96.0.2"] } } }]);
    expect(outcome("10.96.0.2")).toBe(dropped);
    await l.k.nft.run("node1", [{ delete: { element: { ...T, name: "ips", elem: ["10.96.0.1"] } } }]);
    expect(outcome("10.96.0.1")).toMatch(/^dropped: 10.96.0.1 is not a local address/);
    // Refused at its last command: the element added and the rule appended before it are undone.
    await expect(
      l.k.nft.run("node1", [
        { add: { element: { ...T, name: "ips", elem: ["10.96.0.3"] } } },
        { add: { element: { ...T, name: "svc", elem: [element(["10.96.0.4", 80, 1])] } } },
        { add: { rule: rule("out-filter", { drop: null }) } },
        { add: { rule: rule("no-such-chain", { drop: null }) } },
      ]),
    ).rejects.toThrow();
    expect(outcome("10.96.0.3")).toMatch(/^dropped: 10.96.0.3 is not a local address/);
    expect(outcome("10.96.0.4")).toMatch(/^dropped: 10.96.0.4 is not a local address/);
    expect(outcome("10.96.0.2")).toBe(dropped);
  });
});

describe("nftables programs shared by namespaces holding the same tables", () => {
  // kube-proxy writes one nftables table on every node, so what evaluation reads of it is shared by
  // content — all but sets, which are each namespace's own. Sharing must change nothing: each
  // namespace is checked against a lab of its own, whose extra table (2,001 map elements, no chain)
  // is past what is shared, so its program is its alone.
  it("changes nothing: namespaces with equal, near and changed tables and their own sets", async () => {
    // node2's table: node1's (its set drawn apart), node1's with a rule, its map's elements or its
    // filter chain's policy changed, or another.
    const pair = fc.tuple(table, fc.integer({ min: 0, max: 4 }), table, natRule, filterRule);
    const sends = fc.array(fc.tuple(fc.constantFrom(0, 1), address, port), { minLength: 1, maxLength: 10 });
    // Halfway, node1 gains a rule in each base chain and an address in its set, or else an element in
    // its map only.
    const later = fc.tuple(
      natRule,
      filterRule,
      address,
      fc.tuple(address, port, fc.integer({ min: 0, max: 4 })),
      fc.boolean(),
    );
    await fc.assert(
      fc.asyncProperty(
        pair,
        sends,
        later,
        async ([t1, how, other, n], probes, [nr, fr, a, e, elementOnly]) => {
          const t2: Table =
            how === 0
              ? { ...t1, ips: other.ips }
              : how === 1
                ? { ...t1, nat: [[n[0], Number(n[1].split(".")[3]), n[2]], ...t1.nat.slice(1)] }
                : how === 2
                  ? { ...t1, svc: other.svc }
                  : how === 3
                    ? { ...t1, drop: !t1.drop }
                    : other;
          const lab = async () => {
            const l = new Lab("nft-shared", { flowCache: false });
            await l.host("outside", "lan", "10.100.0.9/24");
            for (const [node, at] of [
              ["node1", "10.100.0.2/24"],
              ["node2", "10.100.0.3/24"],
            ] as const) {
              await l.host(node, "lan", at);
              await l.k.route.add(node, { dst: DEFAULT_ROUTE, via: ip("10.100.0.9") });
            }
            for (const node of ["node1", "node2"]) l.k.send({ from: node, to: "10.100.0.9" });
            return l;
          };
          const change = async (l: Lab) => {
            const [k1, a1, p1] = nr;
            const [k2, a2, p2] = fr;
            if (!elementOnly)
              await l.k.nft.run("node1", [
                { add: { rule: rule("out-nat", ...natStatement([k1, Number(a1.split(".")[3]), p1])) } },
                { add: { rule: rule("out-filter", ...filterStatement([k2, Number(a2.split(".")[3]), p2])) } },
                { add: { element: { ...T, name: "ips", elem: [a] } } },
              ]);
            else if (!t1.svc.some(([sa, sp]) => sa === e[0] && sp === e[1]))
              await l.k.nft.run("node1", [{ add: { element: { ...T, name: "svc", elem: [element(e)] } } }]);
          };
          const probe = (l: Lab, node: string, to: string, p: number) => {
            const t = l.k.send({ from: node, to, protocol: "tcp", port: p });
            return `${t.outcome} ${t.reason} | ${t.hops.map((h) => h.detail).join(" | ")}`;
          };
          const shared = await lab();
          await shared.k.nft.run("node1", commands(t1, false));
          await shared.k.nft.run("node2", commands(t2, false));
          const own1 = await lab();
          await own1.k.nft.run("node1", commands(t1, true));
          const own2 = await lab();
          await own2.k.nft.run("node2", commands(t2, true));
          const changed1 = await lab();
          await changed1.k.nft.run("node1", commands(t1, true));
          await change(changed1);
          // At least one probe meets node1 changed (the last).
          const half = Math.floor(probes.length / 2);
          for (const [i, [which, to, p]] of probes.entries()) {
            if (i === half) await change(shared);
            const node = which ? "node2" : "node1";
            const reference = which ? own2 : i < half ? own1 : changed1;
            expect(probe(shared, node, to, p)).toBe(probe(reference, node, to, p));
          }
          // And where node1's new element points: the one address node2 must not see changed.
          for (const [node, reference] of [
            ["node1", changed1],
            ["node2", own2],
          ] as const)
            expect(probe(shared, node, e[0], e[1])).toBe(probe(reference, node, e[0], e[1]));
          expect(shared.k.ns("node2").ruleEvaluations).toBe(own2.k.ns("node2").ruleEvaluations);
          expect(shared.k.ns("node1").ruleEvaluations).toBe(
            own1.k.ns("node1").ruleEvaluations + changed1.k.ns("node1").ruleEvaluations,
          );
        },
      ),
      { numRuns: 60 },
    );
  });
});
