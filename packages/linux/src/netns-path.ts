/**
 * CNI_NETNS as a CNI executable receives it: a path to a network namespace file, which the runtime
 * may spell `/run/netns/X`, `/var/run/netns/X`, `/proc/PID/ns/net` or any other bind mount. The
 * reference plugins open it with ns.GetNS, which refuses anything that is not on nsfs (or procfs)
 * with "unknown FS magic"; without that check a path such as "/run/netns/" (a directory) was read as
 * "the namespace the plugin runs in", the host's, and ADD and DEL changed the host. Here the path
 * must be a namespace file, of a network namespace, and not the plugin's own; the host API (which
 * names namespaces, as `ip -n` does) then gets a name for it.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, opendirSync, statSync, statfsSync, unlinkSync, writeFileSync } from "node:fs";
import { constants } from "node:os";
import { join } from "node:path";
import { CniError, CniErrorCode } from "@podnet/cni";
import { goStrerror } from "@podnet/ipam/disk";
import { ownNamespaceError } from "@podnet/plugin-bridge";
import { run } from "./exec.js";

const NETNS_RUN_DIR = "/run/netns";
/** statfs(2) magics ns.GetNS accepts (linux/magic.h). */
const NSFS_MAGIC = 0x6e736673;
const PROCFS_MAGIC = 0x9fa0;
/** A node runs at most a few hundred pods; past this many names /run/netns is not walked further. */
const MAX_NAMES = 65536;
/** nsenter, mount and umount on a namespace file return at once; a hung file system must not hang ADD. */
const TOOL_TIMEOUT_MS = 10_000;

/** Go's %q, close enough for paths. */
const quote = (text: string) => JSON.stringify(text);

/** The reference's words: ADD and CHECK say "failed to open netns", DEL (ns.WithNetNSPath) just why. */
function refuse(netns: string, why: string, opening: boolean): never {
  throw new CniError(CniErrorCode.INTERNAL, opening ? `failed to open netns ${quote(netns)}: ${why}` : why);
}

/** A validated CNI_NETNS: the host API's name for it, and how to give the name back. */
export interface Sandbox {
  name: string;
  release(): Promise<void>;
}

/**
 * Checks CNI_NETNS as ns.GetNS does, with the reference's words, and more: the file must be a
 * network namespace and not the plugin's own. Returns the inode identity of the namespace, or
 * undefined when the path does not exist (DEL then succeeds without it, as the spec asks).
 */
export async function checkNetnsPath(
  netns: string,
  opening = true,
): Promise<{ dev: number; ino: number } | undefined> {
  let magic: number;
  try {
    magic = Number(statfsSync(netns).type);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    refuse(netns, `failed to Statfs ${quote(netns)}: ${goStrerror(error)}`, opening);
  }
  if (magic !== NSFS_MAGIC && magic !== PROCFS_MAGIC)
    refuse(netns, `unknown FS magic on ${quote(netns)}: ${magic.toString(16)}`, opening);
  // Only setns(2) with CLONE_NEWNET tells a network namespace from a mount or PID one (or from a
  // procfs file); Node has no setns, util-linux's nsenter asks the kernel.
  const entered = await run(["nsenter", `--net=${netns}`, "true"], undefined, TOOL_TIMEOUT_MS);
  if (entered.code !== 0) refuse(netns, `not a network namespace (${entered.stderr.trim()})`, opening);
  const { dev, ino } = statSync(netns);
  const self = statSync("/proc/self/ns/net");
  if (dev === self.dev && ino === self.ino) throw ownNamespaceError(netns);
  return { dev, ino };
}

/** The first MAX_NAMES names under /run/netns (none when it cannot be read), until `visit` says stop. */
function eachName(visit: (name: string) => boolean | void): void {
  let dir;
  try {
    dir = opendirSync(NETNS_RUN_DIR);
  } catch {
    return;
  }
  try {
    for (let n = 0, entry = dir.readSync(); entry && n < MAX_NAMES; entry = dir.readSync(), n++)
      if (visit(entry.name) === true) return;
  } finally {
    dir.closeSync();
  }
}

