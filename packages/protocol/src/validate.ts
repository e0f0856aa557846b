import { decodeFrame } from './codec.js';
import { Rejection, array, boolean, bytes, describeError, distinct, fields, finite, inRange, integer, isPlainObject, object, oneOf, optional, positive, quote, reject, string, vector, version, words, type RawMessage } from './field-checks.js';
import type { ErrorCode } from './errors.js';
import { MAX_PACE_MS, MAX_ROUNDS_PER_CLIENT, type ClientMessage, type CoordinatorMessage, type DeclineMessage, type EvaluateMessage, type EvaluationMessage, type HelloMessage, type RoundResultMessage } from './messages.js';
import type { ForgottenMessage, PaceMessage, RoundPrivacy, SubjectDataMessage } from './messages.js';
import type { TrainConfig, TrainMessage, TrainMetrics, UpdateMessage, WelcomeMessage } from './messages.js';
import type { AdvertiseMessage, ConfirmMessage, InboxMessage, KeysMessage, MaskedMessage, NeighbourKeys, RevealMessage } from './messages.js';
import type { SecAggRoundConfig, SharesMessage, SurvivorsMessage, UnmaskMessage } from './messages.js';
import type { LayerSpec, ModelDescriptor, ModelTopology } from './models.js';
import type { WeightSpec } from './weights.js';

/**
 * Validation of every inbound frame. Untrusted bytes never throw here: a decoder returns either a
 * fresh, fully typed message or the error code the connection edge closes with (the split
 * tweetnacl makes between caller bugs and bad peer input). Limits are documented in
 * `docs/protocol.md`; change both together.
 */
export type Decoded<T> = { ok: true; message: T } | { ok: false; code: ErrorCode; reason: string };

/** Limits that depend on the model and the round: every weight vector must have exactly numParams values. */
export interface ClientMessageLimits {
  readonly numParams: number;
  /**
   * The largest SecAgg neighbourhood (degree, counting the client; the cohort size for full
   * SecAgg) of the rounds this connection may take part in: it raises the frame size limit so a
   * `shares` or `reveal` frame with one entry per neighbour fits. Default 0 (no SecAgg).
   */
  readonly secaggDegree?: number;
  /**
   * Values a `masked` input carries beyond the model's parameters (before its weight word): 1 when
   * differentially private rounds with adaptive clipping sum the clients' unclipped bits securely.
   * Default 0.
   */
  readonly extraMaskedValues?: number;
}

// Limits in UTF-16 code units (strings) or entries (arrays); docs/protocol.md lists them all.
const MAX_ID_LENGTH = 256; // ids, tokens, model versions, weight names
const MAX_REASON_LENGTH = 1024; // decline.reason, result.reason
const MAX_CAPABILITIES = 32;
const MAX_CAPABILITY_LENGTH = 64;
const MAX_LAYERS = 256;
const MAX_MANIFEST_ENTRIES = 4096;
const MAX_SHAPE_RANK = 8;

/**
 * Secure-aggregation limits (docs/protocol.md, "Secure aggregation"). `@shoal/secagg` produces
 * keys of exactly 32 bytes, share boxes of 139 bytes (24-byte nonce, 16-byte MAC, 99 bytes of
 * plaintext: ids, round, session digest and two 33-byte field elements) and shares of 33 bytes;
 * the maxima below leave room for a format change without a protocol change.
 */
export const SECAGG_LIMITS = {
  /** X25519 and Ed25519 public keys. */
  keyBytes: 32,
  /** Ed25519 signatures. */
  signatureBytes: 64,
  /** Largest share box (nonce ‖ secretbox) accepted. */
  maxBoxBytes: 192,
  /** Largest serialised Shamir share accepted. */
  maxShareBytes: 64,
  /** Client indices (Shamir x-coordinates) are integers in [1, maxIndex]. */
  maxIndex: 100_000,
  /** Entries in any SecAgg list (neighbours, ciphertexts, survivors, signatures, shares). */
  maxEntries: 100_000,
} as const;
/**
 * Frame bytes a client may use per SecAgg neighbour: one `shares` entry `{ to, box }` of a
 * 192-byte box encodes to at most 209 bytes, one `reveal` entry `{ of, share }` to at most 83.
 */
