// A scripted Cohort for runRound unit tests: members answer honestly from what they were sent
// (SecAgg through real SecAggClients), stay silent until a deadline, decline, or leave.
import { createSeededRandom, decodeCoordinatorMessage, type CoordinatorMessage, type TrainMessage } from '@shoal/protocol';
import { SecAggClient } from '@shoal/secagg';
import { nodeKeyAgreement, nodeMaskPrg, nodeSigning } from '@shoal/secagg/node';
import { fedAvg } from '@shoal/strategy';
import type { FakeClock } from '@shoal/testkit';
import { builtinInitialModel } from '../src/model-init.js';
import { resolveOptions, type CoordinatorOptions } from '../src/options.js';
import { Refusal, type AnswerKind, type AnswerOf, type Cohort, type Gathered, type GatherRequest, type RoundMessage } from '../src/ports.js';
import { RoundLog, type RoundRecord } from '../src/round-log.js';
import type { CoordinatorState, RoundPorts, RunSetup } from '../src/run-round.js';
import { silentLogger } from '../src/logger.js';

export const MODEL = builtinInitialModel('logreg', [2], 2); // 2·2 + 2 = 6 parameters
export const D = 6;
const TRAIN = { epochs: 1, batchSize: 1, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 } as const;

/** What a scripted member does when a stage asks it: answer honestly, stay silent until the deadline, decline, or disconnect. */
export type Behaviour = 'answer' | 'silent' | 'decline' | 'leave';

/**
 * A Cohort whose members are scripted: `behaviour(kind, member)` says what each does at each
 * stage; honest answers are computed from what was sent to it (SecAgg through a real SecAggClient).
 */
export class ScriptedCohort implements Cohort {
  readonly inbox = new Map<string, CoordinatorMessage[]>();
  readonly gone = new Set<string>();
  readonly refused: string[] = [];
  /** Why each refused member was refused: the close code and reason its connection would get. */
  readonly refusals: { member: string; code: string; reason: string }[] = [];
  readonly released: number[] = [];
  /**
   * Members enrolled with a pinned identity (as a `hello.identityKey` would): member → Ed25519 seed.
   * `identityOf` answers with its public key; the member signs with `signsWith` (default: the same seed).
   */
  readonly identities = new Map<string, Uint8Array>();
  /** The seed a member actually signs its SecAgg rounds with, when it differs from its enrolled identity. */
  readonly signsWith = new Map<string, Uint8Array>();
  private readonly secagg = new Map<string, SecAggClient>();

  constructor(
    private readonly eligible: readonly string[],
    private readonly clock: FakeClock,
    private readonly behaviour: (kind: AnswerKind, member: string) => Behaviour = () => 'answer',
    private readonly delta: (member: string) => Float32Array = (member) => new Float32Array(D).fill(Number(member.slice(1))),
    /** Changes an honest answer before it is handed over (a misbehaving member). */
    private readonly tamper: (member: string, answer: RoundMessage) => RoundMessage = (_member, answer) => answer,
    private readonly numExamples = 10,
  ) {}

  select(_round: number, sample: (eligible: readonly string[]) => readonly string[]): readonly string[] {
    return sample(this.eligible);
  }

  supports(): boolean {
    return false; // scripted members announce no capabilities
  }

  holds(): boolean {
    return false;
  }

  send(member: string, frame: Uint8Array): number {
    if (this.gone.has(member)) return 0;
    const decoded = decodeCoordinatorMessage(frame, { numParams: D });
    if (!decoded.ok) throw new Error(`coordinator sent an invalid frame: ${decoded.reason}`);
    this.inbox.set(member, [...(this.inbox.get(member) ?? []), decoded.message]);
    return frame.byteLength;
  }

  identityOf(member: string): Uint8Array | undefined {
    const seed = this.identities.get(member);
    return seed === undefined ? undefined : nodeSigning.keyPair(seed).publicKey;
  }

  connected(member: string): boolean {
    return !this.gone.has(member);
  }

  release(round: number): void {
    this.released.push(round);
  }

