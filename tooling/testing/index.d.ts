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
