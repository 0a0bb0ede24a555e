/**
 * A lab's state on disk, so that `podnet down` works from another shell or after a crash: one folder
 * per lab under LAB_ROOT (a tmpfs, /run/podnet/labs, by default; PODNET_LABS moves it) holding
 * state.json, the IPAM reservations of its pods and the conflists they were attached with.
 */
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const labRoot = (): string => process.env.PODNET_LABS ?? "/run/podnet/labs";

/** Lab names make namespace names: short, lowercase, no separators but "-". */
export const LAB_NAME = /^[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?$/;

export interface LabState {
  name: string;
  /** Every namespace of the lab starts with it. */
  prefix: string;
  provider: string;
  /** kube-proxy's mode for the Services (absent in labs from before it was a choice: iptables). */
  proxy?: string;
  /** The NetworkPolicy engine (absent: none). */
  policy?: string;
  scenario: string;
  /** "building" until `up` finishes; a lab left "building" was interrupted. */
  status: "building" | "up";
  createdAt: string;
  /** Listener processes (socat, the UDP echo), stopped by `down`. */
  pids: number[];
  /**
   * Each pid's start time (`processStart`), in the same order: `down` stops a listed process only
   * if it is still the one started. Absent in labs from before it was kept.
   */
  starts?: number[];
  nodes: { name: string; address: string; podCidr?: string }[];
  pods: { name: string; node: string; ip: string; containers: string[] }[];
  hosts: { name: string; address: string }[];
  routers: string[];
}

export const labDir = (name: string) => join(labRoot(), name);

export function writeState(state: LabState): void {
  mkdirSync(labDir(state.name), { recursive: true });
  const file = join(labDir(state.name), "state.json");
  // Written whole, then renamed: a crash never leaves half a state file.
  writeFileSync(`${file}.tmp`, JSON.stringify(state, null, 2) + "\n");
  renameSync(`${file}.tmp`, file);
}

/** Every namespace of lab `name` starts with it. */
export const labPrefix = (name: string) => `pn-${name}-`;

const isString = (v: unknown) => typeof v === "string";
const isList = (v: unknown, each: (item: unknown) => boolean) => Array.isArray(v) && v.every(each);
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;
const named = (v: unknown) => isRecord(v) && isString(v.name);

/**
 * Lab `name`'s state, if its file holds one. `down` deletes namespaces by the prefix and kills the
 * process groups the file lists, so nothing is taken on trust: a file that is not this lab's state
 * (hand-edited, truncated, another program's) reads as no state, its prefix must be the one the name
 * gives, and a pid must be a process of its own (`down` also checks that each is still the process
 * started, by its start time: after a restart the numbers belong to others).
 */
export function readState(name: string): LabState | undefined {
  if (!LAB_NAME.test(name)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(join(labDir(name), "state.json"), "utf8"));
  } catch {
    return undefined;
  }
  const ok =
    isRecord(value) &&
    value.name === name &&
    value.prefix === labPrefix(name) &&
    isString(value.provider) &&
    isString(value.scenario) &&
    (value.status === "building" || value.status === "up") &&
    isList(value.pids, (p) => Number.isInteger(p) && (p as number) > 1) &&
    (value.starts === undefined ||
      (isList(value.starts, (t) => Number.isInteger(t) && (t as number) >= 0) &&
        (value.starts as unknown[]).length === (value.pids as unknown[]).length)) &&
    isList(value.nodes, named) &&
    isList(value.pods, (p) => named(p) && isList((p as { containers?: unknown }).containers, isString)) &&
    isList(value.hosts, named) &&
    isList(value.routers, isString);
  return ok ? (value as unknown as LabState) : undefined;
}

/** The names under the labs' directory (none when it does not exist). */
function labNames(): string[] {
  try {
    return readdirSync(labRoot());
  } catch {
    return [];
  }
}

export function listStates(): LabState[] {
  return labNames().flatMap((n) => {
    const s = readState(n);
    return s ? [s] : [];
  });
}

/**
 * Lab directories whose state file cannot be read (corrupt, or written by hand): `podnet ls` shows
 * them, since their namespaces and listeners may still be there and `podnet down` removes them.
 */
export function unreadableStates(): string[] {
  return labNames()
    .filter((n) => LAB_NAME.test(n) && !readState(n))
    .sort();
}

export function removeState(name: string): void {
  rmSync(labDir(name), { recursive: true, force: true });
}
