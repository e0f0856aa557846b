// The `dp` section's schema and the DP functions share their rules and defaults.
import fc from 'fast-check';
import { ShoalError } from '@shoal/protocol';
import { describe, expect, it } from 'vitest';
import { ADAPTIVE_CLIP_DEFAULTS, DP_DEFAULTS, adaptiveClipping, parseDpConfig, splitNoiseMultiplier } from '../src/index.js';

describe('parseDpConfig', () => {
  it('accepts adaptive clipping exactly when the noise split exists (property)', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 5, noNaN: true }), fc.double({ min: 0, max: 5, noNaN: true }), (noiseMultiplier, countNoiseStd) => {
        let configAccepts = true;
        try {
          parseDpConfig({ mode: 'central', noiseMultiplier, adaptiveClip: { countNoiseStd } }, 10);
        } catch (error) {
          expect((error as ShoalError).code).toBe('INVALID_CONFIG');
          configAccepts = false;
        }
        let splitExists = true;
        try {
          splitNoiseMultiplier(noiseMultiplier, countNoiseStd);
        } catch {
          splitExists = false;
        }
        expect(configAccepts).toBe(splitExists);
      }),
    );
  });

  it('fills in the defaults the DP functions default to', () => {
    expect(parseDpConfig({}, undefined)).toEqual(DP_DEFAULTS);
    const { targetQuantile, learningRate } = adaptiveClipping({ expectedClients: 20 });
    expect(parseDpConfig({ mode: 'central', adaptiveClip: {} }, 40).adaptiveClip).toEqual({ targetQuantile, learningRate });
    expect({ targetQuantile, learningRate }).toEqual(ADAPTIVE_CLIP_DEFAULTS);
  });
});
