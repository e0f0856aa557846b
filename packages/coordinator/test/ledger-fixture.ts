// A real ledger for tests: written by LedgerWriter to a real file, with ε from the real accountant.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RdpAccountant } from '@shoal/dp';
import { ACCOUNTANT, LEDGER_FILE, LedgerWriter, type LedgerSettings } from '../src/ledger.js';

export const DELTA = 1e-5;

export function dpSettings(overrides: Partial<LedgerSettings> = {}): LedgerSettings {
  return {
    sampling: 'poisson',
    clientsPerRound: 4,
    fraction: null,
    minClients: 2,
    dp: { mode: 'central', noiseMultiplier: 1.1, clipNorm: 1, adaptiveClip: false, delta: DELTA, targetEpsilon: null, accountant: ACCOUNTANT },
    secagg: { mode: 'secagg+', threshold: 3, shareMetrics: false },
    ...overrides,
  };
}

/**
 * Writes start, `rounds` round entries (round 4 aborted before its sum: no charge) and end to
 * DIR/ledger.jsonl; returns the file's text. Without DP (settings.dp null) ε and the charge are null.
 */
export async function writeSampleLedger(dir: string, rounds = 10, settings: LedgerSettings = dpSettings()): Promise<string> {
  const writer = new LedgerWriter(join(dir, LEDGER_FILE));
  const accountant = new RdpAccountant();
  const dp = settings.dp;
  const epsilon = () => (dp ? accountant.epsilon(DELTA).epsilon : null);
  const base = { runId: 'run1', configHash: 'c'.repeat(64), codeVersion: '0.1.0', parameters: 15, settings };
  await writer.append({ type: 'start', time: '2025-01-01T00:00:00.000Z', round: 0, modelHash: 'm0', epsilon: epsilon(), delta: dp ? DELTA : null, ...base });
  for (let round = 1; round <= rounds; round++) {
    const charged = dp !== null && round !== 4;
    const q = 0.4 + 0.01 * (round % 3);
    if (charged) accountant.compose(q, dp.noiseMultiplier);
    await writer.append({
      type: 'round',
      round,
      status: round === 4 ? 'aborted' : 'committed',
      reason: round === 4 ? 'too few survivors' : null,
      selected: 5,
      participants: round === 4 ? 1 : 4,
      sampling: settings.sampling,
      q: charged ? q : null,
      noiseMultiplier: charged ? dp.noiseMultiplier : null,
      clipNorm: charged ? dp.clipNorm : null,
      secagg: settings.secagg ? { mode: settings.secagg.mode, threshold: 3, survivors: round === 4 ? 1 : 4 } : null,
      epsilon: epsilon(),
      delta: dp ? DELTA : null,
      modelHash: `m${round === 4 ? 3 : round}`,
      subjectRequests: round === 2 ? { access: 1, erasure: 2 } : null,
    });
  }
  await writer.append({ type: 'end', time: '2025-01-01T01:00:00.000Z', stoppedBy: 'completed', round: rounds, modelHash: `m${rounds}`, epsilon: epsilon(), delta: dp ? DELTA : null });
  return readFile(join(dir, LEDGER_FILE), 'utf8');
}
