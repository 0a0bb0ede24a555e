export { DiskIpamStore, withFileLock } from "./disk-store.js";
export { goStrerror, readRegularFile, readResolvConf, type ReadOptions } from "./disk-file.js";
