/** The errors a user's input can cause, and how each is reported: text on stderr, JSON on request. */
import { ScenarioError, TargetError } from "@podnet/cluster";
import { PolicyLimitError } from "@podnet/policy";
import { UnknownProviderError } from "@podnet/providers";

/** A wrong flag, file or name on the command line. */
export class UsageError extends Error {}

export interface ErrorReport {
  code: "EUSAGE" | "ESCENARIO" | "ETARGET" | "EPROVIDER" | "EPOLICY";
  message: string;
  issues?: ScenarioError["issues"];
  file?: string;
}

/** The report for an input error; undefined for anything else (a bug, which keeps its stack). */
export function reportOf(error: unknown): ErrorReport | undefined {
  if (error instanceof ScenarioError)
    return { code: "ESCENARIO", message: error.message, file: error.file, issues: error.issues };
  if (error instanceof UsageError) return { code: "EUSAGE", message: error.message };
  if (error instanceof TargetError) return { code: "ETARGET", message: error.message };
  if (error instanceof UnknownProviderError) return { code: "EPROVIDER", message: error.message };
  if (error instanceof PolicyLimitError) return { code: "EPOLICY", message: error.message };
  return undefined;
}
