import { closeCodeOf } from '@shoal/protocol';
import { describe, expect, it } from 'vitest';
import { thrownBy } from '@shoal/testkit';
import { SHARE_BOX_BYTES, SecAggClient, SecAggError, SecAggServer, deriveSecAggParams, roundConfig } from '../src/index.js';
import type { SecAggErrorCode, ServerStage } from '../src/index.js';
import { nodeMaskPrg } from '../src/node.js';
import { seededRandomBytes, seededShuffle } from './harness.js';

// The coordinator's state machine, with every kind of bad client message.

const params = deriveSecAggParams({ mode: 'secagg', cohortSize: 5, numParams: 8, bound: 1, maxWeight: 10 });
const indices = [1, 2, 3, 4, 5];

function setup() {
  const server = new SecAggServer({ round: 7, sessionId: 's', params, indices, prg: nodeMaskPrg, shuffle: seededShuffle(1) });
  const clients = indices.map(
    (index) => new SecAggClient({ config: roundConfig(params, index, 's'), round: 7, numParams: 8, randomBytes: seededRandomBytes(`server-test-${index}`), prg: nodeMaskPrg }),
  );
  const advertised = new Map(clients.map((client) => [client.index, client.advertise()]));
  return { server, clients, advertised };
}

/** A whole honest round up to the reveals, which are computed but not yet delivered. */
async function throughUnmask() {
  const world = setup();
  const { server, clients, advertised } = world;
  for (const client of clients) server.receiveAdvertise(client.index, advertised.get(client.index)!);
  const keys = server.closeAdvertise();
  const shares = new Map(clients.map((client) => [client.index, client.share(keys.get(client.index)!).ciphertexts]));
  for (const [index, ciphertexts] of shares) server.receiveShares(index, ciphertexts);
  const inboxes = server.closeShares();
  const masked = new Map<number, Uint32Array>();
  for (const client of clients) {
    client.receiveInbox(inboxes.get(client.index)!);
    masked.set(client.index, await client.mask(new Float32Array(8).fill(0.25), 2));
  }
  for (const [index, words] of masked) server.receiveMasked(index, words);
  const close = server.closeMasked();
  const reveals = new Map(clients.map((client) => [client.index, client.reveal(close.requests.get(client.index)!)]));
  return { ...world, shares, masked, close, reveals };
}

function expectSecAggError(action: () => unknown, code: SecAggErrorCode, message: RegExp, closeCode?: number): void {
  const thrown = thrownBy(action);
  expect(thrown).toBeInstanceOf(SecAggError);
  const error = thrown as SecAggError;
  expect(error.code).toBe(code);
  expect(error.message).toMatch(message);
  expect(new TextEncoder().encode(error.message).length).toBeLessThanOrEqual(123); // fits a close frame
  if (closeCode !== undefined) expect(closeCodeOf(error.errorCode)).toBe(closeCode);
}

