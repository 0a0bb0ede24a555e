/**
 * The nftables cases of the host API conformance suite (conformance.ts runs them): a kube-proxy
 * nftables table written as one transaction and listed back as `nft -j list table` does, and nft's
 * refusals word for word.
 */
import { expect, it } from "vitest";
import type { NetlinkError } from "./errors.js";
import type { NftChain, NftCommand, NftMapElement, NftObject, NftRule } from "./nftables.js";
import type { Netlink } from "./types.js";

type Setup = (...shorts: string[]) => Promise<{ n: Netlink; ns: string[] }>;
type Refusal = (call: Promise<unknown>) => Promise<NetlinkError>;

const T = { family: "ip", table: "kube-proxy" } as const;
const chain = (name: string, base?: Pick<NftChain, "type" | "hook" | "prio">): NftChain => ({
  ...T,
  name,
  ...(base ? { ...base, policy: "accept" as const } : {}),
});
const rule = (chainName: string, ...expr: NftRule["expr"]): NftRule => ({ ...T, chain: chainName, expr });
const mark = { meta: { key: "mark" as const } };
const goto = (target: string) => ({ goto: { target } });

const SVC = "service-ULMVA6XW-ns1/svc1/tcp/p80";
const EP = "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80";
const EXT = "external-ULMVA6XW-ns1/svc1/tcp/p80";
const AFF = "affinity-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80";
const localSource = {
  match: {
    op: "==" as const,
    left: { fib: { result: "type" as const, flags: ["saddr"] as ["saddr"] } },
    right: "local",
  },
};
const element = (address: string, port: number, target: string): NftMapElement => [
  { concat: [address, "tcp", port] },
  goto(target),
];

/** The table, maps, chains and rules kube-proxy's nftables mode writes for one Service. */
function kubeProxyTable(): NftObject[] {
  return [
    { table: { family: "ip", name: "kube-proxy" } },
    {
      map: {
        ...T,
        name: "service-ips",
        type: ["ipv4_addr", "inet_proto", "inet_service"],
        map: "verdict",
        elem: [element("10.96.0.9", 443, SVC), element("172.30.0.41", 80, SVC)],
      },
    },
    // Listed with its elements in address order, whatever order they were added in.
    { set: { ...T, name: "nodeport-ips", type: "ipv4_addr", elem: ["10.100.0.2", "192.168.1.5"] } },
    {
      map: {
        ...T,
        name: "service-nodeports",
        type: ["inet_proto", "inet_service"],
        map: "verdict",
        elem: [[{ concat: ["tcp", 30080] }, goto(SVC)]],
      },
    },
    // Session affinity's set: the kernel lists it with a size once an update statement fills it.
    { set: { ...T, name: AFF, type: "ipv4_addr", size: 65535, flags: ["timeout"], timeout: 10800 } },
    { chain: chain("mark-for-masquerade") },
    { chain: chain("masquerading") },
    { chain: chain("services") },
    { chain: chain("nat-prerouting", { type: "nat", hook: "prerouting", prio: -100 }) },
    { chain: chain("nat-postrouting", { type: "nat", hook: "postrouting", prio: 100 }) },
    { chain: chain(EP) },
    { chain: chain(SVC) },
    { chain: chain(EXT) },
    { rule: rule("mark-for-masquerade", { mangle: { key: mark, value: { "|": [mark, 0x4000] } } }) },
    {
      rule: rule(
        "masquerading",
        { match: { op: "==", left: { "&": [mark, 0x4000] }, right: 0 } },
        { return: null },
      ),
    },
    { rule: rule("masquerading", { mangle: { key: mark, value: { "^": [mark, 0x4000] } } }) },
    { rule: rule("masquerading", { masquerade: { flags: "fully-random" } }) },
    {
      rule: rule("services", {
        vmap: {
          key: {
            concat: [
              { payload: { protocol: "ip", field: "daddr" } },
              { meta: { key: "l4proto" } },
              { payload: { protocol: "th", field: "dport" } },
            ],
          },
          data: "@service-ips",
        },
      }),
    },
    {
      rule: rule(
        "services",
        {
          match: { op: "==", left: { payload: { protocol: "ip", field: "daddr" } }, right: "@nodeport-ips" },
        },
        {
          vmap: {
            key: { concat: [{ meta: { key: "l4proto" } }, { payload: { protocol: "th", field: "dport" } }] },
            data: "@service-nodeports",
          },
        },
      ),
    },
    { rule: rule("nat-prerouting", { jump: { target: "services" } }) },
    { rule: rule("nat-postrouting", { jump: { target: "masquerading" } }) },
    {
      rule: rule(
        EP,
        { match: { op: "==", left: { payload: { protocol: "ip", field: "saddr" } }, right: "10.180.0.1" } },
        { jump: { target: "mark-for-masquerade" } },
      ),
    },
    {
      rule: rule(EP, {
        set: { op: "update", elem: { payload: { protocol: "ip", field: "saddr" } }, set: `@${AFF}` },
      }),
    },
    {
      rule: rule(
        EP,
        { match: { op: "==", left: { meta: { key: "l4proto" } }, right: "tcp" } },
        { dnat: { addr: "10.180.0.1", port: 80 } },
      ),
    },
    {
      rule: rule(
        SVC,
        { match: { op: "==", left: { payload: { protocol: "ip", field: "daddr" } }, right: "172.30.0.41" } },
        { match: { op: "==", left: { payload: { protocol: "tcp", field: "dport" } }, right: 80 } },
        {
          match: {
            op: "!=",
            left: { payload: { protocol: "ip", field: "saddr" } },
            right: { prefix: { addr: "10.0.0.0", len: 8 } },
          },
        },
        { jump: { target: "mark-for-masquerade" } },
      ),
    },
    {
      rule: rule(
        SVC,
        { match: { op: "==", left: { payload: { protocol: "ip", field: "saddr" } }, right: `@${AFF}` } },
        goto(EP),
      ),
    },
    {
      rule: rule(SVC, {
        vmap: { key: { numgen: { mode: "random", mod: 1, offset: 0 } }, data: { set: [[0, goto(EP)]] } },
      }),
    },
    // externalTrafficPolicy: Local's short-circuits: pod traffic, then the node's own (fib saddr).
    {
      rule: rule(
        EXT,
        {
          match: {
            op: "==",
            left: { payload: { protocol: "ip", field: "saddr" } },
            right: { prefix: { addr: "10.0.0.0", len: 8 } },
          },
        },
        goto(SVC),
      ),
    },
    { rule: rule(EXT, localSource, { jump: { target: "mark-for-masquerade" } }) },
    { rule: rule(EXT, localSource, goto(SVC)) },
  ];
}

