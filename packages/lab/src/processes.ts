/**
 * The processes a lab starts (listeners, iperf3 servers) and how `down` finds them again. A pid
 * alone is not an identity: after a restart, or once the process ended, the number may be anybody's.
 * So a process is recorded with its start time (/proc/<pid>/stat), and `down` also stops whatever
 * runs inside the lab's namespaces, which only podnet made: a listener started while an interrupted
 * `up` was being removed, or one left behind by a namespace deleted by hand, is found either way.
 */
import { readFileSync, readdirSync, readlinkSync, statSync } from "node:fs";

/** A process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat); undefined if gone. */
export function processStart(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may hold spaces: count from its end.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

/** Whether a process has ended: gone, or a zombie its parent has not reaped yet (state Z). */
export function ended(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat[stat.lastIndexOf(")") + 2] === "Z";
  } catch {
    return true;
  }
}

/** The network namespace inode a process runs in (its /proc/<pid>/ns/net link); undefined if gone. */
function netnsInode(pid: number): number | undefined {
  try {
    return Number(/^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/net`))?.[1]);
  } catch {
    return undefined;
  }
}

/**
 * Whether `pid` is still the lab process started at `start`: the same start time, and not in this
 * process's own network namespace (a lab's processes never are; a state file written by hand that
 * names a process of the machine's, start time and all, stops nothing).
 */
export function stillStarted(pid: number, start: number): boolean {
  const inode = netnsInode(pid);
  return processStart(pid) === start && inode !== undefined && inode !== netnsInode(process.pid);
}

/** The pids of every process inside one of the named namespaces (by inode, as `ip netns pids`). */
export function processesIn(namespaces: readonly string[]): number[] {
  const inodes = new Set<number>();
  for (const ns of namespaces) {
    try {
      inodes.add(statSync(`/run/netns/${ns}`).ino);
    } catch {
      // removed meanwhile
    }
  }
  if (!inodes.size) return [];
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const inode = netnsInode(pid);
    if (inode !== undefined && inodes.has(inode)) pids.push(pid);
  }
  return pids;
}

/**
 * Stops processes started detached (each its own process group), children included, and waits
 * (up to `waitMs`) until they have ended: SIGKILL is delivered at once but a process takes a moment
 * to exit, and until it has, it still holds its namespace and its sockets — a pod removed by an
 * event would otherwise leave a listener running, nameless, for whoever looks next.
 */
export async function stopProcesses(pids: readonly number[], waitMs = 5_000): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // already gone, or not a group leader: the process alone
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  const deadline = Date.now() + waitMs;
  let left = pids.filter((pid) => !ended(pid));
  while (left.length && Date.now() < deadline) {
    await new Promise((ok) => setTimeout(ok, 10));
    left = left.filter((pid) => !ended(pid));
  }
}