describe('stages', () => {
  it('every close out of order throws UNEXPECTED_STAGE; early messages too, late ones are "late"', async () => {
    const { server, shares, masked, reveals } = await throughUnmask();
    expect(server.stage).toBe<ServerStage>('unmask');
    expectSecAggError(() => server.closeAdvertise(), 'UNEXPECTED_STAGE', /closeAdvertise\(\) called in stage unmask/);
    expectSecAggError(() => server.closeShares(), 'UNEXPECTED_STAGE', /closeShares/);
    expectSecAggError(() => server.closeMasked(), 'UNEXPECTED_STAGE', /closeMasked/);
    // Stragglers of closed stages are late, not errors.
    expect(server.receiveAdvertise(1, { encryptionKey: new Uint8Array(32), maskKey: new Uint8Array(32) })).toBe('late');
    expect(server.receiveShares(1, shares.get(1)!)).toBe('late');
    expect(server.receiveMasked(1, masked.get(1)!)).toBe('late');
    for (const [index, reveal] of reveals) expect(server.receiveReveal(index, reveal)).toBe('accepted');
    const result = await server.finish();
    expect(result.count).toBe(5);
    expect(server.stage).toBe<ServerStage>('done');
    expect(server.receiveReveal(1, reveals.get(1)!)).toBe('late');
    await expect(server.finish()).rejects.toMatchObject({ code: 'UNEXPECTED_STAGE' });
  });

  it('a message before its stage opens is UNEXPECTED_STAGE, closing with UNEXPECTED_MESSAGE', async () => {
    const { server } = setup();
    expectSecAggError(() => server.receiveShares(1, []), 'UNEXPECTED_STAGE', /client 1 sent a share message during stage advertise/, 4003);
    expectSecAggError(() => server.receiveMasked(1, new Uint32Array(9)), 'UNEXPECTED_STAGE', /masked/);
    expectSecAggError(() => server.receiveReveal(1, { selfMaskShares: [], maskKeyShares: [] }), 'UNEXPECTED_STAGE', /unmask/);
    await expect(server.finish()).rejects.toMatchObject({ code: 'UNEXPECTED_STAGE' });
  });

  it('after an abort every message is late and every close is UNEXPECTED_STAGE', () => {
    const { server } = setup();
    server.receiveAdvertise(1, { encryptionKey: keyOf(1), maskKey: keyOf(2) });
    // One client has no neighbour that advertised, so it is pruned too.
    expect(() => server.closeAdvertise()).toThrow(/only 0 clients advertised with enough neighbours; the threshold is 3/);
    expect(server.stage).toBe<ServerStage>('aborted');
    expect(server.receiveAdvertise(2, { encryptionKey: keyOf(3), maskKey: keyOf(4) })).toBe('late');
    expectSecAggError(() => server.closeShares(), 'UNEXPECTED_STAGE', /closeShares/);
  });
});

describe('advertise', () => {
  it.each<[string, (server: SecAggServer, advertised: Map<number, { encryptionKey: Uint8Array; maskKey: Uint8Array }>) => unknown, RegExp, number]>([
    ['an index outside the cohort', (server, a) => server.receiveAdvertise(6, a.get(1)!), /client 6 is not in the cohort/, 4014],
    ['a second advertise', (server, a) => { server.receiveAdvertise(1, a.get(1)!); server.receiveAdvertise(1, a.get(1)!); }, /client 1 sent advertise twice/, 4010],
    ['a short key', (server, a) => server.receiveAdvertise(1, { ...a.get(1)!, maskKey: new Uint8Array(31) }), /advertise.maskKey has 31 bytes/, 4014],
    ['a small-order key', (server, a) => server.receiveAdvertise(1, { ...a.get(1)!, encryptionKey: new Uint8Array(32) }), /advertise.encryptionKey is a small-order point/, 4014],
    ['another client\'s key', (server, a) => { server.receiveAdvertise(1, a.get(1)!); server.receiveAdvertise(2, { ...a.get(2)!, maskKey: a.get(1)!.maskKey }); }, /client 2 advertise.maskKey repeats a key already advertised/, 4014],
    ['one key for both purposes', (server, a) => server.receiveAdvertise(1, { encryptionKey: a.get(1)!.maskKey, maskKey: a.get(1)!.maskKey }), /one key for both purposes/, 4014],
  ])('rejects %s', (_name, act, message, closeCode) => {
    const { server, advertised } = setup();
    expectSecAggError(() => act(server, advertised), 'INVALID_INPUT', message, closeCode);
  });

  it('sends each client the keys of its neighbours that advertised, never its own', () => {
    const { server, advertised } = setup();
    for (const index of [1, 2, 3, 4]) server.receiveAdvertise(index, advertised.get(index)!);
    const keys = server.closeAdvertise();
    expect([...keys.keys()]).toEqual([1, 2, 3, 4]);
    expect(keys.get(2)!.map((k) => k.index)).toEqual([1, 3, 4]);
    expect(keys.get(2)![0]).toEqual({ index: 1, ...advertised.get(1)! });
  });
});