/** The commands that write a listing: objects in order, a map's elements added after every chain. */
function commandsFor(objects: NftObject[]): NftCommand[] {
  const later: NftCommand[] = [];
  const now: NftCommand[] = objects.map((o) => {
    if ("map" in o && o.map.elem) {
      const { elem, ...map } = o.map;
      later.push({ add: { element: { ...T, name: map.name, elem: [...elem].reverse() } } });
      return { add: { map } };
    }
    if ("set" in o && o.set.elem) {
      const { elem, ...set } = o.set;
      later.push({ add: { element: { ...T, name: set.name, elem: [...elem].reverse() } } });
      return { add: { set } };
    }
    return { add: o } as NftCommand;
  });
  // Rules jump to chains defined after them: chains first, as nft does within one transaction.
  const rank = (c: NftCommand) => ("add" in c && "rule" in c.add ? 1 : 0);
  return [...now.sort((a, b) => rank(a) - rank(b)), ...later];
}

export function nftablesCases(setup: Setup, refusal: Refusal): void {
  it("writes kube-proxy's nftables table in one transaction and lists it as nft -j does", async () => {
    const {
      n,
      ns: [a],
    } = await setup("a");
    const table = kubeProxyTable();
    await n.nft.run(a!, commandsFor(table));
    expect(await n.nft.list(a!, "ip", "kube-proxy")).toEqual(table);
    // One Service's element goes, its chains are flushed and deleted: a partial sync.
    await n.nft.run(a!, [
      { delete: { element: { ...T, name: "service-ips", elem: [element("10.96.0.9", 443, SVC)[0]] } } },
    ]);
    const listed = await n.nft.list(a!, "ip", "kube-proxy");
    expect(listed[1]).toEqual({
      map: { ...(table[1] as { map: object }).map, elem: [element("172.30.0.41", 80, SVC)] },
    });
  });

  it("lists a set with timeouts by its keys, with a size once an update statement fills it", async () => {
    const {
      n,
      ns: [a],
    } = await setup("a");
    const set = {
      ...T,
      name: "s",
      type: "ipv4_addr" as const,
      flags: ["timeout"] as ["timeout"],
      timeout: 60,
    };
    await n.nft.run(a!, [
      { add: { table: { family: "ip", name: "kube-proxy" } } },
      { add: { set } },
      { add: { chain: chain("c") } },
      { add: { element: { ...T, name: "s", elem: ["10.0.0.5"] } } },
    ]);
    const listed = async () => (await n.nft.list(a!, "ip", "kube-proxy")).find((o) => "set" in o);
    expect(await listed()).toEqual({ set: { ...set, elem: ["10.0.0.5"] } });
    const update: NftRule = rule("c", {
      set: { op: "update", elem: { payload: { protocol: "ip", field: "saddr" } }, set: "@s" },
    });
    await n.nft.run(a!, [{ add: { rule: update } }]);
    expect(await listed()).toEqual({ set: { ...set, size: 65535, elem: ["10.0.0.5"] } });
    // Added again with another timeout: the set takes it.
    await n.nft.run(a!, [{ add: { set: { ...set, timeout: 30 } } }]);
    expect(await listed()).toEqual({ set: { ...set, timeout: 30, size: 65535, elem: ["10.0.0.5"] } });
  });

  it("refuses nftables changes as nft does, and a refused transaction changes nothing", async () => {
    const {
      n,
      ns: [a],
    } = await setup("a");
    expect(await refusal(n.nft.list(a!, "ip", "kube-proxy"))).toMatchObject({
      errno: "ENOENT",
      message: "Error: No such file or directory",
    });
    const table = kubeProxyTable();
    await n.nft.run(a!, commandsFor(table));
    const busy = "Error: Could not process rule: Device or resource busy";
    const absent = "Error: Could not process rule: No such file or directory";
    expect((await refusal(n.nft.run(a!, [{ delete: { chain: chain(SVC) } }]))).message).toBe(busy);
    expect((await refusal(n.nft.run(a!, [{ delete: { chain: chain("nope") } }]))).message).toBe(absent);
    expect((await refusal(n.nft.run(a!, [{ flush: { chain: chain("nope") } }]))).message).toBe(absent);
    expect((await refusal(n.nft.run(a!, [{ add: { rule: rule("nope", { accept: null }) } }]))).message).toBe(
      absent,
    );
    expect(
      (
        await refusal(
          n.nft.run(a!, [
            { add: { element: { ...T, name: "service-ips", elem: [element("172.30.0.41", 80, EP)] } } },
          ]),
        )
      ).message,
    ).toBe("Error: Could not process rule: File exists");
    expect(
      (
        await refusal(
          n.nft.run(a!, [
            { add: { element: { ...T, name: "service-ips", elem: [element("10.96.0.1", 53, "nope")] } } },
          ]),
        )
      ).message,
    ).toBe(absent);
    expect(
      (await refusal(n.nft.run(a!, [{ add: { chain: { family: "ip", table: "nope", name: "c" } } }])))
        .message,
    ).toBe("Error: No such file or directory");
    expect(
      (
        await refusal(
          n.nft.run(a!, [
            { delete: { map: { ...T, name: "service-ips", type: "ipv4_addr", map: "verdict" } } },
          ]),
        )
      ).message,
    ).toBe(busy);
    const nodeportIps = { ...T, name: "nodeport-ips", type: "ipv4_addr" as const };
    expect((await refusal(n.nft.run(a!, [{ delete: { set: nodeportIps } }]))).message).toBe(busy);
    expect(
      (await refusal(n.nft.run(a!, [{ delete: { element: { ...nodeportIps, elem: ["10.1.2.3"] } } }])))
        .message,
    ).toBe(absent);
    // The first command was fine, the second refused: neither is applied.
    const refused = await refusal(
      n.nft.run(a!, [
        { add: { chain: chain("extra") } },
        { add: { element: { ...T, name: "service-ips", elem: [element("10.96.0.7", 80, "nope")] } } },
      ]),
    );
    expect(refused.message).toBe(absent);
    expect(await n.nft.list(a!, "ip", "kube-proxy")).toEqual(table);
    await n.nft.run(a!, [{ delete: { table: { family: "ip", name: "kube-proxy" } } }]);
    expect((await refusal(n.nft.list(a!, "ip", "kube-proxy"))).message).toBe(
      "Error: No such file or directory",
    );
  });
}