  async gather<K extends AnswerKind>(request: GatherRequest<K>): Promise<Gathered> {
    const answered: string[] = [];
    const dropped: string[] = [];
    const silent: string[] = [];
    for (const member of request.members) {
      const what = this.gone.has(member) ? 'leave' : this.behaviour(request.kind, member);
      if (what === 'leave') this.gone.add(member);
      if (what === 'silent') silent.push(member);
      if (what !== 'answer') {
        if (what !== 'silent') dropped.push(member);
        continue;
      }
      try {
        request.accept(member, this.tamper(member, await this.answer(request.kind, member)) as AnswerOf<K>, 100);
        answered.push(member);
      } catch (error) {
        if (!(error instanceof Refusal) && (error as { errorCode?: string }).errorCode === undefined) throw error;
        this.refused.push(member);
        this.refusals.push({ member, code: error instanceof Refusal ? error.code : (error as { errorCode: string }).errorCode, reason: (error as Error).message });
        dropped.push(member);
      }
    }
    if (silent.length > 0 && answered.length + silent.length >= request.quorum && !request.signal.aborted) {
      // The silent ones hold the stage open until its deadline (or the signal).
      await new Promise<void>((resolve) => {
        const cancel = this.clock.after(request.deadline - this.clock.now(), resolve);
        request.signal.addEventListener('abort', () => (cancel(), resolve()), { once: true });
      });
    }
    return { answered, dropped: [...dropped, ...silent], bytes: 100 * answered.length };
  }

  /** The message of `type` last sent to `member`. */
  last<T extends CoordinatorMessage['type']>(member: string, type: T): Extract<CoordinatorMessage, { type: T }> {
    const message = (this.inbox.get(member) ?? []).filter((m) => m.type === type).at(-1);
    if (message === undefined) throw new Error(`${member} got no ${type}`);
    return message as Extract<CoordinatorMessage, { type: T }>;
  }

  private async answer(kind: AnswerKind, member: string): Promise<RoundMessage> {
    if (kind === 'evaluation') {
      const evaluate = this.last(member, 'evaluate');
      return { type: 'evaluation', round: evaluate.round, modelVersion: evaluate.modelVersion, loss: 1, accuracy: 0.5, numExamples: this.numExamples };
    }
    const train = this.last(member, 'train') as TrainMessage;
    const { round } = train;
    switch (kind) {
      case 'update':
        return { type: 'update', round, modelVersion: train.modelVersion, numExamples: this.numExamples, delta: this.delta(member), metrics: { loss: 1, accuracy: 0.5, trainMs: 1 } };
      case 'advertise': {
        const identitySeed = this.signsWith.get(member) ?? this.identities.get(member);
        const client = new SecAggClient({
          config: train.secagg!,
          round,
          numParams: D,
          randomBytes: (n) => crypto.getRandomValues(new Uint8Array(n)),
          prg: nodeMaskPrg,
          signing: nodeSigning,
          ...(identitySeed && { identitySeed }),
        });
        this.secagg.set(member, client);
        return { type: 'advertise', round, ...client.advertise() };
      }
      case 'shares':
        return { type: 'shares', round, ...this.secagg.get(member)!.share(this.last(member, 'keys').neighbours) };
      case 'masked': {
        const client = this.secagg.get(member)!;
        client.receiveInbox(this.last(member, 'inbox').ciphertexts);
        const weight = Math.min(10, train.secagg!.maxWeight); // under DP every weight is 1
        const weighted = this.delta(member).map((v) => v * weight);
        return { type: 'masked', round, modelVersion: train.modelVersion, masked: await client.mask(weighted, weight) };
      }
      case 'confirm':
        return { type: 'confirm', round, signature: this.secagg.get(member)!.confirm(this.last(member, 'survivors').survivors) };
      case 'reveal':
        return { type: 'reveal', round, ...this.secagg.get(member)!.reveal(this.last(member, 'unmask').signatures) };
    }
  }
}

export const MEMBERS = ['c1', 'c2', 'c3', 'c4', 'c5'];

export function setup(overrides: Partial<CoordinatorOptions> = {}): RunSetup {
  const options = resolveOptions({ model: MODEL, tokens: ['t'], rounds: 10, clientsPerRound: MEMBERS.length, minClients: 3, train: TRAIN, strategy: fedAvg(), maxUpdateNorm: 1e9, ...overrides });
  return { options, numParams: D, sessionId: 'test-client', secaggCrypto: { prg: nodeMaskPrg, agreement: nodeKeyAgreement, signing: nodeSigning } };
}

export function initialState(): CoordinatorState {
  return { runId: 'run', round: 0, lastCommittedRound: 0, weights: MODEL.weights.slice(), strategyState: {} };
}

export function harness(cohort: ScriptedCohort, clock: FakeClock): { ports: RoundPorts; records: RoundRecord[] } {
  const records: RoundRecord[] = [];
  const ports: RoundPorts = { cohort, clock, random: createSeededRandom(1), log: new RoundLog([], [(record) => void records.push(record)]), logger: silentLogger };
  return { ports, records };
}

/** The FedAvg result of `members` (deltas c_i = i everywhere, equal weights): initial + mean(i). */
export function fedAvgOf(members: readonly string[]): Float32Array {
  const mean = members.reduce((total, m) => total + Number(m.slice(1)), 0) / members.length;
  return MODEL.weights.map((w) => w + mean);
}

