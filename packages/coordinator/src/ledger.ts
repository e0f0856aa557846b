// The privacy ledger (docs/privacy.md, "Privacy ledger"): one append-only, hash-chained JSONL file
// per training run. A `start` (or `resume`) entry when a coordinator begins, one `round` entry per
// RoundRecord, an `end` entry when training stops. It is a sink of the RoundLog placed after the
// checkpoint sink, and the accountant's source of truth on restart (`reconcileLedger`).
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ShoalError } from '@shoal/protocol';
import { readTextIfPresent } from './atomic-file.js';
import type { ResolvedOptions } from './options.js';
import type { RoundRecord, RoundSink } from './round-log.js';

/** The ledger's file name, in the checkpoint folder (serve) or the run folder (simulate). */
export const LEDGER_FILE = 'ledger.jsonl';

/** The `prev` of entry 1. */
export const GENESIS_HASH = '0'.repeat(64);

/** What the accountant is, in every ledger that has DP. */
export const ACCOUNTANT = 'RDP, Poisson-subsampled Gaussian';

/** The newest entry of a ledger: a checkpoint records it so that cutting trailing entries is detected. */
export interface LedgerHead {
  readonly seq: number;
  /** SHA-256 (hex) of that entry's line, without its newline. */
  readonly hash: string;
}

/** The privacy settings of a run, as a `start` or `resume` entry records them. */
export interface LedgerSettings {
  readonly sampling: 'fixed' | 'poisson';
  readonly clientsPerRound: number | null;
  readonly fraction: number | null;
  readonly minClients: number;
  readonly dp: {
    readonly mode: 'central' | 'distributed';
    readonly noiseMultiplier: number;
    readonly clipNorm: number;
    readonly adaptiveClip: boolean;
    readonly delta: number;
    readonly targetEpsilon: number | null;
    readonly accountant: typeof ACCOUNTANT;
  } | null;
  readonly secagg: { readonly mode: 'secagg' | 'secagg+'; readonly threshold: number | null; readonly shareMetrics: boolean } | null;
}

interface Chained {
  readonly seq: number;
  readonly prev: string;
}

/** Written when a run starts (`start`) and when a coordinator restarts on it (`resume`). */
export interface StartEntry extends Chained {
  readonly type: 'start' | 'resume';
  readonly runId: string;
  readonly time: string;
  /** SHA-256 of the canonical JSON of the run's config (`ledgerConfigHash`). */
  readonly configHash: string;
  /** The @shoal/coordinator version that wrote the entry. */
  readonly codeVersion: string;
  /** The last finished round the coordinator starts after (0 for a new run). */
  readonly round: number;
  /** SHA-256 of the weights it starts from. */
  readonly modelHash: string;
  readonly parameters: number;
  /** ε spent so far (null without DP). */
  readonly epsilon: number | null;
  readonly delta: number | null;
  readonly settings: LedgerSettings;
}

/** One round, committed or aborted. Counts and settings only: never a client id. */
export interface RoundEntry extends Chained {
  readonly type: 'round';
  readonly round: number;
  readonly status: 'committed' | 'aborted';
  readonly reason: string | null;
  readonly selected: number;
  readonly participants: number;
  readonly sampling: 'fixed' | 'poisson';
  /** What the accountant was charged for this round (null: no charge, or DP off). */
  readonly q: number | null;
  readonly noiseMultiplier: number | null;
  readonly clipNorm: number | null;
  /** survivors: the clients whose masked input went into the sum. */
  readonly secagg: { readonly mode: 'secagg' | 'secagg+'; readonly threshold: number; readonly survivors: number } | null;
  /** ε after this round (null without DP). */
  readonly epsilon: number | null;
  readonly delta: number | null;
  readonly modelHash: string;
  /** Data-subject requests answered since the previous round: counts only. */
  readonly subjectRequests: { readonly access: number; readonly erasure: number } | null;
}

/** Written when training stops. */
export interface EndEntry extends Chained {
  readonly type: 'end';
  readonly time: string;
  readonly stoppedBy: string;
  readonly round: number;
  readonly modelHash: string;
  readonly epsilon: number | null;
  readonly delta: number | null;
}

export type LedgerEntry = StartEntry | RoundEntry | EndEntry;

export type Unchained<T> = T extends LedgerEntry ? Omit<T, 'seq' | 'prev'> : never;
export type LedgerFields = Unchained<LedgerEntry>;

