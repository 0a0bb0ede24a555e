import { describeNetlinkConformance } from "@podnet/netlink/conformance";
import { SimKernel } from "../src/index.js";

describeNetlinkConformance("the simulated kernel", {
  create: async () => ({ netlink: new SimKernel(), prefix: "" }),
});
