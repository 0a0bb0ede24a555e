/**
 * Labs: a scenario realised on this machine's network namespaces by the same runtime the simulator
 * uses. `up` builds it (and plays its events), `exec` runs a command inside one of its namespaces,
 * `down` removes everything: listener processes, namespaces (and with them every link, route, rule
 * and neighbour, none of which is ever made in the root namespace) and the lab's folder (IPAM files
 * included). Ctrl-C or SIGTERM during `up` removes what was built so far.
 */
import type { PolicyEngine } from "@podnet/policy";
import { spawnSync } from "node:child_process";
import { constants as os } from "node:os";
import { accessSync, constants, existsSync, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { ClusterRuntime, type Scenario } from "@podnet/cluster";
import type { NetworkProvider } from "@podnet/cni";
import { LinuxNetlink, run } from "@podnet/linux";
import { NetlinkError } from "@podnet/netlink";
import { LinuxBackend } from "./backend.js";
import { processStart, processesIn, stillStarted, stopProcesses } from "./processes.js";
import {
  LAB_NAME,
  labDir,
  labPrefix,
  listStates,
  unreadableStates,
  readState,
  removeState,
  writeState,
  type LabState,
} from "./state.js";

/** A lab that cannot be made, found or entered: the user's to fix. */
export class LabError extends Error {
  /** The exit status this error ends the command with; the CLI's usage status (2) when unset. */
  exitCode?: number;
}

/** `exec`'s command is not there (127) or cannot be run (126), as a shell or `docker exec` says. */
export class CommandNotRunnable extends LabError {
  constructor(
    message: string,
    override readonly exitCode: 126 | 127,
  ) {
    super(message);
  }
}

/** `up` stopped by a signal, after removing everything it had built. */
export class LabInterrupted extends LabError {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}: everything built so far was removed`);
  }
}

/**
 * Ctrl-C and SIGTERM for work that holds a lab (up, verify, the datapath bench): instead of ending
 * the process with the lab left behind, a signal is noted (and `onSignal` told, to stop a running
 * measurement); the work checks at its next step and its clean-up removes the lab. A second signal
 * during the clean-up is ignored.
 */
export function watchSignals(onSignal?: () => void) {
  let signal: NodeJS.Signals | undefined;
  const handler = (s: NodeJS.Signals) => {
    signal ??= s;
    onSignal?.();
  };
  process.on("SIGINT", handler).on("SIGTERM", handler);
  return {
    /** Throws LabInterrupted once a signal came. */
    check(): void {
      if (signal) throw new LabInterrupted(signal);
    },
    /** The error to end with: after a signal, LabInterrupted whatever the work failed with. */
    cause(error: unknown): unknown {
      return signal && !(error instanceof LabInterrupted) ? new LabInterrupted(signal) : error;
    },
    close(): void {
      process.off("SIGINT", handler).off("SIGTERM", handler);
    },
  };
}

export { labPrefix };

/** The programs a lab runs, and the Debian package of each. */
const TOOLS: [string, string][] = [
  ["ip", "iproute2"],
  ["bridge", "iproute2"],
  ["iptables", "iptables"],
  ["iptables-save", "iptables"],
  ["sysctl", "procps"],
  ["socat", "socat"],
  ["ping", "iputils-ping"],
];

const onPath = (program: string): boolean => runnable(program) === 0;

/**
 * Refuses a lab this machine cannot build, before anything is made: a program missing halfway (nft
 * under kube-proxy's nftables mode, say) failed the build in the route manager with a stack trace.
 */
export function checkTools(proxy: string): void {
  const needed = proxy === "nftables" ? [...TOOLS, ["nft", "nftables"] as [string, string]] : TOOLS;
  const missing = needed.filter(([program]) => !onPath(program));
  if (missing.length)
    throw new LabError(
      `this machine lacks ${missing.map(([p]) => p).join(", ")}, which a lab${proxy === "nftables" ? " under kube-proxy's nftables mode" : ""} runs (Debian: apt-get install ${[...new Set(missing.map(([, d]) => d))].join(" ")})`,
    );
}

/**
 * Every namespace of lab `name` that exists now, out of `all`: those named with its prefix, less
 * those of another lab whose longer prefix starts with it (lab "x-y"'s pn-x-y-web also starts with
 * lab "x"'s pn-x-; `down x` removed lab x-y's namespaces and left its listeners running).
 */
function namespacesOf(name: string, all: string[], labs: LabState[] = listStates()): string[] {
  const prefix = labPrefix(name);
  const longer = labs.map((l) => l.prefix).filter((p) => p.length > prefix.length && p.startsWith(prefix));
  return all.filter((n) => n.startsWith(prefix) && !longer.some((p) => n.startsWith(p)));
}

const allNamespaces = () => new LinuxNetlink().netns.list();

/**
 * Refuses lab name `name` beside a lab whose namespaces its own would share a prefix with ("x" and
 * "x-y"): one of them would be named as the other's pod.
 */
function checkOverlap(name: string): void {
  const other = listStates().find((l) => l.name.startsWith(`${name}-`) || name.startsWith(`${l.name}-`));
  if (other)
    throw new LabError(
      `lab ${other.name} exists, and lab ${name}'s namespaces would share names with its (${labPrefix(other.name)}…); choose another name`,
    );
}

