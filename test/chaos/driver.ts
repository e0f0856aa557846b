// The chaos run (issue #13 item 2): `shoal serve` as a real process with SecAgg+ and distributed DP,
// checkpoints and the privacy ledger in a temporary folder, and real Node SDK clients over
// WebSockets. A seeded plan SIGKILLs the coordinator at explicit points (mid checkpoint write,
// mid unmask, mid training, between rounds) and cuts client connections at every stage; after
// every death the folder is checked, and the coordinator is restarted on it (port 0: a new address
// each life, which the clients' transport resolves at each connect). scripts/chaos.ts runs it
// full size; test/chaos/chaos.test.ts runs it CI size.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@shoal/client';
import { LEDGER_FILE, readLatestCheckpoint, readLedger, readRelease, weightsHash } from '@shoal/coordinator';
import { COORDINATOR_KILLS, planCoordinatorKills, runToCompletion, startServeLife, type ClientKillStage, type CoordinatorKill, type PlannedKill } from '@shoal/testkit';
import { ChaosClients } from './clients.js';
import { InvariantReport, checkFolder, checkPrinted, checkServed, epsilonOf, readCheckpoints, type LifeRecord } from './invariants.js';

export interface ChaosOptions {
  /** Rounds of the run. */
  readonly rounds: number;
  readonly seed: number;
  /** Honest SDK clients. Default 8. */
  readonly clients?: number;
  /** Coordinator deaths planned (fewer when the rounds do not fit them). Default rounds / 5. */
  readonly coordinatorKills?: number;
  /** Probability that a client's connection is cut on receiving one stage message. Default 0.04. */
  readonly cutProbability?: number;
  /** A life that has not ended after this long is a violation (a hang). Default 180 s. */
  readonly lifeTimeoutMs?: number;
  /** Progress lines (the script prints them). */
  readonly progress?: (line: string) => void;
}

export interface ChaosSummary {
  readonly rounds: number;
  readonly seed: number;
  readonly lives: number;
  /** Coordinator deaths by where they landed (a planned stage crash whose round aborted before that stage lands `between-rounds`). */
  readonly coordinatorKills: Record<CoordinatorKill, number>;
  readonly plannedKills: readonly PlannedKill[];
  readonly clientCuts: Record<ClientKillStage, number>;
  readonly clientRestarts: number;
  readonly committed: number;
  readonly aborted: number;
  /** Rounds in flight at a coordinator death, run again by the next life. */
  readonly rerun: number;
  readonly epsilon: number;
  readonly checksPassed: number;
  readonly checksByName: Readonly<Record<string, number>>;
  readonly violations: readonly string[];
  /** Lives that started by charging a round the previous life released and never committed. */
  readonly releasesCharged: number;
  /** Why the aborted rounds aborted (from the ledger). */
  readonly abortReasons: readonly string[];
  readonly durationMs: number;
}

const TOKEN = 'chaos-token';
const DELTA = 1e-5;

