// The same conformance suite the simulator passes, against the real kernel: this is what makes the
// simulator's claims about the kernel checkable.
import { describeNetlinkConformance } from "@podnet/netlink/conformance";
import { kernelTestRun } from "./kernel.js";

// nft too: the suite writes kube-proxy's nftables table.
const { system, linux, nextPrefix } = kernelTestRun([
  "ip",
  "bridge",
  "iptables",
  "iptables-save",
  "sysctl",
  "nft",
]);

describeNetlinkConformance("the Linux kernel", {
  ...(system.skip ? { skip: system.skip } : {}),
  create: async () => ({ netlink: linux, prefix: nextPrefix() }),
});