const SECAGG_PEER_ALLOWANCE_BYTES = 256;
/**
 * Bytes a client frame may use beyond its weight vector. The largest valid `hello` (32
 * capabilities of 64 code units, two 256-unit strings, at most 3 UTF-8 bytes per unit) encodes
 * to about 8 KiB; an `update` envelope to under 1 KiB. 16 KiB leaves twice that margin.
 */
const CLIENT_ENVELOPE_ALLOWANCE_BYTES = 16 * 1024;

/**
 * The largest frame a client may send for a model of numParams parameters: 4·numParams + 16 KiB,
 * plus 256 bytes per SecAgg neighbour when the client may take part in SecAgg rounds of degree
 * `secaggDegree` (default 0). A `masked` frame (4·(numParams + 1) bytes of words) fits the first
 * part; `shares` and `reveal` frames, which grow with the degree, fit the second.
 */
export function maxClientPayloadBytes(numParams: number, secaggDegree = 0): number {
  return 4 * numParams + CLIENT_ENVELOPE_ALLOWANCE_BYTES + SECAGG_PEER_ALLOWANCE_BYTES * secaggDegree;
}

/**
 * Untrusted bytes from a client -> a validated ClientMessage, or the error code to close with. Never throws.
 * A frame above `maxClientPayloadBytes(numParams)` is MESSAGE_TOO_LARGE before any decoding.
 */
export function decodeClientMessage(bytes: Uint8Array, limits: ClientMessageLimits): Decoded<ClientMessage> {
  const maxBytes = maxClientPayloadBytes(limits.numParams, limits.secaggDegree);
  if (bytes.byteLength > maxBytes) {
    return { ok: false, code: 'MESSAGE_TOO_LARGE', reason: `frame of ${bytes.byteLength} bytes exceeds the limit of ${maxBytes}` };
  }
  return decodeWith(bytes, (type, raw) => {
    switch (type) {
      case 'hello': return hello(raw);
      case 'update': return update(raw, limits.numParams);
      case 'evaluation': return evaluation(raw);
      case 'decline': return decline(raw);
      case 'advertise': return advertise(raw);
      case 'shares': return shares(raw);
      case 'masked': return masked(raw, limits.numParams + (limits.extraMaskedValues ?? 0));
      case 'confirm': return confirm(raw);
      case 'reveal': return reveal(raw);
      case 'subject-access': return bare('subject-access', raw);
      case 'forget': return bare('forget', raw);
      default: return undefined;
    }
  });
}

/** Bytes from the coordinator -> a validated CoordinatorMessage. `numParams` (once known from welcome) checks `train.weights` length. Never throws. */
export function decodeCoordinatorMessage(bytes: Uint8Array, limits?: Partial<ClientMessageLimits>): Decoded<CoordinatorMessage> {
  return decodeWith(bytes, (type, raw) => {
    switch (type) {
      case 'welcome': return welcome(raw);
      case 'train': return train(raw, limits?.numParams);
      case 'evaluate': return evaluate(raw, limits?.numParams);
      case 'result': return result(raw);
      case 'keys': return keys(raw);
      case 'inbox': return inbox(raw);
      case 'survivors': return survivors(raw);
      case 'unmask': return unmask(raw);
      case 'subject-data': return subjectData(raw);
      case 'forgotten': return forgotten(raw);
      case 'pace': return pace(raw);
      default: return undefined;
    }
  });
}

// ---- the decoding frame shared by both directions ----

