// The invariants a chaos run checks after every coordinator death and at the end, read from what a
// crash leaves behind (the checkpoint folder and the privacy ledger), from what the coordinator
// printed (one metrics line per finished round), and from what the clients received.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LEDGER_FILE, readLatestCheckpoint, readLedger, weightsHash, type Checkpoint, type LedgerEntry, type RoundEntry, type StartEntry } from '@shoal/coordinator';
import { RdpAccountant, type AccountantState } from '@shoal/dp';
import { decodeFrame } from '@shoal/protocol';
import type { Observation } from './clients.js';

/** Passed checks by name, and every violation as a sentence. */
export class InvariantReport {
  readonly passed = new Map<string, number>();
  readonly violations: string[] = [];

  check(name: string, holds: boolean, violation: () => string): boolean {
    if (holds) this.passed.set(name, (this.passed.get(name) ?? 0) + 1);
    else this.violations.push(`${name}: ${violation()}`);
    return holds;
  }

  get total(): number {
    return [...this.passed.values()].reduce((sum, n) => sum + n, 0);
  }
}

/** What the driver knows about one coordinator life when it checks. */
export interface LifeRecord {
  readonly life: number;
  /** The newest checkpoint when the life started (undefined: a fresh run). */
  readonly startCheckpoint?: { readonly round: number; readonly modelVersion: string; readonly weightsHash: string; readonly epsilon: number };
  /**
   * The round the release journal named when the life started, if it had no checkpoint: a round
   * the previous life released (it asked for the unmasking) and died before committing. This life
   * must record it, aborted and charged, before it trains.
   */
  readonly releasedRound?: number;
  /** The round metrics lines the life printed. */
  readonly printed: readonly Record<string, unknown>[];
}

interface FolderState {
  readonly checkpoints: Map<number, Checkpoint>;
  readonly entries: readonly LedgerEntry[];
}

const CHECKPOINT_FILE = /^round-(\d{6,})\.ckpt$/;

/** Every checkpoint in `dir` (the chaos config keeps all of them), by round. */
export async function readCheckpoints(dir: string): Promise<Map<number, Checkpoint>> {
  const checkpoints = new Map<number, Checkpoint>();
  for (const name of await readdir(dir)) {
    const round = CHECKPOINT_FILE.exec(name)?.[1];
    if (round !== undefined) checkpoints.set(Number(round), decodeFrame(await readFile(join(dir, name))) as Checkpoint);
  }
  return checkpoints;
}

/** ε (at `delta`) of an accountant state. */
export function epsilonOf(state: AccountantState, delta: number): number {
  return RdpAccountant.fromJSON(state).epsilon(delta).epsilon;
}

/** The (q, z) of every charged round, one per round, from an accountant's merged history. */
function chargesOf(state: AccountantState): { q: number; z: number }[] {
  return state.history.flatMap((entry) => Array.from({ length: entry.steps }, () => ({ q: entry.q, z: entry.noiseMultiplier })));
}

function roundOfVersion(version: string): number {
  return Number(version.split(':').at(-1));
}

/**
 * Checks the folder after a coordinator died (`settled`: false, the newest checkpoint may be one
 * round ahead of the ledger) or after the run (`settled`: true). Returns the ε the ledger ends at.
 */
export async function checkFolder(report: InvariantReport, dir: string, delta: number, settled: boolean): Promise<{ epsilon: number; latestRound: number } | undefined> {
  const latest = await readLatestCheckpoint(dir);
  const ledger = await readLedger(join(dir, LEDGER_FILE), latest?.ledger);
  if (!report.check('ledger verifies against the newest checkpoint', ledger?.ok === true, () => (ledger && !ledger.ok ? `entry ${ledger.entry} ${ledger.problem}` : 'no ledger'))) return undefined;
  if (!ledger?.ok) return undefined;
  const state: FolderState = { checkpoints: await readCheckpoints(dir), entries: ledger.entries };
  const latestRound = latest?.round ?? 0;
  checkCheckpointChain(report, state, latestRound);
  checkLedgerRounds(report, state, latestRound, settled);
  const epsilon = checkEpsilon(report, state, delta, latestRound);
  return { epsilon, latestRound };
}

