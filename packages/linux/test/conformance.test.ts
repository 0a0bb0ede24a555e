// The same conformance suite the simulator passes, against the real kernel: this is what makes the
// simulator's claims about the kernel checkable.
import { describeNetlinkConformance } from "@podnet/netlink/conformance";
import { KERNEL_TOOLS, kernelTestRun } from "./kernel.js";

// nft too: the suite writes kube-proxy's nftables table.
const { system, linux, nextPrefix } = kernelTestRun([...KERNEL_TOOLS, "nft"]);

describeNetlinkConformance("the Linux kernel", {
  ...(system.skip ? { skip: system.skip } : {}),
  create: async () => ({ netlink: linux, prefix: nextPrefix() }),
});
