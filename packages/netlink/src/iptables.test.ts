import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  IptablesSyntaxError,
  formatIptablesRule,
  formatIptablesSave,
  parseIptablesRule,
  parseIptablesSave,
  rule,
  type IptablesRule,
} from "./iptables.js";

// Verbatim `iptables-save -t nat` (iptables v1.8.9, nf_tables) after writing kube-proxy's and
// docker's rules into a scratch namespace; only the timestamp comment lines are dropped.
const REAL_SAVE = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-1 - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-ABC - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A PREROUTING -i eth0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A POSTROUTING -s 10.0.0.0/16 ! -d 10.0.0.0/16 -j SNAT --to-source 10.100.0.2
-A POSTROUTING -p udp -m udp --dport 53 -j ACCEPT
-A POSTROUTING -p icmp -j ACCEPT
-A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SEP-1 -s 10.0.1.2/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-1 -p tcp -m tcp -j DNAT --to-destination 10.0.1.2:8080
-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-ABC
-A KUBE-SVC-ABC -m comment --comment "default/web:http -> 10.0.1.2:8080" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-1
COMMIT
`;

describe("iptables rules as data", () => {
  it("reads real iptables-save output and writes it back byte for byte", () => {
    const { table, chains } = parseIptablesSave(REAL_SAVE);
    expect(table).toBe("nat");
    expect(formatIptablesSave(table, chains)).toBe(REAL_SAVE);
  });

  it("writes what a person types in the form iptables-save prints", () => {
    expect(formatIptablesRule(rule`-p tcp --dport 80 -j DNAT --to-destination 10.0.1.2:8080`)).toBe(
      "-p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.1.2:8080",
    );
    expect(formatIptablesRule(rule`-j MARK --or-mark 0x4000`)).toBe("-j MARK --set-xmark 0x4000/0x4000");
    expect(formatIptablesRule(rule`-j MARK --xor-mark 0x4000`)).toBe("-j MARK --set-xmark 0x4000/0x0");
    expect(formatIptablesRule(rule`-d 10.96.0.10 -j ACCEPT`)).toBe("-d 10.96.0.10/32 -j ACCEPT");
    // kube-proxy writes 1/(n-i) with %0.10f; the kernel keeps 31 bits, and iptables-save shows them.
    expect(formatIptablesRule(rule`-m statistic --mode random --probability 0.3333333333 -j X`)).toBe(
      "-m statistic --mode random --probability 0.33333333349 -j X",
    );
    expect(formatIptablesRule(rule`-m statistic --mode random --probability 0.5000000000 -j X`)).toBe(
      "-m statistic --mode random --probability 0.50000000000 -j X",
    );
    expect(formatIptablesRule(rule`-m addrtype ! --dst-type LOCAL -j RETURN`)).toBe(
      "-m addrtype ! --dst-type LOCAL -j RETURN",
    );
    // kube-proxy's session affinity, as iptables-save printed it back (v1.8.9): the mode first, the
    // list's defaults spelled out.
    expect(
      formatIptablesRule(
        rule`-m recent --name KUBE-SEP-Y --mask 255.255.255.255 --rsource --rcheck --seconds 10800 --reap -j KUBE-SEP-Y`,
      ),
    ).toBe(
      "-m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-Y --mask 255.255.255.255 --rsource -j KUBE-SEP-Y",
    );
    expect(formatIptablesRule(rule`-m recent --set -j RETURN`)).toBe(
      "-m recent --set --name DEFAULT --mask 255.255.255.255 --rsource -j RETURN",
    );
    expect(formatIptablesRule(rule`-m recent ! --update --seconds 4294967295 -j RETURN`)).toBe(
      "-m recent ! --update --seconds -1 --name DEFAULT --mask 255.255.255.255 --rsource -j RETURN",
    );
    // The source's type first, as iptables-save printed it back (v1.8.9).
    expect(formatIptablesRule(rule`-m addrtype --dst-type LOCAL ! --src-type LOCAL -j RETURN`)).toBe(
      "-m addrtype ! --src-type LOCAL --dst-type LOCAL -j RETURN",
    );
    expect(formatIptablesRule(rule`-p tcp -j REJECT`)).toBe(
      "-p tcp -j REJECT --reject-with icmp-port-unreachable",
    );
    // As the reference portmap plugin writes it, and as iptables-save printed it back (v1.8.9).
    expect(formatIptablesRule(rule`-m multiport --destination-ports 8080,5353 -p tcp -j CNI-DN-X`)).toBe(
      "-p tcp -m multiport --dports 8080,5353 -j CNI-DN-X",
    );
  });

  it("refuses what it cannot represent, naming the rule", () => {
    expect(() => parseIptablesRule("-p sctp -j ACCEPT")).toThrow(IptablesSyntaxError);
    expect(() => parseIptablesRule("-p sctp -j ACCEPT")).toThrow(
      'iptables rule "-p sctp -j ACCEPT": unsupported protocol "sctp"',
    );
    expect(() => parseIptablesRule("--dport 80 -j ACCEPT")).toThrow("--dport needs -p tcp or -p udp");
    expect(() => parseIptablesRule("-s 10.0.0.0/8")).toThrow("no target (-j)");
    expect(() => parseIptablesRule('-m comment --comment "open -j ACCEPT')).toThrow("unterminated quote");
    expect(() => parseIptablesRule("-j DNAT")).toThrow("DNAT needs --to-destination");
    expect(() => parseIptablesRule("--dst-type LOCAL -j ACCEPT")).toThrow("--dst-type needs -m addrtype");
    expect(() => parseIptablesRule("-m addrtype --dst-type UNICAST -j ACCEPT")).toThrow(
      'unsupported address type "UNICAST" (LOCAL only)',
    );
    expect(() => parseIptablesRule("--src-type LOCAL -j ACCEPT")).toThrow("--src-type needs -m addrtype");
    // xt_recent's refusals, in iptables' words (v1.8.9), and what podnet does not model.
    for (const [text, why] of [
      [
        "-m recent --name X -j RETURN",
        "recent: you must specify one of `--set', `--rcheck' `--update' or `--remove'",
      ],
      [
        "-m recent --set --rcheck -j RETURN",
        'recent: option "--set" cannot be used together with "--rcheck"',
      ],
      ["-m recent --rcheck --reap -j RETURN", 'recent: option "--reap" also requires "--seconds"'],
      [
        "-m recent --rcheck --seconds 0 -j RETURN",
        'recent: bad value for option "--seconds", or out of range (1-4294967295)',
      ],
      ["-m recent --set --seconds 5 -j RETURN", "recent: --seconds needs --rcheck or --update"],
      [
        "-m recent --set --mask 255.255.0.0 -j RETURN",
        "recent: unsupported --mask 255.255.0.0 (255.255.255.255 only)",
      ],
      ["-m recent --set --rdest -j RETURN", 'unknown option "--rdest"'],
      ["--rcheck -j RETURN", "--rcheck needs -m recent"],
    ] as const)
      expect(() => parseIptablesRule(text), text).toThrow(why);
    expect(() => parseIptablesRule("-m addrtype -j ACCEPT")).toThrow(
      "addrtype: you must specify --src-type or --dst-type",
    );
    expect(() => parseIptablesRule("-m multiport --dports 80 -j ACCEPT")).toThrow(
      "multiport needs -p tcp or -p udp",
    );
    expect(() => parseIptablesRule("-p tcp --dports 80 -j ACCEPT")).toThrow("--dports needs -m multiport");
    const sixteen = Array.from({ length: 16 }, (_, i) => 8000 + i).join(",");
    expect(() => parseIptablesRule(`-p tcp -m multiport --dports ${sixteen} -j ACCEPT`)).toThrow(
      "too many ports specified",
    );
  });

  const name = fc.constantFrom("eth0", "cni0", "docker0", "flannel.1");
  const prefix = fc
    .tuple(fc.integer({ min: 0, max: 255 }), fc.constantFrom(8, 16, 24, 32))
    .map(([o, l]) => `10.${o}.0.0/${l}`.replace(/\.0\.0\/32$/, ".0.1/32"));
  const negatable = <T extends string>(a: fc.Arbitrary<T>) =>
    fc.tuple(fc.boolean(), a).map(([neg, v]) => (neg ? `!${v}` : v));
  const ruleArb: fc.Arbitrary<IptablesRule> = fc
    .record(
      {
        source: negatable(prefix),
        destination: negatable(prefix),
        inInterface: negatable(name),
        outInterface: negatable(name),
        protocol: fc.constantFrom("tcp" as const, "udp" as const),
        matches: fc.array(
          fc.oneof(
            fc.record({
              kind: fc.constant("comment" as const),
              comment: fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !s.includes("\\")),
            }),
            fc.record({
              kind: fc.constant("mark" as const),
              value: fc.integer({ min: 0, max: 0xffff }),
              mask: fc.integer({ min: 1, max: 0xffff }),
              negated: fc.boolean(),
            }),
            fc.record({
              kind: fc.constant("statistic" as const),
              probability: fc.integer({ min: 1, max: 0x7fffffff }).map((t) => t / 0x80000000),
            }),
            fc.record({
              kind: fc.constant("addrtype" as const),
              dstType: fc.constant("LOCAL" as const),
              negated: fc.boolean(),
            }),
            fc
              .record({ srcNegated: fc.boolean(), dst: fc.boolean(), negated: fc.boolean() })
              .map(({ srcNegated, dst, negated }) => ({
                kind: "addrtype" as const,
                srcType: "LOCAL" as const,
                srcNegated,
                ...(dst ? { dstType: "LOCAL" as const, negated } : {}),
              })),
            fc.record({
              kind: fc.constant("multiport" as const),
              dports: fc.array(fc.integer({ min: 0, max: 65535 }), { minLength: 1, maxLength: 15 }),
            }),
          ),
          { maxLength: 3 },
        ),
        target: fc.oneof(
          fc.constant({ kind: "ACCEPT" as const }),
          fc.constant({ kind: "RETURN" as const }),
          fc.constantFrom("KUBE-SERVICES", "KUBE-SEP-X").map((chain) => ({ kind: "jump" as const, chain })),
          fc.constant({ kind: "DNAT" as const, toDestination: "10.0.1.2:8080" }),
          fc.constant({ kind: "MASQUERADE" as const, randomFully: true }),
        ),
      },
      { requiredKeys: ["target"] },
    )
    .filter((r) => r.protocol !== undefined || !r.matches?.some((m) => m.kind === "multiport"));

  it("parses every rule it formats back to the same text", () => {
    fc.assert(
      fc.property(ruleArb, (r) => {
        const text = formatIptablesRule(r);
        expect(formatIptablesRule(parseIptablesRule(text))).toBe(text);
      }),
      { numRuns: 2000 },
    );
  });
});

