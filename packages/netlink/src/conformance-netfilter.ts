/**
 * The host API conformance suite's cases (conformance.ts runs them): iptables chains as iptables-save
 * prints them, iptables' refusals, and conntrack deletes.
 */
import { expect, it } from "vitest";
import type { Harness } from "./conformance.js";
import { formatIptablesSave, rule } from "./iptables.js";

/** iptables-save's filter table with these user chains (by name) and rule lines, counters zeroed. */
const filterSaved = (chains: string[], rules: string[]) =>
  [
    "*filter",
    ":INPUT ACCEPT [0:0]",
    ":FORWARD ACCEPT [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    ...chains.map((c) => `:${c} - [0:0]`),
    ...rules,
    "COMMIT",
    "",
  ].join("\n");

export function netfilterCases({ setup, refusal }: Harness): void {
  it("writes kube-proxy's chains and saves them as iptables-save does", async () => {
    const {
      n,
      ns: [a],
    } = await setup("a");
    for (const chain of ["KUBE-SERVICES", "KUBE-SVC-ABC", "KUBE-SEP-1", "KUBE-MARK-MASQ", "KUBE-POSTROUTING"])
      await n.iptables.newChain(a!, "nat", chain);
    await n.iptables.append(
      a!,
      "nat",
      "PREROUTING",
      rule`-m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
    );
    await n.iptables.append(
      a!,
      "nat",
      "KUBE-SERVICES",
      rule`-d 10.96.0.10/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-ABC`,
    );
    await n.iptables.append(
      a!,
      "nat",
      "KUBE-SVC-ABC",
      rule`-m comment --comment "default/web:http -> 10.0.1.2:8080" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-1`,
    );
    // An endpoint's comment is the bare service port name: iptables-save quotes it anyway (any
    // character but a letter, a digit, "_" or "-" is quoted).
    await n.iptables.append(
      a!,
      "nat",
      "KUBE-SEP-1",
      rule`-s 10.0.1.2/32 -m comment --comment default/web:http -j KUBE-MARK-MASQ`,
    );
    await n.iptables.append(
      a!,
      "nat",
      "KUBE-SEP-1",
      rule`-p tcp -m comment --comment default/web:http -m tcp -j DNAT --to-destination 10.0.1.2:8080`,
    );
    // kube-proxy's NodePort jump (under --iptables-localhost-nodeports=false), its matches as typed.
    await n.iptables.append(
      a!,
      "nat",
      "KUBE-SERVICES",
      rule`-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-SVC-ABC`,
    );
    await n.iptables.append(a!, "nat", "KUBE-SVC-ABC", rule`-m addrtype ! --dst-type LOCAL -j RETURN`);
    // The source's type is saved first, whatever the order it was given in.
    await n.iptables.append(
      a!,
      "nat",
      "KUBE-SVC-ABC",
      rule`-m addrtype --dst-type LOCAL ! --src-type LOCAL -j RETURN`,
    );
    await n.iptables.append(a!, "nat", "KUBE-SVC-ABC", rule`-m addrtype --src-type LOCAL -j KUBE-MARK-MASQ`);
    await n.iptables.append(a!, "nat", "KUBE-MARK-MASQ", rule`-j MARK --or-mark 0x4000`);
    await n.iptables.append(a!, "nat", "KUBE-POSTROUTING", rule`-m mark ! --mark 0x4000/0x4000 -j RETURN`);
    await n.iptables.append(a!, "nat", "KUBE-POSTROUTING", rule`-j MARK --xor-mark 0x4000`);
    await n.iptables.append(
      a!,
      "nat",
      "KUBE-POSTROUTING",
      rule`-m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully`,
    );
    await n.iptables.append(
      a!,
      "nat",
      "POSTROUTING",
      rule`-s 172.17.0.0/16 ! -o docker0 -m comment --comment "docker's masquerade" -j MASQUERADE`,
    );
    await n.iptables.append(a!, "nat", "POSTROUTING", rule`-m comment --comment "say \\"hi\\"" -j RETURN`);
    await n.iptables.append(a!, "nat", "POSTROUTING", rule`-m comment --comment plain_word-1 -j RETURN`);
    await n.iptables.insert(
      a!,
      "nat",
      "PREROUTING",
      rule`-i eth0 -p tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80`,
      1,
    );
    await n.iptables.append(
      a!,
      "filter",
      "FORWARD",
      rule`-d 10.96.0.11/32 -p tcp -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable`,
    );
    expect(await n.iptables.save(a!, "nat")).toBe(
      [
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        ":KUBE-MARK-MASQ - [0:0]",
        ":KUBE-POSTROUTING - [0:0]",
        ":KUBE-SEP-1 - [0:0]",
        ":KUBE-SERVICES - [0:0]",
        ":KUBE-SVC-ABC - [0:0]",
        "-A PREROUTING -i eth0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80",
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -m comment --comment "docker\\\'s masquerade" -j MASQUERADE',
        '-A POSTROUTING -m comment --comment "say \\"hi\\"" -j RETURN',
        "-A POSTROUTING -m comment --comment plain_word-1 -j RETURN",
        "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
        '-A KUBE-SEP-1 -s 10.0.1.2/32 -m comment --comment "default/web:http" -j KUBE-MARK-MASQ',
        '-A KUBE-SEP-1 -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination 10.0.1.2:8080',
        '-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-ABC',
        '-A KUBE-SERVICES ! -d 127.0.0.0/8 -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-SVC-ABC',
        '-A KUBE-SVC-ABC -m comment --comment "default/web:http -> 10.0.1.2:8080" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-1',
        "-A KUBE-SVC-ABC -m addrtype ! --dst-type LOCAL -j RETURN",
        "-A KUBE-SVC-ABC -m addrtype ! --src-type LOCAL --dst-type LOCAL -j RETURN",
        "-A KUBE-SVC-ABC -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ",
        "COMMIT",
        "",
      ].join("\n"),
    );
    // Programs read the rules as data: the same rules, no text round trip.
    expect(formatIptablesSave("nat", await n.iptables.list(a!, "nat"))).toBe(
      await n.iptables.save(a!, "nat"),
    );
    expect((await n.iptables.list(a!, "nat", "KUBE-SEP-1")).map((c) => c.rules.length)).toEqual([2]);
    expect(await n.iptables.list(a!, "nat", "NOPE")).toEqual([]);
    expect((await n.iptables.list(a!, "nat")).map((c) => c.name)).toEqual([
      "PREROUTING",
      "INPUT",
      "OUTPUT",
      "POSTROUTING",
      "KUBE-MARK-MASQ",
      "KUBE-POSTROUTING",
      "KUBE-SEP-1",
      "KUBE-SERVICES",
      "KUBE-SVC-ABC",
    ]);
    expect(await n.iptables.save(a!, "filter")).toBe(
      formatIptablesSave("filter", [
        {
          name: "FORWARD",
          rules: [
            rule`-d 10.96.0.11/32 -p tcp -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable`,
          ],
        },
      ]),
    );
  });

  it("writes a policy engine's filter chains (conntrack states, port ranges) as iptables-save does", async () => {
    const {
      n,
      ns: [a],
    } = await setup("a");
    await n.iptables.newChain(a!, "filter", "PODNET-NETPOL");
    await n.iptables.newChain(a!, "filter", "PNP-I-1");
    await n.iptables.insert(a!, "filter", "FORWARD", rule`-j PODNET-NETPOL`, 1);
    await n.iptables.append(
      a!,
      "filter",
      "PODNET-NETPOL",
      rule`-m conntrack --ctstate ESTABLISHED,RELATED -j RETURN`,
    );
    await n.iptables.append(a!, "filter", "PODNET-NETPOL", rule`-d 10.0.1.2/32 -j PNP-I-1`);
    await n.iptables.append(
      a!,
      "filter",
      "PNP-I-1",
      rule`-s 10.0.2.0/24 -p tcp --dport 80:81 -m comment --comment "x/allow ingress[0]" -j RETURN`,
    );
    await n.iptables.append(
      a!,
      "filter",
      "PNP-I-1",
      rule`-s 10.0.0.0/16 -p udp -m udp --dport 53:53 -j RETURN`,
    );
    await n.iptables.append(a!, "filter", "PNP-I-1", rule`-m comment --comment "default deny" -j DROP`);
    await n.iptables.append(a!, "filter", "PNP-I-1", rule`-m conntrack --ctstate NEW,INVALID -j DROP`);
    expect(await n.iptables.save(a!, "filter")).toBe(
      filterSaved(
        ["PNP-I-1", "PODNET-NETPOL"],
        [
          "-A FORWARD -j PODNET-NETPOL",
          '-A PNP-I-1 -s 10.0.2.0/24 -p tcp -m tcp --dport 80:81 -m comment --comment "x/allow ingress[0]" -j RETURN',
          "-A PNP-I-1 -s 10.0.0.0/16 -p udp -m udp --dport 53 -j RETURN",
          '-A PNP-I-1 -m comment --comment "default deny" -j DROP',
          "-A PNP-I-1 -m conntrack --ctstate INVALID,NEW -j DROP",
          "-A PODNET-NETPOL -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
          "-A PODNET-NETPOL -d 10.0.1.2/32 -j PNP-I-1",
        ],
      ),
    );
    await n.iptables.delete(a!, "filter", "PNP-I-1", rule`-p udp -s 10.0.0.0/16 --dport 53 -j RETURN`);
    expect((await n.iptables.list(a!, "filter", "PNP-I-1"))[0]!.rules.length).toBe(3);
  });

  it("writes kube-proxy's forwarding and localnet rules (negated and virtual conntrack states) as iptables-save does", async () => {
    const {
      n,
      ns: [a],
    } = await setup("a");
    for (const chain of ["KUBE-FIREWALL", "KUBE-FORWARD", "NAT-STATES"])
      await n.iptables.newChain(a!, "filter", chain);
    await n.iptables.append(
      a!,
      "filter",
      "KUBE-FIREWALL",
      rule`! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`,
    );
    await n.iptables.append(a!, "filter", "KUBE-FORWARD", rule`-m conntrack --ctstate INVALID -j DROP`);
    await n.iptables.append(
      a!,
      "filter",
      "KUBE-FORWARD",
      rule`-m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT`,
    );
    await n.iptables.append(a!, "filter", "NAT-STATES", rule`-m conntrack --ctstate DNAT,SNAT -j RETURN`);
    expect(await n.iptables.save(a!, "filter")).toBe(
      filterSaved(
        ["KUBE-FIREWALL", "KUBE-FORWARD", "NAT-STATES"],
        [
          '-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
          "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
          '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
          "-A NAT-STATES -m conntrack --ctstate SNAT,DNAT -j RETURN",
        ],
      ),
    );
    // A negated state is another rule than the same states unnegated.
    await expect(
      n.iptables.delete(
        a!,
        "filter",
        "KUBE-FIREWALL",
        rule`! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j DROP`,
      ),
    ).rejects.toThrow();
  });

  it("refuses iptables changes as iptables does", async () => {
    const {
      n,
      ns: [a],
    } = await setup("a");
    await n.iptables.newChain(a!, "nat", "X");
    expect(await refusal(n.iptables.newChain(a!, "nat", "X"))).toMatchObject({
      errno: "EEXIST",
      message: "iptables: Chain already exists.",
    });
    expect((await refusal(n.iptables.append(a!, "nat", "NOPE", rule`-j ACCEPT`))).message).toBe(
      "iptables: No chain/target/match by that name.",
    );
    expect((await refusal(n.iptables.delete(a!, "nat", "POSTROUTING", rule`-j MASQUERADE`))).message).toBe(
      "iptables: Bad rule (does a matching rule exist in that chain?).",
    );
    expect((await refusal(n.iptables.append(a!, "nat", "POSTROUTING", rule`-j DROP`))).message).toBe(
      'The "nat" table is not intended for filtering, the use of DROP is therefore inhibited.',
    );
    expect((await refusal(n.iptables.append(a!, "filter", "FORWARD", rule`-j MASQUERADE`))).message).toBe(
      "RULE_APPEND failed (Invalid argument): rule in chain FORWARD",
    );
    await n.iptables.append(a!, "nat", "POSTROUTING", rule`-j X`);
    expect(await refusal(n.iptables.deleteChain(a!, "nat", "X"))).toMatchObject({
      errno: "EBUSY",
      message: "CHAIN_DEL failed (Device or resource busy): chain X",
    });
    await n.iptables.delete(a!, "nat", "POSTROUTING", rule`-j X`);
    await n.iptables.append(a!, "nat", "X", rule`-j RETURN`);
    expect((await refusal(n.iptables.deleteChain(a!, "nat", "X"))).message).toBe(
      "CHAIN_DEL failed (Device or resource busy): chain X",
    );
    await n.iptables.flush(a!, "nat", "X");
    await n.iptables.deleteChain(a!, "nat", "X");
    expect(await n.iptables.save(a!, "nat")).toBe(formatIptablesSave("nat", []));
  });

  it("deletes tracked flows by protocol and original destination port, refusing what conntrack would misread", async () => {
    const {
      n,
      ns: [a],
    } = await setup("a");
    // No flow tracked: nothing deleted, and that is an answer (conntrack exits 1 and says 0).
    expect(await n.conntrack.delete(a!, { protocol: "udp", origDstPort: 5353 })).toBe(0);
    expect(await n.conntrack.delete(a!, { protocol: "tcp", origDstPort: 8080 })).toBe(0);
    const refused = async (filter: unknown) =>
      (await refusal(n.conntrack.delete(a!, filter as { protocol: "udp"; origDstPort: number }))).message;
    expect(await refused({ protocol: "udp", origDstPort: 70000 })).toBe(
      'conntrack: port "70000" is not 1-65535',
    );
    expect(await refused({ protocol: "udp", origDstPort: 0 })).toBe('conntrack: port "0" is not 1-65535');
    expect(await refused({ protocol: "udp", origDstPort: 53.5 })).toBe(
      'conntrack: port "53.5" is not 1-65535',
    );
    expect(await refused({ protocol: "udp --orig-src 1.2.3.4", origDstPort: 53 })).toBe(
      'conntrack: protocol "udp --orig-src 1.2.3.4" is not tcp or udp',
    );
    const missing = await refusal(n.conntrack.delete(`${a!}x`, { protocol: "udp", origDstPort: 53 }));
    expect(missing.message).toBe(`Cannot open network namespace "${a!}x": No such file or directory`);
  });
}
