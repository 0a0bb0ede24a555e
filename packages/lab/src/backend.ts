/**
 * Real network namespaces as a cluster backend. Pods are attached the way a container runtime does
 * it: a .conflist executed plugin by plugin (podnet-bridge with its host-local compatible IPAM on
 * disk, then podnet-portmap where the provider publishes ports), each executable run inside the
 * node's namespace with the CNI environment and the config on stdin. Containers listen with real
 * sockets (one small process per port, answering with its owner's name so a probe can tell which
 * pod it reached: socat for TCP, a Node.js datagram echo for UDP); probes are real ping, TCP and UDP
 * from inside the namespaces.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ClusterBackend, PodAttachment, ProbeRequest, ProbeResult } from "@podnet/cluster";
import {
  CniError,
  addNetworkList,
  delNetworkList,
  type CniParams,
  type CniPlugin,
  type CniResult,
  type NetConfList,
  type NetworkProvider,
  type PluginConfig,
} from "@podnet/cni";
import { LinuxNetlink, connectTcp, ping, run } from "@podnet/linux";
import { processesIn, stopProcesses } from "./processes.js";

/** Where a package is installed, found as Node's resolver would (node_modules up the tree). */
function packageDir(name: string): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    if (dirname(dir) === dir) throw new Error(`cannot find the package ${name}`);
  }
}

/** The CNI executables a lab's conflists name, by type. */
export function cniExecutables(): Record<string, string> {
  return {
    "podnet-bridge": join(packageDir("@podnet/linux"), "bin", "podnet-bridge.mjs"),
    "podnet-portmap": fileURLToPath(new URL("../bin/podnet-portmap.mjs", import.meta.url)),
  };
}

