export { DiskIpamStore, withFileLock } from "./disk-store.js";
