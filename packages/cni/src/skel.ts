/**
 * The CNI execution protocol, as the reference library's skel implements it: which CNI_* variables
 * each command needs, config / container ID / interface name validation, version negotiation, and
 * errors as JSON on stdout with exit status 1. Pure (no process globals), so it is testable in
 * memory and usable in a browser; `cniMain` in "@podnet/cni/node" wires it to a real process.
 */
import { CniError, CniErrorCode } from "./errors.js";
import { GoTypeError, jsonKind } from "./go-json.js";
import type { CniCommand, CniParams, CniPlugin, PluginConfig } from "./plugin.js";
import type { Attachment } from "./schemas.js";
import { checkVersionSupported, compareVersions, resultForVersion } from "./version.js";

export interface CniInvocation {
  env: Record<string, string | undefined>;
  /** Called only for commands that read stdin (not VERSION). */
  stdin: () => string;
}

export interface CniOutcome {
  stdout: string;
  exitCode: number;
}

const CNI_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const REQUIRED: Record<string, string[]> = {
  ADD: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
  CHECK: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
  DEL: ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"],
};
const ORDER = ["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"];

/** Go's encoding/json wording for the common syntax errors (the rest are approximated). */
export function goJsonError(text: string, error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (text.trim() === "" || /end of JSON input|Unterminated string/.test(message))
    return "unexpected end of JSON input";
  const token = /Unexpected token '?(.)'?/.exec(message)?.[1];
  return token ? `invalid character '${token}' looking for beginning of value` : message;
}

function validateInterfaceName(name: string): void {
  const fail = (msg: string, details = "") => {
    throw new CniError(CniErrorCode.INVALID_ENVIRONMENT_VARIABLES, msg, details);
  };
  if (name.length === 0) fail("interface name is empty");
  // Bytes, as Go's len counts them: eight "ä" are sixteen.
  if (new TextEncoder().encode(name).length > 15)
    fail("interface name is too long", "interface name should be less than 16 characters");
  if (name === "." || name === "..") fail("interface name is . or ..");
  if (/[/:\s]/.test(name)) fail("interface name contains / or : or whitespace characters");
}

function parseConfig(stdin: string): PluginConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (error) {
    throw new CniError(
      CniErrorCode.DECODING_FAILURE,
      `error unmarshall network config: ${goJsonError(stdin, error)}`,
    );
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new CniError(
      CniErrorCode.DECODING_FAILURE,
      "error unmarshall network config: json: cannot unmarshal into Go value of type struct",
    );
  }
  const config = raw as Record<string, unknown>;
  const name = config.name ?? "";
  if (typeof name !== "string")
    throw new CniError(
      CniErrorCode.DECODING_FAILURE,
      `error unmarshall network config: ${new GoTypeError(jsonKind(name), "string", { struct: "", path: ["name"] }).message}`,
    );
  if (name === "") throw new CniError(CniErrorCode.INVALID_NETWORK_CONFIG, "missing network name");
  if (!CNI_NAME.test(name))
    throw new CniError(CniErrorCode.INVALID_NETWORK_CONFIG, "invalid characters found in network name", name);
  return { ...config, name, cniVersion: config.cniVersion as string };
}

/** The config's cniVersion as libcni's version decoder reads it: absent is 0.1.0, a non-string is an error. */
function configVersion(config: PluginConfig): string {
  const version: unknown = config.cniVersion ?? "";
  if (typeof version !== "string")
    throw new CniError(
      CniErrorCode.DECODING_FAILURE,
      `decoding version from network config: ${new GoTypeError(jsonKind(version), "string", { struct: "", path: ["cniVersion"] }).message}`,
    );
  return version === "" ? "0.1.0" : version;
}

/** GC's attachment list, checked by hand: the executable path stays free of zod (30 ms to load). */
function attachments(list: unknown): Attachment[] {
  const valid =
    Array.isArray(list) &&
    list.every((a) => typeof a?.containerID === "string" && typeof a?.ifname === "string");
  if (!valid)
    throw new CniError(
      CniErrorCode.DECODING_FAILURE,
      "cni.dev/valid-attachments must be a list of {containerID, ifname}",
    );
  return list as Attachment[];
}

