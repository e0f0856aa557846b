import { ShoalError } from '@shoal/protocol';
import { expect } from 'vitest';
import { createStrategy, type StrategyConfig } from '../src/index.js';

/** The message of the INVALID_CONFIG error `createStrategy(config)` throws; fails the test if it accepts it. */
export function invalidConfigMessage(config: unknown): string {
  try {
    createStrategy(config as StrategyConfig);
  } catch (error) {
    expect(error).toBeInstanceOf(ShoalError);
    expect((error as ShoalError).code).toBe('INVALID_CONFIG');
    return (error as ShoalError).message;
  }
  throw new Error(`createStrategy accepted ${JSON.stringify(config)}`);
}