// ---- lines ----

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * The line of an entry: its JSON with a last field `hash`, the SHA-256 of that JSON without it.
 * `prev` chains entries together (deletions and swaps break it); `hash` makes an edit of the newest
 * entry, which no later `prev` covers, visible too.
 */
function lineOf(fields: LedgerFields, head: LedgerHead | undefined): string {
  const body = JSON.stringify({ seq: (head?.seq ?? 0) + 1, prev: head?.hash ?? GENESIS_HASH, ...fields }, infiniteEpsilonAsText);
  return `${body.slice(0, -1)},"hash":"${sha256(body)}"}`;
}

const SELF_HASH = /,"hash":"([0-9a-f]{64})"}$/;

/**
 * JSON has no Infinity (JSON.stringify would write null, which reads as "no DP"), yet a noise
 * multiplier of 0 spends an unbounded ε: the ledger writes it as the string "Infinity".
 */
function infiniteEpsilonAsText(key: string, value: unknown): unknown {
  return key === 'epsilon' && value === Infinity ? 'Infinity' : value;
}

function infiniteEpsilonFromText(key: string, value: unknown): unknown {
  return key === 'epsilon' && value === 'Infinity' ? Infinity : value;
}

// ---- verification (pure) ----

/** A verified ledger, or the first entry that is wrong. */
export type LedgerVerification =
  | { readonly ok: true; readonly entries: readonly LedgerEntry[]; readonly head: LedgerHead | undefined; readonly notes: readonly string[] }
  | { readonly ok: false; readonly entry: number; readonly problem: string; readonly entries: readonly LedgerEntry[] };

/**
 * Checks a ledger's text: every line is a whole JSON entry whose own hash matches, `seq` counts
 * 1, 2, …, each `prev` is the SHA-256 of the line before, the first entry is `start` and no later
 * one is, round numbers increase, and ε never decreases. With `anchor` (the head a checkpoint
 * recorded) it also checks that the ledger still holds that entry, so cut trailing entries show.
 */
export function verifyLedger(text: string, anchor?: LedgerHead): LedgerVerification {
  const entries: LedgerEntry[] = [];
  const fail = (entry: number, problem: string): LedgerVerification => ({ ok: false, entry, problem, entries });
  if (text.length === 0) return fail(1, 'the ledger is empty: its start entry is missing');
  const lines = text.split('\n');
  const partial = lines.pop() !== '';
  let prevHash = GENESIS_HASH;
  let lastRound = 0;
  let maxEpsilon = -Infinity;
  let ended = false;
  for (const [index, line] of lines.entries()) {
    const n = index + 1;
    const selfHash = SELF_HASH.exec(line);
    let entry: LedgerEntry;
    try {
      entry = JSON.parse(line, infiniteEpsilonFromText) as LedgerEntry;
    } catch {
      return fail(n, 'is not a JSON entry (edited or cut)');
    }
    if (selfHash === null || sha256(`${line.slice(0, selfHash.index)}}`) !== selfHash[1]) return fail(n, 'its content does not match its own hash: the entry was edited');
    const shapeProblem = checkShape(entry);
    if (shapeProblem !== undefined) return fail(n, shapeProblem);
    if (entry.seq !== n) return fail(n, `has seq ${entry.seq} where ${n} belongs: entries were deleted, inserted or reordered`);
    if (entry.prev !== prevHash) return fail(n, `its prev is not the SHA-256 of entry ${n - 1}: an entry before it was replaced, deleted or moved`);
    if ((n === 1) !== (entry.type === 'start')) return fail(n, n === 1 ? `is a ${entry.type} entry; a ledger begins with start` : 'is a second start entry');
    if (ended && entry.type !== 'resume') return fail(n, `is a ${entry.type} entry after the end entry`);
    ended = entry.type === 'end' || (ended && entry.type !== 'resume');
    if (entry.type === 'round' && entry.round <= lastRound) return fail(n, `records round ${entry.round} after round ${lastRound}: round numbers must increase`);
    // Without DP an operator may roll back to an older checkpoint (the resume entry records it); with DP never.
    const rollback = entry.type === 'resume' && entry.settings?.dp === null && entry.round < lastRound;
    if (entry.type === 'resume' && !rollback && entry.round !== lastRound && entry.round !== lastRound + 1) {
      return fail(n, `resumes after round ${entry.round}, but the ledger's last round is ${lastRound}`);
    }
    if (entry.type === 'end' && entry.round !== lastRound) return fail(n, `ends after round ${entry.round}, but the ledger's last round is ${lastRound}`);
    if (entry.epsilon !== null) {
      if (entry.epsilon < maxEpsilon) return fail(n, `ε went down to ${entry.epsilon} from ${maxEpsilon}`);
      maxEpsilon = entry.epsilon;
    }
    if (entry.type !== 'end') lastRound = entry.round;
    entries.push(entry);
    prevHash = sha256(line);
  }
  if (partial) return fail(lines.length + 1, 'is a partial last line: the ledger was truncated (or a write was cut by a crash)');
  const head = entries.length === 0 ? undefined : { seq: entries.length, hash: prevHash };
  const notes: string[] = [];
  if (anchor !== undefined) {
    const anchored = anchor.seq <= lines.length ? sha256(lines[anchor.seq - 1]!) : undefined;
    if (anchored === undefined) return fail(entries.length + 1, `is missing: the newest checkpoint records entry ${anchor.seq}, the ledger ends at entry ${entries.length} (trailing entries were deleted)`);
    if (anchored !== anchor.hash) return fail(anchor.seq, 'is not the entry the newest checkpoint records (the ledger was replaced or rewritten)');
  }
  if (entries.length > 0 && entries.at(-1)!.type !== 'end') notes.push('no end entry: the run is in progress, or stopped without finishing');
  return { ok: true, entries, head, notes };
}

