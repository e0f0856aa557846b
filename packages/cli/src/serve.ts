// `shoal serve`: a coordinator for real clients. It reads the same config file as `simulate` but
// never loads the simulator (nor tfjs): test/architecture.test.ts checks this module's imports.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  builtinInitialModel,
  checkAdminTokens,
  checkDefaultModelShape,
  LEDGER_FILE,
  readLedger,
  runDescription,
  composeConfig,
  coordinatorOptions,
  loadSavedModel,
  startCoordinator,
  type ConfigSections,
  type CoordinatorConfig,
  type CoordinatorHandle,
  type CoordinatorOptions,
  type TrainingSummary,
  type InitialModel,
  type RoundMetrics,
} from '@shoal/coordinator';
import { DATASET_NAMES, DATASET_SHAPES, DEFAULT_DATASET, type DatasetName } from '@shoal/datasets';
import { configError, oneOfAt } from '@shoal/protocol';
import { integerFlag, parseFlags } from './args.js';
import { writeRunCard } from './card.js';
import { readConfig } from './config-file.js';
import { cliLogger, logSettings } from './log.js';

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

/** What a served process is: a single-machine coordinator, or a scale-out gateway or leader (docs/scale-out.md). */
export type ServeRole = 'serve' | 'gateway' | 'leader';

/** Exit status of a leader that another leader took over from. */
export const DEPOSED_EXIT_CODE = 3;

/**
 * The `serve` command, and `gateway` and `leader` (the same process with its rounds driven through
 * Redis); resolves with the exit code once the coordinator has finished.
 */
export async function serve(args: readonly string[], role: ServeRole = 'serve'): Promise<number> {
  const { values } = parseFlags(role, args, {
    config: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    set: { type: 'string', multiple: true },
    'log-level': { type: 'string' },
    'log-format': { type: 'string' },
    ...(role !== 'serve' ? { redis: { type: 'string' }, id: { type: 'string' } } : {}),
    ...(role === 'leader' ? { 'lease-ms': { type: 'string' } } : {}),
  });
  if (values.config === undefined) throw configError(`${role} needs --config FILE (shoal ${role} --help)`);
  const redisUrl = values['redis'] as string | undefined;
  if (role !== 'serve' && redisUrl === undefined) throw configError(`${role} needs --redis URL, the task's Redis (shoal ${role} --help)`);
  const logger = cliLogger(logSettings(values['log-level'], values['log-format'], process.stderr.isTTY === true), process.stderr);
  const config = await readConfig(values.config, values.set ?? [], parseServeConfig);
  const tokens = process.env['SHOAL_TOKENS']?.split(',').filter(Boolean) ?? config.server.tokens;
  if (tokens.length === 0) throw configError('server.tokens is empty: give at least one token (or set SHOAL_TOKENS)');
  // Like SHOAL_TOKENS, the variable replaces the config's list; checked against the client tokens in use.
  const adminTokens = checkAdminTokens(process.env['SHOAL_ADMIN_TOKENS']?.split(',').filter(Boolean) ?? config.server.adminTokens, tokens, 'server.adminTokens (or SHOAL_ADMIN_TOKENS)');
  const tls = config.server.tls && (await readTlsFiles(config.server.tls));
  const port = values.port === undefined ? config.server.port : integerFlag('port', values.port, 0, 65_535);
  if (role !== 'gateway') checkPrivacyIsDurable(config); // a gateway keeps no budget: its leader does

  const options: CoordinatorOptions = {
    ...coordinatorOptions(config),
    ledger: { config }, // in server.checkpointDir; its start entry hashes the whole parsed config
    model: await servedModel(config),
    tokens,
    adminTokens,
    onRound: (metrics: RoundMetrics) => process.stdout.write(`${JSON.stringify(metrics)}\n`),
    logger,
  };
  const listen = { host: values.host ?? config.server.host, port, ...(tls ? { tls } : {}) };
  const coordinator: CoordinatorHandle & { deposed?: () => boolean } = role === 'serve' ? await startCoordinator(options, listen) : await startScaleOut(role, options, listen, config.name, values);
  // The handlers go in before `listening` is announced: a supervisor that signals as soon as it
  // reads that line must reach them, not the default action (an exit that prints nothing).
  const stop = () => void coordinator.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  process.stdout.write(`${JSON.stringify({ event: 'listening', url: coordinator.url })}\n`);
  let summary: TrainingSummary;
  try {
    summary = await coordinator.finished;
  } catch (error) {
    if (!(error instanceof Error && error.name === 'FencedError')) throw error;
    process.stderr.write(`shoal: leader: ${error.message}\n`);
    await coordinator.close();
    return DEPOSED_EXIT_CODE;
  }
  await coordinator.close();
  if (coordinator.deposed?.() === true) {
    process.stderr.write('shoal: leader: another leader holds the task now; this one stopped\n');
    return DEPOSED_EXIT_CODE;
  }
  if (role !== 'gateway') await writeServedCard(config, summary.rounds);
  process.stdout.write(`${JSON.stringify({ event: 'finished', stoppedBy: summary.stoppedBy, modelVersion: summary.modelVersion })}\n`);
  return 0;
}

