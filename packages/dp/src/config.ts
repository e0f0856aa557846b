// The `dp` section of a Shoal config: its keys, their defaults (the same constants the DP functions
// default to) and the rules among them. The coordinator's schema composes it with the others.
import { ConfigSection, configError, oneOfAt } from '@shoal/protocol';
import { checkDelta, checkNoiseMultiplier, checkPositive, requireNumber } from './checks.js';

export const DP_MODES = ['off', 'central', 'distributed'] as const;
export type DpMode = (typeof DP_MODES)[number];

/** `dp.adaptiveClip`: adapt the clip norm to a quantile of the update norms (Andrew et al. 2021). */
export interface AdaptiveClipConfig {
  readonly targetQuantile: number;
  readonly learningRate: number;
  /** Unset: `defaultCountNoiseStd(expected cohort)`. */
  readonly countNoiseStd?: number;
}

/** The `dp` section with its defaults filled in. */
export interface DpConfig {
  readonly mode: DpMode;
  readonly noiseMultiplier: number;
  readonly clipNorm: number;
  /** Absent: a fixed clip norm. */
  readonly adaptiveClip?: AdaptiveClipConfig;
  readonly delta: number;
  /** Absent: no privacy budget. */
  readonly targetEpsilon?: number;
  /**
   * `serve` only: start with DP on but no `server.checkpointDir`, accepting that a restart resets
   * the spent ε to 0. Default false: such a `serve` refuses to start.
   */
  readonly allowNoCheckpoint: boolean;
}

/** The defaults of `dp` (adaptive clipping's are `ADAPTIVE_CLIP_DEFAULTS`). */
export const DP_DEFAULTS = { mode: 'off', noiseMultiplier: 1, clipNorm: 1, delta: 1e-5, allowNoCheckpoint: false } as const satisfies Omit<DpConfig, 'adaptiveClip' | 'targetEpsilon'>;

/** γ = 0.5 (the median) and η = 0.2: Andrew et al.'s defaults, as in tensorflow/privacy. */
export const ADAPTIVE_CLIP_DEFAULTS = { targetQuantile: 0.5, learningRate: 0.2 } as const satisfies Omit<AdaptiveClipConfig, 'countNoiseStd'>;

/** σ_b's default for m expected clients: m / 20 (Andrew et al. 2021). */
export function defaultCountNoiseStd(expectedClients: number): number {
  return expectedClients / 20;
}

/** A quantile γ ∈ [0, 1]. */
export function checkTargetQuantile(value: unknown, name: string): number {
  return requireNumber(name, value, 'in [0, 1]', (v) => v >= 0 && v <= 1);
}

/**
 * Adaptive clipping's count of unclipped updates spends part of the privacy budget: with noise
 * σ_b on a count of sensitivity ½, the updates keep z_Δ = (z⁻² − (2σ_b)⁻²)^(−1/2), which exists
 * only when σ_b > z/2 (below that the count alone would spend the whole budget). True when a
 * (positive) z leaves the updates nothing.
 */
export function countNoiseTooSmall(noiseMultiplier: number, countNoiseStd: number): boolean {
  return noiseMultiplier > 0 && noiseMultiplier >= 2 * countNoiseStd;
}

/**
 * Reads the `dp` section: its keys and their ranges, and the rules among them and the expected
 * cohort `clientsPerRound` (the top-level key; `checkDpCohort`). Throws INVALID_CONFIG naming the keys.
 */
export function parseDpConfig(raw: unknown, clientsPerRound: number | undefined): DpConfig {
  const dp = new ConfigSection(raw, 'dp', ['mode', 'noiseMultiplier', 'clipNorm', 'adaptiveClip', 'delta', 'targetEpsilon', 'allowNoCheckpoint']);
  const config: DpConfig = {
    mode: dp.read('mode', DP_DEFAULTS.mode, (value, path) => oneOfAt(value, path, DP_MODES)),
    noiseMultiplier: dp.read('noiseMultiplier', DP_DEFAULTS.noiseMultiplier, checkNoiseMultiplier),
    clipNorm: dp.read('clipNorm', DP_DEFAULTS.clipNorm, checkPositive),
    ...(dp.has('adaptiveClip') ? { adaptiveClip: parseAdaptiveClip(dp.section('adaptiveClip', ['targetQuantile', 'learningRate', 'countNoiseStd'])) } : {}),
    delta: dp.read('delta', DP_DEFAULTS.delta, checkDelta),
    ...dp.optional('targetEpsilon', checkPositive),
    allowNoCheckpoint: dp.boolean('allowNoCheckpoint', DP_DEFAULTS.allowNoCheckpoint),
  };
  checkDpCohort(config, clientsPerRound);
  return config;
}

/**
 * The rules between the DP settings and the expected cohort `clientsPerRound`, for a config and
 * for the coordinator's options alike: DP-FedAvg divides by the expected cohort, so DP needs one;
 * and adaptive clipping's count noise (default clientsPerRound / 20) must exceed z / 2
 * (`countNoiseTooSmall`). Nothing to check with DP off.
 */
export function checkDpCohort(
  dp: { readonly mode: DpMode; readonly noiseMultiplier: number; readonly adaptiveClip?: { readonly countNoiseStd?: number | undefined } | undefined },
  clientsPerRound: number | undefined,
): void {
  if (dp.mode === 'off') return;
  if (clientsPerRound === undefined) {
    throw configError(`dp.mode ${dp.mode} needs clientsPerRound: the expected cohort size is DP-FedAvg's fixed denominator`);
  }
  const adaptive = dp.adaptiveClip;
  if (adaptive) {
    const countNoiseStd = adaptive.countNoiseStd ?? defaultCountNoiseStd(clientsPerRound);
    const z = dp.noiseMultiplier;
    if (countNoiseTooSmall(z, countNoiseStd)) {
      throw configError(
        `dp.noiseMultiplier ${z} needs dp.adaptiveClip.countNoiseStd > ${z / 2} (it is ${countNoiseStd}${adaptive.countNoiseStd === undefined ? ', clientsPerRound / 20' : ''}): raise it or clientsPerRound, or lower dp.noiseMultiplier`,
      );
    }
  }
}

function parseAdaptiveClip(section: ConfigSection): AdaptiveClipConfig {
  return {
    targetQuantile: section.read('targetQuantile', ADAPTIVE_CLIP_DEFAULTS.targetQuantile, checkTargetQuantile),
    learningRate: section.read('learningRate', ADAPTIVE_CLIP_DEFAULTS.learningRate, checkPositive),
    ...section.optional('countNoiseStd', checkNoiseMultiplier),
  };
}
