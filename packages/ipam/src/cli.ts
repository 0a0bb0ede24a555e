/** The podnet-ipam CNI executable: host-local's behaviour with podnet's disk store. */
import { readFileSync } from "node:fs";
import { cniMain } from "@podnet/cni/node";
import { DiskIpamStore } from "./disk-store.js";
import { hostLocalPlugin } from "./host-local.js";

await cniMain(
  hostLocalPlugin({
    openStore: (network, dataDir) => new DiskIpamStore(dataDir, network),
    readFile: (path) => readFileSync(path, "utf8"),
  }),
);