/** Waits (2 s at most) until the kernel lists a listening socket: probes must not race the listener. */
export async function listening(ns: string, protocol: "tcp" | "udp", port: number): Promise<boolean> {
  const flag = protocol === "tcp" ? "-Hltn" : "-Hlun";
  for (let i = 0; i < 100; i++) {
    const { stdout } = await run(["ip", "netns", "exec", ns, "ss", flag, `sport = :${port}`]);
    if (stdout.trim()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

/**
 * A UDP listener that answers every datagram with its owner's name, from one socket. socat's
 * `UDP4-RECVFROM:…,fork` (and `UDP4-LISTEN:…,fork`) lost most of eight datagrams sent to it at once
 * from eight sockets — its children connect to the first sender and get EPIPE on the rest — so a
 * listener probed by several pods at once read as dropped. Its log line matches socat's (`bound`).
 */
const UDP_ECHO = `const [owner, port] = process.argv.slice(1);
const s = require("dgram").createSocket("udp4");
const answer = Buffer.from(owner + "\\n");
// A reply the host refuses to send (EPERM from an egress rule) is that probe's drop, not the end.
s.on("message", (_m, peer) => s.send(answer, peer.port, peer.address, () => {}));
s.on("error", (e) => { console.error("E " + e.message); process.exit(1); });
s.bind(Number(port), () => console.error("N receiving on udp/" + port));`;

/** Waits (5 s at most) for a listener's log to say its socket is bound; false if it exits or never does. */
async function bound(log: string, child: ChildProcess): Promise<boolean> {
  for (let i = 0; i < 1000 && child.exitCode === null; i++) {
    if (/(^| )N (listening|receiving) on /m.test(readFileSync(log, "utf8"))) return true;
    await new Promise((r) => setTimeout(r, 5));
  }
  return false;
}

export { stopProcesses };

/** A CNI plugin that is an executable, invoked as libcni invokes one, from inside `nodeNs`. */
function execPlugin(binary: string, nodeNs: string): CniPlugin {
  const invoke = async (command: string, params: CniParams, config: PluginConfig) => {
    const env = [
      `CNI_COMMAND=${command}`,
      `CNI_CONTAINERID=${params.containerId}`,
      `CNI_NETNS=/run/netns/${params.netns}`,
      `CNI_IFNAME=${params.ifname}`,
      `CNI_PATH=${dirname(binary)}`,
      ...(params.args ? [`CNI_ARGS=${params.args}`] : []),
    ];
    const { stdout, stderr, code } = await run(
      [
        "ip",
        "netns",
        "exec",
        nodeNs,
        "env",
        "-i",
        `PATH=${process.env.PATH ?? ""}`,
        ...env,
        process.execPath,
        binary,
      ],
      JSON.stringify(config),
    );
    if (code !== 0) {
      let error: { code?: number; msg?: string; details?: string } = {};
      try {
        error = JSON.parse(stdout) as typeof error;
      } catch {
        error = { msg: (stderr || stdout).trim() || `exit status ${code}` };
      }
      throw new CniError(
        error.code ?? 999,
        `${command} ${binary}: ${error.msg ?? "failed"}`,
        error.details ?? "",
      );
    }
    return stdout.trim() ? (JSON.parse(stdout) as CniResult) : undefined;
  };
  return {
    about: binary,
    supportedVersions: [],
    add: async (params, config) => (await invoke("ADD", params, config))!,
    del: async (params, config) => void (await invoke("DEL", params, config)),
    check: async (params, config) => void (await invoke("CHECK", params, config)),
  };
}

export interface LabPaths {
  /** The lab's folder: its state, IPAM reservations and the conflists of its pods. */
  dir: string;
}

export class LinuxBackend implements ClusterBackend {
  readonly netlink = new LinuxNetlink();
  readonly parallelNodes = true;
  private readonly executables = cniExecutables();

  constructor(
    readonly prefix: string,
    private readonly paths: LabPaths,
    /** Called with each listener process started, so `down` can stop it. */
    private readonly started: (pid: number) => void,
  ) {}

  private closed = false;

  /**
   * Starts no more listeners: called before a failed or interrupted build is removed, so that a
   * listen still on its way cannot start a process after the removal has looked for them.
   */
  close(): void {
    this.closed = true;
  }

  /** The conflist a pod of `provider` is attached with: the bridge, then portmap if it publishes ports. */
  /** Each node keeps its reservations on its own disk, as host-local does: here, a folder per node. */
  private conflist(config: PluginConfig, nodeNs: string): NetConfList {
    const {
      capabilities,
      runtimeConfig: _published,
      cniVersion,
      name,
      type: _type,
      ipam,
      ...bridge
    } = config as PluginConfig & { capabilities?: Record<string, boolean> };
    return {
      cniVersion: String(cniVersion ?? "1.0.0"),
      name: String(name),
      plugins: [
        {
          ...bridge,
          type: "podnet-bridge",
          ...(ipam ? { ipam: { ...(ipam as object), dataDir: join(this.paths.dir, "ipam", nodeNs) } } : {}),
        },
        ...(capabilities?.portMappings || config.runtimeConfig
          ? [{ type: "podnet-portmap", capabilities: { portMappings: true } }]
          : []),
      ],
    } as NetConfList;
  }

  private registry(nodeNs: string) {
    return (type: string) =>
      this.executables[type] ? execPlugin(this.executables[type], nodeNs) : undefined;
  }

  private conflistFile(pod: PodAttachment): string {
    return join(this.paths.dir, "cni", `${pod.containerId}.conflist`);
  }

  async attachPod(_provider: NetworkProvider, pod: PodAttachment): Promise<CniResult> {
    const list = this.conflist(pod.config, pod.nodeNs);
    // A runtime keeps the list it attached with: DEL must run the same plugins, whatever changed since.
    mkdirSync(join(this.paths.dir, "cni"), { recursive: true });
    writeFileSync(this.conflistFile(pod), JSON.stringify(list, null, 2));
    const portMappings = (pod.config.runtimeConfig as { portMappings?: unknown } | undefined)?.portMappings;
    return addNetworkList(
      list,
      {
        containerId: pod.containerId,
        netns: pod.podNs,
        ifname: "eth0",
        ...(portMappings ? { capabilityArgs: { portMappings } } : {}),
      },
      this.registry(pod.nodeNs),
    );
  }

  async detachPod(_provider: NetworkProvider, pod: PodAttachment): Promise<void> {
    const file = this.conflistFile(pod);
    const list = existsSync(file)
      ? (JSON.parse(readFileSync(file, "utf8")) as NetConfList)
      : this.conflist(pod.config, pod.nodeNs);
    await delNetworkList(
      list,
      { containerId: pod.containerId, netns: pod.podNs, ifname: "eth0" },
      this.registry(pod.nodeNs),
    );
  }

  async stopProcessesIn(ns: string): Promise<void> {
    await stopProcesses(processesIn([ns]));
  }

  async listen(ns: string, socket: { protocol: "tcp" | "udp"; port: number; owner: string }): Promise<void> {
    const program =
      socket.protocol === "tcp"
        ? ["socat", "-d", "-d", `TCP4-LISTEN:${socket.port},fork,reuseaddr`, `SYSTEM:echo ${socket.owner}`]
        : [process.execPath, "-e", UDP_ECHO, socket.owner, String(socket.port)];
    if (this.closed) throw new Error(`${socket.owner}: the lab is being removed`);
    // A listener says when its socket is bound ("listening on" / "receiving on"; socat with -d -d)
    // into a log of its own: waiting on that file costs no process, where asking `ss` costs one per
    // poll.
    mkdirSync(join(this.paths.dir, "listeners"), { recursive: true });
    const log = join(this.paths.dir, "listeners", `${ns}-${socket.protocol}-${socket.port}.log`);
    const fd = openSync(log, "w");
    const child = spawn("ip", ["netns", "exec", ns, ...program], {
      detached: true,
      stdio: ["ignore", "ignore", fd],
    });
    closeSync(fd);
    child.unref();
    if (child.pid) this.started(child.pid);
    if (!(await bound(log, child)))
      throw new Error(`${socket.owner}: nothing listens on ${socket.protocol}/${socket.port} in ${ns}`);
  }

  /**
   * One of a namespace's own SNMP counters (/proc/net/snmp): how a probe tells who really answered —
   * the namespace it meant answered an echo (Icmp InEchos) or sent the RST (Tcp OutRsts), or another
   * one holding the same address did.
   */
  private async counter(ns: string, group: "Icmp" | "Tcp", name: string): Promise<number> {
    const { stdout } = await run(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"]);
    const lines = stdout.split("\n").filter((l) => l.startsWith(`${group}:`));
    const names = lines[0]?.split(/\s+/) ?? [];
    const values = lines[1]?.split(/\s+/) ?? [];
    return Number(values[names.indexOf(name)] ?? 0);
  }

  /** The sum of one SNMP counter over several namespaces. */
  private async counters(namespaces: string[], group: "Icmp" | "Tcp", name: string): Promise<number> {
    let sum = 0;
    for (const ns of namespaces) sum += await this.counter(ns, group, name);
    return sum;
  }

  /**
   * Whom a probe means to reach, in words: the pod, by the scenario's name (the lab's namespaces
   * carry its prefix), or a Service's endpoints.
   */
  private meant(request: ProbeRequest): string {
    if (request.expectNs === undefined) return `an endpoint of svc/${request.service!.name}`;
    const ns = request.expectNs;
    return ns.startsWith(this.prefix) ? ns.slice(this.prefix.length) : ns;
  }

  /** An answer from a listener: reached if it is the one meant (the pod's, or an endpoint's). */
  private answered(request: ProbeRequest, owner: string, prefix: string): ProbeResult {
    if (request.expectOwner && owner !== request.expectOwner)
      return { outcome: "wrong-destination", detail: `answered by ${owner}, not ${request.expectOwner}` };
    if (request.service?.owners.length && !request.service.owners.includes(owner))
      return {
        outcome: "wrong-destination",
        detail: `answered by ${owner}, which is not an endpoint of svc/${request.service.name}`,
      };
    return { outcome: "reached", detail: `${prefix}answered by ${owner}` };
  }

  async probe(request: ProbeRequest): Promise<ProbeResult> {
    if (request.protocol === "icmp") {
      const before = request.expectNs ? await this.counter(request.expectNs, "Icmp", "InEchos") : 0;
      const result = await ping(request.fromNs, request.to, {
        // ARP gives up after about 3 s; ping reports "Destination Host Unreachable" only then.
        timeoutSeconds: 4,
        ...(request.size !== undefined ? { size: request.size } : {}),
        ...(request.dontFragment !== undefined ? { dontFragment: request.dontFragment } : {}),
      });
      if (
        result.outcome === "reached" &&
        request.expectNs &&
        (await this.counter(request.expectNs, "Icmp", "InEchos")) === before
      )
        return {
          outcome: "wrong-destination",
          ttl: result.ttl!,
          detail: `${result.detail}, but not from ${request.expectNs}`,
        };
      return {
        outcome: result.outcome,
        ...(result.ttl !== undefined ? { ttl: result.ttl } : {}),
        detail: result.detail,
      };
    }
    if (request.protocol === "tcp") {
      // Who sent a RST is told by the namespaces' own counters: the pod meant, or any endpoint.
      const rstFrom = request.expectNs ? [request.expectNs] : (request.service?.endpointNs ?? []);
      const rsts = await this.counters(rstFrom, "Tcp", "OutRsts");
      const r = await connectTcp(request.fromNs, request.to, request.port ?? 80, 2000);
      if (
        r.outcome === "refused" &&
        rstFrom.length &&
        (await this.counters(rstFrom, "Tcp", "OutRsts")) === rsts
      )
        return { outcome: "wrong-destination", detail: `refused, but not by ${this.meant(request)}` };
      if (r.outcome === "connected") return this.answered(request, r.reply?.trim() ?? "", "connected; ");
      return {
        outcome: r.outcome === "timeout" ? "dropped" : r.outcome,
        detail: r.error ?? r.outcome,
      };
    }
    return this.probeUdp(request);
  }

  private async probeUdp(request: ProbeRequest): Promise<ProbeResult> {
    // The datagram is sent again every 500 ms of the 2 s window, as a DNS resolver retransmits: one
    // datagram lost on a loaded machine is not a policy's drop. A policy that drops the first drops
    // them all, so the outcome is the same.
    const code = `const s = require("dgram").createSocket("udp4");
const done = (o) => { console.log(JSON.stringify(o)); process.exit(0); };
setTimeout(() => done({ outcome: "dropped", detail: "no answer in 2 s (4 datagrams)" }), 2000);
s.on("message", (m) => done({ outcome: "reached", detail: "answered by " + String(m).trim(), owner: String(m).trim() }));
s.on("error", (e) => done({ outcome: e.code === "ECONNREFUSED" ? "refused" : "unreachable", detail: e.code }));
s.connect(${request.port ?? 53}, ${JSON.stringify(request.to)}, () => {
  s.send("podnet probe");
  setInterval(() => s.send("podnet probe"), 500);
});`;
    const { stdout } = await run(["ip", "netns", "exec", request.fromNs, process.execPath, "-e", code]);
    const r = JSON.parse(
      stdout.trim().split("\n").at(-1) || '{"outcome":"dropped","detail":"no answer"}',
    ) as ProbeResult & { owner?: string };
    if (r.outcome === "reached") return this.answered(request, r.owner ?? "", "");
    return { outcome: r.outcome, detail: r.detail };
  }
}
