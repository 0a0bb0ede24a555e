// Tests that need a system tool (tshark, ip, iptables, the reference CNI plugins) or root run
// against the real thing. Outside CI a missing tool skips them with the reason; in CI (CI=true),
// where .ci/run installs everything, a missing tool is a failure, so a skip can never hide a gap.
import { accessSync, constants } from "node:fs";
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