describe('shares', () => {
  async function shareStage() {
    const world = setup();
    const { server, clients, advertised } = world;
    for (const client of clients) server.receiveAdvertise(client.index, advertised.get(client.index)!);
    const keys = server.closeAdvertise();
    const shares = new Map(clients.map((client) => [client.index, client.share(keys.get(client.index)!).ciphertexts]));
    return { ...world, shares };
  }

  it.each<[string, (boxes: { to: number; box: Uint8Array }[]) => { to: number; box: Uint8Array }[], RegExp]>([
    ['a box to a non-neighbour', (boxes) => [...boxes.slice(1), { to: 1, box: boxes[0]!.box }], /client 1 sent a share box to 1, not one of its neighbours/],
    ['two boxes to one neighbour', (boxes) => [...boxes, boxes[0]!], /sent two share boxes to 2/],
    ['a box of the wrong size', (boxes) => [{ ...boxes[0]!, box: new Uint8Array(SHARE_BOX_BYTES + 1) }, ...boxes.slice(1)], /share box of 140 bytes to 2, not 139/],
    ['a missing box', (boxes) => boxes.slice(1), /sent 3 share boxes for 4 neighbours/],
  ])('rejects %s', async (_name, corrupt, message) => {
    const { server, shares } = await shareStage();
    expectSecAggError(() => server.receiveShares(1, corrupt(shares.get(1)!)), 'INVALID_INPUT', message, 4014);
  });

  it('rejects a second shares message and shares from a client that was sent no keys', async () => {
    const world = setup();
    const { server, clients, advertised } = world;
    for (const client of clients.slice(0, 4)) server.receiveAdvertise(client.index, advertised.get(client.index)!);
    const keys = server.closeAdvertise();
    const boxes = clients[0]!.share(keys.get(1)!).ciphertexts;
    server.receiveShares(1, boxes);
    expectSecAggError(() => server.receiveShares(1, boxes), 'INVALID_INPUT', /client 1 sent shares twice/, 4010);
    expectSecAggError(() => server.receiveShares(5, []), 'INVALID_INPUT', /client 5 sent shares without being sent keys/);
  });

  it('forwards only boxes between clients that both shared', async () => {
    const { server, shares } = await shareStage();
    for (const index of [1, 2, 3, 4]) server.receiveShares(index, shares.get(index)!);
    const inboxes = server.closeShares();
    expect([...inboxes.keys()]).toEqual([1, 2, 3, 4]);
    expect(inboxes.get(1)!.map((entry) => entry.from)).toEqual([2, 3, 4]);
    expect(inboxes.get(1)![0]!.box).toEqual(shares.get(2)!.find((b) => b.to === 1)!.box);
  });
});