async function dispatch(plugin: CniPlugin, invocation: CniInvocation): Promise<string> {
  const env = invocation.env;
  const value = (name: string) => env[name] ?? "";
  const command = value("CNI_COMMAND") as CniCommand;
  const missing = ORDER.filter(
    (name) => value(name) === "" && (name === "CNI_COMMAND" || (REQUIRED[command] ?? []).includes(name)),
  );
  if (missing.length)
    throw new CniError(
      CniErrorCode.INVALID_ENVIRONMENT_VARIABLES,
      `required env variables [${missing.join(",")}] missing`,
    );

  if (command === "VERSION") {
    const latest = [...plugin.supportedVersions].sort(compareVersions).at(-1)!;
    return JSON.stringify({ cniVersion: latest, supportedVersions: plugin.supportedVersions }) + "\n";
  }

  const stdin = invocation.stdin();
  const parsed = parseConfig(stdin);
  const containerId = value("CNI_CONTAINERID");
  // GC and STATUS concern the whole network: CNI 1.1 sends them no container ID or interface name.
  if (command !== "GC" && command !== "STATUS") {
    if (containerId === "") throw new CniError(CniErrorCode.UNKNOWN_CONTAINER, "missing containerID");
    if (!CNI_NAME.test(containerId))
      throw new CniError(
        CniErrorCode.INVALID_ENVIRONMENT_VARIABLES,
        "invalid characters in containerID",
        containerId,
      );
    validateInterfaceName(value("CNI_IFNAME"));
  }
  const config: PluginConfig = { ...parsed, cniVersion: configVersion(parsed) };
  const params: CniParams = {
    containerId,
    netns: value("CNI_NETNS"),
    ifname: value("CNI_IFNAME"),
    args: value("CNI_ARGS"),
    path: value("CNI_PATH").split(":").filter(Boolean),
  };
  const version = config.cniVersion;
  const supportsAtLeast = (floor: string) =>
    plugin.supportedVersions.some((v) => compareVersions(v, version) >= 0) &&
    compareVersions(version, floor) >= 0;

  switch (command) {
    case "ADD": {
      checkVersionSupported(version, plugin.supportedVersions);
      const result = await plugin.add(params, config);
      return JSON.stringify(resultForVersion(result, version), null, 4);
    }
    case "DEL":
      checkVersionSupported(version, plugin.supportedVersions);
      await plugin.del(params, config);
      return "";
    case "CHECK":
      if (compareVersions(version, "0.4.0") < 0)
        throw new CniError(CniErrorCode.INCOMPATIBLE_VERSION, "config version does not allow CHECK");
      if (!supportsAtLeast("0.4.0"))
        throw new CniError(CniErrorCode.INCOMPATIBLE_VERSION, "plugin version does not allow CHECK");
      checkVersionSupported(version, plugin.supportedVersions);
      await plugin.check(params, config);
      return "";
    case "GC":
    case "STATUS": {
      const handler = command === "GC" ? plugin.gc : plugin.status;
      if (!handler || !plugin.supportedVersions.includes("1.1.0")) break;
      if (compareVersions(version, "1.1.0") < 0)
        throw new CniError(CniErrorCode.INCOMPATIBLE_VERSION, `config version does not allow ${command}`);
      checkVersionSupported(version, plugin.supportedVersions);
      if (command === "STATUS") await plugin.status!(config);
      else {
        // The spec text says cni.dev/attachments; libcni sent cni.dev/valid-attachments. Accept both.
        const list = config["cni.dev/valid-attachments"] ?? config["cni.dev/attachments"] ?? [];
        await plugin.gc!(config, attachments(list));
      }
      return "";
    }
  }
  throw new CniError(CniErrorCode.INVALID_ENVIRONMENT_VARIABLES, `unknown CNI_COMMAND: ${command}`);
}

/** Runs one CNI invocation against a plugin: the stdout to print and the exit status. */
export async function runCniCommand(plugin: CniPlugin, invocation: CniInvocation): Promise<CniOutcome> {
  try {
    return { stdout: await dispatch(plugin, invocation), exitCode: 0 };
  } catch (error) {
    const cniError =
      error instanceof CniError
        ? error
        : new CniError(CniErrorCode.INTERNAL, error instanceof Error ? error.message : String(error));
    // The reference plugins print errors indented by four spaces, without a trailing newline.
    return { stdout: JSON.stringify(cniError.toJSON(), null, 4), exitCode: 1 };
  }
}
