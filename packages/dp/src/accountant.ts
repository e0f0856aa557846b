import { ShoalError } from '@shoal/protocol';
import { checkCount, checkDelta, checkNoiseMultiplier, checkPositive, checkSampleRate } from './checks.js';
import { computeRdp, epsilonFromRdp, rdpOfStep, type PrivacySpent } from './rdp.js';

/**
 * The default RDP orders: Opacus's list, 1.1, 1.2, …, 10.9 and 12…63, plus the extra orders of
 * Google's dp_accounting (11, and 128, 256, 512, 1024 for small ε). 156 orders.
 */
export const DEFAULT_RDP_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, k) => 1 + (k + 1) / 10),
  ...Array.from({ length: 53 }, (_, k) => 11 + k),
  128,
  256,
  512,
  1024,
]);

/** `steps` rounds at sampling rate q with noise multiplier z. */
export interface AccountantEntry {
  readonly q: number;
  readonly noiseMultiplier: number;
  readonly steps: number;
}

/** A JSON-safe number: ∞ (an RDP order or an unbounded RDP value) is written as the string "Infinity". */
export type JsonNumber = number | 'Infinity';

/** The accountant's state as plain JSON-safe data, for checkpoints. */
export interface AccountantState {
  readonly orders: readonly JsonNumber[];
  /** Total RDP at each order. */
  readonly rdp: readonly JsonNumber[];
  /** What was composed, in order; consecutive entries with the same q and z are merged. */
  readonly history: readonly AccountantEntry[];
}

function checkOrders(orders: readonly number[]): number[] {
  if (!Array.isArray(orders) || orders.length === 0) throw new ShoalError('INVALID_CONFIG', 'orders must be a non-empty array of RDP orders > 1');
  for (const order of orders) {
    if (typeof order !== 'number' || !(order > 1)) throw new ShoalError('INVALID_CONFIG', `RDP orders must be numbers > 1, got ${String(order)}`);
  }
  return [...orders];
}

/**
 * Tracks the privacy cost of training: the Rényi DP of the Poisson-subsampled Gaussian mechanism
 * (Mironov, Talwar, Zhang 2019), summed over rounds, and the (ε, δ) it implies. One entry per round
 * (or per run of identical rounds); ε can be asked for at any time.
 *
 * The RDP of one (q, z) step is cached, so a run with fixed q and z costs one full computation
 * (a few milliseconds over the default orders) and then a vector addition per round.
 */
export class RdpAccountant {
  readonly #orders: readonly number[];
  readonly #rdp: Float64Array;
  readonly #history: AccountantEntry[] = [];
  #cached: { q: number; noiseMultiplier: number; rdp: readonly number[] } | undefined;

  /** @param orders RDP orders α > 1 to track; default {@link DEFAULT_RDP_ORDERS}. ∞ is allowed. */
  constructor(orders: readonly number[] = DEFAULT_RDP_ORDERS) {
    this.#orders = Object.freeze(checkOrders(orders));
    this.#rdp = new Float64Array(this.#orders.length);
  }

  get orders(): readonly number[] {
    return this.#orders;
  }

