/**
 * The coordinator's HTTP surface for operators, over a real server on 127.0.0.1 (docs/operations.md):
 * - `/readyz` is 503 while the checkpoint is being restored (upgrades too), 200 once serving, 503
 *   again once stopping; `/healthz` is 200 throughout;
 * - the admin endpoints refuse a missing token, a client token, and `?token=` on `/metrics`; with no
 *   admin token configured they say to configure one; wrong admin tokens count toward the same
 *   per-address backoff as wrong client tokens;
 * - `/.well-known/shoal-privacy.json` is public, uncached, cross-origin readable, and is the promise;
 * - `/metrics` is valid exposition text (a strict parser), agrees with the coordinator's own
 *   registry, and moves as real rounds commit (scripted WebSocket peers);
 * - each coordinator has its own registry; prom-client's global one is never used.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { register as globalRegistry } from 'prom-client';
import {
  Coordinator,
  builtinInitialModel,
  privacyPromise,
  serveCoordinator,
  type CoordinatorOptions,
  type CoordinatorServer,
  type RoundMetrics,
  type RoundRecord,
} from '@shoal/coordinator';
import { ShoalError, numParams, type TrainMessage } from '@shoal/protocol';
import { fedAvg } from '@shoal/strategy';
import { gate, startScriptedPeer, upgradeStatus, type ScriptedPeer } from '@shoal/testkit';
import { parseExposition, sampleValue } from './fixtures/exposition.js';

const TOKEN = 'client-token';
const ADMIN = 'operator-token';
/** logreg on 2 features and 2 classes: 6 parameters. */
const MODEL = builtinInitialModel('logreg', [2], 2, 7);
const NUM_PARAMS = numParams(MODEL.descriptor.manifest);
const TRAIN = { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 } as const;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function coordinatorWith(options: Partial<CoordinatorOptions> = {}): Coordinator {
  const coordinator = new Coordinator({ model: MODEL, tokens: [TOKEN], rounds: 3, train: TRAIN, strategy: fedAvg(), maxUpdateNorm: 1_000, ...options });
  cleanups.push(async () => coordinator.stop());
  return coordinator;
}

async function serve(coordinator: Coordinator): Promise<CoordinatorServer> {
  const server = await serveCoordinator(coordinator, { host: '127.0.0.1', port: 0 });
  cleanups.push(() => server.close());
  return server;
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-ops-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
}

async function get(server: CoordinatorServer, path: string, token?: string): Promise<Answer> {
  const response = await fetch(`${server.httpUrl}${path}`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, headers: response.headers, body: await response.text() };
}

