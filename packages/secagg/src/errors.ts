import type { ErrorCode } from '@shoal/protocol';

/**
 * Why a SecAgg call was refused:
 * - `UNEXPECTED_STAGE`: the call or message does not belong to the current stage (a caller bug, or a
 *   peer message that arrived too early).
 * - `BAD_SHARE`: a share box or a revealed share failed to decrypt, named the wrong sender,
 *   recipient, round or session, or did not parse.
 * - `REFUSED`: an honest client will not do what the coordinator asked (too few survivors, overlapping
 *   survivor and dropped sets, an unknown or duplicated key…); the client takes no further part.
 * - `INVALID_INPUT`: an argument or peer message is malformed (unknown index, duplicate, wrong length).
 */
export type SecAggErrorCode = 'UNEXPECTED_STAGE' | 'BAD_SHARE' | 'REFUSED' | 'INVALID_INPUT';

/** The protocol error code (docs/errors.md) a connection edge closes with for each SecAgg error. */
const PROTOCOL_CODES: Readonly<Record<SecAggErrorCode, ErrorCode>> = {
  UNEXPECTED_STAGE: 'UNEXPECTED_MESSAGE',
  BAD_SHARE: 'SECAGG_VIOLATION',
  REFUSED: 'SECAGG_REFUSED',
  INVALID_INPUT: 'SECAGG_VIOLATION',
};

/**
 * A SecAgg call that cannot go on. Untrusted peer input never throws anything else out of this
 * package, so the coordinator closes that one connection with `closeCodeOf(error.errorCode)` and
 * `error.message` (short, names the index and field) and the round carries on.
 */
export class SecAggError extends Error {
  readonly code: SecAggErrorCode;
  /** The code of the protocol's error table to close the connection with. */
  readonly errorCode: ErrorCode;

  constructor(code: SecAggErrorCode, message: string, errorCode: ErrorCode = PROTOCOL_CODES[code]) {
    super(message);
    this.name = 'SecAggError';
    this.code = code;
    this.errorCode = errorCode;
  }
}

/**
 * The round cannot finish (fewer than `threshold` clients left, or a secret with fewer than
 * `threshold` valid shares). Not any one client's fault: the coordinator records `reason`, leaves
 * the model unchanged and starts the next round.
 */
export class SecAggAbort extends Error {
  constructor(readonly reason: string) {
    super(`secure aggregation aborted: ${reason}`);
    this.name = 'SecAggAbort';
  }
}
