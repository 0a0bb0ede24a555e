export declare function findExecutable(name: string): string | undefined;
export interface SystemRequirement {
  /** Why the tests must be skipped, or undefined when everything is present. */
  skip: string | undefined;
  paths: Record<string, string | undefined>;
}
export declare function requireSystem(options?: { tools?: string[]; root?: boolean }): SystemRequirement;
/** A CNI plugin run from inside a namespace as a runtime runs it: its exit status and answer. */
export declare function runCniPlugin(
  ns: string,
  argv: string[],
  vars: Record<string, string | undefined>,
  config: unknown,
  timeoutMs?: number,
): { code: number | null; out: unknown };
/**
 * What tshark reads of a pcap: for each frame, the values of `fields` (every occurrence joined with
 * commas); UDP port 8472 decoded as VXLAN; `options` are more tshark arguments.
 */
export declare function tsharkFields(
  tshark: string,
  pcap: Uint8Array,
  fields: string[],
  options?: string[],
): string[][];
