/**
 * host-local's on-disk store: <dataDir>/<network>/<ip> holding "id\r\nifname", last_reserved_ip.<N>,
 * and an flock on <dir>/lock. Node has no flock(2), so the lock is held by util-linux's flock(1) in
 * a child whose stdin is ours: when this process exits or is SIGKILLed, the pipe closes and the
 * kernel drops the lock — no stale lock survives a crash, and host-local itself honours it.
 *
 * A reservation is written to a temporary file and hard-linked to its address name: link() is
 * atomic and fails if the name exists, so an address file is never seen half-written and never
 * handed out twice; leftovers of a killed process are temporary files, removed under the lock.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  closeSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { formatIpv4, isIpv4, parseIpv4 } from "@podnet/core";
import type { IpamStore } from "./store.js";

const LINE_BREAK = "\r\n";
const LAST_RESERVED = "last_reserved_ip.";
const TEMP = ".podnet-tmp-";

/** Runs `fn` while holding an exclusive flock on `path`. */
export async function withFileLock<T>(path: string, fn: () => T): Promise<T> {
  const holder = spawn("flock", ["-x", path, "-c", "echo locked; exec cat >/dev/null"], {
    stdio: ["pipe", "pipe", "inherit"],
    env: { ...process.env, SHELL: "/bin/sh" },
  });
  const exited = new Promise<number | null>((resolve) => holder.on("exit", (code) => resolve(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      let seen = "";
      holder.stdout!.on("data", (chunk: Buffer) => {
        seen += chunk.toString();
        if (seen.includes("locked")) resolve();
      });
      holder.on("error", (error) =>
        reject(new Error(`cannot lock ${path}: flock(1) from util-linux is required (${error.message})`)),
      );
      void exited.then((code) => reject(new Error(`cannot lock ${path}: flock exited with ${code}`)));
    });
    return fn();
  } finally {
    holder.stdin!.end();
    await exited;
  }
}

export class DiskIpamStore implements IpamStore {
  readonly dir: string;

  constructor(dataDir: string, network: string) {
    this.dir = join(dataDir, network);
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    closeSync(openSync(join(this.dir, "lock"), "a", 0o644));
  }

  async withLock<T>(fn: () => T): Promise<T> {
    return withFileLock(join(this.dir, "lock"), () => {
      // Under the lock nobody else is writing: temporary files are a killed process's leftovers.
      for (const name of readdirSync(this.dir)) if (name.startsWith(TEMP)) unlinkSync(join(this.dir, name));
      return fn();
    });
  }

  private temp(): string {
    return join(this.dir, `${TEMP}${process.pid}-${randomBytes(4).toString("hex")}`);
  }

  reserve(id: string, ifname: string, address: number, rangeIndex: number): boolean {
    const target = join(this.dir, formatIpv4(address));
    const temp = this.temp();
    writeFileSync(temp, id.trim() + LINE_BREAK + ifname, { mode: 0o644 });
    try {
      linkSync(temp, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw error;
    } finally {
      unlinkSync(temp);
    }
    const last = this.temp();
    writeFileSync(last, formatIpv4(address), { mode: 0o644 });
    renameSync(last, join(this.dir, `${LAST_RESERVED}${rangeIndex}`));
    return true;
  }

  lastReserved(rangeIndex: number): number | undefined {
    try {
      const text = readFileSync(join(this.dir, `${LAST_RESERVED}${rangeIndex}`), "utf8").trim();
      return isIpv4(text) ? parseIpv4(text) : undefined;
    } catch {
      return undefined;
    }
  }

  entries(): { address: number; id: string; ifname: string }[] {
    const out: { address: number; id: string; ifname: string }[] = [];
    for (const name of readdirSync(this.dir)) {
      if (!isIpv4(name)) continue;
      const content = readFileSync(join(this.dir, name), "utf8").trim();
      const [id = "", ifname = ""] = content.split(LINE_BREAK);
      out.push({ address: parseIpv4(name), id: id.trim(), ifname: ifname.trim() });
    }
    return out;
  }

  releaseById(id: string, ifname: string): void {
    const entries = this.entries();
    let mine = entries.filter((e) => e.id === id.trim() && e.ifname === ifname);
    // Older host-local wrote only the container ID.
    if (mine.length === 0) mine = entries.filter((e) => e.id === id.trim() && e.ifname === "");
    for (const e of mine) this.release(e.address);
  }

  getById(id: string, ifname: string): number[] {
    return this.entries()
      .filter((e) => e.id === id.trim() && e.ifname === ifname)
      .map((e) => e.address);
  }

  findById(id: string, ifname: string): boolean {
    return this.entries().some((e) => e.id === id.trim() && (e.ifname === ifname || e.ifname === ""));
  }

  release(address: number): void {
    try {
      unlinkSync(join(this.dir, formatIpv4(address)));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }
}
