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
 * The coordinator's privacy bookkeeping: the clip norm of each round, the noise it asks for, the
 * strategy decorator that adds central noise, and the RDP accountant that charges every committed
 * round and refuses one that would exceed the budget.
 */
export class PrivacyController {
  private readonly accountant: RdpAccountant;
  private clipNorm: number;
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
    restored?: PrivacyState,
    private readonly noise: NoiseSource = cryptoNoise(),
  ) {
    if (!(options.noiseMultiplier >= 0)) throw new ShoalError('INVALID_CONFIG', `dp.noiseMultiplier must be ≥ 0, got ${options.noiseMultiplier}`);
    if (!(options.clipNorm > 0)) throw new ShoalError('INVALID_CONFIG', `dp.clipNorm must be positive, got ${options.clipNorm}`);
    this.delta = options.delta ?? 1e-5;
    this.adaptive = options.adaptiveClip && adaptiveClipping({ expectedClients, ...options.adaptiveClip });
    this.updateNoiseMultiplier = this.adaptive ? splitNoiseMultiplier(options.noiseMultiplier, this.adaptive.countNoiseStd) : options.noiseMultiplier;
    this.accountant = restored ? RdpAccountant.fromJSON(restored.accountant) : new RdpAccountant();
    this.clipNorm = restored?.clipNorm ?? options.clipNorm;
  }

  get mode(): DpOptions['mode'] {
    return this.options.mode;
  }

  get adaptiveClipping(): boolean {
    return this.adaptive !== undefined;
  }

  /** The round's train config: clients clip to C, and (distributed) add their share of the noise. */
  trainConfig(base: TrainConfig): TrainConfig {
    return {
      ...base,
      clipNorm: this.clipNorm,
      ...(this.options.mode === 'distributed' ? { noiseStd: this.clientNoiseStd() } : {}),
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
  clientNoiseStd(): number {
    return this.options.mode === 'distributed' ? distributedNoiseStd(this.updateNoiseMultiplier, this.clipNorm, this.minClients) : 0;
  }

  /**
   * The strategy for this round. Central: noise on the sum and the fixed denominator. Distributed:
   * the clients already noised their updates, so only uniform weights and the fixed denominator.
   */
  strategy(inner: Strategy): Strategy {
    const noiseMultiplier = this.options.mode === 'central' ? this.updateNoiseMultiplier : 0;
    return withCentralDp(inner, { noiseMultiplier, clipNorm: this.clipNorm, expectedClients: this.expectedClients, noise: this.noise });
  }

  /** Why the next round must not run (it would take ε past the target), or undefined. */
  budgetExhausted(sampleRate: number): string | undefined {
    const target = this.options.targetEpsilon;
    if (target === undefined) return undefined;
    const next = this.accountant.epsilonIfComposed(sampleRate, this.options.noiseMultiplier, 1, this.delta);
    if (next.epsilon <= target) return undefined;
    return `another round would spend ε = ${next.epsilon.toFixed(4)} > targetEpsilon ${target} (δ = ${this.delta})`;
  }

  /**
   * Charges a committed round (its cohort was sampled at rate q) and, with adaptive clipping,
   * moves C toward the target quantile using the round's count of unclipped updates.
   */
  commit(sampleRate: number, unclipped?: { readonly count: number; readonly reports: number; readonly noised: boolean }): PrivacyMetrics {
    const noiseStd = this.updateNoiseMultiplier * this.clipNorm;
    const clipNorm = this.clipNorm;
    this.accountant.compose(sampleRate, this.options.noiseMultiplier);
    if (this.adaptive && unclipped && unclipped.reports > 0) {
      // Distributed rounds get a count the clients already noised (it only arrives summed).
      const config = unclipped.noised ? { ...this.adaptive, countNoiseStd: 0 } : this.adaptive;
      const count = Math.min(unclipped.reports, Math.max(0, Math.round(unclipped.count)));
      this.clipNorm = nextClipNorm(this.clipNorm, { unclipped: count, reports: unclipped.reports }, config, this.noise).clipNorm;
    }
    return { ...this.epsilonNow(), clipNorm, noiseStd };
  }

  /** The privacy spent so far. */
  epsilonNow(): { epsilon: number; delta: number } {
    return { epsilon: this.accountant.epsilon(this.delta).epsilon, delta: this.delta };
  }

  /**
   * The largest value a client may put in one masked coordinate under DP: its clipped update
   * (|xᵢ| ≤ C), its noise, and the unclipped bit, with six standard deviations of noise headroom
   * (values past it are clamped, which changes the noise slightly; docs/privacy.md).
   */
  valueBound(): number {
    return Math.max(this.clipNorm, 1) + 6 * Math.max(this.clientNoiseStd(), this.bitNoiseStd());
  }

  /** The clip norm of the coming round. */
  get currentClipNorm(): number {
    return this.clipNorm;
  }

  state(): PrivacyState {
    return { accountant: this.accountant.toJSON(), clipNorm: this.clipNorm };
  }
}
