// What every test against the real kernel shares: the tools it needs, one host API, a per-run
// namespace prefix, removal of everything the run created, and reading a trace's answer TTL.
import type { Ipv4Header } from "@podnet/core";
import type { Trace } from "@podnet/sim";
import type { TcpResult } from "../src/index.js";
import { requireSystem } from "@podnet/testing";
import { afterAll } from "vitest";
import { LinuxNetlink, removeNamespaces, runPrefix } from "../src/index.js";

/** What the host API runs for links, addresses, routes, neighbours, FDBs, rules and sysctls. */
export const KERNEL_TOOLS = ["ip", "bridge", "iptables", "iptables-save", "sysctl", "conntrack"];

export function kernelTestRun(tools: string[] = KERNEL_TOOLS) {
  const system = requireSystem({ tools, root: true });
  const linux = new LinuxNetlink();
  const runId = runPrefix();
  let n = 0;
  afterAll(async () => {
    if (!system.skip) await removeNamespaces(linux, runId);
  });
  return { system, linux, runId, nextPrefix: () => `${runId}${n++}` };
}

/** A real connection's result in a trace's words: connected is reached, silence is dropped. */
export function tcpOutcome(result: TcpResult): string {
  if (result.outcome === "connected") return "reached";
  return result.outcome === "timeout" ? "dropped" : result.outcome;
}

/** The TTL the answer arrived with at the sender, as ping reports it. */
export function answerTtl(trace: Trace, origin: string): number | undefined {
  const hop = trace.hops
    .filter((h) => h.ns === origin && h.event === "deliver" && h.direction === "reply")
    .at(-1);
  return hop ? (hop.packet.headers[0] as Ipv4Header).ttl : undefined;
}
