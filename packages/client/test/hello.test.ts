// What the SDK says about itself when it connects: under secure aggregation its example count is
// the weight SecAgg masks, so `hello` must not carry it.
import { afterEach, describe, expect, it } from 'vitest';
import { createSeededRandom } from '@shoal/protocol';
import { naclSigning } from '@shoal/secagg';
import { ShoalClient, wsTransport, type ShoalClientOptions } from '../src/index.js';
import { startScriptedCoordinator, type ScriptedCoordinator } from './scripted-coordinator.js';

describe('the SDK hello', () => {
  let coordinator: ScriptedCoordinator | undefined;
  afterEach(async () => {
    await coordinator?.close();
  });

  async function helloOf(options: Partial<ShoalClientOptions> = {}) {
    coordinator = await startScriptedCoordinator(15);
    const random = createSeededRandom(1);
    const client = new ShoalClient({
      url: coordinator.url,
      token: 't',
      transport: wsTransport,
      consent: true,
      data: { x: Float32Array.from({ length: 40 }, () => random.next()), y: Int32Array.from({ length: 10 }, (_, i) => i % 3), featureShape: [4] },
      reconnect: { maxAttempts: 0 },
      ...options,
    });
    const stop = new AbortController();
    const running = client.run({ signal: stop.signal }).catch(() => {});
    const hello = await (await coordinator.connection(1)).next('hello');
    stop.abort();
    await running;
    return hello;
  }

  it('announces its version and capabilities but not how many examples it holds', async () => {
    const hello = await helloOf();
    expect(hello.capabilities.length).toBeGreaterThan(0);
    expect(hello).not.toHaveProperty('numExamples');
    expect(hello).not.toHaveProperty('identityKey'); // no pinned identity unless the app has one
  });

  it('enrols the public key of its pinned identity (identitySeed), never the seed', async () => {
    const identitySeed = new Uint8Array(32).fill(7);
    const hello = await helloOf({ identitySeed });
    expect(hello.identityKey).toEqual(naclSigning.keyPair(identitySeed).publicKey);
    expect(hello.identityKey).not.toEqual(identitySeed);
  });
});
