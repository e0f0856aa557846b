import type { ModelDescriptor } from './models.js';

/** Bumped whenever a message changes incompatibly; `hello` carries it and the coordinator checks it. */
export const PROTOCOL_VERSION = 2;

/** Local training settings the coordinator sends with every round. */
export interface TrainConfig {
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly optimizer: 'sgd' | 'adam';
  /** FedProx proximal term µ; 0 is plain FedAvg. */
  readonly proximalMu: number;
  /** Differential privacy: clip the update to this L2 norm (and report whether it had to). */
  readonly clipNorm?: number;
  /** Distributed DP: add N(0, noiseStd²) to every coordinate of the clipped update. */
  readonly noiseStd?: number;
  /**
   * Adaptive clipping under secure aggregation: append the unclipped bit plus N(0, bitNoiseStd²)
   * to the masked values, so the bits are summed (and noised) without the coordinator seeing any.
   */
  readonly bitNoiseStd?: number;
  /**
   * Report `update.initialLoss`, the loss of the received global model on the training data before
   * local training (q-FedAvg needs it). Sent only to clients that announced `'initial-loss'`.
   */
  readonly reportInitialLoss?: boolean;
}

/** Metrics a client reports about its local training. */
export interface TrainMetrics {
  readonly loss: number;
  readonly accuracy: number;
  readonly trainMs: number;
}

// ---- client → coordinator ----

/** First message on a connection. The token travels in the HTTP upgrade, never here. */
export interface HelloMessage {
  readonly type: 'hello';
  readonly protocolVersion: number;
  /**
   * Deprecated, accepted from older clients and ignored: the example count is the weight secure
   * aggregation masks, so the SDK no longer announces it.
   */
  readonly numExamples?: number;
  readonly capabilities: readonly string[];
  /** From an earlier `welcome`: lets a reconnecting client keep its id. */
  readonly resumeToken?: string;
  /** The global model version the client already holds, so the coordinator can skip sending it. */
  readonly modelVersion?: string;
  /**
   * The client's pinned Ed25519 identity key (docs/secagg.md, "Pinned identities"): it then signs
   * every SecAgg round with this key, and the coordinator holds it to that from enrolment on.
   */
  readonly identityKey?: Uint8Array;
}

/** A client's local result for `round`: `weights − global`, with its example count. */
export interface UpdateMessage {
  readonly type: 'update';
  readonly round: number;
  /** The global version the delta was computed against. */
  readonly modelVersion: string;
  readonly numExamples: number;
  readonly delta: Float32Array;
  readonly metrics: TrainMetrics;
  /** With `clipNorm` set: true when the update's norm was within the clip norm (adaptive clipping). */
  readonly unclipped?: boolean;
  /** With `config.reportInitialLoss`: the received global model's loss on the training data, before training (finite, ≥ 0). */
  readonly initialLoss?: number;
}

/**
 * A client's evaluation of the model `evaluate` named, on its own held-out examples. Sent only in
 * answer to `evaluate`, so only by clients that announced `'evaluate'`.
 */
export interface EvaluationMessage {
  readonly type: 'evaluation';
  readonly round: number;
  readonly modelVersion: string;
  /** Mean loss over the held-out examples: finite, ≥ 0. */
  readonly loss: number;
  /** Fraction of the held-out examples classified correctly, in [0, 1]. */
  readonly accuracy: number;
  /** How many held-out examples the client evaluated on. */
  readonly numExamples: number;
}

/** A client that cannot train this round says so, and becomes a dropout at once. */
export interface DeclineMessage {
  readonly type: 'decline';
  readonly round: number;
  readonly reason: string;
}

// ---- secure aggregation (Bonawitz et al. 2017; SecAgg+ of Bell et al. 2020), see docs/secagg.md ----
// Clients are named by their Shamir x-coordinate `index` (1..n, assigned per round in `train`).

/** SecAgg settings of one round, sent inside `train`. */
export interface SecAggRoundConfig {
  readonly mode: 'secagg' | 'secagg+';
  /** This client's Shamir x-coordinate in this round (1..cohort size). */
  readonly index: number;
  /** Shares needed to reconstruct a secret; also the fewest survivors a round can finish with. */
  readonly threshold: number;
  /** Neighbourhood size including the client itself (cohort size for full SecAgg). */
  readonly degree: number;
  /** Every weighted update coordinate is clamped to [−bound, bound] before encoding. */
  readonly bound: number;
  /** Fixed-point scale: a value v is encoded as floor((v + bound)·scale + u), u uniform in [0, 1), in Z_{2^32}. */
  readonly scale: number;
  /** The largest weight (example count) a client may put in the masked weight coordinate. */
  readonly maxWeight: number;
  /** Random per coordinator run; binds keys and ciphertexts to this run. */
  readonly sessionId: string;
  /** Whether the client sends its training metrics in the clear with its masked input. Absent: false. */
  readonly shareMetrics?: boolean;
}

