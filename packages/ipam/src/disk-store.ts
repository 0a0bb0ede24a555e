/**
 * host-local's on-disk store: <dataDir>/<network>/<ip> holding "id\r\nifname", last_reserved_ip.<N>,
 * and an flock on <dir>/lock, which host-local itself honours (see withFileLock).
 *
 * A reservation is written to a temporary file and hard-linked to its address name: link() is
 * atomic and fails if the name exists, so an address file is never seen half-written and never
 * handed out twice; leftovers of a killed process are temporary files, removed under the lock.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  fstatSync,
  linkSync,
  lstatSync,
  opendirSync,
  openSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { formatIpv4, isIpv4, parseIpv4 } from "@podnet/core";
import { CniError, CniErrorCode } from "@podnet/cni";
import { mkdirAll, pathError, readRegularFile } from "./disk-file.js";
import type { IpamStore } from "./store.js";

const LINE_BREAK = "\r\n";
const LAST_RESERVED = "last_reserved_ip.";
const TEMP = ".podnet-tmp-";
/** Far more than any range set holds (a /10); past it the directory is not ours to walk. */
const MAX_ENTRIES = 1 << 22;
/** A reservation is "id\r\nifname"; container IDs are 64 hex characters in practice. */
const MAX_FILE_BYTES = 4096;
/** flock(1)'s exit status when -w expires (chosen with -E so it cannot be mistaken for another failure). */
const LOCK_TIMED_OUT = 75;

/** How long an ADD/DEL waits for another process's lock before answering "try again later". */
export const LOCK_TIMEOUT_SECONDS = 60;

/**
 * Runs `fn` while holding an exclusive flock on `path`, waiting at most `timeoutSeconds` for it:
 * host-local waits forever behind a stuck holder; a runtime would rather hear CNI code 11 and retry.
 *
 * Node has no flock(2), so util-linux's flock(1) takes the lock on this process's own open file
 * description, handed to it as its fd 3, and exits: a flock belongs to the description, so the lock
 * stays held here until the file is closed — or until this process dies, when the kernel drops it,
 * so no stale lock survives a crash. One short process, where holding the lock in a child that waits
 * on a pipe took three (flock, a shell and cat) for every ADD and DEL.
 */
export async function withFileLock<T>(
  path: string,
  fn: () => T,
  timeoutSeconds = LOCK_TIMEOUT_SECONDS,
): Promise<T> {
  const fd = openLockFile(path, constants.O_RDONLY);
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const flock = spawn("flock", ["-x", "-w", String(timeoutSeconds), "-E", String(LOCK_TIMED_OUT), "3"], {
        stdio: ["ignore", "ignore", "inherit", fd],
      });
      flock.on("error", (error) =>
        reject(new Error(`cannot lock ${path}: flock(1) from util-linux is required (${error.message})`)),
      );
      flock.on("exit", (code) => resolve(code));
    });
    if (code === LOCK_TIMED_OUT)
      throw new CniError(
        CniErrorCode.TRY_AGAIN_LATER,
        `cannot lock ${path}: another process has held it for ${timeoutSeconds} s`,
      );
    if (code !== 0) throw new Error(`cannot lock ${path}: flock exited with ${code}`);
    return fn();
  } finally {
    closeSync(fd);
  }
}

/**
 * The lock file, opened as a regular file of the data directory only: a symbolic link there is not
 * followed (root would create or lock whatever it names) and a FIFO is not waited on.
 */
function openLockFile(path: string, flags: number): number {
  let fd: number;
  try {
    fd = openSync(path, flags | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY, 0o644);
  } catch (error) {
    throw pathError("open", path, error);
  }
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    throw new Error(`open ${path}: not a regular file`);
  }
  return fd;
}

export interface DiskStoreOptions {
  lockTimeoutSeconds?: number;
}

export class DiskIpamStore implements IpamStore {
  readonly dir: string;
  private readonly lockTimeout: number;

  constructor(dataDir: string, network: string, options: DiskStoreOptions = {}) {
    this.dir = join(dataDir, network);
    this.lockTimeout = options.lockTimeoutSeconds ?? LOCK_TIMEOUT_SECONDS;
    mkdirAll(this.dir, 0o755);
    closeSync(
      openLockFile(join(this.dir, "lock"), constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND),
    );
  }

  async withLock<T>(fn: () => T): Promise<T> {
    return withFileLock(
      join(this.dir, "lock"),
      () => {
        // Under the lock nobody else is writing: temporary files are a killed process's leftovers.
        for (const name of this.names()) if (name.startsWith(TEMP)) unlinkSync(join(this.dir, name));
        return fn();
      },
      this.lockTimeout,
    );
  }

  /**
   * The names of the regular files in the directory, read one entry at a time and at most
   * MAX_ENTRIES of them. Directories, links and devices are not reservations (host-local's walk
   * skips directories too), so a stray `10.0.0.5/` directory neither blocks nor breaks ADD and DEL.
   */
  private *names(): Generator<string> {
    const dir = opendirSync(this.dir);
    try {
      for (let n = 0, entry = dir.readSync(); entry; entry = dir.readSync()) {
        if (++n > MAX_ENTRIES)
          throw new Error(`${this.dir}: more than ${MAX_ENTRIES} entries; not a host-local data directory`);
        // A file system without d_type reports no kind: ask lstat then.
        const kindless = !entry.isFile() && !entry.isDirectory() && !entry.isSymbolicLink();
        if (entry.isFile() || (kindless && lstatSync(join(this.dir, entry.name)).isFile())) yield entry.name;
      }
    } finally {
      dir.closeSync();
    }
  }

  private read(name: string): string | undefined {
    try {
      return readRegularFile(join(this.dir, name), {
        maxBytes: MAX_FILE_BYTES,
        noFollow: true,
        what: "reservation",
      });
    } catch {
      return undefined;
    }
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
    const text = this.read(`${LAST_RESERVED}${rangeIndex}`)?.trim();
    return text !== undefined && isIpv4(text) ? parseIpv4(text) : undefined;
  }

  entries(): { address: number; id: string; ifname: string }[] {
    const out: { address: number; id: string; ifname: string }[] = [];
    for (const name of this.names()) {
      if (!isIpv4(name)) continue;
      // An unreadable reservation still holds its address; it just belongs to nobody we can name.
      const content = (this.read(name) ?? "").trim();
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