function decodeWith<T>(bytes: Uint8Array, validate: (type: string, raw: RawMessage) => T | undefined): Decoded<T> {
  let value: unknown;
  try {
    value = decodeFrame(bytes);
  } catch (error) {
    return { ok: false, code: 'MALFORMED_MESSAGE', reason: `frame is not msgpack: ${describeError(error)}` };
  }
  if (!isPlainObject(value) || typeof value.type !== 'string') {
    return { ok: false, code: 'MALFORMED_MESSAGE', reason: 'frame is not a message object with a string type' };
  }
  try {
    const message = validate(value.type, value);
    if (message === undefined) {
      return { ok: false, code: 'INVALID_MESSAGE', reason: `unknown message type ${quote(value.type)}` };
    }
    return { ok: true, message };
  } catch (error) {
    if (error instanceof Rejection) return { ok: false, code: error.code, reason: error.reason };
    // A bug in a checker must not crash the coordinator; the prefix lets tests catch such bugs.
    return { ok: false, code: 'INVALID_MESSAGE', reason: `internal validation error: ${describeError(error)}` };
  }
}

// ---- one function per message type ----

function hello(raw: RawMessage): HelloMessage {
  // The version goes first: a newer client must learn "unsupported version", not "unknown field".
  const protocolVersion = version('hello', raw.protocolVersion);
  fields('hello', raw, ['type', 'protocolVersion', 'capabilities'], ['numExamples', 'resumeToken', 'modelVersion', 'identityKey']);
  return {
    type: 'hello',
    protocolVersion,
    ...optional(raw, 'numExamples', (count) => integer('hello.numExamples', count, 0)),
    capabilities: array('hello.capabilities', raw.capabilities, MAX_CAPABILITIES, (entry, path) => string(path, entry, MAX_CAPABILITY_LENGTH)),
    ...optional(raw, 'resumeToken', (value) => string('hello.resumeToken', value, MAX_ID_LENGTH)),
    ...optional(raw, 'modelVersion', (value) => string('hello.modelVersion', value, MAX_ID_LENGTH)),
    ...optional(raw, 'identityKey', (value) => bytes('hello.identityKey', value, SECAGG_LIMITS.keyBytes, SECAGG_LIMITS.keyBytes)),
  };
}

function update(raw: RawMessage, numParams: number): UpdateMessage {
  fields('update', raw, ['type', 'round', 'modelVersion', 'numExamples', 'delta', 'metrics'], ['unclipped', 'initialLoss']);
  return {
    type: 'update',
    round: integer('update.round', raw.round, 0),
    modelVersion: string('update.modelVersion', raw.modelVersion, MAX_ID_LENGTH),
    numExamples: integer('update.numExamples', raw.numExamples, 0),
    delta: vector('update.delta', raw.delta, numParams),
    metrics: metrics('update.metrics', raw.metrics),
    ...optional(raw, 'unclipped', (value) => boolean('update.unclipped', value)),
    ...optional(raw, 'initialLoss', (value) => inRange('update.initialLoss', value, 0, Infinity)),
  };
}

function evaluation(raw: RawMessage): EvaluationMessage {
  fields('evaluation', raw, ['type', 'round', 'modelVersion', 'loss', 'accuracy', 'numExamples'], []);
  return {
    type: 'evaluation',
    round: integer('evaluation.round', raw.round, 0),
    modelVersion: string('evaluation.modelVersion', raw.modelVersion, MAX_ID_LENGTH),
    loss: inRange('evaluation.loss', raw.loss, 0, Infinity),
    accuracy: inRange('evaluation.accuracy', raw.accuracy, 0, 1),
    numExamples: integer('evaluation.numExamples', raw.numExamples, 0),
  };
}

function decline(raw: RawMessage): DeclineMessage {
  fields('decline', raw, ['type', 'round', 'reason'], []);
  return {
    type: 'decline',
    round: integer('decline.round', raw.round, 0),
    reason: string('decline.reason', raw.reason, MAX_REASON_LENGTH, { allowEmpty: true }),
  };
}

