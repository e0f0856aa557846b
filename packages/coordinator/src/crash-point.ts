import { configError } from '@shoal/protocol';
import type { AnswerKind } from './ports.js';

/**
 * Explicit crash points for crash tests: the environment variable `SHOAL_CRASH_AT=<step>:<target>`
 * makes the process SIGKILL itself at exactly that point, instead of hoping that a timed kill lands
 * there. Unset (the default), a check costs one environment lookup. This module is the only
 * reader of the variable.
 *
 * - File steps (`writeFileAtomically`; target: a file name such as `round-000003.ckpt`):
 *   `mid-write` (half of the bytes are in the synced temporary file), `before-rename` (the whole
 *   temporary file is synced), `after-rename` (renamed, the folder not yet synced).
 * - Stage steps (the local cohort; target: a round number such as `3`): the process dies as soon as
 *   the first answer of that stage of that round has been accepted, so the stage is under way and
 *   its other answers are still due. `mid-unmask` (a survivor's shares for unmasking arrived, the
 *   sum is not yet reconstructed), `mid-masked` (a masked input arrived, others still train),
 *   `mid-advertise`, `mid-share`, `mid-confirm`, and `mid-update` for a plain round.
 * - Leader steps (a scale-out leader; target: a round number): `mid-aggregate` (the round moved to
 *   aggregating, the groups' sums are being added, nothing is committed), `after-end` (the round's
 *   end is in Redis, its checkpoint and ledger entry are not yet written).
 */
export type FileCrashStep = 'mid-write' | 'before-rename' | 'after-rename';
export type StageCrashStep = 'mid-advertise' | 'mid-share' | 'mid-masked' | 'mid-confirm' | 'mid-unmask' | 'mid-update';
export type LeaderCrashStep = 'mid-aggregate' | 'after-end';
export type CrashStep = FileCrashStep | StageCrashStep | LeaderCrashStep;

const FILE_STEPS: readonly FileCrashStep[] = ['mid-write', 'before-rename', 'after-rename'];

/** The stage step of each answer kind a round gathers (federated evaluation has none). */
const STAGE_STEPS: Readonly<Partial<Record<AnswerKind, StageCrashStep>>> = {
  update: 'mid-update',
  advertise: 'mid-advertise',
  shares: 'mid-share',
  masked: 'mid-masked',
  confirm: 'mid-confirm',
  reveal: 'mid-unmask',
};

const LEADER_STEPS: readonly LeaderCrashStep[] = ['mid-aggregate', 'after-end'];

const STEPS: readonly CrashStep[] = [...FILE_STEPS, ...Object.values(STAGE_STEPS), ...LEADER_STEPS];

/** Where `SHOAL_CRASH_AT` asks to crash, or undefined when it is unset. Throws INVALID_CONFIG on a malformed setting. */
export function crashPoint(): { readonly step: CrashStep; readonly target: string } | undefined {
  const setting = process.env['SHOAL_CRASH_AT'];
  if (setting === undefined || setting === '') return undefined;
  const separator = setting.indexOf(':');
  const step = setting.slice(0, separator) as CrashStep;
  if (separator < 0 || !STEPS.includes(step)) {
    throw configError(`SHOAL_CRASH_AT must be <step>:<target> with step one of ${STEPS.join(', ')}; got "${setting}"`);
  }
  return { step, target: setting.slice(separator + 1) };
}

/** The file step at which to crash while writing the file named `fileName`, if `SHOAL_CRASH_AT` names it. */
export function fileCrashStep(fileName: string): FileCrashStep | undefined {
  const point = crashPoint();
  return point !== undefined && point.target === fileName && (FILE_STEPS as readonly string[]).includes(point.step) ? (point.step as FileCrashStep) : undefined;
}

/** Crashes now if `SHOAL_CRASH_AT` names the stage that gathers `kind` answers in `round`. */
export function crashInStageIfAsked(kind: AnswerKind, round: number): void {
  const point = crashPoint();
  if (point !== undefined && point.step === STAGE_STEPS[kind] && point.target === String(round)) crashNow();
}

/** Crashes now if `SHOAL_CRASH_AT` names this leader step of `round`. */
export function crashAtLeaderStepIfAsked(step: LeaderCrashStep, round: number): void {
  const point = crashPoint();
  if (point !== undefined && point.step === step && point.target === String(round)) crashNow();
}

/** SIGKILLs this process: nothing after it runs, no handler, no flush (as a power cut or the OOM killer). */
export function crashNow(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable: SIGKILL did not stop the process');
}
