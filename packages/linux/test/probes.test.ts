// connectTcp reads socat's notices to tell what connect() saw; this pins each outcome to a situation
// the kernel makes on purpose in a namespace of ours, so a socat that words them otherwise fails
// here rather than as a disagreement in `podnet verify`.
import { describe, expect, it } from "vitest";
import { connectTcp, listenTcp, run } from "../src/index.js";
import { kernelTestRun } from "./kernel.js";

const { system, linux, nextPrefix } = kernelTestRun(["ip", "iptables", "socat"]);

describe.skipIf(system.skip)("connectTcp on the kernel", () => {
  it("tells connected (with the reply), refused, unreachable and silence apart", async () => {
    const ns = nextPrefix();
    await linux.netns.add(ns);
    await linux.link.set(ns, "lo", { up: true });
    const iptables = (...rule: string[]) =>
      run(["ip", "netns", "exec", ns, "iptables", "-A", "INPUT", ...rule]);
    await iptables("-p", "tcp", "--dport", "84", "-j", "DROP");
    await iptables("-p", "tcp", "--dport", "85", "-j", "REJECT", "--reject-with", "icmp-host-unreachable");
    const answering = await listenTcp(ns, 81, "web");
    // Accepts and says nothing: connected, then idle past the timeout.
    const silent = await listenTcp(ns, 83, "", { count: true });
    try {
      expect(await connectTcp(ns, "127.0.0.1", 81, 1000)).toEqual({ outcome: "connected", reply: "web" });
      expect(await connectTcp(ns, "127.0.0.1", 82, 1000)).toEqual({
        outcome: "refused",
        error: "ECONNREFUSED",
      });
      expect(await connectTcp(ns, "127.0.0.1", 83, 1000)).toEqual({ outcome: "timeout" });
      expect(await connectTcp(ns, "127.0.0.1", 84, 1000)).toEqual({ outcome: "timeout" });
      expect(await connectTcp(ns, "127.0.0.1", 85, 1000)).toEqual({
        outcome: "unreachable",
        error: "EHOSTUNREACH",
      });
      expect(await connectTcp(ns, "10.255.0.1", 81, 1000)).toEqual({
        outcome: "unreachable",
        error: "ENETUNREACH",
      });
      // With bytes to send: the listener counts what arrived.
      expect(await connectTcp(ns, "127.0.0.1", 83, 2000, 1000)).toEqual({
        outcome: "connected",
        reply: "1000",
      });
    } finally {
      answering.kill();
      silent.kill();
    }
  }, 60_000);
});
