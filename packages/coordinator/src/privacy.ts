import {
  RdpAccountant,
  adaptiveClipping,
  cryptoNoise,
  distributedNoiseStd,
  nextClipNorm,
  splitNoiseMultiplier,
  type AccountantState,
  type AdaptiveClipping,
  type NoiseSource,
} from '@shoal/dp';
import { ShoalError, type TrainConfig } from '@shoal/protocol';
import { withCentralDp, type Strategy } from '@shoal/strategy';

/** Client-level differential privacy (DESIGN.md §6). Defaults on each field. */
export interface DpOptions {
  /** `central`: a trusted coordinator adds the noise; `distributed`: each client adds its share, under secure aggregation. */
  readonly mode: 'central' | 'distributed';
  /** z: noise std as a multiple of the clip norm. */
  readonly noiseMultiplier: number;
  /** C: the L2 norm every update is clipped to (the starting value with adaptive clipping). */
  readonly clipNorm: number;
  /** Adapt C to the `targetQuantile` of update norms (Andrew et al. 2021). Default: fixed C. */
  readonly adaptiveClip?: { readonly targetQuantile?: number; readonly learningRate?: number; readonly countNoiseStd?: number };
  /** δ of the reported (ε, δ). Default 1e-5. */
  readonly delta?: number;
  /** Training stops before a round that would take ε past this. Default: no limit. */
  readonly targetEpsilon?: number;
}

/** Privacy state that outlives a process: it goes into every checkpoint. */
export interface PrivacyState {
  readonly accountant: AccountantState;
  readonly clipNorm: number;
}

/** What one round's DP settings are, for its metrics. */
export interface PrivacyMetrics {
  readonly epsilon: number;
  readonly delta: number;
  readonly clipNorm: number;
  /** Std of the noise added to the sum of updates (central: by the coordinator; distributed: by all clients together). */
  readonly noiseStd: number;
}

/**
 * The coordinator's privacy rules, fixed for a run: the clip norm and noise each round asks for,
 * the strategy decorator that adds central noise, and the RDP accountant's charge for a committed
 * round. It holds no state: each method takes the `PrivacyState` (accountant and current clip
 * norm) and returns a new one, so the round's record carries exactly what the round changed.
 */
export class PrivacyPolicy {
  private readonly adaptive: AdaptiveClipping | undefined;
  /** The multiplier left for the update noise once the unclipped count has taken its share. */
  private readonly updateNoiseMultiplier: number;
  readonly delta: number;

  constructor(
    private readonly options: DpOptions,
    private readonly expectedClients: number,
    /** The fewest updates a round can commit with: distributed noise is sized so that many suffice. */
    private readonly minClients: number,
    /** Rounds use secure aggregation: the unclipped bits must then travel masked, with the update. */
    private readonly secure: boolean,
    private readonly noise: NoiseSource = cryptoNoise(),
  ) {
    if (!(options.noiseMultiplier >= 0)) throw new ShoalError('INVALID_CONFIG', `dp.noiseMultiplier must be ≥ 0, got ${options.noiseMultiplier}`);
    if (!(options.clipNorm > 0)) throw new ShoalError('INVALID_CONFIG', `dp.clipNorm must be positive, got ${options.clipNorm}`);
    this.delta = options.delta ?? 1e-5;
    this.adaptive = options.adaptiveClip && adaptiveClipping({ expectedClients, ...options.adaptiveClip });
    this.updateNoiseMultiplier = this.adaptive ? splitNoiseMultiplier(options.noiseMultiplier, this.adaptive.countNoiseStd) : options.noiseMultiplier;
  }

  /** Nothing spent yet, and the configured clip norm. */
  initialState(): PrivacyState {
    return { accountant: new RdpAccountant().toJSON(), clipNorm: this.options.clipNorm };
  }

  get mode(): DpOptions['mode'] {
    return this.options.mode;
  }

  /** The round's train config: clients clip to C, and (distributed) add their share of the noise. */
  trainConfig(base: TrainConfig, state: PrivacyState): TrainConfig {
    return {
      ...base,
      clipNorm: state.clipNorm,
      ...(this.options.mode === 'distributed' ? { noiseStd: this.clientNoiseStd(state) } : {}),
      ...(this.sendsMaskedBit ? { bitNoiseStd: this.bitNoiseStd() } : {}),
    };
  }

  /** Adaptive clipping under SecAgg: the bit is one more masked value (noised by clients only in distributed mode). */
  get sendsMaskedBit(): boolean {
    return this.adaptive !== undefined && this.secure;
  }

