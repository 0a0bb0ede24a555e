/**
 * The runtime's refusals of a target or a value (`TargetError`), and its two allocators' steps —
 * pod subnets and ClusterIPs — with a refusal that says whose value it would have been.
 */
import { CidrExhaustedError, type NodeCidrAllocator } from "@podnet/ipam";

export class TargetError extends Error {}

/** Reserves `cidr`: false when taken; a TargetError when it is not one of the allocator's. */
export function claim(allocator: NodeCidrAllocator, cidr: string): boolean {
  try {
    return allocator.occupy(cidr);
  } catch (error) {
    if (error instanceof RangeError) throw new TargetError(error.message);
    throw error;
  }
}

/** What `take` allocates from `allocator`, or a TargetError saying whose it would have been. */
export function allocate<T>(allocator: NodeCidrAllocator, why: string, take: () => T): T {
  try {
    return take();
  } catch (error) {
    if (error instanceof CidrExhaustedError) {
      const { used, total } = allocator.occupancy();
      throw new TargetError(`${why} in ${allocator.cluster} (${used} of ${total} in use)`);
    }
    throw error;
  }
}
