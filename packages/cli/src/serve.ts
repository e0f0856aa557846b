// `shoal serve`: a coordinator for real clients. It reads the same config file as `simulate` but
// never loads the simulator (nor tfjs): test/architecture.test.ts checks this module's imports.
import {
  builtinInitialModel,
  checkDefaultModelShape,
  composeConfig,
  coordinatorOptions,
  loadSavedModel,
  startCoordinator,
  type ConfigSections,
  type CoordinatorConfig,
  type InitialModel,
  type RoundMetrics,
} from '@shoal/coordinator';
import { DATASET_NAMES, DATASET_SHAPES, DEFAULT_DATASET, type DatasetName } from '@shoal/datasets';
import { configError, oneOfAt } from '@shoal/protocol';
import { integerFlag, parseFlags } from './args.js';
import { readConfig } from './config-file.js';

/** The config as `serve` reads it. */
export type ServeConfig = CoordinatorConfig & { readonly simulation: { readonly dataset: DatasetName } };

/**
 * What `serve` reads of the simulator's sections: `simulation.dataset`, which shapes a built-in
 * model given no `model.inputShape` / `model.numClasses`. The simulator's other keys, and
 * `faults`, are checked by `simulate`; `serve` only checks that the sections are objects, since
 * their schema is the simulator's and `serve` does not load it.
 */
export const SERVE_SECTIONS: ConfigSections<{ readonly simulation: { readonly dataset: DatasetName } }> = {
  keys: ['faults', 'simulation'],
  parse(raw, base) {
    for (const key of ['faults', 'simulation']) {
      const section = raw[key];
      if (section !== undefined && section !== null && (typeof section !== 'object' || Array.isArray(section))) throw configError(`${key} must be an object`);
    }
    const given = (raw['simulation'] as Record<string, unknown> | null | undefined)?.['dataset'];
    const dataset = given === undefined || given === null ? DEFAULT_DATASET : oneOfAt(given, 'simulation.dataset', DATASET_NAMES);
    const examples = { ...DATASET_SHAPES[dataset], source: `simulation.dataset ${dataset}` };
    checkDefaultModelShape(base.model, examples, "give model.inputShape (the shape of your clients' examples) or choose another model");
    return { simulation: { dataset } };
  },
};

/** The whole config of `serve`: `composeConfig` with `SERVE_SECTIONS`. */
export function parseServeConfig(raw: unknown, defaultName?: string): ServeConfig {
  return composeConfig(raw, SERVE_SECTIONS, defaultName);
}

/** The `serve` command; resolves with the exit code once the coordinator has finished. */
export async function serve(args: readonly string[]): Promise<number> {
  const { values } = parseFlags('serve', args, {
    config: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    set: { type: 'string', multiple: true },
  });
  if (values.config === undefined) throw configError('serve needs --config FILE (shoal serve --help)');
  const config = await readConfig(values.config, values.set ?? [], parseServeConfig);
  const tokens = process.env['SHOAL_TOKENS']?.split(',').filter(Boolean) ?? config.server.tokens;
  if (tokens.length === 0) throw configError('server.tokens is empty: give at least one token (or set SHOAL_TOKENS)');
  const port = values.port === undefined ? config.server.port : integerFlag('port', values.port, 0, 65_535);
  checkPrivacyIsDurable(config);

  const coordinator = await startCoordinator(
    {
      ...coordinatorOptions(config),
      model: await servedModel(config),
      tokens,
      onRound: (metrics: RoundMetrics) => process.stdout.write(`${JSON.stringify(metrics)}\n`),
      log: (line) => process.stderr.write(`${line}\n`),
    },
    { host: values.host ?? config.server.host, port },
  );
  // The handlers go in before `listening` is announced: a supervisor that signals as soon as it
  // reads that line must reach them, not the default action (an exit that prints nothing).
  const stop = () => void coordinator.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  process.stdout.write(`${JSON.stringify({ event: 'listening', url: coordinator.url })}\n`);
  const summary = await coordinator.finished;
  await coordinator.close();
  process.stdout.write(`${JSON.stringify({ event: 'finished', stoppedBy: summary.stoppedBy, modelVersion: summary.modelVersion })}\n`);
  return 0;
}

/**
 * A served coordinator with DP keeps its spent ε only in its checkpoints: without a checkpoint
 * folder a restart would start counting from 0 again, so `serve` refuses unless told otherwise.
 * (`simulate` runs are ephemeral; their ε is reported for the run alone.)
 */
export function checkPrivacyIsDurable(config: Pick<ServeConfig, 'dp' | 'server'>): void {
  if (config.dp.mode === 'off' || config.server.checkpointDir !== undefined || config.dp.allowNoCheckpoint) return;
  throw configError(
    `dp.mode ${config.dp.mode} needs server.checkpointDir: the spent ε lives in the checkpoints, so without them a restart would reset it to 0; set server.checkpointDir (or dp.allowNoCheckpoint true to accept that)`,
  );
}

/** The initial model: a saved tfjs model, or a built-in one shaped for the configured dataset unless given its shape. */
async function servedModel(config: ServeConfig): Promise<InitialModel> {
  if ('path' in config.model) return loadSavedModel(config.model.path);
  const shape = DATASET_SHAPES[config.simulation.dataset];
  return builtinInitialModel(config.model.builtin, config.model.inputShape ?? shape.featureShape, config.model.numClasses ?? shape.numClasses, config.seed);
}
