import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShoalError } from '@shoal/protocol';
import { createHash } from 'node:crypto';
import { GENESIS_HASH, canonicalJson, ledgerRound, privacyHistory, reconcileLedger, verifyLedger, type LedgerHead } from '../src/ledger.js';
import { dpSettings, writeSampleLedger } from './ledger-fixture.js';

let dir: string;
let text: string;
let lines: string[];
/** The head of the whole sample ledger: what a checkpoint written after its last entry would record. */
let fullHead: LedgerHead;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shoal-ledger-'));
  text = await writeSampleLedger(dir);
  lines = text.trimEnd().split('\n');
  fullHead = { seq: lines.length, hash: createHash('sha256').update(lines.at(-1)!).digest('hex') };
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function failure(result: ReturnType<typeof verifyLedger>): { entry: number; problem: string } {
  if (result.ok) throw new Error('expected the ledger to fail verification');
  return { entry: result.entry, problem: result.problem };
}

describe('verifyLedger', () => {
  it('accepts the written ledger: 12 entries chained from the genesis hash, round numbers and ε increasing', () => {
    const result = verifyLedger(text, fullHead);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.entries.map((e) => e.seq)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(result.entries[0]!.prev).toBe(GENESIS_HASH);
    expect(result.head).toEqual(fullHead);
    expect(ledgerRound(result.entries)).toBe(10);
    expect(result.notes).toEqual([]);
    const history = privacyHistory(result.entries);
    expect(history).toHaveLength(12);
    expect(history[4]).toBe('round 4 aborted (too few survivors): cohort 1/5, q=- z=- C=-, SecAgg secagg+ t=3 survivors=1, ε=' + history[4]!.split('ε=')[1]);
    expect(history[1]).toMatch(/^round 1 committed: cohort 4\/5, q=0\.41 z=1\.1 C=1, SecAgg secagg\+ t=3 survivors=4, ε=[\d.]+ \(δ=0\.00001\)$/);
  });

  it('records an unbounded ε (a noise multiplier of 0) as "Infinity", never as null, and reads it back', async () => {
    const zeroNoise = await mkdtemp(join(tmpdir(), 'shoal-ledger-z0-'));
    try {
      const settings = dpSettings();
      const written = await writeSampleLedger(zeroNoise, 2, { ...settings, dp: { ...settings.dp!, noiseMultiplier: 0 } });
      expect(written).toContain('"epsilon":"Infinity"');
      const result = verifyLedger(written);
      expect(result.ok).toBe(true);
      if (result.ok) expect(result.entries.at(-1)!.epsilon).toBe(Infinity);
    } finally {
      await rm(zeroNoise, { recursive: true, force: true });
    }
  });

  it('names the entry of an edited byte, a deleted line, two swapped lines and a partial last line', () => {
    const edited = text.replace('"participants":4', '"participants":5'); // entry 2 (round 1)
    expect(failure(verifyLedger(edited))).toEqual({ entry: 2, problem: 'its content does not match its own hash: the entry was edited' });
    const deleted = [...lines.slice(0, 5), ...lines.slice(6)].join('\n') + '\n';
    expect(failure(verifyLedger(deleted))).toMatchObject({ entry: 6, problem: expect.stringContaining('has seq 7 where 6 belongs') });
    const swapped = [...lines.slice(0, 3), lines[4], lines[3], ...lines.slice(5)].join('\n') + '\n';
    expect(failure(verifyLedger(swapped))).toMatchObject({ entry: 4, problem: expect.stringContaining('has seq 5 where 4 belongs') });
    expect(failure(verifyLedger(text.slice(0, -20)))).toMatchObject({ entry: 12, problem: expect.stringContaining('partial last line') });
  });

  it('detects trailing whole entries cut off only against an anchor, and says so without one', () => {
    const cut = lines.slice(0, 9).join('\n') + '\n';
    const unanchored = verifyLedger(cut);
    expect(unanchored.ok && unanchored.notes).toEqual(['no end entry: the run is in progress, or stopped without finishing']);
    expect(failure(verifyLedger(cut, fullHead))).toMatchObject({ entry: 10, problem: expect.stringContaining('the newest checkpoint records entry 12') });
  });

  it('refuses ε going down and round numbers going back even when the chain is rewritten consistently', async () => {
    const rewritten = await mkdtemp(join(tmpdir(), 'shoal-ledger-'));
    try {
      const { LedgerWriter, LEDGER_FILE } = await import('../src/ledger.js');
      const writer = new LedgerWriter(join(rewritten, LEDGER_FILE));
      const entries = verifyLedger(text);
      if (!entries.ok) throw new Error('sample ledger invalid');
      for (const [index, entry] of entries.entries.entries()) {
        const { seq: _seq, prev: _prev, ...fields } = entry;
        // Round 6 claims less ε than round 5 did: a forger who recomputes every hash still fails.
        await writer.append(index === 6 ? { ...fields, epsilon: 0.01 } : fields);
      }
      const { readFile } = await import('node:fs/promises');
      expect(failure(verifyLedger(await readFile(join(rewritten, LEDGER_FILE), 'utf8')))).toMatchObject({ entry: 7, problem: expect.stringContaining('ε went down') });
    } finally {
      await rm(rewritten, { recursive: true, force: true });
    }
  });

  it('detects any single-byte change, line deletion or swap of two lines (property)', () => {
    const bytes = Buffer.from(text, 'utf8');
    fc.assert(
      fc.property(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), (position, xor) => {
        const changed = Buffer.from(bytes);
        changed[position] = changed[position]! ^ xor;
        expect(verifyLedger(changed.toString('utf8'), fullHead).ok).toBe(false);
      }),
      { seed: 12, numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.nat({ max: lines.length - 1 }), (index) => {
        const without = lines.filter((_, i) => i !== index);
        expect(verifyLedger(without.join('\n') + '\n', fullHead).ok).toBe(false);
      }),
      { seed: 13 },
    );
    fc.assert(
      fc.property(fc.nat({ max: lines.length - 1 }), fc.nat({ max: lines.length - 1 }), (i, j) => {
        fc.pre(i !== j);
        const swapped = [...lines];
        [swapped[i], swapped[j]] = [swapped[j]!, swapped[i]!];
        const result = verifyLedger(swapped.join('\n') + '\n', fullHead);
        expect(result.ok).toBe(false);
        expect(result.ok ? 0 : result.entry).toBe(Math.min(i, j) + 1);
      }),
      { seed: 14 },
    );
  });
});

