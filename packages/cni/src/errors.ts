import { PodnetError } from "@podnet/core";

/** Well-known CNI error codes (spec §"Error"); 999 is libcni's ErrInternal, used for plain plugin errors. */
export const CniErrorCode = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENVIRONMENT_VARIABLES: 4,
  IO_FAILURE: 5,
  DECODING_FAILURE: 6,
  INVALID_NETWORK_CONFIG: 7,
  INVALID_NETNS: 8,
  TRY_AGAIN_LATER: 11,
  PLUGIN_NOT_AVAILABLE: 50,
  PLUGIN_NOT_AVAILABLE_LIMITED: 51,
  INTERNAL: 999,
} as const;

/** A CNI error result: printed as {"code","msg","details"?} on stdout, exit status 1. */
export class CniError extends PodnetError {
  constructor(
    readonly cniCode: number,
    readonly msg: string,
    readonly details = "",
  ) {
    super(`CNI${cniCode}`, details ? `${msg}: ${details}` : msg);
  }

  toJSON(): { code: number; msg: string; details?: string } {
    return { code: this.cniCode, msg: this.msg, ...(this.details ? { details: this.details } : {}) };
  }
}
