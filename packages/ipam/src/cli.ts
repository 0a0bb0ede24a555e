/** The podnet-ipam CNI executable: host-local's behaviour with podnet's disk store. */
import { cniMain } from "@podnet/cni/node";
import { DiskIpamStore } from "./disk-store.js";
import { readRegularFile } from "./file.js";
import { hostLocalPlugin } from "./host-local.js";

await cniMain(
  hostLocalPlugin({
    openStore: (network, dataDir) => new DiskIpamStore(dataDir, network),
    // resolv.conf is a few lines; 64 KiB is also the longest line host-local's scanner takes.
    readFile: (path) => readRegularFile(path, { maxBytes: 64 * 1024, what: "resolvConf" }),
  }),
);