describe('reconcileLedger (the restart rule)', () => {
  const verified = () => verifyLedger(text);
  const entries = () => {
    const result = verified();
    if (!result.ok) throw new Error('sample ledger invalid');
    return result;
  };

  it('resumes from a checkpoint level with the ledger, and from one a round ahead when its anchor is the ledger head', () => {
    const ledger = entries();
    const epsilon = ledger.entries.at(-1)!.epsilon;
    expect(reconcileLedger(dir, ledger, { round: 10, runId: 'run1', epsilon }, true)).toEqual({ action: 'resume' });
    expect(reconcileLedger(dir, ledger, { round: 11, runId: 'run1', epsilon: epsilon! + 0.1, ledger: ledger.head! }, true)).toEqual({ action: 'resume' });
  });

  it('refuses a checkpoint behind the ledger, naming both rounds and ε', () => {
    const ledger = entries();
    const epsilon = ledger.entries.at(-1)!.epsilon!;
    const error = (() => {
      try {
        reconcileLedger(dir, ledger, { round: 9, runId: 'run1', epsilon: 1.5 }, true);
      } catch (caught) {
        return caught as ShoalError;
      }
      throw new Error('expected a refusal');
    })();
    expect(error).toBeInstanceOf(ShoalError);
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toContain('checkpoint of round 9 (ε = 1.5)');
    expect(error.message).toContain(`records round 10 (ε = ${epsilon})`);
  });

  it('refuses: no checkpoint under a ledger with rounds; a missing ledger under a DP checkpoint; a ledger failing verification; a checkpoint ahead without its anchor; another run', () => {
    const ledger = entries();
    expect(() => reconcileLedger(dir, ledger, undefined, true)).toThrow(/no checkpoint in .* is behind the privacy ledger .* round 10/);
    expect(() => reconcileLedger(dir, undefined, { round: 3, runId: 'run1', epsilon: 0.5 }, true)).toThrow(/ε = 0\.5, but its privacy ledger .* is missing/);
    expect(() => reconcileLedger(dir, verifyLedger(text.replace('"selected":5', '"selected":6')), { round: 10, runId: 'run1', epsilon: 9 }, true)).toThrow(/fails verification: entry 2 /);
    expect(() => reconcileLedger(dir, ledger, { round: 12, runId: 'run1', epsilon: 99 }, true)).toThrow(/ahead of its privacy ledger/);
    expect(() => reconcileLedger(dir, ledger, { round: 10, runId: 'other', epsilon: 99 }, true)).toThrow(/belongs to run other/);
  });

  it('starts a new ledger when there is nothing to resume: no ledger, no DP checkpoint, or a ledger without rounds', () => {
    expect(reconcileLedger(dir, undefined, undefined, true)).toEqual({ action: 'new', archive: false });
    expect(reconcileLedger(dir, undefined, { round: 3, runId: 'r', epsilon: null }, false)).toEqual({ action: 'new', archive: false });
    expect(reconcileLedger(dir, verifyLedger(`${lines[0]}\n`), undefined, true)).toEqual({ action: 'new', archive: true });
  });

  it('without DP, resumes from a checkpoint behind the ledger (a rollback the resume entry records)', () => {
    expect(reconcileLedger(dir, entries(), { round: 7, runId: 'run1', epsilon: null }, false)).toEqual({ action: 'resume' });
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every level and is independent of insertion order (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.oneof(fc.integer(), fc.string(), fc.dictionary(fc.string(), fc.integer()))), (object) => {
        const reversed = Object.fromEntries(Object.entries(object).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(object));
        expect(JSON.parse(canonicalJson(object))).toEqual(JSON.parse(JSON.stringify(object)));
      }),
      { seed: 15 },
    );
  });
});