function welcome(raw: RawMessage): WelcomeMessage {
  const protocolVersion = version('welcome', raw.protocolVersion);
  fields('welcome', raw, ['type', 'protocolVersion', 'clientId', 'resumeToken', 'model', 'heartbeatIntervalMs'], ['subjectRequests']);
  return {
    type: 'welcome',
    protocolVersion,
    clientId: string('welcome.clientId', raw.clientId, MAX_ID_LENGTH),
    resumeToken: string('welcome.resumeToken', raw.resumeToken, MAX_ID_LENGTH),
    model: model('welcome.model', raw.model),
    heartbeatIntervalMs: positive('welcome.heartbeatIntervalMs', raw.heartbeatIntervalMs),
    ...optional(raw, 'subjectRequests', (value) => boolean('welcome.subjectRequests', value)),
  };
}

function train(raw: RawMessage, numParams: number | undefined): TrainMessage {
  fields('train', raw, ['type', 'round', 'modelVersion', 'config', 'deadlineMs'], ['weights', 'secagg', 'privacy']);
  return {
    type: 'train',
    round: integer('train.round', raw.round, 0),
    modelVersion: string('train.modelVersion', raw.modelVersion, MAX_ID_LENGTH),
    ...optional(raw, 'weights', (value) => vector('train.weights', value, numParams)),
    config: trainConfig('train.config', raw.config),
    deadlineMs: positive('train.deadlineMs', raw.deadlineMs),
    ...optional(raw, 'secagg', (value) => secaggConfig('train.secagg', value)),
    ...optional(raw, 'privacy', (value) => roundPrivacy('train.privacy', value)),
  };
}

/** The round's stated privacy: with DP on, z and ε spent are required; ε values are finite and ≥ 0. */
/** ε spent: a number ≥ 0, Infinity included (a noise multiplier of 0 spends an unbounded ε), never NaN. */
function epsilonSpent(path: string, value: unknown): number {
  if (typeof value === 'number' && Number.isNaN(value)) reject('NON_FINITE', `${path} is NaN`);
  if (typeof value !== 'number' || !(value >= 0)) reject('INVALID_MESSAGE', `${path} must be a number ≥ 0 (Infinity when unbounded); got ${String(value)}`);
  return value;
}

function roundPrivacy(path: string, value: unknown): RoundPrivacy {
  const raw = object(path, value, ['dpMode'], ['noiseMultiplier', 'epsilonSpent', 'epsilonBudget', 'delta']);
  const dpMode = oneOf(`${path}.dpMode`, raw.dpMode, ['off', 'central', 'distributed'] as const);
  if (dpMode !== 'off' && (raw.noiseMultiplier === undefined || raw.epsilonSpent === undefined)) {
    reject('INVALID_MESSAGE', `${path} has dpMode ${dpMode} but lacks noiseMultiplier or epsilonSpent`);
  }
  return {
    dpMode,
    ...optional(raw, 'noiseMultiplier', (v) => inRange(`${path}.noiseMultiplier`, v, 0, Infinity)),
    ...optional(raw, 'epsilonSpent', (v) => epsilonSpent(`${path}.epsilonSpent`, v)),
    ...optional(raw, 'epsilonBudget', (v) => positive(`${path}.epsilonBudget`, v)),
    ...optional(raw, 'delta', (v) => inRange(`${path}.delta`, v, 0, 1)),
  };
}

/** A message with nothing but its type. */
function bare<T extends 'subject-access' | 'forget'>(type: T, raw: RawMessage): { readonly type: T } {
  fields(type, raw, ['type'], []);
  return { type };
}

function roundList(path: string, value: unknown): number[] {
  return array(path, value, MAX_ROUNDS_PER_CLIENT, (entry, entryPath) => integer(entryPath, entry, 1));
}

function subjectData(raw: RawMessage): SubjectDataMessage {
  fields('subject-data', raw, ['type', 'clientId', 'resumeTokenHeld', 'selectedRounds', 'contributedRounds'], []);
  return {
    type: 'subject-data',
    clientId: string('subject-data.clientId', raw.clientId, MAX_ID_LENGTH),
    resumeTokenHeld: boolean('subject-data.resumeTokenHeld', raw.resumeTokenHeld),
    selectedRounds: roundList('subject-data.selectedRounds', raw.selectedRounds),
    contributedRounds: roundList('subject-data.contributedRounds', raw.contributedRounds),
  };
}

