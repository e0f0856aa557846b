/**
 * Pace steering from the client's side: a `pace` closes the connection normally, the client waits a
 * time drawn from the window (on its injected clock and random source), then reconnects with its
 * resume token. The coordinator is a scripted `ws` server on 127.0.0.1 and the clock a FakeClock, so
 * "not before min" and "within max" are checked by moving time, never by waiting.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, builtinTopology, createSeededRandom, manifestOfSequential, numParams, type CoordinatorMessage, type ModelDescriptor } from '@shoal/protocol';
import { FakeClock } from '@shoal/testkit';
import { ShoalClient, paceDelay, wsTransport, type ClientDataset, type ClientEvents, type ClientTransport } from '../src/index.js';
import { startScriptedCoordinator } from './scripted-coordinator.js';

const topology = builtinTopology('logreg', [4], 3);
if (topology.format !== 'shoal-sequential') throw new Error('unreachable');
const MODEL: ModelDescriptor = { topology, manifest: manifestOfSequential(topology) };
const D = numParams(MODEL.manifest);

function dataset(): ClientDataset {
  const random = createSeededRandom(3);
  return { x: Float32Array.from({ length: 12 * 4 }, () => random.next()), y: Int32Array.from({ length: 12 }, (_, i) => i % 3), featureShape: [4] };
}

const welcome = (n: number): CoordinatorMessage => ({ type: 'welcome', protocolVersion: PROTOCOL_VERSION, clientId: 'device-1', resumeToken: `resume-${n}`, model: MODEL, heartbeatIntervalMs: 60_000 });

describe('paceDelay', () => {
  it('spans the window: min at random 0, max just below random 1, never outside', () => {
    expect(paceDelay({ min: 1_000, max: 3_000 }, () => 0)).toBe(1_000);
    expect(paceDelay({ min: 1_000, max: 3_000 }, () => 1 - 2 ** -53)).toBe(3_000);
    expect(paceDelay({ min: 500, max: 500 }, () => 0.7)).toBe(500);
    const random = createSeededRandom(9);
    for (let i = 0; i < 1_000; i++) {
      const delay = paceDelay({ min: 10, max: 20 }, () => random.next());
      expect(Number.isInteger(delay) && delay >= 10 && delay <= 20).toBe(true);
    }
  });
});

describe('ShoalClient and a pace message', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  it('announces pace, leaves normally, reconnects with its resume token inside the window and not before min, and is not counted as a failure', async () => {
    const coordinator = await startScriptedCoordinator(D);
    cleanups.push(() => coordinator.close());
    const clock = new FakeClock();
    let connects = 0;
    const transport: ClientTransport = {
      connect: (url, token, signal) => {
        connects++;
        return wsTransport.connect(url, token, signal);
      },
    };
    // The first pace draws the window's min, the second its max: both ends are exercised.
    const draws = [0, 1 - 2 ** -53];
    const client = new ShoalClient({
      url: coordinator.url,
      token: 'any',
      data: dataset(),
      transport,
      clock,
      random: () => draws.shift()!,
      // A pace counted as a lost connection would make run() give up at once.
      reconnect: { maxAttempts: 0 },
    });
    const events: string[] = [];
    const paced: ClientEvents['paced'][] = [];
    let onPaced: (() => void) | undefined;
    client.on('error', ({ error }) => events.push(`error ${error.message}`));
    client.on('disconnected', ({ code, reason }) => events.push(`disconnected ${code} ${reason}`));
    client.on('connected', () => events.push('connected'));
    client.on('paced', (event) => {
      paced.push(event);
      onPaced?.();
    });
    const nextPace = () => new Promise<void>((resolve) => (onPaced = resolve));
    const stop = new AbortController();
    cleanups.push(() => stop.abort());
    const run = client.run({ signal: stop.signal }).then(() => 'resolved', (error: unknown) => error);

    // Connection 1: hello announces 'pace'; welcome; then the round's pace.
    const first = await coordinator.connection(1);
    const hello1 = await first.next('hello');
    expect(hello1.capabilities).toContain('pace');
    expect(hello1.resumeToken).toBeUndefined();
    first.send(welcome(1));
    let pacedNow = nextPace();
    first.send({ type: 'pace', round: 7, retryInMs: { min: 1_000, max: 3_000 } });
    await pacedNow;
    expect(await first.closed).toBe(1000);
    expect(paced).toEqual([{ round: 7, retryInMs: { min: 1_000, max: 3_000 }, delayMs: 1_000 }]);

    // Not before min: one millisecond short of it, still one connection; at it, the second.
    await clock.advance(999);
    expect(connects).toBe(1);
    await clock.advance(1);
    const second = await coordinator.connection(2);
    expect(connects).toBe(2);
    const hello2 = await second.next('hello');
    expect(hello2.resumeToken).toBe('resume-1');
    second.send(welcome(2));

    // Connection 2: paced again, drawing the window's max; it reconnects exactly then.
    pacedNow = nextPace();
    second.send({ type: 'pace', round: 8, retryInMs: { min: 200, max: 5_000 } });
    await pacedNow;
    expect(await second.closed).toBe(1000);
    expect(paced[1]).toEqual({ round: 8, retryInMs: { min: 200, max: 5_000 }, delayMs: 5_000 });
    await clock.advance(4_999);
    expect(connects).toBe(2);
    await clock.advance(1);
    const third = await coordinator.connection(3);
    expect((await third.next('hello')).resumeToken).toBe('resume-2');

    stop.abort();
    expect(await run).toBe('resolved');
    expect(events.filter((event) => event.startsWith('error'))).toEqual([]);
    expect(events.slice(0, 4)).toEqual(['connected', 'disconnected 1000 paced', 'connected', 'disconnected 1000 paced']);
  });

  it('stops waiting at once when run() is stopped during the wait', async () => {
    const coordinator = await startScriptedCoordinator(D);
    cleanups.push(() => coordinator.close());
    const clock = new FakeClock();
    const client = new ShoalClient({ url: coordinator.url, token: 'any', data: dataset(), transport: wsTransport, clock, random: () => 0.5, reconnect: { maxAttempts: 0 } });
    const stop = new AbortController();
    const run = client.run({ signal: stop.signal }).then(() => 'resolved', (error: unknown) => error);
    const connection = await coordinator.connection(1);
    await connection.next('hello');
    connection.send(welcome(1));
    const pacedNow = new Promise<void>((resolve) => client.on('paced', () => resolve()));
    connection.send({ type: 'pace', round: 1, retryInMs: { min: 60_000, max: 60_000 } });
    await pacedNow;
    expect(clock.pending).toBe(1); // the wait's timer
    stop.abort();
    expect(await run).toBe('resolved');
    expect(clock.pending).toBe(0); // released, not left to fire
  });
});
