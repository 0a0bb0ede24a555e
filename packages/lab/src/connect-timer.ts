/**
 * TCP connect times as the kernel measures them: a process inside a namespace that makes connects
 * on request, and the handshake times read from `ss -tin` of them.
 */
import { spawn, type ChildProcess } from "node:child_process";

/**
 * The handshake times, in ms, of the connections from `ports` in an `ss -tinH` listing: each
 * socket's `rtt` while it has exchanged no data is its first sample, SYN sent → SYN-ACK received,
 * which the kernel times in whole microseconds (`tcpi_rtt`). A listing is a line per socket (its
 * queues, local and peer address) followed by an indented line of its TCP details.
 */
export function handshakeTimes(ss: string, ports: readonly number[]): number[] {
  const wanted = new Set(ports);
  const times: number[] = [];
  let mine = false;
  for (const line of ss.split("\n")) {
    if (!/^\s/.test(line)) {
      const local = line.trim().split(/\s+/)[2] ?? "";
      mine = wanted.has(Number(local.slice(local.lastIndexOf(":") + 1)));
    } else if (mine) {
      // `\b`: not `minrtt:` or BBR's `mrtt:`.
      const rtt = /\brtt:([\d.]+)\//.exec(line);
      if (rtt) times.push(Number(rtt[1]));
    }
  }
  return times;
}

/**
 * A Node process inside a namespace that makes TCP connects on request: a line `<address> <port>
 * <count>` is answered with a line, `{"ports":[…],"ss":"…"}` — the local ports of the `count`
 * connections, made one after the other and all still open, and `ss -tin` of them — or
 * `{"error":…}`; `handshakeTimes` reads the times from it.
 *
 * A connect's time is its handshake as the client's kernel timed it: SYN sent → SYN-ACK received.
 * Timed around `connect()` in this process, most of the 40–120 µs was the process waking up and its
 * event loop turning, and the ratio to the baseline moved 18–94 % across runs; the kernel's figure
 * has none of that, the way ping's kernel timestamps have none.
 *
 * The connections are then reset by the client: closed with a FIN, each would leave a TIME_WAIT
 * socket for a minute, and with thousands of those Linux's search for a free ephemeral port made a
 * connect take 3–4 ms instead of 0.1.
 */
export class ConnectTimer {
  private readonly child: ChildProcess;
  private buffered = "";
  private waiting: ((line: string) => void) | undefined;

  constructor(ns: string) {
    const code = `const net = require("net"); const { execFile } = require("child_process");
require("readline").createInterface({ input: process.stdin }).on("line", (line) => {
  const [to, port, count] = line.split(" "); const open = new Map(); let answered = false;
  const answer = (a) => { if (answered) return; answered = true;
    for (const s of open.values()) s.resetAndDestroy(); console.log(JSON.stringify(a)); };
  const read = () => execFile("ss", ["-tinH", "state", "established", "dst", to, "dport", "=", ":" + port],
    (error, ss) => answer(error ? { error: "ss: " + error.message } : { ports: [...open.keys()], ss }));
  const once = () => { const s = net.connect(Number(port), to);
    s.setTimeout(2000, () => { s.destroy(); answer({ error: "timeout" }); });
    s.on("error", (e) => answer({ error: e.code }));
    s.on("connect", () => { s.setTimeout(0); open.set(s.localPort, s); if (open.size < Number(count)) once(); else read(); }); };
  once();
}).on("close", () => process.exit(0));`;
    this.child = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", code], {
      stdio: ["pipe", "pipe", "ignore"],
    });
    this.child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      this.buffered += chunk;
      for (let end = this.buffered.indexOf("\n"); end >= 0; end = this.buffered.indexOf("\n")) {
        const line = this.buffered.slice(0, end);
        this.buffered = this.buffered.slice(end + 1);
        this.answer(line);
      }
    });
    // Gone (stopped, or failed to start): the question waiting gets an empty answer.
    this.child.on("exit", () => this.answer(""));
  }

  private answer(line: string): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.(line);
  }

  /** One question at a time: the answer to `line`. */
  ask(line: string): Promise<string> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve("");
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.child.stdin!.write(line + "\n");
    });
  }

  stop(): void {
    this.child.kill("SIGKILL");
  }
}