/** Stage 1 (advertise): the client's two X25519 public keys and its Ed25519 signing key for this round, signed. */
export interface AdvertiseMessage {
  readonly type: 'advertise';
  readonly round: number;
  /** c_u^PK: for share encryption. */
  readonly encryptionKey: Uint8Array;
  /** s_u^PK: for pairwise masks. */
  readonly maskKey: Uint8Array;
  /** d_u^PK: Ed25519, fresh per round, or the client's pinned identity key. */
  readonly signingKey: Uint8Array;
  /** Ed25519 signature by d_u of (session, round, index, the three keys). */
  readonly signature: Uint8Array;
}

/** A neighbour's advertisement, forwarded as it was signed. */
export interface NeighbourKeys {
  readonly index: number;
  readonly encryptionKey: Uint8Array;
  readonly maskKey: Uint8Array;
  readonly signingKey: Uint8Array;
  readonly signature: Uint8Array;
}

/** Coordinator → client after stage 1: the public keys of the client's neighbours that advertised. */
export interface KeysMessage {
  readonly type: 'keys';
  readonly round: number;
  readonly neighbours: readonly NeighbourKeys[];
}

/** Stage 2 (share): one encrypted share pair per neighbour (nonce ‖ secretbox). */
export interface SharesMessage {
  readonly type: 'shares';
  readonly round: number;
  readonly ciphertexts: readonly { readonly to: number; readonly box: Uint8Array }[];
}

/** Coordinator → client after stage 2: the ciphertexts addressed to this client. */
export interface InboxMessage {
  readonly type: 'inbox';
  readonly round: number;
  readonly ciphertexts: readonly { readonly from: number; readonly box: Uint8Array }[];
}

/** Stage 3 (masked input): the encoded, masked update; its last word is the masked weight. */
export interface MaskedMessage {
  readonly type: 'masked';
  readonly round: number;
  readonly modelVersion: string;
  readonly masked: Uint32Array;
  /** Absent under distributed DP: per-client training metrics are functions of the client's data that no noise covers. */
  readonly metrics?: TrainMetrics;
}

/** Coordinator → survivors after stage 3: the one survivor set U3 of the round (all of it, ascending), to sign. */
export interface SurvivorsMessage {
  readonly type: 'survivors';
  readonly round: number;
  readonly survivors: readonly number[];
}

/** Stage 4 (consistency check): the client's Ed25519 signature of (session, round, U3). */
export interface ConfirmMessage {
  readonly type: 'confirm';
  readonly round: number;
  readonly signature: Uint8Array;
}

/** Coordinator → survivors that confirmed: their neighbours' signatures of the same U3. */
export interface UnmaskMessage {
  readonly type: 'unmask';
  readonly round: number;
  readonly signatures: readonly { readonly index: number; readonly signature: Uint8Array }[];
}

/** Stage 5 (unmask): shares of b_v for neighbours in U3 and of s_v^SK for neighbours that shared but are not in U3, never both for one v. */
export interface RevealMessage {
  readonly type: 'reveal';
  readonly round: number;
  readonly selfMaskShares: readonly { readonly of: number; readonly share: Uint8Array }[];
  readonly maskKeyShares: readonly { readonly of: number; readonly share: Uint8Array }[];
}

// ---- data-subject requests (docs/privacy.md, "What the coordinator holds about a device") ----

/** Asks what the coordinator holds about this client; answered with `subject-data`. Needs `welcome.subjectRequests`. */
export interface SubjectAccessMessage {
  readonly type: 'subject-access';
}

/** Asks the coordinator to forget this client: answered with `forgotten`, then the connection closes with FORGOTTEN (4017). Needs `welcome.subjectRequests`. */
export interface ForgetMessage {
  readonly type: 'forget';
}

export type ClientMessage = HelloMessage | UpdateMessage | EvaluationMessage | DeclineMessage | AdvertiseMessage | SharesMessage | MaskedMessage | ConfirmMessage | RevealMessage | SubjectAccessMessage | ForgetMessage;

// ---- coordinator → client ----

export interface WelcomeMessage {
  readonly type: 'welcome';
  readonly protocolVersion: number;
  readonly clientId: string;
  readonly resumeToken: string;
  readonly model: ModelDescriptor;
  /** The coordinator pings at this interval; a client silent for two intervals is dropped. */
  readonly heartbeatIntervalMs: number;
  /**
   * True when the coordinator answers `subject-access` and `forget`. Sent only to clients that
   * announced the 'subject-requests' capability (older clients reject unknown fields).
   */
  readonly subjectRequests?: boolean;
}

