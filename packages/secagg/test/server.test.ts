import { closeCodeOf } from '@shoal/protocol';
import { describe, expect, it } from 'vitest';
import { thrownBy } from '@shoal/testkit';
import { SHARE_BOX_BYTES, SecAggClient, SecAggError, SecAggServer, deriveSecAggParams } from '../src/index.js';
import type { SecAggErrorCode, ServerStage } from '../src/index.js';
import { nodeKeyAgreement, nodeMaskPrg, nodeSigning } from '../src/node.js';
import { seededRandomBytes, seededShuffle, testClient } from './harness.js';

// The coordinator's state machine, with every kind of bad client message.

const params = deriveSecAggParams({ mode: 'secagg', cohortSize: 5, numParams: 8, bound: 1, maxWeight: 10, maxDropout: 0.2 }); // t = 4
const indices = [1, 2, 3, 4, 5];

type Advertised = ReturnType<SecAggClient['advertise']>;

function setup() {
  const server = new SecAggServer({ round: 7, sessionId: 's', params, indices, prg: nodeMaskPrg, shuffle: seededShuffle(1), agreement: nodeKeyAgreement, signing: nodeSigning });
  const clients = indices.map(
    (index) =>
      testClient(params, index, { sessionId: 's', round: 7 }, seededRandomBytes(`server-test-${index}`)),
  );
  const advertised = new Map<number, Advertised>(clients.map((client) => [client.index, client.advertise()]));
  return { server, clients, advertised };
}

/** An honest round through the masked inputs of `senders` (default all): the server is in stage confirm. */
async function throughMasked(senders: readonly number[] = indices) {
  const world = setup();
  const { server, clients, advertised } = world;
  for (const client of clients) server.receiveAdvertise(client.index, advertised.get(client.index)!);
  const keys = server.closeAdvertise();
  const shares = new Map(clients.map((client) => [client.index, client.share(keys.get(client.index)!).ciphertexts]));
  for (const [index, ciphertexts] of shares) server.receiveShares(index, ciphertexts);
  const inboxes = server.closeShares();
  const masked = new Map<number, Uint32Array>();
  for (const client of clients.filter((c) => senders.includes(c.index))) {
    client.receiveInbox(inboxes.get(client.index)!);
    masked.set(client.index, await client.mask(new Float32Array(8).fill(0.25), 2));
  }
  for (const [index, words] of masked) server.receiveMasked(index, words);
  const close = server.closeMasked();
  return { ...world, shares, masked, close };
}

/** A whole honest round up to the reveals, which are computed but not yet delivered. */
async function throughUnmask() {
  const world = await throughMasked();
  const { server, clients, close } = world;
  const confirmations = new Map(clients.map((client) => [client.index, client.confirm(close.survivors)]));
  for (const [index, signature] of confirmations) server.receiveConfirm(index, signature);
  const forwarded = server.closeConfirm();
  const reveals = new Map(clients.map((client) => [client.index, client.reveal(forwarded.get(client.index)!)]));
  return { ...world, confirmations, forwarded, reveals };
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
    const { server, advertised, shares, masked, confirmations, reveals } = await throughUnmask();
    expect(server.stage).toBe<ServerStage>('unmask');
    expectSecAggError(() => server.closeAdvertise(), 'UNEXPECTED_STAGE', /closeAdvertise\(\) called in stage unmask/);
    expectSecAggError(() => server.closeShares(), 'UNEXPECTED_STAGE', /closeShares/);
    expectSecAggError(() => server.closeMasked(), 'UNEXPECTED_STAGE', /closeMasked/);
    expectSecAggError(() => server.closeConfirm(), 'UNEXPECTED_STAGE', /closeConfirm/);
    // Stragglers of closed stages are late, not errors.
    expect(server.receiveAdvertise(1, advertised.get(1)!)).toBe('late');
    expect(server.receiveShares(1, shares.get(1)!)).toBe('late');
    expect(server.receiveMasked(1, masked.get(1)!)).toBe('late');
    expect(server.receiveConfirm(1, confirmations.get(1)!)).toBe('late');
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
    expectSecAggError(() => server.receiveConfirm(1, new Uint8Array(64)), 'UNEXPECTED_STAGE', /confirm/);
    expectSecAggError(() => server.receiveReveal(1, { selfMaskShares: [], maskKeyShares: [] }), 'UNEXPECTED_STAGE', /unmask/);
    await expect(server.finish()).rejects.toMatchObject({ code: 'UNEXPECTED_STAGE' });
  });

  it('after an abort every message is late and every close is UNEXPECTED_STAGE', () => {
    const { server, advertised } = setup();
    server.receiveAdvertise(1, advertised.get(1)!);
    // One client has no neighbour that advertised, so it is pruned too.
    expect(() => server.closeAdvertise()).toThrow(/only 0 clients advertised with enough neighbours; the threshold is 4/);
    expect(server.stage).toBe<ServerStage>('aborted');
    expect(server.receiveAdvertise(2, advertised.get(2)!)).toBe('late');
    expectSecAggError(() => server.closeShares(), 'UNEXPECTED_STAGE', /closeShares/);
  });
});