async function scrape(server: CoordinatorServer) {
  const answer = await get(server, '/metrics', ADMIN);
  expect(answer.status).toBe(200);
  expect(answer.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return parseExposition(answer.body);
}

describe('/healthz and /readyz', () => {
  it('readyz is 503 while restoring (and upgrades are refused), 200 once restored, 503 once stopping', async () => {
    const coordinator = coordinatorWith({ checkpointDir: await tempDir() });
    const server = await serve(coordinator); // served before restore(), as startCoordinator does

    expect((await get(server, '/healthz')).status).toBe(200);
    expect(await get(server, '/readyz')).toMatchObject({ status: 503, body: 'restoring the checkpoint\n' });
    expect(await upgradeStatus(server.url, { authorization: `Bearer ${TOKEN}` })).toEqual({ opened: false, statusCode: 503 });

    expect(await coordinator.restore()).toBe(false); // an empty folder: nothing to restore, ready all the same
    expect(await get(server, '/readyz')).toMatchObject({ status: 200, body: 'ready\n' });
    expect(await upgradeStatus(server.url, { authorization: `Bearer ${TOKEN}` })).toEqual({ opened: true });

    coordinator.stop();
    expect(await get(server, '/readyz')).toMatchObject({ status: 503, body: 'stopping\n' });
    expect((await get(server, '/healthz')).status).toBe(200);
  });
});

describe('admin endpoints', () => {
  const ADMIN_PATHS = ['/metrics', '/dashboard', '/dashboard/events'];

  it('answer 403 naming server.adminTokens when no admin token is configured, whatever the token', async () => {
    const coordinator = coordinatorWith();
    await coordinator.restore();
    const server = await serve(coordinator);
    for (const path of ADMIN_PATHS) {
      for (const token of [undefined, TOKEN]) {
        const answer = await get(server, path, token);
        expect(answer.status).toBe(403);
        expect(answer.body).toContain('set server.adminTokens');
      }
    }
  });

  it('refuse a missing token, a client token, and ?token= on /metrics with 401; accept the admin token', async () => {
    const coordinator = coordinatorWith({ adminTokens: [ADMIN] });
    await coordinator.restore();
    const server = await serve(coordinator);
    for (const path of ADMIN_PATHS) {
      expect((await get(server, path)).status).toBe(401);
      const withClientToken = await get(server, path, TOKEN);
      expect(withClientToken.status).toBe(401);
      expect(withClientToken.headers.get('www-authenticate')).toBe('Bearer');
      expect(withClientToken.body).toContain('client tokens are not accepted');
      expect((await get(server, `${path}?token=${TOKEN}`)).status).toBe(401);
    }
    // Prometheus sends a header; a token in the URL would end up in logs, so /metrics takes none.
    expect((await get(server, `/metrics?token=${ADMIN}`)).status).toBe(401);
    expect((await get(server, '/metrics', ADMIN)).status).toBe(200);

    const page = await get(server, `/dashboard?token=${ADMIN}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    // No external asset: nothing is loaded from anywhere (the SVG namespace is a name, not a fetch).
    expect(page.body.replaceAll('http://www.w3.org/2000/svg', '')).not.toMatch(/https?:\/\/|src=|<link/);
  });

  it('count wrong admin tokens toward the per-address backoff of the WebSocket upgrade', async () => {
    const coordinator = coordinatorWith({ adminTokens: [ADMIN], limits: { badTokenLimit: 3, badTokenWindowMs: 60_000 } });
    await coordinator.restore();
    const server = await serve(coordinator);
    for (let i = 0; i < 3; i++) expect((await get(server, '/metrics', TOKEN)).status).toBe(401);
    const limited = await get(server, '/metrics', ADMIN);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await upgradeStatus(server.url, { authorization: `Bearer ${TOKEN}` })).toEqual({ opened: false, statusCode: 429 });
  });

  it('refuses an admin token that is also a client token, naming the key', () => {
    const make = () => new Coordinator({ model: MODEL, tokens: [TOKEN], adminTokens: [ADMIN, TOKEN], rounds: 1, train: TRAIN, strategy: fedAvg() });
    expect(make).toThrow(ShoalError);
    expect(make).toThrow('adminTokens[1] is also a client token');
  });
});

describe('/dashboard/events', () => {
  it('sends a snapshot, then each round as it is logged, and ends when the server closes', async () => {
    const coordinator = coordinatorWith({ adminTokens: [ADMIN] });
    await coordinator.restore();
    const server = await serveCoordinator(coordinator, { host: '127.0.0.1', port: 0 });
    const response = await fetch(`${server.httpUrl}/dashboard/events?token=${ADMIN}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = '';
    /** The next event that is not a periodic `live` one (those come every second, whenever). */
    const nextEvent = async (): Promise<{ event: string; data: unknown }> => {
      for (;;) {
        const end = buffered.indexOf('\n\n');
        if (end >= 0) {
          const [eventLine, dataLine] = buffered.slice(0, end).split('\n');
          buffered = buffered.slice(end + 2);
          const event = { event: eventLine!.slice('event: '.length), data: JSON.parse(dataLine!.slice('data: '.length)) as unknown };
          if (event.event !== 'live') return event;
          continue;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        buffered += value;
      }
    };
    expect(await nextEvent()).toMatchObject({ event: 'snapshot', data: { rounds: [], totalRounds: 3, live: { phase: 'waiting', connected: 0 }, promise: { formatVersion: 1 } } });

    const metrics: RoundMetrics = { round: 1, status: 'committed', selected: 2, participants: 2, dropouts: 0, modelVersion: 'x:1', bytesUp: 10, bytesDown: 20, durationMs: 5 };
    await coordinator.telemetry.sink({ round: 1, status: 'committed', metrics, runId: 'x', modelVersion: 'x:1', weights: new Float32Array(0), weightsHash: '', strategyName: 'fedavg', strategyState: {} });
    expect(await nextEvent()).toMatchObject({ event: 'round', data: { metrics, live: { connected: 0 } } });

    await server.close(); // ends the stream: the reader sees its end, not a hang
    for (;;) if ((await reader.read()).done) break;
  });
});

describe('/.well-known/shoal-privacy.json', () => {
  it('is public, uncached, readable cross-origin, and equals privacyPromise(options)', async () => {
    const coordinator = coordinatorWith({ clientsPerRound: 2, dp: { mode: 'central', noiseMultiplier: 1.1, clipNorm: 0.5, targetEpsilon: 8 } });
    await coordinator.restore();
    const server = await serve(coordinator);
    const answer = await get(server, '/.well-known/shoal-privacy.json');
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('application/json');
    expect(answer.headers.get('cache-control')).toBe('no-store');
    expect(answer.headers.get('access-control-allow-origin')).toBe('*');
    expect(JSON.parse(answer.body)).toEqual(JSON.parse(JSON.stringify(privacyPromise(coordinator.options))));
    expect(JSON.parse(answer.body)).toMatchObject({ differentialPrivacy: { mode: 'central', noiseMultiplier: 1.1, epsilonBudget: 8 } });
  });
});

describe('/metrics', () => {
  it('is valid exposition text equal to the registry, and moves as rounds commit', async () => {
    const rounds = 3;
    const coordinator = coordinatorWith({ adminTokens: [ADMIN], rounds, clientsPerRound: 2, minClients: 2, checkpointDir: await tempDir() });
    await coordinator.restore();
    const server = await serve(coordinator);

    const before = await scrape(server);
    expect(sampleValue(before, 'shoal_rounds_total', { status: 'committed' })).toBe(0);
    expect(sampleValue(before, 'shoal_rounds_total', { status: 'aborted' })).toBe(0);
    expect(sampleValue(before, 'shoal_clients_connected')).toBe(0);
    expect(sampleValue(before, 'shoal_round_duration_seconds_count')).toBe(0);
    // No DP: no privacy gauges at all (not a misleading 0).
    expect(before.has('shoal_epsilon_spent')).toBe(false);
    expect(before.has('shoal_epsilon_budget_remaining')).toBe(false);

    // Two peers that hold their first update until the test has looked at the round in flight.
    const firstTrain = gate();
    const release = gate();
    let trains = 0;
    const peers: ScriptedPeer[] = [];
    for (const value of [0.01, 0.03]) {
      peers.push(
        await startScriptedPeer(server.url, {
          token: TOKEN,
          numExamples: 10,
          delta: () => new Float32Array(NUM_PARAMS).fill(value),
          beforeUpdate: async (train: TrainMessage) => {
            if (train.round !== 1) return;
            if (++trains === 2) firstTrain.open();
            await release.opened;
          },
        }),
      );
    }
    const idle = await scrape(server);
    expect([sampleValue(idle, 'shoal_clients_connected'), sampleValue(idle, 'shoal_clients_idle'), sampleValue(idle, 'shoal_clients_training')]).toEqual([2, 2, 0]);

    const finished = coordinator.run();
    await firstTrain.opened;
    const during = await scrape(server);
    expect([sampleValue(during, 'shoal_clients_idle'), sampleValue(during, 'shoal_clients_training'), sampleValue(during, 'shoal_round')]).toEqual([0, 2, 1]);
    expect(sampleValue(during, 'shoal_rounds_total', { status: 'committed' })).toBe(0);
    release.open();

    const summary = await finished;
    await Promise.all(peers.map((peer) => peer.done));
    expect(summary.rounds.map((r: RoundMetrics) => r.status)).toEqual(['committed', 'committed', 'committed']);

    const after = await scrape(server);
    expect(sampleValue(after, 'shoal_rounds_total', { status: 'committed' })).toBe(rounds);
    expect(sampleValue(after, 'shoal_rounds_total', { status: 'aborted' })).toBe(0);
    expect(sampleValue(after, 'shoal_round_duration_seconds_count')).toBe(rounds);
    expect(sampleValue(after, 'shoal_checkpoint_write_seconds_count')).toBe(rounds);
    expect(sampleValue(after, 'shoal_cohort_size')).toBe(2);
    expect(sampleValue(after, 'shoal_bytes_up_total')).toBe(summary.rounds.reduce((sum, r) => sum + r.bytesUp, 0));
    expect(sampleValue(after, 'shoal_bytes_down_total')).toBe(summary.rounds.reduce((sum, r) => sum + r.bytesDown, 0));
    expect(sampleValue(after, 'shoal_dropouts_total', { stage: 'update' })).toBe(0);
    expect(sampleValue(after, 'shoal_clients_connected')).toBe(0); // closed with TRAINING_COMPLETE
    expect(sampleValue(after, 'shoal_round')).toBe(rounds);

    // Every value the registry holds is in the scraped text, unchanged (nothing moves now).
    for (const metric of await coordinator.telemetry.registry.getMetricsAsJSON()) {
      // Histogram values name their series (`_bucket`, `_sum`, `_count`); prom-client's type leaves it out.
      for (const { metricName, labels, value } of metric.values as readonly { metricName?: string; labels: Record<string, string | number>; value: number }[]) {
        const textLabels = Object.fromEntries(Object.entries(labels).map(([key, label]) => [key, label === Infinity ? '+Inf' : String(label)]));
        expect(sampleValue(after, metricName ?? metric.name, textLabels), `${metricName ?? metric.name} ${JSON.stringify(labels)}`).toBe(value);
      }
    }
  });

  it('counts SecAgg dropouts and stage latencies per stage, and shows ε, budget and clip norm with DP', async () => {
    const coordinator = coordinatorWith({ adminTokens: [ADMIN], clientsPerRound: 4, dp: { mode: 'central', noiseMultiplier: 1, clipNorm: 0.75, targetEpsilon: 5 } });
    await coordinator.restore();
    const server = await serve(coordinator);
    const fresh = await scrape(server);
    expect(sampleValue(fresh, 'shoal_epsilon_spent')).toBe(0);
    expect(sampleValue(fresh, 'shoal_epsilon_budget_remaining')).toBe(5);
    expect(sampleValue(fresh, 'shoal_clip_norm')).toBe(0.75);

    // A SecAgg round's record, as run-round commits it: the sink reads only its metrics.
    const stageMs = { advertise: 20, share: 30, masked: 400, confirm: 5, unmask: 60 };
    const dropouts = { advertise: 1, share: 0, masked: 2, confirm: 0, unmask: 1 };
    const metrics: RoundMetrics = {
      round: 1,
      status: 'aborted',
      reason: 'fewer than threshold',
      selected: 9,
      participants: 5,
      dropouts: 4,
      modelVersion: 'run:0',
      bytesUp: 1000,
      bytesDown: 2000,
      durationMs: 515,
      secagg: { mode: 'secagg+', threshold: 5, degree: 7, scale: 1024, stageMs, dropouts },
    };
    const record: RoundRecord = { round: 1, status: 'aborted', metrics, runId: 'run', modelVersion: 'run:0', weights: new Float32Array(0), weightsHash: '', strategyName: 'fedavg', strategyState: {} };
    await coordinator.telemetry.sink(record);

    const after = await scrape(server);
    expect(sampleValue(after, 'shoal_rounds_total', { status: 'aborted' })).toBe(1);
    expect(sampleValue(after, 'shoal_cohort_size')).toBe(9);
    for (const [stage, count] of Object.entries(dropouts)) expect(sampleValue(after, 'shoal_dropouts_total', { stage })).toBe(count);
    for (const [stage, ms] of Object.entries(stageMs)) {
      expect(sampleValue(after, 'shoal_secagg_stage_duration_seconds_count', { stage })).toBe(1);
      expect(sampleValue(after, 'shoal_secagg_stage_duration_seconds_sum', { stage })).toBeCloseTo(ms / 1000, 12);
    }
    expect(sampleValue(after, 'shoal_secagg_stage_duration_seconds_bucket', { stage: 'masked', le: '0.25' })).toBe(0);
    expect(sampleValue(after, 'shoal_secagg_stage_duration_seconds_bucket', { stage: 'masked', le: '0.5' })).toBe(1);
  });

  it('lives in a registry per coordinator: two coordinators never mix, the global registry stays empty', async () => {
    const a = coordinatorWith({ adminTokens: [ADMIN] });
    const b = coordinatorWith({ adminTokens: [ADMIN] });
    expect(a.telemetry.registry).not.toBe(b.telemetry.registry);
    const metrics: RoundMetrics = { round: 1, status: 'committed', selected: 2, participants: 2, dropouts: 0, modelVersion: 'x:1', bytesUp: 10, bytesDown: 20, durationMs: 5 };
    await a.telemetry.sink({ round: 1, status: 'committed', metrics, runId: 'x', modelVersion: 'x:1', weights: new Float32Array(0), weightsHash: '', strategyName: 'fedavg', strategyState: {} });
    await Promise.all([a.restore(), b.restore()]);
    const [textA, textB] = await Promise.all([serve(a).then(scrape), serve(b).then(scrape)]);
    expect(sampleValue(textA, 'shoal_rounds_total', { status: 'committed' })).toBe(1);
    expect(sampleValue(textB, 'shoal_rounds_total', { status: 'committed' })).toBe(0);
    expect((await globalRegistry.getMetricsAsJSON()).filter((metric) => metric.name.startsWith('shoal_'))).toEqual([]);
  });
});