/** The run's config: SecAgg+ with distributed DP over 6 of 8 clients, every checkpoint kept (the checks read them all). */
function chaosConfig(options: { rounds: number; seed: number; clients: number }, dir: string): Record<string, unknown> {
  return {
    name: 'chaos',
    seed: options.seed,
    rounds: options.rounds,
    clientsPerRound: Math.min(6, options.clients),
    minClients: 4,
    minAvailable: Math.min(6, options.clients),
    roundTimeoutMs: 20_000,
    model: { builtin: 'logreg', inputShape: [4], numClasses: 3 },
    train: { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd' },
    secagg: { mode: 'secagg+', stageTimeoutMs: 10_000 },
    dp: { mode: 'distributed', noiseMultiplier: 1.5, clipNorm: 1, delta: DELTA },
    server: { tokens: [TOKEN], checkpointDir: dir, heartbeatIntervalMs: 2_000, retention: { keepCheckpoints: 1_000_000 } },
  };
}

function checkpointName(round: number): string {
  return `round-${String(round).padStart(6, '0')}.ckpt`;
}

/** SHOAL_CRASH_AT for a planned kill (undefined: the driver kills between rounds). */
function crashSetting(kill: PlannedKill): string | undefined {
  switch (kill.kind) {
    case 'mid-write':
    case 'before-rename':
    case 'after-rename':
      return `${kill.kind}:${checkpointName(kill.round)}`;
    case 'mid-unmask':
      return `mid-unmask:${kill.round}`;
    case 'mid-training':
      return `mid-masked:${kill.round}`;
    case 'between-rounds':
      return undefined;
  }
}

/** Runs the whole chaos run and returns its summary; the caller decides what a violation means (the script exits 1). */
export async function runChaos(options: ChaosOptions): Promise<ChaosSummary> {
  const started = performance.now();
  const clientCount = options.clients ?? 8;
  const plan = planCoordinatorKills(options.seed, options.rounds, options.coordinatorKills ?? Math.floor(options.rounds / 5));
  const progress = options.progress ?? (() => {});
  const dir = await mkdtemp(join(tmpdir(), 'shoal-chaos-'));
  const configPath = join(dir, 'chaos.json');
  await writeFile(configPath, JSON.stringify(chaosConfig({ ...options, clients: clientCount }, join(dir, 'state'))));
  const stateDir = join(dir, 'state');
  const report = new InvariantReport();
  const landed = Object.fromEntries(COORDINATOR_KILLS.map((kind) => [kind, 0])) as Record<CoordinatorKill, number>;
  const lives: LifeRecord[] = [];
  let epsilon = 0;
  let rerun = 0;

  await initBackend();
  const clients = new ChaosClients({ count: clientCount, token: TOKEN, seed: options.seed, cutProbability: options.cutProbability ?? 0.04 });
  try {
    for (let index = 0; ; index++) {
      const kill = plan[index];
      const life = index + 1;
      const startCheckpoint = await readLatestCheckpoint(stateDir);
      const release = await readRelease(stateDir);
      const record: LifeRecord = {
        ...(release !== undefined && release.round === (startCheckpoint?.round ?? 0) + 1 ? { releasedRound: release.round } : {}),
        life,
        ...(startCheckpoint
          ? { startCheckpoint: { round: startCheckpoint.round, modelVersion: startCheckpoint.modelVersion, weightsHash: weightsHash(startCheckpoint.weights), epsilon: startCheckpoint.privacy ? epsilonOf(startCheckpoint.privacy.accountant, DELTA) : 0 } }
          : {}),
        printed: [],
      };
      lives.push(record);
      const crashAt = kill && crashSetting(kill);
      const serve = startServeLife(configPath, { ...(crashAt !== undefined ? { crashAt } : {}), args: ['--log-level', 'warn'] });
      let killedByDriver = false;
      serve.onLine((line) => {
        if (!('status' in line)) return;
        (record.printed as Record<string, unknown>[]).push(line);
        // Between rounds, or a planned stage crash that never came because its round aborted earlier.
        if (kill !== undefined && (line['round'] as number) >= kill.round && !killedByDriver) {
          killedByDriver = true;
          void serve.kill();
        }
      });
      clients.life = life;
      // A process restart of one client per life: a new device to the coordinator.
      if (life > 1) await clients.restart((options.seed + life) % clientCount);
      let timedOut = false;
      const timeout = setTimeout(() => {
        timedOut = true;
        void serve.kill();
      }, options.lifeTimeoutMs ?? 180_000);
      try {
        const url = await serve.url.catch((error: Error) => error);
        if (!report.check('a coordinator restarts on the folder a crash left', typeof url === 'string', () => `life ${life}: ${(url as Error).message}`)) break;
        clients.url = url as string;
        const exit = await serve.exit;
        clients.url = undefined;
        if (!report.check('no coordinator life hangs', !timedOut, () => `life ${life} ran past ${options.lifeTimeoutMs ?? 180_000} ms; stderr:\n${serve.stderr().slice(-2_000)}`)) break;
        if (kill === undefined) {
          report.check('the last life finishes the run and exits 0', exit.code === 0, () => `exit ${exit.code} ${exit.signal}; stderr:\n${serve.stderr().slice(-2_000)}`);
          break;
        }
        report.check('a coordinator dies only by SIGKILL', exit.signal === 'SIGKILL', () => `life ${life}: exit ${exit.code} ${exit.signal}; stderr:\n${serve.stderr().slice(-2_000)}`);
        const kind = killedByDriver ? 'between-rounds' : kill.kind;
        if (!killedByDriver) await checkLanded(report, stateDir, clients, life, kill);
        landed[kind]++;
        const checkpointed = (await readLatestCheckpoint(stateDir))?.round ?? 0;
        // A round that had begun (its train was sent) but left no checkpoint: the next life runs it again.
        if (clients.observations.some((o) => o.life === life && o.type === 'train' && o.round === checkpointed + 1)) rerun++;
        progress(`life ${life}: killed ${kind}${kind !== kill.kind ? ` (planned ${kill.kind})` : ''} at round ${kill.round}; rounds ${record.startCheckpoint?.round ?? 0}→${checkpointed}`);
      } finally {
        clearTimeout(timeout);
        await serve.kill();
      }
      const folder = await checkFolder(report, stateDir, DELTA, false);
      if (folder !== undefined) {
        report.check('ε never decreases across coordinator lives', folder.epsilon >= epsilon, () => `life ${life} ends at ε ${folder.epsilon} after ${epsilon}`);
        epsilon = folder.epsilon;
      }
    }
  } finally {
    clients.url = undefined;
    await clients.stop();
  }

  // After the run: the folder settled, what was printed and served, the CLI's own verification, and the clients.
  const folder = await checkFolder(report, stateDir, DELTA, true);
  await checkPrinted(report, stateDir, lives);
  await checkServed(report, stateDir, clients.observations, lives);
  const verify = await runToCompletion(process.execPath, ['packages/cli/bin/shoal.js', 'ledger', 'verify', stateDir], { cwd: new URL('../..', import.meta.url).pathname });
  report.check('shoal ledger verify passes', verify.code === 0, () => verify.stderr);
  for (const failure of clients.failures) report.check('honest clients never give up', false, () => failure);
  checkClientsKeptTraining(report, lives, clients, clientCount, Math.min(6, clientCount));
  const checkpoints = [...(await readCheckpoints(stateDir)).values()];
  const ledger = await readLedger(join(stateDir, LEDGER_FILE));
  const committed = checkpoints.filter((checkpoint) => checkpoint.modelVersion.endsWith(`:${checkpoint.round}`)).length;
  const summary: ChaosSummary = {
    rounds: options.rounds,
    seed: options.seed,
    lives: lives.length,
    coordinatorKills: landed,
    plannedKills: plan,
    clientCuts: { ...clients.cuts },
    clientRestarts: clients.restarts,
    committed,
    aborted: checkpoints.length - committed,
    rerun,
    epsilon: folder?.epsilon ?? Number.NaN,
    checksPassed: report.total,
    checksByName: Object.fromEntries(report.passed),
    violations: report.violations,
    releasesCharged: lives.filter((life) => life.releasedRound !== undefined).length,
    abortReasons: ledger?.ok ? ledger.entries.flatMap((e) => (e.type === 'round' && e.status === 'aborted' ? [`round ${e.round}: ${e.reason}`] : [])) : [],
    durationMs: performance.now() - started,
  };
  if (report.violations.length === 0) await rm(dir, { recursive: true, force: true });
  else progress(`violations found: the run's folder is kept in ${dir}`);
  return summary;
}

/** The planned crash left the traces it must: the temp file, the checkpoint without its ledger entry, or clients inside the stage. */
async function checkLanded(report: InvariantReport, dir: string, clients: ChaosClients, life: number, kill: PlannedKill): Promise<void> {
  const names = await readdir(dir);
  const hasCheckpoint = names.includes(checkpointName(kill.round));
  const hasTemp = names.some((name) => name.startsWith(`${checkpointName(kill.round)}.tmp-`));
  const seen = (type: string) => clients.observations.some((o) => o.life === life && o.round === kill.round && o.type === type);
  const ledger = await readLedger(join(dir, LEDGER_FILE));
  const inLedger = ledger?.ok === true && ledger.entries.some((e) => e.type === 'round' && e.round === kill.round);
  const traces: Record<Exclude<CoordinatorKill, 'between-rounds'>, boolean> = {
    'mid-write': hasTemp && !hasCheckpoint,
    'before-rename': hasTemp && !hasCheckpoint,
    'after-rename': hasCheckpoint && !inLedger,
    'mid-unmask': seen('unmask') && !hasCheckpoint,
    'mid-training': seen('inbox') && !seen('survivors') && !hasCheckpoint,
  };
  if (kill.kind !== 'between-rounds') {
    report.check('a planned crash lands where it was planned', traces[kill.kind], () => `life ${life}: ${kill.kind} in round ${kill.round} left no trace of it (checkpoint ${hasCheckpoint}, temp ${hasTemp}, ledger ${inLedger})`);
  }
}

/** After every restart the clients came back and trained, most rounds committed, and every client took part in a committed round. */
function checkClientsKeptTraining(report: InvariantReport, lives: readonly LifeRecord[], clients: ChaosClients, count: number, minAvailable: number): void {
  for (const life of lives) {
    const welcomed = new Set(clients.observations.filter((o) => o.life === life.life && o.type === 'welcome').map((o) => o.slot));
    report.check('after every restart the clients reconnect', welcomed.size >= minAvailable, () => `life ${life.life}: ${welcomed.size} clients joined, ${minAvailable} needed`);
    report.check('every coordinator life trains with the reconnected clients', clients.observations.some((o) => o.life === life.life && o.type === 'train'), () => `life ${life.life} sent no train`);
  }
  // A life may lose its only round to client cuts, so commits are counted over the run: most rounds
  // must commit. A round the coordinator's own death cut short after its release (which the next
  // life records, aborted and charged) is not the cuts' doing, so it is not counted.
  const printed = lives.flatMap((life) => life.printed.filter((line) => line['round'] !== life.releasedRound));
  const committed = printed.filter((line) => line['status'] === 'committed').length;
  report.check('most rounds commit despite the cuts', committed * 2 > printed.length, () => `${committed} of ${printed.length} finished rounds committed`);
  for (let slot = 0; slot < count; slot++) {
    const rounds = clients.contributions.filter((c) => c.slot === slot).length;
    report.check('every client contributes to committed rounds', rounds > 0, () => `client ${slot} contributed to no committed round`);
  }
}