describe('advertise', () => {
  it.each<[string, (server: SecAggServer, advertised: Map<number, Advertised>) => unknown, RegExp, number]>([
    ['an index outside the cohort', (server, a) => server.receiveAdvertise(6, a.get(1)!), /client 6 is not in the cohort/, 4014],
    ['a second advertise', (server, a) => { server.receiveAdvertise(1, a.get(1)!); server.receiveAdvertise(1, a.get(1)!); }, /client 1 sent advertise twice/, 4010],
    ['a short key', (server, a) => server.receiveAdvertise(1, { ...a.get(1)!, maskKey: new Uint8Array(31) }), /advertise.maskKey has 31 bytes/, 4014],
    ['a small-order key', (server, a) => server.receiveAdvertise(1, { ...a.get(1)!, encryptionKey: new Uint8Array(32) }), /advertise.encryptionKey is a small-order point/, 4014],
    ['another client\'s key', (server, a) => { server.receiveAdvertise(1, a.get(1)!); server.receiveAdvertise(2, { ...a.get(2)!, maskKey: a.get(1)!.maskKey }); }, /client 2 advertise.maskKey repeats a key already advertised/, 4014],
    ['one key for both purposes', (server, a) => server.receiveAdvertise(1, { ...a.get(1)!, encryptionKey: a.get(1)!.maskKey }), /one key for both purposes/, 4014],
    ['a signing key of the wrong length', (server, a) => server.receiveAdvertise(1, { ...a.get(1)!, signingKey: new Uint8Array(33) }), /advertise.signingKey has 33 bytes/, 4014],
    ['a signature made for another index', (server, a) => server.receiveAdvertise(2, { ...a.get(1)! }), /client 2 advertise.signature does not verify under its signing key/, 4014],
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
    const { server, clients, close } = await throughMasked([1, 2, 3, 4]);
    expect(close).toEqual({ survivors: [1, 2, 3, 4], dropped: [5] });
    for (const client of clients.slice(0, 4)) server.receiveConfirm(client.index, client.confirm(close.survivors));
    const forwarded = server.closeConfirm();
    for (const client of clients.slice(0, 4)) {
      const reveal = client.reveal(forwarded.get(client.index)!);
      // Client 1 lies about its share of 5's mask key (a valid field element, just wrong).
      const lie = client.index === 1 ? { ...reveal, maskKeyShares: [{ of: 5, share: new Uint8Array(33).fill(1, 1) }] } : reveal;
      server.receiveReveal(client.index, lie);
    }
    await expect(server.finish()).rejects.toThrow(/the rebuilt mask key of dropped client 5 does not match its advertised key/);
    expect(server.stage).toBe<ServerStage>('aborted');
  });
});

describe('confirmations', () => {
  it('rejects a confirmation from a client that sent no masked input (not in U3)', async () => {
    const { server } = await throughMasked([1, 2, 3, 4]);
    expectSecAggError(() => server.receiveConfirm(5, new Uint8Array(64)), 'INVALID_INPUT', /client 5 sent a confirmation without being a survivor/, 4014);
  });

  it('rejects a second confirmation', async () => {
    const { server, clients, close } = await throughMasked();
    const signature = clients[0]!.confirm(close.survivors);
    server.receiveConfirm(1, signature);
    expectSecAggError(() => server.receiveConfirm(1, signature), 'INVALID_INPUT', /client 1 sent a confirmation twice/, 4010);
  });

  it('rejects a signature of another set than the announced U3, a forged one, and another client\'s', async () => {
    const { server, clients, close } = await throughMasked();
    expect(close.survivors).toEqual([1, 2, 3, 4, 5]);
    const otherSet = clients[0]!.confirm([1, 2, 3, 4]);
    expectSecAggError(() => server.receiveConfirm(1, otherSet), 'INVALID_INPUT', /client 1 signed something other than the announced survivor set/, 4014);
    expectSecAggError(() => server.receiveConfirm(2, seededRandomBytes('forged')(64)), 'INVALID_INPUT', /client 2 signed something other/, 4014);
    expectSecAggError(() => server.receiveConfirm(3, clients[3]!.confirm(close.survivors)), 'INVALID_INPUT', /client 3 signed something other/, 4014);
  });

  it('forwards to each confirmer t − 1 of its neighbours\' signatures, nothing to a survivor that did not confirm, and ignores its reveal', async () => {
    const { server, clients, close } = await throughMasked();
    const signatures = new Map(clients.slice(0, 4).map((client) => [client.index, client.confirm(close.survivors)]));
    for (const [index, signature] of signatures) server.receiveConfirm(index, signature);
    const forwarded = server.closeConfirm();
    expect([...forwarded.keys()]).toEqual([1, 2, 3, 4]);
    for (const [index, list] of forwarded) {
      expect(list).toHaveLength(params.threshold - 1);
      for (const { index: signer, signature } of list) {
        expect(signer).not.toBe(index);
        expect(signature).toEqual(signatures.get(signer));
      }
    }
    expectSecAggError(() => server.receiveReveal(5, { selfMaskShares: [], maskKeyShares: [] }), 'INVALID_INPUT', /client 5 sent a reveal without an unmask request/);
  });

  it('aborts at closeConfirm, before anything is revealed, when fewer than t survivors confirm', async () => {
    const { server, clients, close } = await throughMasked();
    for (const client of clients.slice(0, 3)) server.receiveConfirm(client.index, client.confirm(close.survivors));
    expect(() => server.closeConfirm()).toThrow(/share holders left to ask; the threshold is 4/);
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