/** Checkpoints 1 … latest all exist; each either commits its round or keeps the previous model bit for bit; one run id. */
function checkCheckpointChain(report: InvariantReport, { checkpoints }: FolderState, latestRound: number): void {
  const rounds = [...checkpoints.keys()].sort((a, b) => a - b);
  report.check('every round up to the newest checkpoint has exactly one checkpoint', rounds.length === latestRound && rounds.every((round, i) => round === i + 1), () => `checkpoint rounds ${rounds.join(',')} for newest ${latestRound}`);
  let previous: Checkpoint | undefined;
  for (const round of rounds) {
    const checkpoint = checkpoints.get(round)!;
    const committed = roundOfVersion(checkpoint.modelVersion) === round;
    if (previous !== undefined) {
      report.check('one run id across all checkpoints', checkpoint.runId === previous.runId, () => `round ${round} has run ${checkpoint.runId}, round ${previous!.round} ${previous!.runId}`);
      if (!committed) {
        report.check(
          'an aborted round keeps the previous model bit for bit',
          checkpoint.modelVersion === previous.modelVersion && weightsHash(checkpoint.weights) === weightsHash(previous.weights),
          () => `round ${round} (${checkpoint.modelVersion}) vs round ${previous!.round} (${previous!.modelVersion})`,
        );
      }
    }
    previous = checkpoint;
  }
}

/**
 * Each round appears once in the ledger, as its checkpoint says (status, model hash); a round with a
 * checkpoint but no round entry is one the process died between the two writes of, which the next
 * start records in its resume entry (or, before that restart, the newest checkpoint).
 */
function checkLedgerRounds(report: InvariantReport, { checkpoints, entries }: FolderState, latestRound: number, settled: boolean): void {
  const roundEntries = entries.filter((entry): entry is RoundEntry => entry.type === 'round');
  const seen = new Set<number>();
  for (const entry of roundEntries) {
    report.check('no round is recorded twice in the ledger', !seen.has(entry.round), () => `round ${entry.round} recorded again`);
    seen.add(entry.round);
    const checkpoint = checkpoints.get(entry.round);
    if (!report.check('every ledger round has its checkpoint', checkpoint !== undefined, () => `round ${entry.round} has no checkpoint`)) continue;
    const committed = roundOfVersion(checkpoint!.modelVersion) === entry.round;
    report.check('ledger status equals the checkpoint\'s', (entry.status === 'committed') === committed, () => `round ${entry.round}: ledger ${entry.status}, checkpoint version ${checkpoint!.modelVersion}`);
    report.check('ledger modelHash equals the checkpoint weights', entry.modelHash === weightsHash(checkpoint!.weights), () => `round ${entry.round}`);
  }
  // A restart writes the entry of a round whose checkpoint got ahead of the ledger (from that
  // checkpoint), so once the next life has started every checkpointed round has its own entry.
  for (let round = 1; round <= latestRound; round++) {
    const pending = !settled && round === latestRound;
    report.check('no checkpointed round is lost from the ledger', seen.has(round) || pending, () => `round ${round} has a checkpoint but no round entry`);
  }
  const start = entries[0] as StartEntry;
  for (const entry of entries.filter((e): e is StartEntry => e.type === 'resume')) {
    const checkpoint = checkpoints.get(entry.round);
    report.check(
      'a resume entry names the model of the checkpoint it resumed from',
      entry.runId === start.runId && (entry.round === 0 ? entry.modelHash === start.modelHash : checkpoint !== undefined && weightsHash(checkpoint.weights) === entry.modelHash),
      () => `resume after round ${entry.round}`,
    );
  }
}

/**
 * ε recomputed with the RDP accountant over the charged rounds equals what the ledger and every
 * checkpoint say, round by round. A round's charge is its ledger entry's (q, z); a round that only a
 * resume entry records has its charge in its own checkpoint's accountant history (the ledger does
 * not carry its q: see docs/reliability.md, "Chaos"). Every checkpoint's history must equal the
 * charges up to its round. Returns the ledger's last ε.
 */
