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
  /** Listener processes (socat), stopped by `down`. */
  pids: number[];
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

export function readState(name: string): LabState | undefined {
  try {
    return JSON.parse(readFileSync(join(labDir(name), "state.json"), "utf8")) as LabState;
  } catch {
    return undefined;
  }
}

export function listStates(): LabState[] {
  let names: string[] = [];
  try {
    names = readdirSync(labRoot());
  } catch {
    return [];
  }
  return names.flatMap((n) => {
    const s = readState(n);
    return s ? [s] : [];
  });
}

export function removeState(name: string): void {
  rmSync(labDir(name), { recursive: true, force: true });
}
