import type { ModelDescriptor } from './models.js';

/** Bumped whenever a message changes incompatibly; `hello` carries it and the coordinator checks it. */
export const PROTOCOL_VERSION = 1;

/** Local training settings the coordinator sends with every round. */
export interface TrainConfig {
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly optimizer: 'sgd' | 'adam';
  /** FedProx proximal term µ; 0 is plain FedAvg. */
  readonly proximalMu: number;
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
  readonly numExamples: number;
  readonly capabilities: readonly string[];
  /** From an earlier `welcome`: lets a reconnecting client keep its id. */
  readonly resumeToken?: string;
  /** The global model version the client already holds, so the coordinator can skip sending it. */
  readonly modelVersion?: string;
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
}

/** A client that cannot train this round says so, and becomes a dropout at once. */
export interface DeclineMessage {
  readonly type: 'decline';
  readonly round: number;
  readonly reason: string;
}

export type ClientMessage = HelloMessage | UpdateMessage | DeclineMessage;

// ---- coordinator → client ----

export interface WelcomeMessage {
  readonly type: 'welcome';
  readonly protocolVersion: number;
  readonly clientId: string;
  readonly resumeToken: string;
  readonly model: ModelDescriptor;
  /** The coordinator pings at this interval; a client silent for two intervals is dropped. */
  readonly heartbeatIntervalMs: number;
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

export type CoordinatorMessage = WelcomeMessage | TrainMessage | RoundResultMessage;

export type Message = ClientMessage | CoordinatorMessage;
export type MessageType = Message['type'];