function forgotten(raw: RawMessage): ForgottenMessage {
  fields('forgotten', raw, ['type', 'clientId'], []);
  return { type: 'forgotten', clientId: string('forgotten.clientId', raw.clientId, MAX_ID_LENGTH) };
}

/** A wait in whole milliseconds: 0 ≤ min ≤ max ≤ MAX_PACE_MS (a day). */
function pace(raw: RawMessage): PaceMessage {
  fields('pace', raw, ['type', 'round', 'retryInMs'], []);
  const window = object('pace.retryInMs', raw.retryInMs, ['min', 'max'], []);
  const min = integer('pace.retryInMs.min', window.min, 0);
  const max = integer('pace.retryInMs.max', window.max, 0);
  if (max > MAX_PACE_MS) reject('INVALID_MESSAGE', `pace.retryInMs.max is ${max}; it must be ≤ ${MAX_PACE_MS} (a day)`);
  if (min > max) reject('INVALID_MESSAGE', `pace.retryInMs.min ${min} exceeds pace.retryInMs.max ${max}`);
  return { type: 'pace', round: integer('pace.round', raw.round, 0), retryInMs: { min, max } };
}

function evaluate(raw: RawMessage, numParams: number | undefined): EvaluateMessage {
  fields('evaluate', raw, ['type', 'round', 'modelVersion', 'deadlineMs'], ['weights']);
  return {
    type: 'evaluate',
    round: integer('evaluate.round', raw.round, 0),
    modelVersion: string('evaluate.modelVersion', raw.modelVersion, MAX_ID_LENGTH),
    ...optional(raw, 'weights', (value) => vector('evaluate.weights', value, numParams)),
    deadlineMs: positive('evaluate.deadlineMs', raw.deadlineMs),
  };
}

function result(raw: RawMessage): RoundResultMessage {
  fields('result', raw, ['type', 'round', 'status', 'modelVersion'], ['reason']);
  return {
    type: 'result',
    round: integer('result.round', raw.round, 0),
    status: oneOf('result.status', raw.status, ['committed', 'aborted'] as const),
    modelVersion: string('result.modelVersion', raw.modelVersion, MAX_ID_LENGTH),
    ...optional(raw, 'reason', (value) => string('result.reason', value, MAX_REASON_LENGTH, { allowEmpty: true })),
  };
}

// ---- secure aggregation (docs/protocol.md, "Secure aggregation") ----

/** A SecAgg client index: an integer in [1, SECAGG_LIMITS.maxIndex]. */
function index(path: string, value: unknown): number {
  const number = integer(path, value, 1);
  if (number > SECAGG_LIMITS.maxIndex) reject('INVALID_MESSAGE', `${path} is ${number}; it must be ≤ ${SECAGG_LIMITS.maxIndex}`);
  return number;
}

function advertise(raw: RawMessage): AdvertiseMessage {
  fields('advertise', raw, ['type', 'round', 'encryptionKey', 'maskKey', 'signingKey', 'signature'], []);
  return { type: 'advertise', round: integer('advertise.round', raw.round, 0), ...advertisedKeys('advertise', raw) };
}

function advertisedKeys(path: string, raw: RawMessage): Omit<NeighbourKeys, 'index'> {
  return {
    encryptionKey: bytes(`${path}.encryptionKey`, raw.encryptionKey, SECAGG_LIMITS.keyBytes, SECAGG_LIMITS.keyBytes),
    maskKey: bytes(`${path}.maskKey`, raw.maskKey, SECAGG_LIMITS.keyBytes, SECAGG_LIMITS.keyBytes),
    signingKey: bytes(`${path}.signingKey`, raw.signingKey, SECAGG_LIMITS.keyBytes, SECAGG_LIMITS.keyBytes),
    signature: bytes(`${path}.signature`, raw.signature, SECAGG_LIMITS.signatureBytes, SECAGG_LIMITS.signatureBytes),
  };
}