/** The name under /run/netns of the namespace with this identity, if it has one. */
export function namespaceName(id: { dev: number; ino: number }): string | undefined {
  let found: string | undefined;
  eachName((name) => {
    const stat = statSync(join(NETNS_RUN_DIR, name), { throwIfNoEntry: false });
    if (stat && stat.dev === id.dev && stat.ino === id.ino) found = name;
    return found !== undefined;
  });
  return found;
}

async function mustRun(argv: string[]): Promise<void> {
  const r = await run(argv, undefined, TOOL_TIMEOUT_MS);
  if (r.code !== 0) throw new CniError(CniErrorCode.IO_FAILURE, `${argv.join(" ")}: ${r.stderr.trim()}`);
}

/**
 * A name for the namespace at `netns` (which must exist): its own name under /run/netns when it has
 * one, else a temporary bind mount there (as `ip netns attach` makes), removed by `release`.
 */
export async function openSandbox(netns: string): Promise<Sandbox> {
  const id = await checkNetnsPath(netns);
  if (!id) refuse(netns, `failed to Statfs ${quote(netns)}: no such file or directory`, true);
  removeStaleNames();
  const name = namespaceName(id);
  if (name !== undefined) return { name, release: async () => undefined };
  const temp = `${TEMP_PREFIX}${process.pid}-${pidNamespace()}-${randomBytes(3).toString("hex")}`;
  const target = join(NETNS_RUN_DIR, temp);
  mkdirSync(NETNS_RUN_DIR, { recursive: true });
  writeFileSync(target, "", { flag: "wx" });
  // A runtime that gives up on a slow ADD sends SIGTERM: the mount would outlive the plugin and keep
  // the pod's namespace (its interfaces, its addresses) alive after the pod's last process is gone.
  // (SIGKILL leaves no time: the next plugin to open a sandbox removes that one, `removeStaleNames`.)
  const onSignal = (signal: NodeJS.Signals) => {
    unmount(target);
    process.exit(128 + (constants.signals[signal] ?? 0));
  };
  for (const signal of SIGNALS) process.once(signal, onSignal);
  const forget = () => {
    for (const signal of SIGNALS) process.removeListener(signal, onSignal);
  };
  try {
    await mustRun(["mount", "--bind", netns, target]);
  } catch (error) {
    forget();
    unlinkSync(target);
    throw error;
  }
  return {
    name: temp,
    release: async () => {
      forget();
      await mustRun(["umount", target]);
      unlinkSync(target);
    },
  };
}

const SIGNALS: NodeJS.Signals[] = ["SIGTERM", "SIGINT", "SIGHUP"];

/** A temporary name: this prefix, the plugin's PID, its PID namespace's inode, six random hex digits. */
const TEMP_PREFIX = "podnet-cni-";
const TEMP_NAME = /^podnet-cni-(\d+)-(\d+)-[0-9a-f]{6}$/;

const pidNamespace = () => statSync("/proc/self/ns/pid").ino;

/** Whether a process with this PID runs (in this PID namespace). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/**
 * A plugin killed by SIGKILL in the middle of a command had no time to remove its temporary name, and
 * the mount kept the pod's namespace alive. The next plugin to open a sandbox removes the names of
 * plugins that are gone: made in this PID namespace (a PID means nothing in another) by a PID no
 * process has now. A PID taken again by a new process keeps its stale name until that one ends.
 */
function removeStaleNames(): void {
  const own = String(pidNamespace());
  const stale: string[] = [];
  eachName((name) => {
    const m = TEMP_NAME.exec(name);
    if (m && m[2] === own && !running(Number(m[1]))) stale.push(name);
  });
  for (const name of stale) unmount(join(NETNS_RUN_DIR, name));
}

/** A temporary name's mount and file gone, whatever is left of them. */
function unmount(target: string): void {
  spawnSync("umount", [target], { stdio: "ignore", timeout: TOOL_TIMEOUT_MS });
  try {
    unlinkSync(target);
  } catch {
    // gone already
  }
}
