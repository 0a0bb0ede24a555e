/**
 * A chained plugin's `prevResult`, read as libcni reads it: first as a JSON object in the plugin's
 * own config struct, then as a result of the current version (version.ParsePrevResult). A plugin
 * that read a malformed one as it came ("x", `{"ips": "abc"}`) published nothing and exited 0.
 */
import { goUnmarshal, jsonKind, type GoType } from "./go-json.js";
import type { CniResult } from "./types.js";

const string: GoType = { kind: "string" };
const strings: GoType = { kind: "slice", goType: "[]string", of: string };

/** types.IPNet: "address/length" only. */
const IP_NET: GoType = {
  kind: "text",
  goType: "types.IPNet",
  parse(text: string) {
    if (!/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(text)) throw new Error(`invalid CIDR address: ${text}`);
    return text;
  },
};

const RESULT: GoType = {
  kind: "struct",
  name: "Result",
  goType: "types100.Result",
  fields: {
    cniVersion: string,
    interfaces: {
      kind: "slice",
      goType: "[]*types100.Interface",
      of: {
        kind: "struct",
        name: "Interface",
        goType: "types100.Interface",
        fields: { name: string, mac: string, mtu: { kind: "int" }, sandbox: string },
      },
    },
    ips: {
      kind: "slice",
      goType: "[]*types100.IPConfig",
      of: {
        kind: "struct",
        name: "IPConfig",
        goType: "types100.IPConfig",
        fields: { interface: { kind: "int" }, address: IP_NET, gateway: string },
      },
    },
    routes: {
      kind: "slice",
      goType: "[]*types.Route",
      of: { kind: "struct", name: "Route", goType: "types.Route", fields: { dst: IP_NET, gw: string } },
    },
    dns: {
      kind: "struct",
      name: "DNS",
      goType: "types.DNS",
      fields: { nameservers: strings, domain: string, search: strings, options: strings },
    },
  },
};

/**
 * `value` as a previous result, or an Error in Go's words: `structName` is the plugin's config
 * struct ("NetConf", "PortMapConf"), which the first decoding names. Undefined and null are no result.
 */
export function decodePrevResult(value: unknown, structName: string): CniResult | undefined {
  if (value === undefined || value === null) return undefined;
  if (jsonKind(value) !== "object")
    throw new Error(
      `json: cannot unmarshal ${jsonKind(value)} into Go struct field ${structName}.prevResult of type map[string]interface {}`,
    );
  try {
    goUnmarshal(value, RESULT);
  } catch (error) {
    throw new Error(`could not parse prevResult: ${(error as Error).message}`);
  }
  return value as CniResult;
}
