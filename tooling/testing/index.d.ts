export declare function findExecutable(name: string): string | undefined;
export interface SystemRequirement {
  /** Why the tests must be skipped, or undefined when everything is present. */
  skip: string | undefined;
  paths: Record<string, string | undefined>;
}
export declare function requireSystem(options?: { tools?: string[]; root?: boolean }): SystemRequirement;
