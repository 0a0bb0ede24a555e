// The same conformance suite the simulator passes, against the real kernel: this is what makes the
// simulator's claims about the kernel checkable.
import { describeNetlinkConformance } from "@podnet/netlink/conformance";
import { requireSystem } from "@podnet/testing";
import { afterAll } from "vitest";
import { LinuxNetlink, removeNamespaces, runPrefix } from "../src/index.js";

const system = requireSystem({ tools: ["ip", "bridge", "iptables", "iptables-save", "sysctl"], root: true });
const netlink = new LinuxNetlink();
const prefix = runPrefix();
let n = 0;

afterAll(async () => {
  if (!system.skip) await removeNamespaces(netlink, prefix);
});

describeNetlinkConformance("the Linux kernel", {
  skip: system.skip,
  create: async () => ({ netlink, prefix: `${prefix}${n++}` }),
});