/**
 * The privacy settings of one round, as the coordinator states them in `train` (sent only to clients
 * that announced the 'round-privacy' capability), so a client can hold the round to its policy and
 * to the published promise. What a client can verify itself (noiseStd, clipNorm and the SecAgg
 * threshold under distributed DP) it checks from `config` and `secagg` instead of trusting these.
 */
export interface RoundPrivacy {
  readonly dpMode: 'off' | 'central' | 'distributed';
  /** z: the noise std on the sum as a multiple of the clip norm. Present when dpMode is not off. */
  readonly noiseMultiplier?: number;
  /** ε spent by the rounds committed before this one (at `delta`). Present when dpMode is not off. */
  readonly epsilonSpent?: number;
  /** Training stops before a round that would spend more; absent: no budget. */
  readonly epsilonBudget?: number;
  readonly delta?: number;
}

/** Starts a round for this client. `weights` is absent when the client already holds `modelVersion`. */
export interface TrainMessage {
  readonly type: 'train';
  readonly round: number;
  readonly modelVersion: string;
  readonly weights?: Float32Array;
  readonly config: TrainConfig;
  /** Milliseconds the client has to send its update. */
  readonly deadlineMs: number;
  /** Present when the round uses secure aggregation: then the client answers with the SecAgg stages, not `update`. */
  readonly secagg?: SecAggRoundConfig;
  /** The round's privacy settings, for clients that announced 'round-privacy'. */
  readonly privacy?: RoundPrivacy;
}

/** The outcome of a round the client took part in. */
export interface RoundResultMessage {
  readonly type: 'result';
  readonly round: number;
  readonly status: 'committed' | 'aborted';
  /** The global version after the round (unchanged when aborted). */
  readonly modelVersion: string;
  readonly reason?: string;
}

/**
 * Federated evaluation: asks a client that announced `'evaluate'` to score the model committed in
 * `round` on its held-out examples and answer with `evaluation` within `deadlineMs`. `weights` is
 * absent when the client already holds `modelVersion`.
 */
export interface EvaluateMessage {
  readonly type: 'evaluate';
  readonly round: number;
  readonly modelVersion: string;
  readonly weights?: Float32Array;
  /** Milliseconds the client has to answer, from the arrival of this message. */
  readonly deadlineMs: number;
}

/**
 * The answer to `subject-access`: everything the coordinator holds about this client, nothing else.
 * Round lists are ascending and keep at most the newest `MAX_ROUNDS_PER_CLIENT` rounds each.
 */
export interface SubjectDataMessage {
  readonly type: 'subject-data';
  readonly clientId: string;
  /** Whether the coordinator holds a resume token for this client (it does while it is connected). */
  readonly resumeTokenHeld: boolean;
  /** Rounds this client id was selected for. */
  readonly selectedRounds: readonly number[];
  /** Rounds this client id sent its update (plain or masked) for. */
  readonly contributedRounds: readonly number[];
}

/** The answer to `forget`: the registry entry, resume token and round history of `clientId` are deleted. */
export interface ForgottenMessage {
  readonly type: 'forgotten';
  readonly clientId: string;
}

/**
 * The hello capability of clients that understand `pace`; a coordinator paces only those, so older
 * clients stay connected and idle as before.
 */
export const PACE_CAPABILITY = 'pace';

/** The longest a `pace` may ask a device to stay away: one day (a larger value is a coordinator bug). */
export const MAX_PACE_MS = 86_400_000;

/**
 * Pace steering (Bonawitz et al., SysML 2019): `round` had more eligible devices than it admitted
 * and this one was not admitted. The client closes its connection normally, waits a uniform random
 * time in [retryInMs.min, retryInMs.max] and reconnects with its resume token, so the devices not
 * needed come back spread over the next rounds instead of all at once. Sent only to clients that
 * announced `PACE_CAPABILITY`. Integers, 0 ≤ min ≤ max ≤ MAX_PACE_MS.
 */
export interface PaceMessage {
  readonly type: 'pace';
  readonly round: number;
  readonly retryInMs: RetryWindow;
}

/** A wait of at least `min` and at most `max` whole milliseconds. */
export interface RetryWindow {
  readonly min: number;
  readonly max: number;
}

/** Rounds kept per client id and per list in the coordinator's registry (selected, contributed): the oldest go first. */
export const MAX_ROUNDS_PER_CLIENT = 1_000;

export type CoordinatorMessage = WelcomeMessage | TrainMessage | EvaluateMessage | RoundResultMessage | KeysMessage | InboxMessage | SurvivorsMessage | UnmaskMessage | SubjectDataMessage | ForgottenMessage | PaceMessage;

export type Message = ClientMessage | CoordinatorMessage;
export type MessageType = Message['type'];