function checkShape(entry: unknown): string | undefined {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return 'is not a JSON object';
  const e = entry as Record<string, unknown>;
  if (!Number.isSafeInteger(e['seq'])) return 'has no integer seq';
  if (typeof e['prev'] !== 'string') return 'has no prev hash';
  if (e['type'] !== 'start' && e['type'] !== 'resume' && e['type'] !== 'round' && e['type'] !== 'end') return `has an unknown type ${JSON.stringify(e['type'])}`;
  if (!Number.isSafeInteger(e['round']) || (e['round'] as number) < 0) return 'has no round number';
  if (e['epsilon'] !== null && !(typeof e['epsilon'] === 'number' && e['epsilon'] >= 0)) return 'has an ε that is neither null nor a number ≥ 0';
  if (typeof e['modelHash'] !== 'string') return 'has no modelHash';
  return undefined;
}

/** Reads and verifies `path`; undefined when the file does not exist. */
export async function readLedger(path: string, anchor?: LedgerHead): Promise<LedgerVerification | undefined> {
  const text = await readTextIfPresent(path);
  return text === undefined ? undefined : verifyLedger(text, anchor);
}

/** The last round a ledger records (a `round` entry, or the round a `resume` entry starts after). */
export function ledgerRound(entries: readonly LedgerEntry[]): number {
  for (let i = entries.length - 1; i >= 0; i--) if (entries[i]!.type !== 'end') return entries[i]!.round;
  return 0;
}

/** The ε a ledger records last (null: no DP, or no entry yet). */
export function ledgerEpsilon(entries: readonly LedgerEntry[]): number | null {
  for (let i = entries.length - 1; i >= 0; i--) if (entries[i]!.epsilon !== null) return entries[i]!.epsilon;
  return null;
}

// ---- writing ----

/**
 * Appends entries to one ledger file. Each append opens the file, writes one whole line, fsyncs
 * and closes it, so nothing stays open between rounds and an entry is durable once `append`
 * resolves. One writer per file: two processes on one ledger would fork its chain.
 */
export class LedgerWriter {
  private current: LedgerHead | undefined;

  constructor(readonly path: string) {}

  /** Continues an existing ledger whose newest entry (verified) is `head`. */
  continueAt(head: LedgerHead | undefined): void {
    this.current = head;
  }

  /** The newest entry written (what a checkpoint records as its anchor). */
  get head(): LedgerHead | undefined {
    return this.current;
  }