function shares(raw: RawMessage): SharesMessage {
  fields('shares', raw, ['type', 'round', 'ciphertexts'], []);
  const ciphertexts = array('shares.ciphertexts', raw.ciphertexts, SECAGG_LIMITS.maxEntries, (entry, path) => {
    const item = object(path, entry, ['to', 'box'], []);
    return { to: index(`${path}.to`, item.to), box: bytes(`${path}.box`, item.box, 1, SECAGG_LIMITS.maxBoxBytes) };
  });
  distinct('shares.ciphertexts', ciphertexts.map((entry) => entry.to), 'to');
  return { type: 'shares', round: integer('shares.round', raw.round, 0), ciphertexts };
}

function masked(raw: RawMessage, numParams: number): MaskedMessage {
  fields('masked', raw, ['type', 'round', 'modelVersion', 'masked'], ['metrics']);
  return {
    type: 'masked',
    round: integer('masked.round', raw.round, 0),
    modelVersion: string('masked.modelVersion', raw.modelVersion, MAX_ID_LENGTH),
    masked: words('masked.masked', raw.masked, numParams + 1),
    ...optional(raw, 'metrics', (value) => metrics('masked.metrics', value)),
  };
}

function confirm(raw: RawMessage): ConfirmMessage {
  fields('confirm', raw, ['type', 'round', 'signature'], []);
  return {
    type: 'confirm',
    round: integer('confirm.round', raw.round, 0),
    signature: bytes('confirm.signature', raw.signature, SECAGG_LIMITS.signatureBytes, SECAGG_LIMITS.signatureBytes),
  };
}

function reveal(raw: RawMessage): RevealMessage {
  fields('reveal', raw, ['type', 'round', 'selfMaskShares', 'maskKeyShares'], []);
  const shareList = (path: string, value: unknown) => {
    const list = array(path, value, SECAGG_LIMITS.maxEntries, (entry, entryPath) => {
      const item = object(entryPath, entry, ['of', 'share'], []);
      return { of: index(`${entryPath}.of`, item.of), share: bytes(`${entryPath}.share`, item.share, 1, SECAGG_LIMITS.maxShareBytes) };
    });
    distinct(path, list.map((entry) => entry.of), 'of');
    return list;
  };
  return {
    type: 'reveal',
    round: integer('reveal.round', raw.round, 0),
    selfMaskShares: shareList('reveal.selfMaskShares', raw.selfMaskShares),
    maskKeyShares: shareList('reveal.maskKeyShares', raw.maskKeyShares),
  };
}

function keys(raw: RawMessage): KeysMessage {
  fields('keys', raw, ['type', 'round', 'neighbours'], []);
  const neighbours = array('keys.neighbours', raw.neighbours, SECAGG_LIMITS.maxEntries, neighbourKeys);
  distinct('keys.neighbours', neighbours.map((entry) => entry.index), 'index');
  return { type: 'keys', round: integer('keys.round', raw.round, 0), neighbours };
}

function neighbourKeys(value: unknown, path: string): NeighbourKeys {
  const raw = object(path, value, ['index', 'encryptionKey', 'maskKey', 'signingKey', 'signature'], []);
  return { index: index(`${path}.index`, raw.index), ...advertisedKeys(path, raw) };
}

function inbox(raw: RawMessage): InboxMessage {
  fields('inbox', raw, ['type', 'round', 'ciphertexts'], []);
  const ciphertexts = array('inbox.ciphertexts', raw.ciphertexts, SECAGG_LIMITS.maxEntries, (entry, path) => {
    const item = object(path, entry, ['from', 'box'], []);
    return { from: index(`${path}.from`, item.from), box: bytes(`${path}.box`, item.box, 1, SECAGG_LIMITS.maxBoxBytes) };
  });
  distinct('inbox.ciphertexts', ciphertexts.map((entry) => entry.from), 'from');
  return { type: 'inbox', round: integer('inbox.round', raw.round, 0), ciphertexts };
}

function survivors(raw: RawMessage): SurvivorsMessage {
  fields('survivors', raw, ['type', 'round', 'survivors'], []);
  const list = array('survivors.survivors', raw.survivors, SECAGG_LIMITS.maxEntries, (entry, entryPath) => index(entryPath, entry));
  distinct('survivors.survivors', list, undefined);
  return { type: 'survivors', round: integer('survivors.round', raw.round, 0), survivors: list };
}

