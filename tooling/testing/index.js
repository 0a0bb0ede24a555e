// Tests that need a system tool (tshark, ip, iptables, the reference CNI plugins) or root run
// against the real thing. Outside CI a missing tool skips them with the reason; in CI (CI=true),
// where .ci/run installs everything, a missing tool is a failure, so a skip can never hide a gap.
import { execFileSync, spawnSync } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

export function findExecutable(name) {
  if (name.includes("/")) {
    try {
      accessSync(name, constants.X_OK);
      return name;
    } catch {
      return undefined;
    }
  }
  for (const dir of (process.env.PATH ?? "").split(delimiter).concat(["/usr/sbin", "/sbin"])) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/**
 * Returns { path } when every tool is present (and root, if asked), else { skip: reason }.
 * Throws in CI instead of skipping.
 */
export function requireSystem({ tools = [], root = false } = {}) {
  const missing = tools.filter((tool) => !findExecutable(tool));
  const reasons = [];
  if (missing.length) reasons.push(`missing ${missing.join(", ")} (apt-get install as in .ci/run)`);
  if (root && process.getuid?.() !== 0) reasons.push("needs root");
  if (reasons.length === 0) {
    return { skip: undefined, paths: Object.fromEntries(tools.map((t) => [t, findExecutable(t)])) };
  }
  if (process.env.CI) throw new Error(`CI must provide: ${reasons.join("; ")}`);
  return { skip: reasons.join("; "), paths: {} };
}

/**
 * Runs a CNI plugin executable (`argv`) the way a runtime does, from inside network namespace `ns`:
 * an environment of PATH and `vars` only (a var set to undefined is left out), the config on stdin.
 * The answer is parsed JSON, "" when empty, or the text when it is not JSON (which no test takes for
 * a CNI answer). Stops a plugin after `timeoutMs`.
 */
export function runCniPlugin(ns, argv, vars, config, timeoutMs = 20_000) {
  const assignments = Object.entries({ PATH: process.env.PATH, ...vars })
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  const r = spawnSync("ip", ["netns", "exec", ns, "env", "-i", ...assignments, ...argv], {
    input: JSON.stringify(config),
    encoding: "utf8",
    timeout: timeoutMs,
  });
  let out = r.stdout;
  try {
    out = r.stdout.trim() ? JSON.parse(r.stdout) : "";
  } catch {
    // not JSON: kept as text
  }
  return { code: r.status, out };
}

/**
 * What tshark reads of a pcap: for each frame, the values of `fields` (every occurrence, joined with
 * commas). flannel's VXLAN port 8472 is decoded as VXLAN (Wireshark knows only 4789); `options` are
 * more tshark arguments (`-o` preferences, a `-Y` filter).
 */
export function tsharkFields(tshark, pcap, fields, options = []) {
  const dir = mkdtempSync(join(tmpdir(), "podnet-tshark-"));
  try {
    const file = join(dir, "capture.pcap");
    writeFileSync(file, pcap);
    const out = execFileSync(
      tshark,
      [
        "-r",
        file,
        "-d",
        "udp.port==8472,vxlan",
        ...options,
        "-T",
        "fields",
        "-E",
        "separator=\t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
        ...fields.flatMap((f) => ["-e", f]),
      ],
      // tshark writes its preferences under HOME: a directory of the test's own.
      { encoding: "utf8", env: { ...process.env, HOME: dir } },
    );
    return out
      .trimEnd()
      .split("\n")
      .map((line) => line.split("\t"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