  /** Appends one entry. */
  async append(fields: LedgerFields): Promise<void> {
    const head = this.current;
    const line = lineOf(fields, head);
    const handle = await open(this.path, 'a');
    try {
      await handle.writeFile(`${line}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    this.current = { seq: (head?.seq ?? 0) + 1, hash: sha256(line) };
  }
}

/** The ledger's round entry for a record: counts, settings and ε only. */
export function roundEntry(record: RoundRecord, options: Pick<ResolvedOptions, 'sampling'>): Unchained<RoundEntry> {
  const { metrics, charge } = record;
  return {
    type: 'round',
    round: record.round,
    status: record.status,
    reason: record.reason ?? null,
    selected: metrics.selected,
    participants: metrics.participants,
    sampling: options.sampling,
    q: charge?.sampleRate ?? null,
    noiseMultiplier: charge?.noiseMultiplier ?? null,
    clipNorm: charge?.clipNorm ?? null,
    secagg: metrics.secagg ? { mode: metrics.secagg.mode, threshold: metrics.secagg.threshold, survivors: metrics.participants } : null,
    epsilon: metrics.epsilon ?? null,
    delta: metrics.epsilon === undefined ? null : (metrics.delta ?? null),
    modelHash: record.weightsHash,
    subjectRequests: record.subjectRequests ? { access: record.subjectRequests.access, erasure: record.subjectRequests.erasure } : null,
  };
}

/** The round log's ledger sink: placed after the checkpoint sink (docs/privacy.md says why). */
export function ledgerSink(writer: LedgerWriter, options: Pick<ResolvedOptions, 'sampling'>): RoundSink {
  return (record) => writer.append(roundEntry(record, options));
}

/** The privacy settings a start or resume entry records. */
export function ledgerSettings(options: ResolvedOptions): LedgerSettings {
  const { dp, secagg } = options;
  return {
    sampling: options.sampling,
    clientsPerRound: options.clientsPerRound ?? null,
    fraction: options.fraction ?? null,
    minClients: options.minClients,
    dp: dp
      ? {
          mode: dp.mode,
          noiseMultiplier: dp.noiseMultiplier,
          clipNorm: dp.clipNorm,
          adaptiveClip: dp.adaptiveClip !== undefined,
          delta: dp.delta ?? 1e-5,
          targetEpsilon: dp.targetEpsilon ?? null,
          accountant: ACCOUNTANT,
        }
      : null,
    secagg: secagg ? { mode: secagg.mode, threshold: secagg.threshold ?? null, shareMetrics: secagg.shareMetrics } : null,
  };
}

/**
 * The config hash of a start entry: SHA-256 of the canonical JSON (keys sorted, undefined and
 * functions dropped) of `config` when the caller passes the whole parsed config (`serve`,
 * `simulate`), else of the options that decide what the run's privacy is: rounds, cohort and
 * sampling, minClients, train, the strategy's name, dp, secagg, maxUpdateNorm and seed.
 */
export function ledgerConfigHash(options: ResolvedOptions, config?: unknown): string {
  const { rounds, clientsPerRound, fraction, minClients, sampling, train, strategy, dp, secagg, maxUpdateNorm, seed } = options;
  const hashed = config ?? { rounds, clientsPerRound, fraction, minClients, sampling, train, strategy: strategy.name, dp, secagg, maxUpdateNorm, seed };
  return sha256(canonicalJson(hashed));
}

/** JSON with object keys sorted at every level; undefined and functions are left out, as JSON.stringify does. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    typeof inner === 'object' && inner !== null && !Array.isArray(inner) && !ArrayBuffer.isView(inner)
      ? Object.fromEntries(Object.keys(inner).sort().map((key) => [key, (inner as Record<string, unknown>)[key]]))
      : inner,
  );
}

/** The version of @shoal/coordinator (its package.json sits one folder above src/ and dist/ alike). */
export const CODE_VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

// ---- restart ----

/** What a restarting coordinator knows from its newest checkpoint. */
export interface CheckpointFacts {
  readonly round: number;
  readonly runId: string;
  /** ε the checkpoint's accountant has spent (null without DP). */
  readonly epsilon: number | null;
  readonly ledger?: LedgerHead;
}

/**
 * The restart rule (docs/privacy.md): the ledger is the accountant's source of truth, so the
 * coordinator resumes only from a checkpoint that is level with it (or one round ahead, when the
 * process stopped between the checkpoint and the ledger write, which the checkpoint's anchor
 * proves); without DP it may also be behind (a rollback, recorded by the resume entry). Returns how
 * to go on: `new` (write a start entry; `archive`: first move the old ledger, which recorded no
 * round, or no DP, to ledger-<its run id>.jsonl) or `resume`. Throws ShoalError INVALID_CONFIG
 * naming both sides.
 */
export function reconcileLedger(
  dir: string,
  ledger: LedgerVerification | undefined,
  checkpoint: CheckpointFacts | undefined,
  dp: boolean,
): { readonly action: 'new'; readonly archive: boolean } | { readonly action: 'resume' } {
  const path = join(dir, LEDGER_FILE);
  if (ledger !== undefined && !ledger.ok) {
    throw new ShoalError('INVALID_CONFIG', `privacy ledger ${path} fails verification: entry ${ledger.entry} ${ledger.problem}; restore the original ledger (shoal ledger verify ${dir}) or start the run in a new folder`);
  }
  if (ledger === undefined) {
    if (checkpoint === undefined || !dp) return { action: 'new', archive: false };
    throw new ShoalError(
      'INVALID_CONFIG',
      `checkpoint of round ${checkpoint.round} in ${dir} has spent ε = ${checkpoint.epsilon}, but its privacy ledger ${path} is missing: the ledger is the record of the ε spent; restore it, or start the run in a new folder`,
    );
  }
  const entries = ledger.entries;
  const round = ledgerRound(entries);
  const epsilon = ledgerEpsilon(entries);
  if (checkpoint === undefined) {
    if (round === 0 || !dp) return { action: 'new', archive: true };
    throw behind(dir, path, 'no checkpoint', round, epsilon);
  }
  const runId = (entries[0] as StartEntry).runId;
  if (runId !== checkpoint.runId) {
    throw new ShoalError('INVALID_CONFIG', `checkpoint of round ${checkpoint.round} in ${dir} belongs to run ${checkpoint.runId}, but the privacy ledger ${path} records run ${runId}: keep each run's checkpoints and ledger together`);
  }
  const headIsAnchor = checkpoint.ledger !== undefined && ledger.head !== undefined && checkpoint.ledger.seq === ledger.head.seq && checkpoint.ledger.hash === ledger.head.hash;
  const levelOrOneAhead = checkpoint.round === round || (checkpoint.round === round + 1 && headIsAnchor);
  if (!dp && checkpoint.round < round) return { action: 'resume' }; // a rollback, which the resume entry records
  if (checkpoint.round < round || (epsilon !== null && (checkpoint.epsilon ?? 0) < epsilon)) {
    throw behind(dir, path, `checkpoint of round ${checkpoint.round} (ε = ${checkpoint.epsilon})`, round, epsilon);
  }
  if (!levelOrOneAhead) {
    throw new ShoalError(
      'INVALID_CONFIG',
      `checkpoint of round ${checkpoint.round} (ε = ${checkpoint.epsilon}) in ${dir} is ahead of its privacy ledger ${path}, which ends at round ${round} (ε = ${epsilon}): entries were cut from the ledger; restore it`,
    );
  }
  return { action: 'resume' };
}

function behind(dir: string, path: string, what: string, round: number, epsilon: number | null): ShoalError {
  return new ShoalError(
    'INVALID_CONFIG',
    `${what} in ${dir} is behind the privacy ledger ${path}, which records round ${round} (ε = ${epsilon}): resuming would spend privacy the ledger already counts; restore the newest checkpoint, or start a new run in another folder`,
  );
}

// ---- the privacy history ----

/** One line per round of a verified ledger: round, status, cohort, q, z, C, SecAgg, ε. */
export function privacyHistory(entries: readonly LedgerEntry[]): string[] {
  const lines: string[] = [];
  for (const entry of entries) {
    if (entry.type === 'round') {
      const secagg = entry.secagg ? `${entry.secagg.mode} t=${entry.secagg.threshold} survivors=${entry.secagg.survivors}` : 'off';
      lines.push(
        `round ${entry.round} ${entry.status}${entry.reason ? ` (${entry.reason})` : ''}: cohort ${entry.participants}/${entry.selected}, ` +
          `q=${sixDigits(entry.q)} z=${sixDigits(entry.noiseMultiplier)} C=${sixDigits(entry.clipNorm)}, SecAgg ${secagg}, ε=${sixDigits(entry.epsilon)}${entry.delta !== null ? ` (δ=${entry.delta})` : ''}`,
      );
    } else if (entry.type === 'end') {
      lines.push(`end after round ${entry.round}: ${entry.stoppedBy}, ε=${sixDigits(entry.epsilon)}`);
    } else {
      lines.push(`${entry.type} of run ${entry.runId} after round ${entry.round} (code ${entry.codeVersion}, config ${entry.configHash.slice(0, 12)}), ε=${sixDigits(entry.epsilon)}`);
    }
  }
  return lines;
}

/** Six significant digits, as the privacy history and the model card print figures; '-' for none, 'n/a' for NaN. */
export function sixDigits(value: number | null): string {
  return value === null ? '-' : Number.isNaN(value) ? 'n/a' : String(Number(value.toPrecision(6)));
}
