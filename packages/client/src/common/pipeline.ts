import type { TrainConfig, TrainMetrics } from '@shoal/protocol';

/** A client's local result before it leaves the device. */
export interface LocalUpdate {
  /** `trained weights − global weights`, flat, in manifest order. */
  readonly delta: Float32Array;
  readonly numExamples: number;
  readonly metrics: TrainMetrics;
  /** Set by the DP clip step: whether the update was within the clip norm (adaptive clipping reads it). */
  readonly unclipped?: boolean;
  /** With `config.reportInitialLoss` (q-FedAvg): the global model's loss on the training data before training. */
  readonly initialLoss?: number;
}

/** What an update step may need to know about the round. */
export interface RoundContext {
  readonly round: number;
  readonly modelVersion: string;
  readonly config: TrainConfig;
}

/**
 * One step of the client's update pipeline: the app's own `updateSteps`, then the round's DP steps
 * (clip, then noise). Encoding and masking are not steps: under secure aggregation the round
 * (`playRound`) encodes and masks what the pipeline returns. Steps are pure with respect to their
 * input: they return a new update, never mutate one.
 */
export type UpdateStep = (update: LocalUpdate, context: RoundContext) => LocalUpdate | Promise<LocalUpdate>;

/** Runs the steps in order. */
export async function runPipeline(steps: readonly UpdateStep[], update: LocalUpdate, context: RoundContext): Promise<LocalUpdate> {
  let current = update;
  for (const step of steps) current = await step(current, context);
  return current;
}
