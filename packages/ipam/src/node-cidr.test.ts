import { describe, expect, it } from "vitest";
import { CidrExhaustedError, NodeCidrAllocator } from "./node-cidr.js";

describe("the node pod-CIDR allocator", () => {
  it("hands out the notes' node subnets from the cluster CIDR, /24 by default", () => {
    const nodes = new NodeCidrAllocator("10.0.0.0/16");
    expect(nodes.allocate().toString()).toBe("10.0.0.0/24");
    expect(nodes.allocate().toString()).toBe("10.0.1.0/24");
    expect(nodes.allocate().toString()).toBe("10.0.2.0/24");
    expect(nodes.occupancy()).toEqual({ used: 3, total: 256 });
  });

  it("does not reuse a released CIDR until it comes round, then does", () => {
    const nodes = new NodeCidrAllocator("10.0.0.0/22", 24);
    const [a, b] = [nodes.allocate(), nodes.allocate()];
    nodes.release(a);
    expect(nodes.allocate().toString()).toBe("10.0.2.0/24");
    expect(nodes.allocate().toString()).toBe("10.0.3.0/24");
    expect(nodes.allocate().toString()).toBe(a.toString()); // wrapped around to the freed one
    expect(() => nodes.allocate()).toThrow(CidrExhaustedError);
    expect(() => nodes.allocate()).toThrow(
      "10.0.0.0/22: CIDR allocation failed; there are no remaining CIDRs left to allocate in the accepted range",
    );
    nodes.release(b);
    expect(nodes.allocate().toString()).toBe(b.toString());
    expect(nodes.occupancy()).toEqual({ used: 4, total: 4 });
  });

  it("takes CIDRs nodes already have, and refuses ones outside or of the wrong size", () => {
    const nodes = new NodeCidrAllocator("10.244.0.0/16", 24);
    expect(nodes.occupy("10.244.0.0/24")).toBe(true);
    expect(nodes.occupy("10.244.0.0/24")).toBe(false);
    expect(nodes.allocate().toString()).toBe("10.244.1.0/24");
    expect(() => nodes.occupy("10.245.0.0/24")).toThrow("10.245.0.0/24 is not a /24 inside 10.244.0.0/16");
    expect(() => nodes.occupy("10.244.0.0/25")).toThrow(RangeError);
    expect(() => new NodeCidrAllocator("10.244.0.0/16", 8)).toThrow(
      "10.244.0.0/16: node mask size /8 must be between /16 and /32",
    );
  });

  it("hands out ClusterIPs from a service CIDR, keeping the network, .1 and broadcast back", () => {
    const services = NodeCidrAllocator.forServices("10.96.0.0/29");
    const given = Array.from({ length: 5 }, () => services.allocateAddress());
    expect(given).toEqual(["10.96.0.2", "10.96.0.3", "10.96.0.4", "10.96.0.5", "10.96.0.6"]);
    expect(() => services.allocateAddress()).toThrow(CidrExhaustedError);
    expect(services.occupancy()).toEqual({ used: 8, total: 8 });
  });

  it("scales to a /8 of /24s (65,536 node CIDRs) in a bitmap", () => {
    const nodes = new NodeCidrAllocator("10.0.0.0/8", 24);
    for (let i = 0; i < 5000; i++) nodes.allocate();
    expect(nodes.occupancy()).toEqual({ used: 5000, total: 65536 });
    expect(nodes.has("10.19.135.0/24")).toBe(true);
    expect(nodes.has("10.19.136.0/24")).toBe(false);
  });
});
