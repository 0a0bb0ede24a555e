/**
 * File-system steps the IPAM executable takes on paths from its config, bounded so that no config can
 * make it hang or spin: a read is of a regular file only and of at most `maxBytes` (so `/dev/zero`,
 * a FIFO or a directory is an error, not a hang), and `mkdirAll` walks the path once, component by
 * component (Node's recursive mkdir loops forever under /proc, where mkdir says ENOENT to a parent
 * that exists). Errors read like Go's *PathError, as host-local's do: "open /x: no such file or directory".
 */
import {
  closeSync,
  constants,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  statSync,
  type Stats,
} from "node:fs";
import { dirname } from "node:path";

const GO_ERRNO: Record<string, string> = {
  ENOENT: "no such file or directory",
  ENOTDIR: "not a directory",
  EISDIR: "is a directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  EEXIST: "file exists",
  ELOOP: "too many levels of symbolic links",
  ENXIO: "no such device or address",
  ENOSPC: "no space left on device",
  ENAMETOOLONG: "file name too long",
  EINVAL: "invalid argument",
};

/** What Go prints for a Node fs error's errno ("no such file or directory"), as host-local's errors read. */
export function goStrerror(error: unknown): string {
  return GO_ERRNO[(error as NodeJS.ErrnoException).code ?? ""] ?? (error as Error).message;
}

/** Go's *PathError text: "op path: strerror". */
export function pathError(op: string, path: string, error: unknown): Error {
  return new Error(`${op} ${path}: ${goStrerror(error)}`);
}

export interface ReadOptions {
  maxBytes: number;
  /** Refuse a symbolic link at the last component (files inside the data directory). */
  noFollow?: boolean;
  /** Names the file in podnet's own errors ("resolvConf /dev/zero: not a regular file"). */
  what: string;
}

/** The text of a regular file of at most `maxBytes`; anything else is an error, never a wait. */
export function readRegularFile(path: string, options: ReadOptions): string {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    const flags =
      constants.O_RDONLY |
      constants.O_NONBLOCK |
      constants.O_NOCTTY |
      (options.noFollow ? constants.O_NOFOLLOW : 0);
    fd = openSync(path, flags);
  } catch (error) {
    throw pathError("open", path, error);
  }
  try {
    const stat = fstatSync(fd);
    if (stat.isDirectory()) throw pathError("read", path, { code: "EISDIR" });
    if (!stat.isFile()) throw new Error(`${options.what} ${path}: not a regular file`);
    if (stat.size > options.maxBytes)
      throw new Error(`${options.what} ${path}: larger than ${options.maxBytes} bytes`);
    const buffer = Buffer.alloc(options.maxBytes + 1);
    let length = 0;
    // A file may grow between fstat and read: read one byte past the bound to notice.
    for (let n = -1; n !== 0 && length <= options.maxBytes; length += n)
      n = readSync(fd, buffer, length, buffer.length - length, null);
    if (length > options.maxBytes)
      throw new Error(`${options.what} ${path}: larger than ${options.maxBytes} bytes`);
    return buffer.toString("utf8", 0, length);
  } finally {
    closeSync(fd);
  }
}

/** Go's os.MkdirAll: each missing directory from the top, an existing non-directory is ENOTDIR. */
export function mkdirAll(path: string, mode: number): void {
  const existing = statOrUndefined(path);
  if (existing?.isDirectory()) return;
  if (existing) throw pathError("mkdir", path, { code: "ENOTDIR" });
  const parent = dirname(path);
  if (parent !== path) mkdirAll(parent, mode);
  try {
    mkdirSync(path, { mode });
  } catch (error) {
    // Lost a race with another ADD creating it: fine if it is a directory now.
    if (!statOrUndefined(path)?.isDirectory()) throw pathError("mkdir", path, error);
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** resolv.conf is a few lines; 64 KiB is also the longest line host-local's scanner takes. */
export const RESOLV_CONF_MAX_BYTES = 64 * 1024;

/** The `resolvConf` file of an IPAM config, read as the executables read it (bounded, regular only). */
export function readResolvConf(path: string): string {
  return readRegularFile(path, { maxBytes: RESOLV_CONF_MAX_BYTES, what: "resolvConf" });
}
