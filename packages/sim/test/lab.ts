import { LabTopology } from "@podnet/netlink/lab";
import { SimKernel, type SimKernelOptions } from "../src/index.js";

/** A lab on a fresh simulated kernel (the seed fixes MACs and random choices). */
export class Lab extends LabTopology<SimKernel> {
  constructor(seed = "lab", options: Omit<SimKernelOptions, "seed"> = {}) {
    super(new SimKernel({ ...options, seed }));
  }
}