function checkEpsilon(report: InvariantReport, { checkpoints, entries }: FolderState, delta: number, latestRound: number): number {
  const byRound = new Map(entries.filter((entry): entry is RoundEntry => entry.type === 'round').map((entry) => [entry.round, entry]));
  const accountant = new RdpAccountant();
  const charges: { q: number; z: number }[] = [];
  const epsilonAfter = new Map<number, number>([[0, 0]]);
  for (let round = 1; round <= latestRound; round++) {
    const entry = byRound.get(round);
    const checkpoint = checkpoints.get(round);
    let charge: { q: number; z: number } | undefined;
    if (entry !== undefined) {
      charge = entry.q !== null && entry.noiseMultiplier !== null ? { q: entry.q, z: entry.noiseMultiplier } : undefined;
    } else if (checkpoint?.privacy !== undefined) {
      const history = chargesOf(checkpoint.privacy.accountant);
      charge = history.length > charges.length ? history.at(-1) : undefined;
    }
    if (charge !== undefined) {
      accountant.compose(charge.q, charge.z);
      charges.push(charge);
    }
    const epsilon = charges.length === 0 ? 0 : accountant.epsilon(delta).epsilon;
    epsilonAfter.set(round, epsilon);
    if (entry !== undefined && entry.epsilon !== null) {
      report.check('ledger ε equals the accountant over the charged rounds', entry.epsilon === epsilon, () => `round ${round}: ledger ${entry.epsilon}, recomputed ${epsilon}`);
    }
    if (checkpoint?.privacy !== undefined) {
      const history = chargesOf(checkpoint.privacy.accountant);
      report.check('a checkpoint\'s accountant history equals the charged rounds', JSON.stringify(history) === JSON.stringify(charges), () => `round ${round}: ${history.length} charges in the checkpoint, ${charges.length} recomputed`);
      const saved = checkpoint.privacy.accountant.history.length === 0 ? 0 : epsilonOf(checkpoint.privacy.accountant, delta);
      report.check('a checkpoint\'s ε equals the accountant over the charged rounds', saved === epsilon, () => `round ${round}: checkpoint ${saved}, recomputed ${epsilon}`);
    }
  }
  let last = 0;
  for (const entry of entries) {
    if (entry.epsilon === null) continue;
    report.check('ε never decreases along the ledger', entry.epsilon >= last, () => `${entry.type} entry ${entry.seq}: ${entry.epsilon} after ${last}`);
    if (entry.type !== 'round') {
      const expected = epsilonAfter.get(entry.round);
      report.check('start, resume and end entries state the accountant\'s ε', expected === undefined || entry.epsilon === expected, () => `${entry.type} entry ${entry.seq} after round ${entry.round}: ${entry.epsilon}, recomputed ${expected}`);
    }
    last = entry.epsilon;
  }
  return last;
}

/**
 * What the clients were sent, against the folder: every model served equals its committed
 * checkpoint (or the run's initial model) bit for bit; each life's first round follows its
 * checkpoint; SecAgg session ids (the key-derivation context with the round) are never reused
 * across lives; round results agree with the ledger.
 */