export interface UpOptions {
  name: string;
  scenarioFile: string;
  onProgress?: (done: number, total: number) => void | Promise<void>;
  /** The NetworkPolicy engine on every node (none by default). */
  policy?: PolicyEngine;
  /** The most network namespaces the lab may make (`MAX_NAMESPACES` by default). */
  maxNamespaces?: number;
}

/**
 * A lab's namespaces by default at most: each is a real namespace with devices, routes, rules and
 * (for pods) listening processes on this machine, made one CNI ADD at a time. `large` at 5,000 nodes
 * would make 155,000 and exhaust the machine long before it finished.
 */
export const MAX_NAMESPACES = 1000;

/** The namespaces `up` would make: nodes, pods, hosts, routers and the underlay, events included. */
export function namespacesNeeded(s: Scenario): number {
  const g = s.generate;
  const generated = g ? g.nodes * (1 + g.podsPerNode) : 0;
  const added = s.events.filter((e) => e.action === "addNode" || e.action === "addPod").length;
  return (
    s.nodes.length +
    s.pods.length +
    generated +
    s.underlay.hosts.length +
    s.underlay.routers.length +
    1 +
    added
  );
}

/** Builds `scenario` under `provider` on real namespaces as lab `name`, events included. */
export async function up(
  scenario: Scenario,
  provider: NetworkProvider,
  options: UpOptions,
): Promise<{ state: LabState; runtime: ClusterRuntime }> {
  const { name } = options;
  checkName(name);
  if (readState(name)) throw new LabError(`lab ${name} exists already (podnet down ${name} removes it)`);
  checkOverlap(name);
  checkTools(scenario.proxy ?? "iptables");
  const needed = namespacesNeeded(scenario);
  const most = options.maxNamespaces ?? MAX_NAMESPACES;
  if (needed > most)
    throw new LabError(
      `${scenario.name} would make ${needed.toLocaleString("en-US")} network namespaces on this machine, more than ${most.toLocaleString("en-US")}: make it smaller (--nodes, --pods-per-node) or raise podnet up's --max-namespaces`,
    );
  const prefix = labPrefix(name);
  if (namespacesOf(name, await allNamespaces()).length)
    throw new LabError(`namespaces named ${prefix}* exist already; remove them first (podnet down ${name})`);
  const state: LabState = {
    name,
    prefix,
    provider: provider.name,
    proxy: scenario.proxy ?? "iptables",
    ...(options.policy && options.policy.name !== "none" ? { policy: options.policy.name } : {}),
    scenario: options.scenarioFile,
    status: "building",
    createdAt: new Date().toISOString(),
    pids: [],
    starts: [],
    nodes: [],
    pods: [],
    hosts: [],
    routers: [],
  };
  writeState(state);
  const backend = new LinuxBackend(prefix, { dir: labDir(name) }, (pid) => {
    state.pids.push(pid);
    state.starts!.push(processStart(pid) ?? 0);
    writeState(state);
  });
  // A signal stops the build at its next step; the build's own failure path then removes the lab,
  // so nothing is created after the clean-up has listed what to remove.
  const signals = watchSignals();
  const checkpoint = async (done: number, total: number) => {
    signals.check();
    await options.onProgress?.(done, total);
    // Let the event loop turn, so that a signal is seen during a long build.
    await new Promise((resolve) => setImmediate(resolve));
    signals.check();
  };
  try {
    const runtime = await ClusterRuntime.build(scenario, provider, {
      backend,
      onProgress: checkpoint,
      ...(options.policy ? { policy: options.policy } : {}),
    });
    signals.check();
    await runtime.runEvents();
    state.status = "up";
    state.nodes = [...runtime.nodes.values()].map((n) => ({
      name: n.name,
      address: n.address,
      ...(n.podCidr ? { podCidr: n.podCidr } : {}),
    }));
    state.pods = [...runtime.pods].map(([pod, p]) => ({
      name: pod,
      node: p.node,
      ip: p.ip,
      containers: p.spec.containers.map((c) => c.name),
    }));
    state.hosts = [...runtime.hosts].map(([host, address]) => ({ name: host, address }));
    state.routers = runtime.spec.underlay.routers.map((r) => r.name);
    writeState(state);
    return { state, runtime };
  } catch (error) {
    backend.close();
    // A `podnet down` run meanwhile may have removed it already.
    await down(name).catch((failure: unknown) => {
      if (!(failure instanceof LabError)) throw failure;
    });
    throw signals.cause(error);
  } finally {
    signals.close();
  }
}