  /** A copy of the total RDP at each order. */
  get rdp(): number[] {
    return Array.from(this.#rdp);
  }

  /** A copy of the history. */
  get history(): AccountantEntry[] {
    return this.#history.map((entry) => ({ ...entry }));
  }

  /**
   * Adds `steps` rounds of the subsampled Gaussian: each client sampled with probability q, noise
   * multiplier z (noise std / clip norm).
   *
   * @param q sampling rate in [0, 1].
   * @param noiseMultiplier z ≥ 0 (0 makes ε infinite).
   * @param steps default 1.
   */
  compose(q: number, noiseMultiplier: number, steps = 1): void {
    const total = this.#rdpAfter(q, noiseMultiplier, steps); // validates the arguments
    if (steps === 0) return;
    this.#rdp.set(total);
    const last = this.#history.at(-1);
    if (last !== undefined && last.q === q && last.noiseMultiplier === noiseMultiplier) {
      this.#history[this.#history.length - 1] = { ...last, steps: last.steps + steps };
    } else {
      this.#history.push({ q, noiseMultiplier, steps });
    }
  }

  /** The ε spent so far at this δ, and the order that gives it. */
  epsilon(delta: number): PrivacySpent {
    return epsilonFromRdp(this.#orders, this.#rdp, checkDelta(delta));
  }

  /**
   * The ε that composing `steps` more rounds would reach, without composing them: lets training
   * stop *before* a round that would exceed its budget. The accountant is unchanged.
   */
  epsilonIfComposed(q: number, noiseMultiplier: number, steps: number, delta: number): PrivacySpent {
    return epsilonFromRdp(this.#orders, this.#rdpAfter(q, noiseMultiplier, steps), checkDelta(delta));
  }

  /** Plain JSON-safe data: `JSON.parse(JSON.stringify(a.toJSON()))` restores with {@link RdpAccountant.fromJSON}. */
  toJSON(): AccountantState {
    return { orders: this.#orders.map(toJsonNumber), rdp: Array.from(this.#rdp, toJsonNumber), history: this.history };
  }

  /** Restores a checkpointed accountant. Throws `ShoalError('CHECKPOINT_CORRUPT')` naming what is wrong. */
  static fromJSON(state: unknown): RdpAccountant {
    const corrupt = (what: string) => new ShoalError('CHECKPOINT_CORRUPT', `accountant state: ${what}`);
    if (typeof state !== 'object' || state === null) throw corrupt('not an object');
    const { orders, rdp, history } = state as Record<string, unknown>;
    if (!Array.isArray(orders) || orders.length === 0) throw corrupt('orders must be a non-empty array');
    if (!Array.isArray(rdp) || rdp.length !== orders.length) throw corrupt('rdp must be an array with one value per order');
    if (!Array.isArray(history)) throw corrupt('history must be an array');
    const parsedOrders = orders.map((order: unknown) => {
      const value = fromJsonNumber(order);
      if (!(value > 1)) throw corrupt(`order ${JSON.stringify(order)} is not a number > 1`);
      return value;
    });
    const accountant = new RdpAccountant(parsedOrders);
    rdp.forEach((value: unknown, k) => {
      const parsed = fromJsonNumber(value);
      if (!(parsed >= 0)) throw corrupt(`rdp[${k}] = ${JSON.stringify(value)} is not a number >= 0`);
      accountant.#rdp[k] = parsed;
    });
    for (const entry of history as unknown[]) {
      const { q, noiseMultiplier, steps } = (entry ?? {}) as Record<string, unknown>;
      const valid =
        typeof q === 'number' && q >= 0 && q <= 1 &&
        typeof noiseMultiplier === 'number' && Number.isFinite(noiseMultiplier) && noiseMultiplier >= 0 &&
        typeof steps === 'number' && Number.isSafeInteger(steps) && steps > 0;
      if (!valid) throw corrupt(`history entry ${JSON.stringify(entry)} needs q in [0, 1], noiseMultiplier >= 0 and steps >= 1`);
      accountant.#history.push({ q, noiseMultiplier, steps });
    }
    return accountant;
  }

  /** The total RDP after `steps` more rounds (validated), as a new array. */
  #rdpAfter(q: number, noiseMultiplier: number, steps: number): Float64Array {
    checkSampleRate(q, 'q');
    checkNoiseMultiplier(noiseMultiplier);
    checkCount(steps, 'steps');
    const total = this.#rdp.slice();
    if (steps === 0) return total; // 0 · ∞ would be NaN
    const stepRdp = this.#stepRdp(q, noiseMultiplier);
    for (let k = 0; k < total.length; k++) total[k] = total[k]! + steps * stepRdp[k]!;
    return total;
  }

  #stepRdp(q: number, noiseMultiplier: number): readonly number[] {
    const cached = this.#cached;
    if (cached !== undefined && cached.q === q && cached.noiseMultiplier === noiseMultiplier) return cached.rdp;
    const rdp = this.#orders.map((order) => rdpOfStep(q, noiseMultiplier, order));
    this.#cached = { q, noiseMultiplier, rdp };
    return rdp;
  }
}

function toJsonNumber(value: number): JsonNumber {
  return value === Infinity ? 'Infinity' : value;
}

function fromJsonNumber(value: unknown): number {
  if (value === 'Infinity') return Infinity;
  return typeof value === 'number' ? value : Number.NaN;
}

export interface NoiseMultiplierQuery {
  /** The ε the whole run may spend. */
  readonly targetEpsilon: number;
  /** Sampling rate per round, in [0, 1]. */
  readonly q: number;
  /** Number of rounds. */
  readonly steps: number;
  readonly delta: number;
  /** Default {@link DEFAULT_RDP_ORDERS}. */
  readonly orders?: readonly number[];
}

export interface NoiseMultiplierResult extends PrivacySpent {
  /** The smallest noise multiplier found whose ε is ≤ the target (to a relative 1e-9). */
  readonly noiseMultiplier: number;
}

/** The largest noise multiplier searched; beyond it the target is called unreachable. */
const MAX_NOISE_MULTIPLIER = 2 ** 20;

/**
 * The noise multiplier z that spends at most `targetEpsilon` over `steps` rounds at sampling rate
 * q, by bisection (ε falls monotonically as z grows). The result errs on the private side: its ε
 * is ≤ the target. Throws INVALID_CONFIG when no z up to 2^20 reaches the target (with few
 * RDP orders, a tiny ε may be out of reach at any noise), naming the ε that was reached.
 */
export function noiseMultiplierFor(query: NoiseMultiplierQuery): NoiseMultiplierResult {
  const targetEpsilon = checkPositive(query.targetEpsilon, 'targetEpsilon');
  const q = checkSampleRate(query.q, 'q');
  const steps = checkCount(query.steps, 'steps');
  const delta = checkDelta(query.delta);
  const orders = checkOrders(query.orders ?? DEFAULT_RDP_ORDERS);
  const spentAt = (z: number) => epsilonFromRdp(orders, computeRdp(q, z, steps, orders), delta);

  const withoutNoise = spentAt(0);
  if (withoutNoise.epsilon <= targetEpsilon) return { noiseMultiplier: 0, ...withoutNoise };
  let low = 0;
  let high = 1;
  let atHigh = spentAt(high);
  while (atHigh.epsilon > targetEpsilon) {
    low = high;
    high *= 2;
    if (high > MAX_NOISE_MULTIPLIER) {
      throw new ShoalError(
        'INVALID_CONFIG',
        `targetEpsilon ${targetEpsilon} is out of reach: even noise multiplier ${MAX_NOISE_MULTIPLIER} spends ε = ${atHigh.epsilon} ` +
          `(q = ${q}, ${steps} steps, δ = ${delta}); raise targetEpsilon or δ, or lower q or the number of rounds`,
      );
    }
    atHigh = spentAt(high);
  }
  while (high - low > 1e-9 * high) {
    const middle = (low + high) / 2;
    const atMiddle = spentAt(middle);
    if (atMiddle.epsilon <= targetEpsilon) {
      high = middle;
      atHigh = atMiddle;
    } else {
      low = middle;
    }
  }
  return { noiseMultiplier: high, ...atHigh };
}
