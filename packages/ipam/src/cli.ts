/** The podnet-ipam CNI executable: host-local's behaviour with podnet's disk store. */
import { cniMain } from "@podnet/cni/node";
import { DiskIpamStore } from "./disk-store.js";
import { readResolvConf } from "./disk-file.js";
import { hostLocalPlugin } from "./host-local.js";

await cniMain(
  hostLocalPlugin({
    openStore: (network, dataDir) => new DiskIpamStore(dataDir, network),
    readFile: readResolvConf,
  }),
);
