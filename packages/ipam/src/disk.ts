export { DiskIpamStore, withFileLock } from "./disk-store.js";
export { readRegularFile, readResolvConf, type ReadOptions } from "./disk-file.js";
