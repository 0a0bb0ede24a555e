// The disk store under real processes: concurrent CNI invocations and SIGKILL mid-allocation.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SeededRandom, isIpv4 } from "@podnet/core";
import { afterAll, describe, expect, it } from "vitest";
import { PODNET_IPAM, invoke } from "./exec.js";

const root = mkdtempSync(join(tmpdir(), "podnet-ipam-disk-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function reservations(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(dir)) if (isIpv4(name)) out.set(name, readFileSync(join(dir, name), "utf8"));
  return out;
}

describe("the on-disk store", () => {
  it("never hands one address to two of 16 processes allocating at once", async () => {
    const dataDir = join(root, "wide");
    const config = {
      cniVersion: "1.0.0",
      name: "concurrent",
      ipam: { type: "host-local", dataDir, ranges: [[{ subnet: "10.95.0.0/24" }]] },
    };
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        invoke(PODNET_IPAM, { command: "ADD", containerId: `pod${i}`, config }),
      ),
    );
    expect(results.every((r) => r.exitCode === 0)).toBe(true);
    const addresses = results.map((r) => (r.stdout as { ips: { address: string }[] }).ips[0]!.address);
    expect(new Set(addresses).size).toBe(16);
    const files = reservations(join(dataDir, "concurrent"));
    expect(files.size).toBe(16);
    expect(new Set(files.values())).toEqual(new Set(Array.from({ length: 16 }, (_, i) => `pod${i}\r\neth0`)));
  });

  it("gives exactly the 13 addresses of a /28 to 16 racing processes and refuses the other 3", async () => {
    const dataDir = join(root, "narrow");
    const config = {
      cniVersion: "1.0.0",
      name: "narrow",
      ipam: { type: "host-local", dataDir, ranges: [[{ subnet: "10.95.1.0/28" }]] },
    };
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        invoke(PODNET_IPAM, { command: "ADD", containerId: `pod${i}`, config }),
      ),
    );
    const ok = results.filter((r) => r.exitCode === 0);
    expect(ok).toHaveLength(13);
    expect(new Set(ok.map((r) => (r.stdout as { ips: { address: string }[] }).ips[0]!.address)).size).toBe(
      13,
    );
    for (const failed of results.filter((r) => r.exitCode !== 0)) {
      expect(failed.stdout).toEqual({
        code: 999,
        msg: "failed to allocate for range 0: no IP addresses available in range set: 10.95.1.1-10.95.1.14",
      });
    }
    expect(reservations(join(dataDir, "narrow")).size).toBe(13);
  });

  it("stays consistent when allocating processes are SIGKILLed at random points", async () => {
    const dataDir = join(root, "crash");
    const script = fileURLToPath(new URL("./fixtures/allocate-until-killed.mjs", import.meta.url));
    const random = new SeededRandom("crash-test");
    const logs: string[] = [];
    for (let round = 0; round < 4; round++) {
      await Promise.all(
        Array.from({ length: 4 }, (_, w) => {
          const child = spawn(process.execPath, [script, dataDir, `${round}.${w}`], {
            stdio: ["ignore", "pipe", "inherit"],
          });
          let log = "";
          // Killed at a random moment after a random amount of work: counted in operations, not
          // milliseconds, so a busy machine (other test files spawning plugins) cannot starve the test.
          const target = 8 + Math.floor(random.next() * 24);
          const delay = Math.floor(random.next() * 30);
          let armed = false;
          child.stdout.on("data", (c: Buffer) => {
            log += c.toString();
            if (!armed && log.split("\n").length > target) {
              armed = true;
              setTimeout(() => child.kill("SIGKILL"), delay);
            }
          });
          return new Promise<void>((resolve) => child.on("exit", () => (logs.push(log), resolve())));
        }),
      );
    }
    const dir = join(dataDir, "crashnet");
    // Every operation a worker completed is on disk: adds not followed by their delete are there, with their owner.
    const expected = new Map<string, string>();
    const inFlight = new Set<string>(); // a release that started but was not seen to finish may have happened
    for (const line of logs.join("").split("\n").filter(Boolean)) {
      const [op, id, address] = line.split(" ");
      if (op === "add") expected.set(id!, address!);
      else if (op === "releasing") inFlight.add(id!);
      else {
        expected.delete(id!);
        inFlight.delete(id!);
      }
    }
    for (const id of inFlight) expected.delete(id);
    expect(expected.size).toBeGreaterThan(20); // the workers did real work before they were killed
    const files = reservations(dir);
    for (const [id, address] of expected) expect(files.get(address)).toBe(`${id}\r\neth0`);
    // No file is half-written, and no container holds two addresses.
    const owners = [...files.values()];
    for (const content of owners) expect(content).toMatch(/^w\d+\.\d+-\d+\r\neth0$/);
    expect(new Set(owners).size).toBe(owners.length);
    // At most one in-flight reservation per killed worker may exist beyond the log.
    expect(files.size - expected.size).toBeLessThanOrEqual(16);
    // The lock is free, leftovers are swept, and allocation goes on from the last reserved address.
    const next = await invoke(PODNET_IPAM, {
      command: "ADD",
      containerId: "after",
      config: {
        cniVersion: "1.0.0",
        name: "crashnet",
        ipam: { type: "host-local", dataDir, ranges: [[{ subnet: "10.96.0.0/22" }]] },
      },
    });
    expect(next.exitCode).toBe(0);
    expect(readdirSync(dir).filter((f) => f.startsWith(".podnet-tmp-"))).toEqual([]);
    expect(isIpv4(readFileSync(join(dir, "last_reserved_ip.0"), "utf8"))).toBe(true);
  }, 60_000);
});