function unmask(raw: RawMessage): UnmaskMessage {
  fields('unmask', raw, ['type', 'round', 'signatures'], []);
  const signatures = array('unmask.signatures', raw.signatures, SECAGG_LIMITS.maxEntries, (entry, path) => {
    const item = object(path, entry, ['index', 'signature'], []);
    return { index: index(`${path}.index`, item.index), signature: bytes(`${path}.signature`, item.signature, SECAGG_LIMITS.signatureBytes, SECAGG_LIMITS.signatureBytes) };
  });
  distinct('unmask.signatures', signatures.map((entry) => entry.index), 'index');
  return { type: 'unmask', round: integer('unmask.round', raw.round, 0), signatures };
}

function secaggConfig(path: string, value: unknown): SecAggRoundConfig {
  const raw = object(path, value, ['mode', 'index', 'threshold', 'degree', 'bound', 'scale', 'maxWeight', 'sessionId'], ['shareMetrics']);
  const config: SecAggRoundConfig = {
    mode: oneOf(`${path}.mode`, raw.mode, ['secagg', 'secagg+'] as const),
    index: index(`${path}.index`, raw.index),
    threshold: integer(`${path}.threshold`, raw.threshold, 2),
    degree: integer(`${path}.degree`, raw.degree, 2),
    bound: positive(`${path}.bound`, raw.bound),
    scale: positive(`${path}.scale`, raw.scale),
    maxWeight: integer(`${path}.maxWeight`, raw.maxWeight, 1),
    sessionId: string(`${path}.sessionId`, raw.sessionId, MAX_ID_LENGTH),
    ...optional(raw, 'shareMetrics', (flag) => boolean(`${path}.shareMetrics`, flag)),
  };
  if (config.degree > SECAGG_LIMITS.maxIndex) reject('INVALID_MESSAGE', `${path}.degree is ${config.degree}; the limit is ${SECAGG_LIMITS.maxIndex}`);
  if (config.threshold > config.degree) reject('INVALID_MESSAGE', `${path}.threshold ${config.threshold} exceeds degree ${config.degree}`);
  if (config.maxWeight >= 2 ** 32) reject('INVALID_MESSAGE', `${path}.maxWeight is ${config.maxWeight}; it must be < 2^32`);
  return config;
}

// ---- nested structures ----

function metrics(path: string, value: unknown): TrainMetrics {
  const raw = object(path, value, ['loss', 'accuracy', 'trainMs'], []);
  return {
    loss: finite(`${path}.loss`, raw.loss),
    accuracy: inRange(`${path}.accuracy`, raw.accuracy, 0, 1),
    trainMs: inRange(`${path}.trainMs`, raw.trainMs, 0, Infinity),
  };
}

function trainConfig(path: string, value: unknown): TrainConfig {
  const raw = object(path, value, ['epochs', 'batchSize', 'learningRate', 'optimizer', 'proximalMu'], ['clipNorm', 'noiseStd', 'bitNoiseStd', 'reportInitialLoss']);
  return {
    epochs: integer(`${path}.epochs`, raw.epochs, 1),
    batchSize: integer(`${path}.batchSize`, raw.batchSize, 1),
    learningRate: positive(`${path}.learningRate`, raw.learningRate),
    optimizer: oneOf(`${path}.optimizer`, raw.optimizer, ['sgd', 'adam'] as const),
    proximalMu: inRange(`${path}.proximalMu`, raw.proximalMu, 0, Infinity),
    ...optional(raw, 'clipNorm', (v) => positive(`${path}.clipNorm`, v)),
    ...optional(raw, 'noiseStd', (v) => inRange(`${path}.noiseStd`, v, 0, Infinity)),
    ...optional(raw, 'bitNoiseStd', (v) => inRange(`${path}.bitNoiseStd`, v, 0, Infinity)),
    ...optional(raw, 'reportInitialLoss', (v) => boolean(`${path}.reportInitialLoss`, v)),
  };
}

