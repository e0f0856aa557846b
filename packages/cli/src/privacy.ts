// `shoal privacy`: what ε a DP schedule costs, or what noise a target ε needs. Pure arithmetic over
// @shoal/dp's RDP accountant; no coordinator, no model.
import { parseArgs } from 'node:util';
import { noiseMultiplierFor, RdpAccountant } from '@shoal/dp';
import { ShoalError } from '@shoal/protocol';
import { PRIVACY_SYNOPSIS } from './usage.js';

/** The answer `shoal privacy` prints. */
export interface PrivacyAnswer {
  readonly epsilon: number;
  readonly order: number;
  readonly noiseMultiplier: number;
}

function usageError(message: string): ShoalError {
  return new ShoalError('INVALID_CONFIG', `${message}\nusage: ${PRIVACY_SYNOPSIS}`);
}

/** A flag's value as a number passing `ok`; a missing or malformed flag is a usage error naming it. */
function numberFlag(name: string, text: string | undefined, rule: string, ok: (value: number) => boolean): number {
  if (text === undefined) throw usageError(`privacy needs --${name} (${rule})`);
  const value = text.trim() === '' ? Number.NaN : Number(text);
  if (Number.isNaN(value) || !ok(value)) throw usageError(`--${name} must be ${rule}, got ${JSON.stringify(text)}`);
  return value;
}

/** Parses the flags and computes the answer. Throws ShoalError('INVALID_CONFIG') naming a bad or missing flag. */
export function answerPrivacy(args: readonly string[]): { answer: PrivacyAnswer; json: boolean; text: string } {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        'sample-rate': { type: 'string' },
        'noise-multiplier': { type: 'string' },
        'target-epsilon': { type: 'string' },
        rounds: { type: 'string' },
        delta: { type: 'string' },
        json: { type: 'boolean' },
      },
    }));
  } catch (cause) {
    throw usageError((cause as Error).message);
  }
  const q = numberFlag('sample-rate', values['sample-rate'], 'the fraction of clients sampled per round, in (0, 1]', (v) => v > 0 && v <= 1);
  const rounds = numberFlag('rounds', values.rounds, 'the number of rounds, an integer >= 1', (v) => Number.isSafeInteger(v) && v >= 1);
  const delta = numberFlag('delta', values.delta, 'δ, in (0, 1)', (v) => v > 0 && v < 1);
  const hasNoise = values['noise-multiplier'] !== undefined;
  const hasTarget = values['target-epsilon'] !== undefined;
  if (hasNoise === hasTarget) throw usageError('privacy needs exactly one of --noise-multiplier and --target-epsilon');

  let answer: PrivacyAnswer;
  let text: string;
  if (hasNoise) {
    const z = numberFlag('noise-multiplier', values['noise-multiplier'], 'the noise std over the clip norm, a finite number > 0', (v) => Number.isFinite(v) && v > 0);
    const accountant = new RdpAccountant();
    accountant.compose(q, z, rounds);
    const spent = accountant.epsilon(delta);
    answer = { ...spent, noiseMultiplier: z };
    text = `ε = ${spent.epsilon.toPrecision(6)} at δ = ${delta} after ${rounds} rounds (sampling rate ${q}, noise multiplier ${z}); best RDP order ${spent.order}\n`;
  } else {
    const targetEpsilon = numberFlag('target-epsilon', values['target-epsilon'], 'a finite number > 0', (v) => Number.isFinite(v) && v > 0);
    answer = noiseMultiplierFor({ targetEpsilon, q, steps: rounds, delta });
    text =
      `noise multiplier ${answer.noiseMultiplier.toPrecision(6)} keeps ε <= ${targetEpsilon} at δ = ${delta} over ${rounds} rounds ` +
      `(sampling rate ${q}); it spends ε = ${answer.epsilon.toPrecision(6)}, best RDP order ${answer.order}\n`;
  }
  return { answer, json: values.json === true, text };
}

/** The `privacy` command: prints the answer as a sentence, or as one JSON object with --json. */
export function privacy(args: readonly string[]): number {
  const { answer, json, text } = answerPrivacy(args);
  const { epsilon, order, noiseMultiplier } = answer;
  process.stdout.write(json ? `${JSON.stringify({ epsilon, order, noiseMultiplier })}\n` : text);
  return 0;
}