export async function checkServed(report: InvariantReport, dir: string, observations: readonly Observation[], lives: readonly LifeRecord[]): Promise<void> {
  const checkpoints = await readCheckpoints(dir);
  const ledger = await readLedger(join(dir, LEDGER_FILE));
  const start = ledger?.ok ? (ledger.entries[0] as StartEntry) : undefined;
  const trains = observations.filter((o) => o.type === 'train');
  for (const train of trains.filter((o) => o.weightsHash !== undefined)) {
    const round = roundOfVersion(train.modelVersion!);
    const expected = round === 0 ? start?.modelHash : checkpoints.get(round) && weightsHash(checkpoints.get(round)!.weights);
    const versionMatches = round === 0 || checkpoints.get(round)?.modelVersion === train.modelVersion;
    report.check('served weights equal the committed checkpoint bit for bit', versionMatches && train.weightsHash === expected, () => `life ${train.life} round ${train.round} served ${train.modelVersion}`);
  }
  const sessionLife = new Map<string, number>();
  for (const train of trains) {
    if (train.sessionId === undefined) continue;
    const life = sessionLife.get(train.sessionId) ?? train.life;
    sessionLife.set(train.sessionId, life);
    report.check('a SecAgg session id belongs to one coordinator life', life === train.life, () => `session ${train.sessionId} seen in lives ${life} and ${train.life}`);
  }
  for (const life of lives) {
    const sessions = new Set(trains.filter((t) => t.life === life.life && t.sessionId !== undefined).map((t) => t.sessionId));
    report.check('one SecAgg session id per life, so (session, round) never repeats', sessions.size <= 1, () => `life ${life.life} used ${sessions.size} session ids`);
    const first = trains.filter((t) => t.life === life.life).sort((a, b) => a.round! - b.round!)[0];
    if (first === undefined) continue;
    const from = life.startCheckpoint;
    // After the round the previous life released and never committed, which this life records first.
    const next = (from?.round ?? 0) + 1 + (life.releasedRound !== undefined ? 1 : 0);
    report.check('a life starts at the round after its checkpoint', first.round === next, () => `life ${life.life} first trained round ${first.round} after checkpoint ${from?.round ?? 0}${life.releasedRound !== undefined ? ` and released round ${life.releasedRound}` : ''}`);
    report.check('a life trains from its checkpoint\'s model', from === undefined ? roundOfVersion(first.modelVersion!) === 0 : first.modelVersion === from.modelVersion, () => `life ${life.life} trained from ${first.modelVersion}, checkpoint ${from?.modelVersion}`);
  }
  const roundEntries = new Map(ledger?.ok ? ledger.entries.flatMap((entry) => (entry.type === 'round' ? [[entry.round, entry] as const] : [])) : []);
  for (const life of lives) {
    if (life.releasedRound === undefined) continue;
    const checkpoint = checkpoints.get(life.releasedRound);
    const entry = roundEntries.get(life.releasedRound);
    report.check(
      'a round released and never committed is recorded aborted and charged by the next life',
      checkpoint !== undefined && roundOfVersion(checkpoint.modelVersion) < life.releasedRound && entry?.status === 'aborted' && entry.q !== null,
      () => `life ${life.life}: released round ${life.releasedRound} has checkpoint ${checkpoint?.modelVersion}, ledger ${entry?.status} q ${entry?.q}`,
    );
  }
  // The result goes out after the round's checkpoint is durable: every result names a round that happened, as it happened.
  for (const result of observations.filter((o) => o.type === 'result')) {
    const checkpoint = checkpoints.get(result.round!);
    const status = checkpoint && (roundOfVersion(checkpoint.modelVersion) === result.round ? 'committed' : 'aborted');
    report.check('a result the clients got agrees with the checkpoint of that round', result.status === status && result.modelVersion === checkpoint?.modelVersion, () => `round ${result.round}: told ${result.status} ${result.modelVersion}, checkpoint ${checkpoint?.modelVersion ?? 'none'}`);
  }
}

/** Round numbers printed across all lives strictly increase (none applied twice), and agree with their checkpoints. */
export async function checkPrinted(report: InvariantReport, dir: string, lives: readonly LifeRecord[]): Promise<void> {
  const checkpoints = await readCheckpoints(dir);
  let last = 0;
  for (const life of lives) {
    for (const line of life.printed) {
      const round = line['round'] as number;
      report.check('finished round numbers strictly increase across lives', round > last, () => `life ${life.life} printed round ${round} after round ${last}`);
      last = Math.max(last, round);
      const checkpoint = checkpoints.get(round);
      report.check('a printed round has its checkpoint, with the same model version', checkpoint?.modelVersion === line['modelVersion'], () => `round ${round}: printed ${String(line['modelVersion'])}, checkpoint ${checkpoint?.modelVersion}`);
    }
  }
}
