import { Ipv4Prefix, PodnetError, formatIpv4 } from "@podnet/core";

export class CidrExhaustedError extends PodnetError {
  constructor(readonly range: string) {
    // kube-controller-manager's wording (cidrset.ErrCIDRRangeNoCIDRsRemaining).
    super(
      "ECIDREXHAUSTED",
      `${range}: CIDR allocation failed; there are no remaining CIDRs left to allocate in the accepted range`,
    );
  }
}

export interface CidrOccupancy {
  used: number;
  total: number;
}

/**
 * kube-controller-manager's RangeAllocator: hands out subnets of `maskSize` from a cluster CIDR
 * (node pod CIDRs: 10.244.0.0/16 with /24 gives 256), round-robin from the last allocation, so a
 * released CIDR is not reused at once. With maskSize 32 over a service CIDR it hands out
 * ClusterIPs, keeping the network address and the first address (kubernetes.default) back and
 * never giving the broadcast address.
 *
 * A bitmap (one bit per subnet) in a typed array: a /8 cluster with /24 nodes is 65,536 bits.
 */
export class NodeCidrAllocator {
  readonly cluster: Ipv4Prefix;
  readonly maskSize: number;
  private readonly used: Uint8Array;
  private readonly count: number;
  private next = 0;
  private inUse = 0;

  constructor(clusterCidr: string | Ipv4Prefix, maskSize = 24, options: { reserved?: number[] } = {}) {
    this.cluster = typeof clusterCidr === "string" ? Ipv4Prefix.parse(clusterCidr) : clusterCidr;
    if (!Number.isInteger(maskSize) || maskSize < this.cluster.length || maskSize > 32) {
      throw new RangeError(
        `${this.cluster}: node mask size /${maskSize} must be between /${this.cluster.length} and /32`,
      );
    }
    if (maskSize - this.cluster.length > 24)
      throw new RangeError(
        `${this.cluster}: /${maskSize} would make ${2 ** (maskSize - this.cluster.length)} subnets; at most 2^24 are supported`,
      );
    this.maskSize = maskSize;
    this.count = this.cluster.subnetCount(maskSize);
    this.used = new Uint8Array(Math.ceil(this.count / 8));
    for (const index of options.reserved ?? []) this.mark(index);
  }

  /** A service CIDR allocator: /32s, with the network address, .1 and the broadcast address held back. */
  static forServices(serviceCidr: string): NodeCidrAllocator {
    const prefix = Ipv4Prefix.parse(serviceCidr);
    return new NodeCidrAllocator(prefix, 32, { reserved: [0, 1, prefix.size - 1] });
  }

  private isUsed(i: number): boolean {
    return (this.used[i >> 3]! & (1 << (i & 7))) !== 0;
  }

  private mark(i: number): void {
    if (!this.isUsed(i)) {
      this.used[i >> 3]! |= 1 << (i & 7);
      this.inUse++;
    }
  }

  private indexOf(cidr: Ipv4Prefix): number {
    if (cidr.length !== this.maskSize || !this.cluster.containsPrefix(cidr)) {
      throw new RangeError(`${cidr} is not a /${this.maskSize} inside ${this.cluster}`);
    }
    return (cidr.network - this.cluster.network) / 2 ** (32 - this.maskSize);
  }

  allocate(): Ipv4Prefix {
    for (let step = 0; step < this.count; step++) {
      const i = (this.next + step) % this.count;
      if (!this.isUsed(i)) {
        this.mark(i);
        this.next = (i + 1) % this.count;
        return this.cluster.subnet(i, this.maskSize);
      }
    }
    throw new CidrExhaustedError(this.cluster.toString());
  }

  /** Marks a CIDR as taken (a node that already has one); false if it was. */
  occupy(cidr: string | Ipv4Prefix): boolean {
    const i = this.indexOf(typeof cidr === "string" ? Ipv4Prefix.parse(cidr) : cidr);
    if (this.isUsed(i)) return false;
    this.mark(i);
    return true;
  }

  release(cidr: string | Ipv4Prefix): void {
    const i = this.indexOf(typeof cidr === "string" ? Ipv4Prefix.parse(cidr) : cidr);
    if (this.isUsed(i)) {
      this.used[i >> 3]! &= ~(1 << (i & 7));
      this.inUse--;
    }
  }

  has(cidr: string | Ipv4Prefix): boolean {
    return this.isUsed(this.indexOf(typeof cidr === "string" ? Ipv4Prefix.parse(cidr) : cidr));
  }

  occupancy(): CidrOccupancy {
    return { used: this.inUse, total: this.count };
  }

  /** For /32 allocators: the next ClusterIP as text. */
  allocateAddress(): string {
    return formatIpv4(this.allocate().network);
  }
}