/** A gateway or a leader (loaded only for them: plain `serve` never loads Redis's client). */
async function startScaleOut(
  role: 'gateway' | 'leader',
  options: CoordinatorOptions,
  listen: { host: string; port: number; tls?: { cert: Buffer; key: Buffer } },
  task: string,
  values: Record<string, unknown>,
): Promise<CoordinatorHandle & { deposed?: () => boolean }> {
  const { startGateway, startLeader } = await import('@shoal/scaleout');
  const settings = { redisUrl: values['redis'] as string, task, ...(values['id'] !== undefined ? { id: values['id'] as string } : {}) };
  if (role === 'gateway') return startGateway(options, listen, settings);
  const leaseMs = values['lease-ms'] === undefined ? undefined : integerFlag('lease-ms', values['lease-ms'] as string, 100, 3_600_000);
  return startLeader(options, listen, {
    ...settings,
    ...(leaseMs !== undefined ? { leaseMs } : {}),
    onStandby: () => process.stdout.write(`${JSON.stringify({ event: 'standby', reason: 'another leader holds the task' })}\n`),
  });
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

/** With a ledger (in server.checkpointDir): the run's model card beside it, from the verified ledger. */
async function writeServedCard(config: ServeConfig, rounds: readonly RoundMetrics[]): Promise<void> {
  const dir = config.server.checkpointDir;
  if (dir === undefined) return;
  const ledger = await readLedger(join(dir, LEDGER_FILE));
  if (ledger === undefined || !ledger.ok) {
    process.stderr.write(`shoal: serve: no model card: the privacy ledger in ${dir} ${ledger ? `fails verification at entry ${ledger.entry}` : 'is missing'} (shoal ledger verify ${dir})\n`);
    return;
  }
  const path = await writeRunCard(dir, runDescription(config, undefined, DATASET_SHAPES[config.simulation.dataset]), ledger.entries, rounds);
  process.stdout.write(`${JSON.stringify({ event: 'model-card', path })}\n`);
}

/** Reads `server.tls`'s PEM files (relative paths from the working directory). */
async function readTlsFiles(paths: { readonly cert: string; readonly key: string }): Promise<{ cert: Buffer; key: Buffer }> {
  const read = async (key: 'cert' | 'key') => {
    try {
      return await readFile(paths[key]);
    } catch (cause) {
      throw configError(`server.tls.${key}: cannot read ${paths[key]}: ${(cause as Error).message}`, { cause });
    }
  };
  return { cert: await read('cert'), key: await read('key') };
}

/** The initial model: a saved tfjs model, or a built-in one shaped for the configured dataset unless given its shape. */
async function servedModel(config: ServeConfig): Promise<InitialModel> {
  if ('path' in config.model) return loadSavedModel(config.model.path);
  const shape = DATASET_SHAPES[config.simulation.dataset];
  return builtinInitialModel(config.model.builtin, config.model.inputShape ?? shape.featureShape, config.model.numClasses ?? shape.numClasses, config.seed);
}
