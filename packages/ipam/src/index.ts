export { hostLocalPlugin, parseResolvConf, type HostLocalOptions } from "./host-local.js";
export { loadHostLocalConfig, DEFAULT_DATA_DIR, type HostLocalConfig } from "./config.js";
export { RangeSetAllocator, type Allocation } from "./allocator.js";
export { MemoryIpamStore, type IpamStore } from "./store.js";
export {
  canonicalizeRange,
  canonicalizeRangeSet,
  formatRange,
  formatRangeSet,
  rangeContains,
  rangeSetContains,
  rangeSetsOverlap,
  type IpRange,
  type RangeSet,
  type RangeInput,
} from "./range.js";
export { NodeCidrAllocator, CidrExhaustedError, type CidrOccupancy } from "./node-cidr.js";