// Verbatim `iptables-save -t filter` (iptables v1.8.9, nf_tables) after writing a policy engine's
// rules into a scratch namespace as `--ctstate ESTABLISHED,RELATED`, `--dport 80:81` and
// `-m udp --dport 53:53`; only the timestamp comment lines are dropped.
const REAL_FILTER_SAVE = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:PNP-X - [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
-A PNP-X -p tcp -m tcp --dport 80:81 -m comment --comment "x/p ingress[0]" -j RETURN
-A PNP-X -s 10.0.0.0/16 -p udp -m udp --dport 53 -j RETURN
-A PNP-X -m conntrack --ctstate INVALID,NEW -j DROP
COMMIT
`;

describe("policy engine matches: conntrack states and port ranges", () => {
  it("reads and writes them as iptables-save does, states in the kernel's order", () => {
    const { table, chains } = parseIptablesSave(REAL_FILTER_SAVE);
    expect(formatIptablesSave(table, chains)).toBe(REAL_FILTER_SAVE);
    expect(rule`-m conntrack --ctstate ESTABLISHED,RELATED -j RETURN`).toEqual({
      matches: [{ kind: "conntrack", ctstate: ["ESTABLISHED", "RELATED"] }],
      target: { kind: "RETURN" },
    });
    expect(formatIptablesRule(rule`-p udp --dport 53:53 -j RETURN`)).toBe(
      "-p udp -m udp --dport 53 -j RETURN",
    );
    expect(formatIptablesRule(rule`-p tcp --dport 80:81 -j RETURN`)).toBe(
      "-p tcp -m tcp --dport 80:81 -j RETURN",
    );
  });

  it("refuses reversed ranges, unknown states and states without the module", () => {
    expect(() => rule`-p tcp --dport 81:80 -j RETURN`).toThrow(/port range 81:80 is reversed/);
    expect(() => rule`-m conntrack --ctstate BOGUS -j RETURN`).toThrow(/unknown conntrack state "BOGUS"/);
    expect(() => rule`--ctstate NEW -j RETURN`).toThrow(/--ctstate needs -m conntrack/);
  });
});