function model(path: string, value: unknown): ModelDescriptor {
  const raw = object(path, value, ['topology', 'manifest'], []);
  return {
    topology: topology(`${path}.topology`, raw.topology),
    manifest: array(`${path}.manifest`, raw.manifest, MAX_MANIFEST_ENTRIES, weightSpec),
  };
}

function topology(path: string, value: unknown): ModelTopology {
  if (!isPlainObject(value)) return reject('INVALID_MESSAGE', `${path} is not an object`);
  const format = oneOf(`${path}.format`, value.format, ['shoal-sequential', 'tfjs-layers'] as const);
  if (format === 'tfjs-layers') {
    const raw = object(path, value, ['format', 'modelTopology'], []);
    // Keras JSON is opaque to Shoal: tfjs parses it on the client. It only has to be an object.
    if (!isPlainObject(raw.modelTopology)) reject('INVALID_MESSAGE', `${path}.modelTopology is not an object`);
    return { format, modelTopology: raw.modelTopology };
  }
  const raw = object(path, value, ['format', 'inputShape', 'layers'], []);
  return {
    format,
    inputShape: shape(`${path}.inputShape`, raw.inputShape, 1),
    layers: array(`${path}.layers`, raw.layers, MAX_LAYERS, layerSpec),
  };
}

const ACTIVATIONS = ['relu', 'softmax', 'linear', 'sigmoid', 'tanh'] as const;

function layerSpec(value: unknown, path: string): LayerSpec {
  const type = isPlainObject(value) ? value.type : undefined;
  switch (type) {
    case 'dense': {
      const raw = object(path, value, ['type', 'units', 'activation'], []);
      return { type, units: integer(`${path}.units`, raw.units, 1), activation: oneOf(`${path}.activation`, raw.activation, ACTIVATIONS) };
    }
    case 'conv2d': {
      const raw = object(path, value, ['type', 'filters', 'kernelSize', 'activation', 'padding'], []);
      return {
        type,
        filters: integer(`${path}.filters`, raw.filters, 1),
        kernelSize: integer(`${path}.kernelSize`, raw.kernelSize, 1),
        activation: oneOf(`${path}.activation`, raw.activation, ACTIVATIONS),
        padding: oneOf(`${path}.padding`, raw.padding, ['same', 'valid'] as const),
      };
    }
    case 'maxPool2d': {
      const raw = object(path, value, ['type', 'poolSize'], []);
      return { type, poolSize: integer(`${path}.poolSize`, raw.poolSize, 1) };
    }
    case 'flatten':
      object(path, value, ['type'], []);
      return { type };
    case 'embedding': {
      const raw = object(path, value, ['type', 'inputDim', 'outputDim'], []);
      return { type, inputDim: integer(`${path}.inputDim`, raw.inputDim, 1), outputDim: integer(`${path}.outputDim`, raw.outputDim, 1) };
    }
    case 'gru': {
      const raw = object(path, value, ['type', 'units'], []);
      return { type, units: integer(`${path}.units`, raw.units, 1) };
    }
    default:
      object(path, value, ['type'], []); // names a non-object as such before blaming the type
      return reject('INVALID_MESSAGE', `${path}.type is not one of dense, conv2d, maxPool2d, flatten, embedding, gru`);
  }
}

function weightSpec(value: unknown, path: string): WeightSpec {
  const raw = object(path, value, ['name', 'shape'], []);
  // A scalar weight has shape [], so rank 0 is allowed here (unlike an input shape).
  return { name: string(`${path}.name`, raw.name, MAX_ID_LENGTH), shape: shape(`${path}.shape`, raw.shape, 0) };
}

function shape(path: string, value: unknown, minRank: number): number[] {
  const dims = array(path, value, MAX_SHAPE_RANK, (dim, dimPath) => integer(dimPath, dim, 1));
  if (dims.length < minRank) reject('INVALID_MESSAGE', `${path} needs at least ${minRank} dimension(s)`);
  return dims;
}
