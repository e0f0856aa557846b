// Unmasking on worker threads: the same SecAgg round unmasked in this thread and on real worker
// threads gives the same sum bit for bit; a job that fails in a thread, or threads closed under a
// running job, abort the round (SecAggAbort) and leave the pool usable; the Coordinator ends its
// threads when its run ends.
import { createCipheriv, createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '@shoal/testkit';
import { fedAvg } from '@shoal/strategy';
import { SecAggAbort, SecAggClient, SecAggServer, deriveSecAggParams, roundConfig, type AggregateResult, type SecAggParams, type UnmaskJob, type UnmaskRunner, unmaskPartial } from '@shoal/secagg';
import { nodeKeyAgreement, nodeMaskPrg, nodeSigning } from '@shoal/secagg/node';
import { createSeededRandom, shuffled } from '@shoal/protocol';
import { Coordinator } from '../src/coordinator.js';
import { runRound } from '../src/run-round.js';
import { UnmaskWorkers } from '../src/unmask-workers.js';
import { D, MEMBERS, MODEL, ScriptedCohort, fedAvgOf, harness, initialState, setup } from './scripted-cohort.js';

/** Deterministic bytes: an AES-128-CTR stream keyed by a hash of `seed`. */
function seededBytes(seed: string): (n: number) => Uint8Array {
  const key = createHash('sha256').update(`unmask-workers-test/${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return (n) => new Uint8Array(cipher.update(Buffer.alloc(n)));
}

/**
 * One SecAgg round of real clients, 30 % of them dropping after sharing, finished with `runner`
 * (or in this thread). Deterministic: the same call gives the same round.
 */
async function roundFinishedWith(params: SecAggParams, runner: UnmaskRunner | undefined): Promise<AggregateResult> {
  const context = { sessionId: 'unmask', round: 4 };
  const indices = Array.from({ length: params.cohortSize }, (_, i) => i + 1);
  const random = createSeededRandom(5);
  const server = new SecAggServer({ ...context, params, indices, prg: nodeMaskPrg, agreement: nodeKeyAgreement, signing: nodeSigning, shuffle: (items) => shuffled(items, random) });
  const clients = indices.map((index) => new SecAggClient({ config: roundConfig(params, index, context.sessionId), round: context.round, numParams: params.numParams, randomBytes: seededBytes(`client ${index}`), prg: nodeMaskPrg, agreement: nodeKeyAgreement, signing: nodeSigning }));
  // 30 % drop after sharing, chosen along the ring so that every secret keeps threshold holders.
  const dropped = new Set<number>();
  const holdersLeft = (w: number) => [w, ...server.neighboursOf(w)].filter((x) => !dropped.has(x)).length;
  for (const i of indices) {
    if (dropped.size === Math.round(0.3 * indices.length)) break;
    dropped.add(i);
    if (![i, ...server.neighboursOf(i)].every((w) => holdersLeft(w) >= params.threshold)) dropped.delete(i);
  }
  for (const client of clients) server.receiveAdvertise(client.index, client.advertise());
  const keys = server.closeAdvertise();
  for (const client of clients) server.receiveShares(client.index, client.share(keys.get(client.index)!).ciphertexts);
  const inboxes = server.closeShares();
  const survivors = clients.filter((client) => !dropped.has(client.index));
  for (const client of survivors) {
    client.receiveInbox(inboxes.get(client.index)!);
    const values = Float32Array.from({ length: params.numParams }, (_, i) => Math.sin(client.index + i) * 5);
    server.receiveMasked(client.index, await client.mask(values, 1 + (client.index % 7)));
  }
  const { survivors: announced } = server.closeMasked();
  for (const client of survivors) server.receiveConfirm(client.index, client.confirm(announced));
  for (const [index, signatures] of server.closeConfirm()) server.receiveReveal(index, clients[index - 1]!.reveal(signatures));
  return server.finish(runner);
}

describe('UnmaskWorkers', () => {
  const pools: UnmaskWorkers[] = [];
  const pool = (options: ConstructorParameters<typeof UnmaskWorkers>[0]) => {
    const created = new UnmaskWorkers(options);
    pools.push(created);
    return created;
  };
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((created) => created.close()));
  });

  it.each(['secagg', 'secagg+'] as const)('%s, 6 of 20 clients dropped after sharing: the sum unmasked on two threads is bit for bit the sum unmasked in this thread', async (mode) => {
    const params = deriveSecAggParams({ mode, cohortSize: 20, numParams: 3_000, bound: 10, maxWeight: 10, ...(mode === 'secagg+' ? { degree: 15 } : {}) });
    const threads = pool({ threads: 2, minMaskWords: 0 });
    const inThread = await roundFinishedWith(params, undefined);
    const onThreads = await roundFinishedWith(params, threads);
    expect(threads.threadCount).toBe(2); // the work really went to the threads
    expect(onThreads.count).toBe(14); // 6 of 20 dropped
    expect(Buffer.from(onThreads.encodedSum.buffer).equals(Buffer.from(inThread.encodedSum.buffer))).toBe(true);
    expect(onThreads.totalWeight).toBe(inThread.totalWeight);
    await threads.close();
    expect(threads.threadCount).toBe(0);
  });

  it('keeps small rounds in the calling thread, and everything there with fewer than two threads', () => {
    expect(new UnmaskWorkers({ threads: 2, minMaskWords: 1_000 }).parts(9, 100)).toBe(0);
    expect(new UnmaskWorkers({ threads: 2, minMaskWords: 1_000 }).parts(10, 100)).toBe(2);
    expect(new UnmaskWorkers({ threads: 1, minMaskWords: 0 }).parts(10_000, 100_000)).toBe(0);
    expect(() => new UnmaskWorkers({ threads: -1 })).toThrow('unmask threads must be an integer ≥ 0, got -1');
  });

  it('a job that fails in a thread rejects with SecAggAbort and its reason; the pool then runs the next jobs', async () => {
    const threads = pool({ threads: 2, minMaskWords: 0 });
    const context = { sessionId: 's', round: 1 };
    // An all-zero neighbour key is a small-order point: no mask secret can be agreed with it.
    const bad: UnmaskJob = { context, words: 8, selfMaskSeeds: [], pairMasks: [{ dropped: 2, secretKey: new Uint8Array(32).fill(1), survivors: [{ index: 5, maskKey: new Uint8Array(32) }] }] };
    const good: UnmaskJob = { context, words: 8, selfMaskSeeds: [new Uint8Array(32).fill(3)], pairMasks: [] };
    const failed = threads.run([good, bad]);
    await expect(failed).rejects.toBeInstanceOf(SecAggAbort);
    await expect(failed).rejects.toThrow('an unmask job failed in a worker thread: no mask secret between 2 and 5');
    const [partial] = await threads.run([good]);
    expect(partial).toHaveLength(8);
    expect(partial!.some((word) => word !== 0)).toBe(true);
  });

  it('closing the threads under a running job rejects it with SecAggAbort, and a later run starts fresh threads', async () => {
    const threads = pool({ threads: 2, minMaskWords: 0 });
    const context = { sessionId: 's', round: 1 };
    const big: UnmaskJob = { context, words: 1_000_000, selfMaskSeeds: Array.from({ length: 50 }, (_, i) => new Uint8Array(32).fill(i)), pairMasks: [] };
    const rejected = expect(threads.run([big])).rejects.toThrow(new SecAggAbort('the unmask threads were closed (the coordinator is stopping)'));
    await threads.close();
    await rejected;
    expect(threads.threadCount).toBe(0);
    const [partial] = await threads.run([{ ...big, words: 4, selfMaskSeeds: big.selfMaskSeeds.slice(0, 1) }]);
    expect(partial).toHaveLength(4);
  });
});

describe('the pool in a round and in a Coordinator', () => {
  it('runRound with the pool commits the survivors\' FedAvg; each partial sum from the threads is bit for bit the one computed here (one member lost at masked)', async () => {
    const secagg = { mode: 'secagg', maxDropout: 0.2, stageTimeoutMs: 1_000 } as const;
    const threads = new UnmaskWorkers({ threads: 2, minMaskWords: 0 });
    const compared: boolean[] = [];
    // The pool as the round sees it, checked against the same jobs run in this thread.
    const checked: UnmaskRunner = {
      parts: (masks, words) => threads.parts(masks, words),
      async run(jobs) {
        const partials = await threads.run(jobs);
        for (const [i, job] of jobs.entries()) compared.push(Buffer.from((await unmaskPartial(job, nodeMaskPrg, nodeKeyAgreement)).buffer).equals(Buffer.from(partials[i]!.buffer)));
        return partials;
      },
    };
    try {
      const clock = new FakeClock();
      const cohort = new ScriptedCohort(MEMBERS, clock, (asked, member) => (member === 'c5' && asked === 'masked' ? 'leave' : 'answer'));
      const { ports } = harness(cohort, clock);
      const { state, record } = await runRound(ports, { ...setup({ secagg }), unmaskRunner: checked }, initialState(), new AbortController().signal);
      expect(record.status, record.reason).toBe('committed');
      expect(threads.threadCount).toBe(2);
      expect(compared).toEqual([true, true]);
      const expected = fedAvgOf(MEMBERS.slice(0, 4));
      for (let i = 0; i < D; i++) expect(state.weights[i]).toBeCloseTo(expected[i]!, 3);
    } finally {
      await threads.close();
    }
  });

  it('a Coordinator ends its unmask threads when its run ends', async () => {
    const train = { epochs: 1, batchSize: 1, learningRate: 0.1, optimizer: 'sgd', proximalMu: 0 } as const;
    const coordinator = new Coordinator({ model: MODEL, tokens: ['t'], rounds: 1, clientsPerRound: 5, minClients: 3, train, strategy: fedAvg(), secagg: { mode: 'secagg' } });
    const threads = coordinator.unmaskWorkers!;
    const run = coordinator.run(); // waits for clients that never come
    await threads.run([{ context: { sessionId: 's', round: 1 }, words: 4, selfMaskSeeds: [new Uint8Array(32)], pairMasks: [] }]);
    expect(threads.threadCount).toBe(2);
    coordinator.stop();
    expect((await run).stoppedBy).toBe('stopped');
    expect(threads.threadCount).toBe(0);
  });
});
