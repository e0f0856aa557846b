// `shoal ledger verify DIR`: checks a privacy ledger's chain (and, when DIR holds checkpoints, that
// no trailing entries were cut, against the newest one) and prints the privacy history.
import { stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { LEDGER_FILE, ledgerRound, privacyHistory, readLatestCheckpoint, readLedger, type Checkpoint, type LedgerVerification } from '@shoal/coordinator';
import { configError } from '@shoal/protocol';
import { LEDGER_SYNOPSIS } from './usage.js';

/** DIR (holding ledger.jsonl and maybe checkpoints) and the ledger's path, from `DIR` or `DIR/ledger.jsonl`. */
export async function ledgerLocation(target: string): Promise<{ dir: string; path: string }> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(target)).isDirectory();
  } catch (cause) {
    throw configError(`cannot read ${target}: ${(cause as Error).message}`, { cause });
  }
  return isDirectory ? { dir: target, path: join(target, LEDGER_FILE) } : { dir: dirname(target), path: target };
}

/** The verification of the ledger in `dir` against the newest checkpoint there, and what the anchor covered. */
export async function verifyLedgerIn(target: string): Promise<{ path: string; result: LedgerVerification; checkpoint: Checkpoint | undefined }> {
  const { dir, path } = await ledgerLocation(target);
  const checkpoint = await readLatestCheckpoint(dir);
  const result = await readLedger(path, checkpoint?.ledger);
  if (result === undefined) throw configError(`no privacy ledger at ${path}: give the folder holding ${LEDGER_FILE} (a checkpoint folder or a simulation's run folder)`);
  return { path, result, checkpoint };
}

/** The `ledger` command: exit 0 and the history when the ledger verifies, 1 naming the entry when not. */
export async function ledger(args: readonly string[]): Promise<number> {
  const [subcommand, target, ...extra] = args;
  if (subcommand !== 'verify' || target === undefined || extra.length > 0) throw configError(`usage: ${LEDGER_SYNOPSIS}`);
  const { path, result, checkpoint } = await verifyLedgerIn(target);
  if (!result.ok) {
    process.stderr.write(`shoal ledger: ${path}: entry ${result.entry} ${result.problem}\n`);
    return 1;
  }
  const lines = [...privacyHistory(result.entries), ...result.notes.map((note) => `note: ${note}`)];
  if (checkpoint === undefined) {
    lines.push(`note: no checkpoint beside ${basename(path)}: deletion of trailing entries cannot be detected (no anchor)`);
  } else {
    const round = ledgerRound(result.entries);
    lines.push(
      checkpoint.ledger === undefined
        ? `note: the newest checkpoint (round ${checkpoint.round}) records no ledger head: deletion of trailing entries cannot be detected`
        : `anchored: the newest checkpoint (round ${checkpoint.round}) records entry ${checkpoint.ledger.seq}, which the ledger holds`,
    );
    if (checkpoint.round === round + 1) lines.push(`note: round ${checkpoint.round} is in the newest checkpoint but not yet in the ledger (the coordinator stopped between the two writes); its next start records it`);
    if (checkpoint.round < round) lines.push(`note: the newest checkpoint (round ${checkpoint.round}) is behind the ledger (round ${round}): a coordinator refuses to resume from it`);
  }
  process.stdout.write(`${path}: ${result.entries.length} entries verified\n${lines.join('\n')}\n`);
  return 0;
}