/**
 * Makes address resolution give up sooner on every interface of lab `name`: ARP's retry timer
 * (`net.ipv4.neigh.<link>.retrans_time_ms`, 1,000 ms by default, three tries) set to `ms`. A packet
 * to an address nobody answers then fails with host unreachable after 3 × `ms` instead of about
 * 3 s; the outcome is the kernel's own, only sooner. A namespace other than the first has no
 * `neigh/default` of its own to set (its links take the first namespace's), so each link is set.
 */
export async function shortenArpRetries(name: string, ms: number): Promise<void> {
  const script = `for f in /proc/sys/net/ipv4/neigh/*/retrans_time_ms; do echo ${ms} > "$f"; done`;
  const failed = (
    await Promise.all(
      namespacesOf(name, await allNamespaces()).map(async (ns) => {
        const r = await run(["ip", "netns", "exec", ns, "sh", "-c", script]);
        return r.code ? `${ns}: ${r.stderr.trim()}` : undefined;
      }),
    )
  ).filter(Boolean);
  if (failed.length) throw new LabError(`could not set ARP's retry timer in ${failed.join("; ")}`);
}

/** Removes lab `name` and everything it made; what was removed. */
export async function down(name: string): Promise<{ namespaces: string[]; processes: number }> {
  checkName(name);
  const state = readState(name);
  const namespaces = namespacesOf(name, await allNamespaces());
  if (!state && !namespaces.length && !existsSync(labDir(name)))
    throw new LabError(`no lab named ${name} (podnet ls lists them)`);
  // The listed processes that are still the ones started (a pid from before a restart, or from a
  // state file written by hand, may name anybody's process group), whether or not their namespace
  // still has its name, and every process inside the lab's namespaces. (A state from before start
  // times were kept: its listed processes inside the lab's namespaces.)
  const inside = processesIn(namespaces);
  const mine = new Set(inside);
  const listed = (state?.pids ?? []).filter((pid, i) =>
    state?.starts ? stillStarted(pid, state.starts[i]!) : mine.has(pid),
  );
  const pids = [...new Set([...listed, ...inside])];
  await stopProcesses(pids);
  const netlink = new LinuxNetlink();
  // One gone meanwhile (an `up` still building removes what it made when it fails) is gone.
  for (const ns of namespaces)
    await netlink.netns.del(ns).catch((error: unknown) => {
      if (!(error instanceof NetlinkError && error.errno === "ENOENT")) throw error;
    });
  removeState(name);
  return { namespaces, processes: pids.length };
}

/** Refuses a name no lab can have, before it becomes a path or a namespace prefix. */
function checkName(name: string): void {
  if (!LAB_NAME.test(name))
    throw new LabError(
      `lab name ${JSON.stringify(name)}: 1-16 lowercase letters, digits and "-", starting and ending with a letter or digit`,
    );
}