  /** Distributed DP: each client's noise on its bit, so that the sum carries σ_b (central: the coordinator adds it). */
  private bitNoiseStd(): number {
    return this.adaptive && this.options.mode === 'distributed' ? this.adaptive.countNoiseStd / Math.sqrt(this.minClients) : 0;
  }

  /** Distributed DP: each client's noise std, so that any minClients of them together carry z·C. */
  private clientNoiseStd(state: PrivacyState): number {
    return this.options.mode === 'distributed' ? distributedNoiseStd(this.updateNoiseMultiplier, state.clipNorm, this.minClients) : 0;
  }

  /**
   * The strategy for this round. Central: noise on the sum and the fixed denominator. Distributed:
   * the clients already noised their updates, so only uniform weights and the fixed denominator.
   */
  strategy(inner: Strategy, state: PrivacyState): Strategy {
    const noiseMultiplier = this.options.mode === 'central' ? this.updateNoiseMultiplier : 0;
    return withCentralDp(inner, { noiseMultiplier, clipNorm: state.clipNorm, expectedClients: this.expectedClients, noise: this.noise });
  }

  /** Why the next round must not run (it would take ε past the target), or undefined. */
  budgetExhausted(state: PrivacyState, sampleRate: number): string | undefined {
    const target = this.options.targetEpsilon;
    if (target === undefined) return undefined;
    const next = RdpAccountant.fromJSON(state.accountant).epsilonIfComposed(sampleRate, this.options.noiseMultiplier, 1, this.delta);
    if (next.epsilon <= target) return undefined;
    return `another round would spend ε = ${next.epsilon.toFixed(4)} > targetEpsilon ${target} (δ = ${this.delta})`;
  }

  /**
   * The charge of a committed round (its cohort was sampled at rate q) and, with adaptive
   * clipping, the clip norm moved toward the target quantile using the round's count of
   * unclipped updates: the new state, and the round's privacy metrics.
   */
  charge(state: PrivacyState, sampleRate: number, unclipped?: { readonly count: number; readonly reports: number; readonly noised: boolean }): { state: PrivacyState; metrics: PrivacyMetrics } {
    const accountant = RdpAccountant.fromJSON(state.accountant);
    accountant.compose(sampleRate, this.options.noiseMultiplier);
    let clipNorm = state.clipNorm;
    if (this.adaptive && unclipped && unclipped.reports > 0) {
      // Distributed rounds get a count the clients already noised (it only arrives summed).
      const config = unclipped.noised ? { ...this.adaptive, countNoiseStd: 0 } : this.adaptive;
      const count = Math.min(unclipped.reports, Math.max(0, Math.round(unclipped.count)));
      clipNorm = nextClipNorm(state.clipNorm, { unclipped: count, reports: unclipped.reports }, config, this.noise).clipNorm;
    }
    const next = { accountant: accountant.toJSON(), clipNorm };
    return { state: next, metrics: { ...this.spent(next), clipNorm: state.clipNorm, noiseStd: this.updateNoiseMultiplier * state.clipNorm } };
  }

  /**
   * The charge of a round whose sum was released but never committed (`Release`): its own (q, z),
   * as written before the release; the clip norm stays (the round's count of unclipped updates
   * died with the process).
   */
  chargeRelease(state: PrivacyState, charge: { readonly sampleRate: number; readonly noiseMultiplier: number }): { state: PrivacyState; metrics: PrivacyMetrics } {
    const accountant = RdpAccountant.fromJSON(state.accountant);
    accountant.compose(charge.sampleRate, charge.noiseMultiplier);
    const next = { accountant: accountant.toJSON(), clipNorm: state.clipNorm };
    return { state: next, metrics: { ...this.spent(next), clipNorm: state.clipNorm, noiseStd: this.updateNoiseMultiplier * state.clipNorm } };
  }

  /** The privacy spent so far. */
  spent(state: PrivacyState): { epsilon: number; delta: number } {
    return { epsilon: RdpAccountant.fromJSON(state.accountant).epsilon(this.delta).epsilon, delta: this.delta };
  }

  /**
   * The largest value a client may put in one masked coordinate under DP: its clipped update
   * (|xᵢ| ≤ C), its noise, and the unclipped bit, with six standard deviations of noise headroom
   * (values past it are clamped, which changes the noise slightly; docs/privacy.md).
   */
  valueBound(state: PrivacyState): number {
    return Math.max(state.clipNorm, 1) + 6 * Math.max(this.clientNoiseStd(state), this.bitNoiseStd());
  }
}
