import { run } from "./exec.js";

export interface PingResult {
  /** reached: an echo reply came back; unreachable: an ICMP error or a local error; dropped: silence. */
  outcome: "reached" | "unreachable" | "dropped";
  /** TTL of the echo reply as it arrived. */
  ttl?: number;
  /** Who sent the ICMP error ping reports ("From 192.168.1.1 icmp_seq=1 …"). */
  from?: string;
  /** ping's own line about what happened. */
  detail: string;
}

export interface PingOptions {
  /** ICMP payload bytes (ping -s); 56 by default. */
  size?: number;
  /** Set DF and refuse to fragment (ping -M do). */
  dontFragment?: boolean;
  ttl?: number;
  /** Seconds to wait for the answer; ARP gives up after about 3 s. */
  timeoutSeconds?: number;
}

/** One real `ping -c 1` from inside a namespace, read the way a person reads it. */
export async function ping(ns: string, to: string, options: PingOptions = {}): Promise<PingResult> {
  const args = [
    "ip",
    "netns",
    "exec",
    ns,
    "ping",
    "-n",
    "-c",
    "1",
    "-W",
    String(options.timeoutSeconds ?? 5),
  ];
  if (options.size !== undefined) args.push("-s", String(options.size));
  if (options.dontFragment !== undefined) args.push("-M", options.dontFragment ? "do" : "dont");
  if (options.ttl !== undefined) args.push("-t", String(options.ttl));
  args.push(to);
  const { stdout, stderr } = await run(args);
  const text = `${stdout}\n${stderr}`;
  const reply = /bytes from [\d.]+: icmp_seq=\d+ ttl=(\d+)/.exec(text);
  if (reply) return { outcome: "reached", ttl: Number(reply[1]), detail: reply[0] };
  const icmp = /From ([\d.]+) icmp_seq=\d+ (.+)/.exec(text);
  if (icmp) return { outcome: "unreachable", from: icmp[1]!, detail: icmp[2]!.trim() };
  const local = /ping: (.+)/.exec(text);
  if (local) return { outcome: "unreachable", detail: local[1]!.trim() };
  return { outcome: "dropped", detail: "no answer (100% packet loss)" };
}
