// What the SDK says about itself when it connects: under secure aggregation its example count is
// the weight SecAgg masks, so `hello` must not carry it.
import { afterEach, describe, expect, it } from 'vitest';
import { createSeededRandom } from '@shoal/protocol';
import { ShoalClient, wsTransport } from '../src/index.js';
import { startScriptedCoordinator, type ScriptedCoordinator } from './scripted-coordinator.js';

describe('the SDK hello', () => {
  let coordinator: ScriptedCoordinator | undefined;
  afterEach(async () => {
    await coordinator?.close();
  });

  it('announces its version and capabilities but not how many examples it holds', async () => {
    coordinator = await startScriptedCoordinator(15);
    const random = createSeededRandom(1);
    const client = new ShoalClient({
      url: coordinator.url,
      token: 't',
      transport: wsTransport,
      consent: true,
      data: { x: Float32Array.from({ length: 40 }, () => random.next()), y: Int32Array.from({ length: 10 }, (_, i) => i % 3), featureShape: [4] },
      reconnect: { maxAttempts: 0 },
    });
    const stop = new AbortController();
    const running = client.run({ signal: stop.signal }).catch(() => {});
    const hello = await (await coordinator.connection(1)).next('hello');
    expect(hello.capabilities.length).toBeGreaterThan(0);
    expect(hello).not.toHaveProperty('numExamples');
    stop.abort();
    await running;
  });
});
