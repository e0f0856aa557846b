/**
 * Every error Shoal raises or sends has a stable string code from this table. Codes that end a
 * WebSocket connection also have a close code in 4000–4999; `docs/errors.md` lists them all.
 */
export const ERROR_CODES = {
  // Connection-closing protocol violations (sent as WebSocket close codes).
  PROTOCOL_ERROR: { closeCode: 4000, summary: 'the peer broke the protocol in a way no other code names' },
  MALFORMED_MESSAGE: { closeCode: 4001, summary: 'a frame was not a msgpack-encoded message object' },
  INVALID_MESSAGE: { closeCode: 4002, summary: 'a message failed its schema (wrong field type, missing field, bad length)' },
  UNEXPECTED_MESSAGE: { closeCode: 4003, summary: 'a valid message arrived in a state where it is not allowed' },
  ROUND_MISMATCH: { closeCode: 4004, summary: 'a message named a round the sender is not taking part in' },
  LENGTH_MISMATCH: { closeCode: 4005, summary: 'a weight vector does not have the model\'s number of parameters' },
  NON_FINITE: { closeCode: 4006, summary: 'a number or vector held NaN or ±Infinity' },
  UNSUPPORTED_VERSION: { closeCode: 4007, summary: 'the client speaks a protocol version the coordinator does not' },
  HEARTBEAT_TIMEOUT: { closeCode: 4008, summary: 'the peer answered no heartbeat for two intervals' },
  MESSAGE_TOO_LARGE: { closeCode: 4009, summary: 'a frame exceeded the payload limit derived from the model size' },
  DUPLICATE_MESSAGE: { closeCode: 4010, summary: 'a message was sent twice for the same round (a replay)' },
  BINARY_REQUIRED: { closeCode: 4011, summary: 'a text frame arrived; Shoal speaks binary frames only' },
  COORDINATOR_SHUTDOWN: { closeCode: 4012, summary: 'the coordinator is stopping' },
  TRAINING_COMPLETE: { closeCode: 4013, summary: 'the coordinator finished training; no more rounds will run' },
  SECAGG_VIOLATION: { closeCode: 4014, summary: 'a secure-aggregation message broke the round\'s rules (unknown index, wrong stage, bad share, wrong recipients)' },
  SECAGG_REFUSED: { closeCode: 4015, summary: 'a client refused a secure-aggregation request an honest client must not answer' },
  HELLO_TIMEOUT: { closeCode: 4016, summary: 'the client sent no hello before the coordinator\'s hello deadline' },
  FORGOTTEN: { closeCode: 4017, summary: 'the client asked to be forgotten: its registry entry and resume token are deleted, and its connection closes' },
  // Errors raised locally (never a close code).
  UNAUTHORIZED: { closeCode: undefined, summary: 'the token was missing or wrong (HTTP 401 on the upgrade)' },
  BAD_REQUEST: { closeCode: undefined, summary: 'the upgrade request could not be parsed (HTTP 400 on the upgrade)' },
  RATE_LIMITED: { closeCode: undefined, summary: 'too many bad-token upgrades from one address (HTTP 429 on the upgrade)' },
  OVERLOADED: { closeCode: undefined, summary: 'the coordinator is at its connection limit (HTTP 503 on the upgrade)' },
  CONNECTION_FAILED: { closeCode: undefined, summary: 'the client could not reach the coordinator' },
  MODEL_MISMATCH: { closeCode: undefined, summary: 'the app\'s model does not match the coordinator\'s weight manifest' },
  INVALID_CONFIG: { closeCode: undefined, summary: 'a configuration key is unknown or has a bad value' },
  INVALID_DATA: { closeCode: undefined, summary: 'a dataset file or client data set is malformed' },
  CHECKPOINT_CORRUPT: { closeCode: undefined, summary: 'a checkpoint file could not be read back' },
  ABORTED: { closeCode: undefined, summary: 'the operation was cancelled through its AbortSignal' },
  NOT_SUPPORTED: { closeCode: undefined, summary: 'the coordinator does not offer what was asked (its welcome did not announce it)' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The close code sent for a connection-closing error. */
export function closeCodeOf(code: ErrorCode): number {
  const closeCode = ERROR_CODES[code].closeCode;
  if (closeCode === undefined) throw new Error(`error code ${code} does not close a connection`);
  return closeCode;
}

/** The error code behind a WebSocket close code, if it is one of Shoal's. */
export function errorCodeOfClose(closeCode: number): ErrorCode | undefined {
  for (const [code, entry] of Object.entries(ERROR_CODES)) {
    if (entry.closeCode === closeCode) return code as ErrorCode;
  }
  return undefined;
}

/** The one error class of Shoal: match on `.code`, never on the message text. */
export class ShoalError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ShoalError';
    this.code = code;
  }
}

/** WebSocket close frames carry at most 123 bytes of reason; `ws` throws on longer ones. */
export const MAX_CLOSE_REASON_BYTES = 123;

/** `reason` cut to fit a close frame, at a character boundary. */
export function closeReason(reason: string): string {
  const bytes = new TextEncoder().encode(reason);
  if (bytes.length <= MAX_CLOSE_REASON_BYTES) return reason;
  // Decoding a cut multi-byte character yields a trailing U+FFFD: drop it.
  return new TextDecoder().decode(bytes.subarray(0, MAX_CLOSE_REASON_BYTES)).replace(/\uFFFD$/, '');
}
