import { LabTopology } from "@podnet/netlink/lab";
import { SimKernel } from "../src/index.js";

/** A lab on a fresh simulated kernel (the seed fixes MACs and random choices). */
export class Lab extends LabTopology<SimKernel> {
  constructor(seed = "lab") {
    super(new SimKernel({ seed }));
  }
}