export interface LabSummary extends LabState {
  /** Its state file cannot be read: nothing but its name and namespaces is known. */
  unreadable?: true;
  /** How many of its namespaces exist now: none means it is gone (a machine restart clears /run). */
  namespaces: number;
  /**
   * How many a lab that is up made: one per node, pod, host and router, and the underlay's. Fewer
   * existing means some were deleted outside podnet.
   */
  expectedNamespaces?: number;
}

export async function list(): Promise<LabSummary[]> {
  const all = await allNamespaces();
  const labs = listStates();
  const readable: LabSummary[] = labs.map((s) => ({
    ...s,
    namespaces: namespacesOf(s.name, all, labs).length,
    ...(s.status === "up"
      ? { expectedNamespaces: s.nodes.length + s.pods.length + s.hosts.length + s.routers.length + 1 }
      : {}),
  }));
  // A lab whose state cannot be read is listed as such, not left out: it may still hold namespaces
  // and processes, and `down` removes them.
  const unreadable: LabSummary[] = unreadableStates().map((name) => ({
    name,
    prefix: labPrefix(name),
    provider: "?",
    scenario: "?",
    status: "building",
    unreadable: true,
    createdAt: "",
    pids: [],
    nodes: [],
    pods: [],
    hosts: [],
    routers: [],
    namespaces: namespacesOf(name, all, labs).length,
  }));
  return [...readable, ...unreadable].sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * 0 when `command` names an executable file as execvp will look it up (a path, or a name on PATH:
 * a lab's namespaces share this process's files), else a shell's status for it: 127 not found, 126
 * found but not executable. (`ip netns exec` itself exits 1 for both, which reads as the command's
 * own failure.)
 */
function runnable(command: string): 0 | 126 | 127 {
  const candidates = command.includes("/")
    ? [command]
    : (process.env.PATH ?? "").split(delimiter).map((dir) => join(dir || ".", command));
  let found = false;
  for (const file of candidates) {
    try {
      if (!statSync(file).isFile()) continue;
      found = true;
      accessSync(file, constants.X_OK);
      return 0;
    } catch {
      // not here, or not executable: look on
    }
  }
  return found ? 126 : 127;
}

/** Runs `argv` inside the namespace of a lab's pod, node, host or router; its exit status. */
export function exec(name: string, target: string, argv: string[]): number {
  checkName(name);
  const state = readState(name);
  if (!state) throw new LabError(`no lab named ${name} (podnet ls lists them)`);
  const [pod, container, ...rest] = target.split("/") as [string, string | undefined];
  const known = [
    ...state.pods.map((p) => p.name),
    ...state.nodes.map((n) => n.name),
    ...state.hosts.map((h) => h.name),
    ...state.routers,
  ];
  if (!known.includes(pod) || rest.length)
    throw new LabError(
      `lab ${name} has no pod, node, host or router ${JSON.stringify(target)} (it has: ${known.join(", ")})`,
    );
  if (container !== undefined) {
    // A pod's containers share its namespace, so the name only has to be one of them.
    const containers = state.pods.find((p) => p.name === pod)?.containers;
    if (!containers)
      throw new LabError(`${JSON.stringify(target)}: ${pod} is not a pod, and has no containers`);
    if (!containers.includes(container))
      throw new LabError(
        `pod ${pod} has no container ${JSON.stringify(container)} (it has: ${containers.join(", ")})`,
      );
  }
  if (!argv.length) throw new LabError("give the command to run after --, e.g. -- ip route");
  const status = runnable(argv[0]!);
  if (status)
    throw new CommandNotRunnable(
      `${JSON.stringify(argv[0])}: ${status === 127 ? "command not found" : "not an executable file"}`,
      status,
    );
  if (!existsSync(`/run/netns/${state.prefix}${pod}`))
    throw new LabError(
      `${state.prefix}${pod} is gone (deleted outside podnet?): podnet down ${name} removes the rest of the lab`,
    );
  const result = spawnSync("ip", ["netns", "exec", state.prefix + pod, ...argv], { stdio: "inherit" });
  if (result.error) throw new LabError(`${argv[0]}: ${result.error.message}`);
  // Killed by a signal: a shell's status for it, 128 + its number (137 for SIGKILL, 143 for SIGTERM).
  return result.status ?? 128 + (result.signal ? (os.signals[result.signal] ?? 0) : 0);
}
