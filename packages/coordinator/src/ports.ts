import type { ClientMessage, ErrorCode, UniformRandom } from '@shoal/protocol';

/**
 * The ports a round runs over (DESIGN.md §3). `runRound` touches the world only through these, so
 * the same function runs over local connections today, over gateways later, and over scripted
 * fakes in unit tests.
 */

/** Time, injected (`Clock` from @shoal/protocol): `now` for durations and deadlines, `after` for the one timer a wait needs. */
export { systemClock, type Clock } from '@shoal/protocol';

/**
 * Uniform draws, injected: cohort sampling and the SecAgg+ ring use them. A CSPRNG in production
 * (`cryptoRandom`), seeded per round in simulations and tests (`seededRoundRandom`).
 */
export type Random = UniformRandom;

/** A round message from a cohort member (hello and the data-subject requests belong to the connection, not a round). */
export type RoundMessage = Exclude<ClientMessage, { type: 'hello' | 'subject-access' | 'forget' }>;

/** The messages a stage can wait for (a `decline` ends a member's part at any stage). */
export type AnswerKind = Exclude<RoundMessage['type'], 'decline'>;

export type AnswerOf<K extends AnswerKind> = Extract<RoundMessage, { type: K }>;

/** Thrown by a gather's `accept` when a member's answer breaks the round's rules: that member is closed with `code`. */
export class Refusal extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly reason: string,
  ) {
    super(reason);
    this.name = 'Refusal';
  }
}

/** One stage's wait: who is asked, until when, how many answers the round needs, and what to do with each. */
export interface GatherRequest<K extends AnswerKind> {
  readonly kind: K;
  readonly members: readonly string[];
  /** Absolute time on the round's clock when members still pending become dropouts. */
  readonly deadline: number;
  /** The wait ends early once fewer than this many answers can still arrive. */
  readonly quorum: number;
  readonly signal: AbortSignal;
  /**
   * Called once per answer, in arrival order, so an aggregate can be folded in as updates arrive
   * (O(d) memory whatever the cohort). A `Refusal` (or any error with an `errorCode`, such as a
   * SecAggError) closes that member's connection and counts it as dropped; other errors propagate.
   */
  accept(member: string, answer: AnswerOf<K>, bytes: number): void;
}

/** Who answered a stage (in arrival order) and who dropped (left, declined, missed the deadline, or was refused). */
export interface Gathered {
  readonly answered: readonly string[];
  readonly dropped: readonly string[];
  /** Bytes of the answers accepted. */
  readonly bytes: number;
}

/**
 * The clients of a round: select them, send to them, and pull their answers stage by stage.
 * Implemented today over the local connections (`LocalCohort`); later over gateways.
 */
export interface Cohort {
  /**
   * Picks the round's members from the clients eligible now (idle, with the capabilities the
   * rounds need, in admission order) with `sample`, and holds them for `round` until `release`.
   * `capability`: only clients that also announced it (federated evaluation asks for 'evaluate').
   */
  select(round: number, sample: (eligible: readonly string[]) => readonly string[], capability?: string): readonly string[];
  /** Whether `member` announced `capability` in its hello (so a message may carry a field only it reads). */
  supports(member: string, capability: string): boolean;
  /** Whether `member` already holds the weights of `modelVersion` (so `train` can leave them out). */
  holds(member: string, modelVersion: string): boolean;
  /** Sends one frame to a member still connected; the bytes sent (0 when it is gone). `holding`: it will hold that model version after this frame. */
  send(member: string, frame: Uint8Array, holding?: string): number;
  /** Waits for one stage's answers (see GatherRequest). Messages that arrived before the call are not lost. */
  gather<K extends AnswerKind>(request: GatherRequest<K>): Promise<Gathered>;
  /** The Ed25519 identity key `member` enrolled with (hello), if any: its SecAgg advertisements must be signed with it. */
  identityOf(member: string): Uint8Array | undefined;
  /** Whether `member` is still connected (a dropout may still be told the round's result). */
  connected(member: string): boolean;
  /** The round is over: its members become idle, and their late messages for it are dropped. */
  release(round: number): void;
}
