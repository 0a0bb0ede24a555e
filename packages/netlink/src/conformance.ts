/**
 * One conformance suite for every implementation of the host API: the simulator runs it, and so
 * does the Linux backend against the real kernel, so the two are held to the same observable
 * behaviour — dumps in iproute2's JSON shapes and the kernel's refusals word for word. The cases are
 * grouped by subsystem, as the backends are: conformance-links.ts, -routes.ts, -neighbours.ts,
 * -netfilter.ts and -nftables.ts.
 *
 *   describeNetlinkConformance("sim", { create: async () => ({ netlink: new SimKernel(), prefix: "" }) });
 */
import { afterEach, describe } from "vitest";
import { NetlinkError } from "./errors.js";
import { linkCases } from "./conformance-links.js";
import { neighbourCases } from "./conformance-neighbours.js";
import { netfilterCases } from "./conformance-netfilter.js";
import { nftablesCases } from "./conformance-nftables.js";
import { routeCases } from "./conformance-routes.js";
import type { Netlink } from "./types.js";
import { parseAddrArgument as cidr, parseAddressArgument } from "./values.js";

export interface ConformanceTarget {
  /** A host API to test and a prefix for the names of the namespaces the suite creates. */
  create(): Promise<{ netlink: Netlink; prefix: string }>;
  /** Skip the whole suite, with the reason (e.g. not root). */
  skip?: string;
}

/** The refusal of a call; a function also covers parsing its arguments (text refused at the edge). */
async function refusal(call: Promise<unknown> | (() => Promise<unknown>)): Promise<NetlinkError> {
  try {
    await (typeof call === "function" ? call() : call);
  } catch (error) {
    if (error instanceof NetlinkError) return error;
    throw error;
  }
  throw new Error("expected the call to be refused, and it succeeded");
}

/** What every group of cases gets from the suite: namespaces made fresh and removed after each case. */
export interface Harness {
  /** A fresh host API and namespaces named prefix+short, removed after the test. */
  setup(...shorts: string[]): Promise<{ n: Netlink; ns: string[] }>;
  /** The refusal of a call; a function also covers parsing its arguments. */
  refusal(call: Promise<unknown> | (() => Promise<unknown>)): Promise<NetlinkError>;
  /** Namespaces a and b joined by veth e0–e0, both up, a's end addressed 192.168.77.1/24. */
  linkedPair(): Promise<{ n: Netlink; a: string }>;
  /** Namespace a with veth e0 (peer e1, of `mtu` when given) and flannel's VXLAN device on it. */
  flannelDevice(mtu?: number): Promise<{ n: Netlink; a: string }>;
}

export function describeNetlinkConformance(name: string, target: ConformanceTarget): void {
  describe.skipIf(target.skip)(`host API conformance: ${name}`, () => {
    let created: { netlink: Netlink; names: string[] } | undefined;

    afterEach(async () => {
      if (!created) return;
      for (const ns of created.names.reverse()) await created.netlink.netns.del(ns).catch(() => undefined);
      created = undefined;
    });

    /** A fresh host API and namespaces named prefix+short, removed after the test. */
    async function setup(...shorts: string[]) {
      const { netlink, prefix } = await target.create();
      created = { netlink, names: [] };
      const names = shorts.map((s) => prefix + s);
      for (const ns of names) {
        await netlink.netns.add(ns);
        created.names.push(ns);
      }
      return { n: netlink, ns: names };
    }

    /** Namespaces a and b joined by veth e0–e0, both up, a's end addressed 192.168.77.1/24. */
    async function linkedPair() {
      const {
        n,
        ns: [a, b],
      } = await setup("a", "b");
      await n.link.add(a!, { kind: "veth", name: "e0", peer: { name: "e0", netns: b! } });
      await n.addr.add(a!, "e0", cidr("192.168.77.1/24"));
      await n.link.set(a!, "e0", { up: true });
      await n.link.set(b!, "e0", { up: true });
      return { n, a: a! };
    }

    /** Namespace a with veth e0 (peer e1, of `mtu` when given) and flannel.1 on it, as flannel makes it. */
    async function flannelDevice(mtu?: number) {
      const {
        n,
        ns: [a],
      } = await setup("a");
      await n.link.add(a!, { kind: "veth", name: "e0", peer: { name: "e1" }, ...(mtu ? { mtu } : {}) });
      await n.link.add(a!, {
        kind: "vxlan",
        name: "flannel.1",
        vni: 1,
        local: parseAddressArgument("192.168.50.1"),
        dev: "e0",
        dstport: 8472,
        learning: false,
      });
      return { n, a: a! };
    }

    const harness = { setup, refusal, linkedPair, flannelDevice };
    linkCases(harness);
    routeCases(harness);
    neighbourCases(harness);
    netfilterCases(harness);
    nftablesCases(setup, refusal);
  });
}