describe('masked inputs and reveals', () => {
  it('rejects a masked input of the wrong length, or twice', async () => {
    const { server, clients, advertised } = setup();
    for (const client of clients) server.receiveAdvertise(client.index, advertised.get(client.index)!);
    const keys = server.closeAdvertise();
    for (const client of clients) server.receiveShares(client.index, client.share(keys.get(client.index)!).ciphertexts);
    server.closeShares();
    const masked = new Uint32Array(9);
    expectSecAggError(() => server.receiveMasked(1, new Uint32Array(8)), 'INVALID_INPUT', /client 1 sent a masked input of 8 words, not 9/, 4005);
    server.receiveMasked(1, masked);
    expectSecAggError(() => server.receiveMasked(1, masked), 'INVALID_INPUT', /sent a masked input twice/, 4010);
  });

  it('rejects a masked input from a client that did not share', async () => {
    const world = setup();
    const { server, clients, advertised } = world;
    for (const client of clients) server.receiveAdvertise(client.index, advertised.get(client.index)!);
    const keys = server.closeAdvertise();
    for (const client of clients.slice(0, 4)) server.receiveShares(client.index, client.share(keys.get(client.index)!).ciphertexts);
    server.closeShares();
    expectSecAggError(() => server.receiveMasked(5, new Uint32Array(9)), 'INVALID_INPUT', /client 5 sent a masked input without an inbox/);
  });

  it.each<[string, (reveal: { selfMaskShares: { of: number; share: Uint8Array }[]; maskKeyShares: { of: number; share: Uint8Array }[] }) => typeof reveal, SecAggErrorCode, RegExp]>([
    ['both secrets of one client', (r) => ({ ...r, maskKeyShares: [{ of: 2, share: r.selfMaskShares[1]!.share }] }), 'INVALID_INPUT', /client 1 revealed both secrets of 2/],
    ['a share it was not asked for', (r) => ({ ...r, maskKeyShares: [{ of: 9, share: r.selfMaskShares[1]!.share }] }), 'INVALID_INPUT', /revealed a mask-key share of 9, which it was not asked for/],
    ['a missing share', (r) => ({ ...r, selfMaskShares: r.selfMaskShares.slice(1) }), 'INVALID_INPUT', /revealed 4 self-mask shares; 5 were asked for/],
    ['two shares of one client', (r) => ({ ...r, selfMaskShares: [...r.selfMaskShares.slice(0, 4), { ...r.selfMaskShares[0]! }] }), 'INVALID_INPUT', /revealed two self-mask shares of 1/],
    ['a share outside the field', (r) => ({ ...r, selfMaskShares: [{ of: 1, share: new Uint8Array(33).fill(0xff) }, ...r.selfMaskShares.slice(1)] }), 'BAD_SHARE', /revealed a malformed self-mask share of 1/],
    ['a share of the wrong length', (r) => ({ ...r, selfMaskShares: [{ of: 1, share: new Uint8Array(32) }, ...r.selfMaskShares.slice(1)] }), 'BAD_SHARE', /malformed/],
  ])('rejects a reveal with %s', async (_name, corrupt, code, message) => {
    const { server, reveals } = await throughUnmask();
    expectSecAggError(() => server.receiveReveal(1, corrupt(reveals.get(1)!)), code, message, 4014);
    // The bad reveal was not stored: the client may still be counted if it sends a good one.
    expect(server.receiveReveal(1, reveals.get(1)!)).toBe('accepted');
  });

  it('rejects a second reveal', async () => {
    const { server, reveals } = await throughUnmask();
    server.receiveReveal(2, reveals.get(2)!);
    expectSecAggError(() => server.receiveReveal(2, reveals.get(2)!), 'INVALID_INPUT', /client 2 sent a reveal twice/, 4010);
  });

  it('aborts when revealed shares are inconsistent (a rebuilt mask key that is not the advertised one)', async () => {
    const world = setup();
    const { server, clients, advertised } = world;
    for (const client of clients) server.receiveAdvertise(client.index, advertised.get(client.index)!);
    const keys = server.closeAdvertise();
    for (const client of clients) server.receiveShares(client.index, client.share(keys.get(client.index)!).ciphertexts);
    const inboxes = server.closeShares();
    for (const client of clients.slice(0, 4)) {
      client.receiveInbox(inboxes.get(client.index)!);
      server.receiveMasked(client.index, await client.mask(new Float32Array(8), 1));
    }
    const close = server.closeMasked();
    expect(close.dropped).toEqual([5]);
    for (const client of clients.slice(0, 4)) {
      const reveal = client.reveal(close.requests.get(client.index)!);
      // Client 1 lies about its share of 5's mask key (a valid field element, just wrong).
      const lie = client.index === 1 ? { ...reveal, maskKeyShares: [{ of: 5, share: new Uint8Array(33).fill(1, 1) }] } : reveal;
      server.receiveReveal(client.index, lie);
    }
    await expect(server.finish()).rejects.toThrow(/the rebuilt mask key of dropped client 5 does not match its advertised key/);
    expect(server.stage).toBe<ServerStage>('aborted');
  });
});

describe('construction', () => {
  it('refuses indices that do not match the cohort, and params that could wrap', () => {
    const base = { round: 1, sessionId: 's', params, prg: nodeMaskPrg, shuffle: seededShuffle(1) };
    expect(() => new SecAggServer({ ...base, indices: [1, 2, 3, 4] })).toThrow(/4 indices for a cohort of 5/);
    expect(() => new SecAggServer({ ...base, indices: [1, 2, 3, 4, 4] })).toThrow(/appears twice/);
    expect(() => new SecAggServer({ ...base, indices, params: { ...params, scale: params.scale * 4 } })).toThrow(/lower the scale/);
    expect(() => new SecAggServer({ ...base, indices, round: -1 })).toThrow(/round/);
  });
});

function keyOf(seed: number): Uint8Array {
  return seededRandomBytes(`key-${seed}`)(32);
}
