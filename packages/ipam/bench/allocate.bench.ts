// Allocations per second: in memory, on disk (in-process), and one CNI exec per allocation for
// podnet-ipam and for the reference host-local doing the same work. Each iteration is an ADD and
// the DEL of the same container, so the /16 never fills.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bench, describe } from "vitest";
import { hostLocalPlugin, MemoryIpamStore } from "../src/index.js";
import { DiskIpamStore } from "../src/disk.js";
import { HOST_LOCAL, PODNET_IPAM } from "../test/exec.js";

const dir = mkdtempSync(join(tmpdir(), "podnet-ipam-bench-"));
const config = (name: string) => ({
  cniVersion: "1.0.0",
  name,
  ipam: { type: "host-local", dataDir: dir, ranges: [[{ subnet: "10.80.0.0/16" }]] },
});
const params = (i: number) => ({ containerId: `c${i}`, ifname: "eth0", netns: "/x", args: "", path: [] });
const memory = hostLocalPlugin({
  openStore: (() => {
    const s = new MemoryIpamStore();
    return () => s;
  })(),
});
const disk = hostLocalPlugin({ openStore: (network, dataDir) => new DiskIpamStore(dataDir, network) });
let n = 0;

function exec(binary: string, command: string, name: string, id: string) {
  spawnSync(binary, [], {
    input: JSON.stringify(config(name)),
    env: {
      CNI_COMMAND: command,
      CNI_CONTAINERID: id,
      CNI_NETNS: "/x",
      CNI_IFNAME: "eth0",
      CNI_PATH: "/usr/lib/cni",
      PATH: process.env.PATH,
    },
  });
}

describe("ADD + DEL of one container", () => {
  bench("in memory", async () => {
    const p = params(n++);
    await memory.add(p, config("mem"));
    await memory.del(p, config("mem"));
  });
  bench(
    "on disk, in-process (flock per operation)",
    async () => {
      const p = params(n++);
      await disk.add(p, config("disk"));
      await disk.del(p, config("disk"));
    },
    { time: 3000 },
  );
  bench(
    "exec podnet-ipam",
    () => {
      const id = `e${n++}`;
      exec(PODNET_IPAM, "ADD", "execp", id);
      exec(PODNET_IPAM, "DEL", "execp", id);
    },
    { time: 3000 },
  );
  if (existsSync(HOST_LOCAL)) {
    bench(
      "exec reference host-local",
      () => {
        const id = `h${n++}`;
        exec(HOST_LOCAL, "ADD", "exech", id);
        exec(HOST_LOCAL, "DEL", "exech", id);
      },
      { time: 3000 },
    );
  }
});
