import { CniError, CniErrorCode } from "./errors.js";
import type { CniResult } from "./schemas.js";

/** What the reference plugins 1.1.1 support; 1.1.0 is opt-in per plugin (they reject it). */
export const LEGACY_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"] as const;
export const ALL_VERSIONS = [...LEGACY_VERSIONS, "1.1.0"] as const;

function parts(version: string): number[] {
  const match = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
  if (!match) throw new CniError(CniErrorCode.DECODING_FAILURE, `unable to parse semver: ${version}`);
  return [Number(match[1]), Number(match[2]), Number(match[3])];
}

export function compareVersions(a: string, b: string): number {
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}

/** Go's %q of a []string, as libcni prints supported versions: ["0.1.0" "0.2.0"]. */
export function goQuotedList(items: readonly string[]): string {
  return `[${items.map((s) => JSON.stringify(s)).join(" ")}]`;
}

export function checkVersionSupported(configVersion: string, supported: readonly string[]): void {
  if (!supported.includes(configVersion)) {
    throw new CniError(
      CniErrorCode.INCOMPATIBLE_VERSION,
      "incompatible CNI versions",
      `config is ${JSON.stringify(configVersion)}, plugin supports ${goQuotedList(supported)}`,
    );
  }
}

/**
 * A result in the shape a given spec version prints: 1.x as is; 0.3.x/0.4.0 add ips[].version;
 * 0.1.0/0.2.0 use the old ip4 block (the first IPv4 address with the routes inside it).
 */
export function resultForVersion(result: CniResult, version: string): Record<string, unknown> {
  if (compareVersions(version, "1.0.0") >= 0) return { ...result, cniVersion: version };
  if (compareVersions(version, "0.3.0") >= 0) {
    return {
      ...result,
      cniVersion: version,
      ...(result.ips
        ? { ips: result.ips.map((ip) => ({ version: ip.address.includes(":") ? "6" : "4", ...ip })) }
        : {}),
    };
  }
  const v4 = result.ips?.find((ip) => !ip.address.includes(":"));
  const out: Record<string, unknown> = { cniVersion: version };
  if (v4)
    out.ip4 = {
      ip: v4.address,
      ...(v4.gateway ? { gateway: v4.gateway } : {}),
      ...(result.routes?.length ? { routes: result.routes } : {}),
    };
  out.dns = result.dns ?? {};
  return out;
}
