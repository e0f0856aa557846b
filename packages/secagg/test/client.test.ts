import type { NeighbourKeys, SecAggRoundConfig } from '@shoal/protocol';
import { describe, expect, it } from 'vitest';
import { thrownBy } from '@shoal/testkit';
import { SecAggClient, SecAggError, deriveSecAggParams, roundConfig } from '../src/index.js';
import type { ClientStage, SecAggErrorCode } from '../src/index.js';
import { nodeKeyAgreement, nodeMaskPrg, nodeSigning } from '../src/node.js';
import { seededRandomBytes } from './harness.js';

// One client's state machine, driven by hand (the tests play the coordinator and the peers).

const params = deriveSecAggParams({ mode: 'secagg', cohortSize: 5, numParams: 8, bound: 1, maxWeight: 10, maxDropout: 0.2 }); // t = 4
const SESSION = 'session-a';
const ROUND = 7;

function makeClient(index: number, options: { round?: number; seed?: string; config?: Partial<SecAggRoundConfig> } = {}): SecAggClient {
  return new SecAggClient({
    config: { ...roundConfig(params, index, SESSION), ...options.config },
    round: options.round ?? ROUND,
    numParams: params.numParams,
    randomBytes: seededRandomBytes(options.seed ?? `client-${index}-${options.round ?? ROUND}`),
    prg: nodeMaskPrg,
    agreement: nodeKeyAgreement,
    signing: nodeSigning,
  });
}

/** Five clients through advertise and share; returns them with each one's neighbour list and inbox. */
function cohort(round = ROUND) {
  const clients = [1, 2, 3, 4, 5].map((index) => makeClient(index, { round, seed: `client-${index}` }));
  const keys = new Map(clients.map((client) => [client.index, { index: client.index, ...client.advertise() }]));
  const neighboursOf = (index: number): NeighbourKeys[] => [...keys.values()].filter((k) => k.index !== index);
  const sent = new Map(clients.map((client) => [client.index, client.share(neighboursOf(client.index)).ciphertexts]));
  const inboxOf = (index: number) =>
    [...sent.entries()].filter(([from]) => from !== index).map(([from, boxes]) => ({ from, box: boxes.find((b) => b.to === index)!.box }));
  return { clients, keys, neighboursOf, sent, inboxOf };
}

function expectSecAggError(action: () => unknown, code: SecAggErrorCode, message?: RegExp): void {
  const thrown = thrownBy(action);
  expect(thrown).toBeInstanceOf(SecAggError);
  expect((thrown as SecAggError).code).toBe(code);
  if (message) expect((thrown as SecAggError).message).toMatch(message);
}

const everyone = [1, 2, 3, 4, 5];

/** Clients 2..4 of the cohort through mask and confirm of `survivors`: the signatures a coordinator forwards to client 1. */
async function neighbourSignatures(world: ReturnType<typeof cohort>, survivors: readonly number[]) {
  const signatures = [];
  for (const client of world.clients.slice(1, 4)) {
    client.receiveInbox(world.inboxOf(client.index));
    await client.mask(new Float32Array(8), 1);
    signatures.push({ index: client.index, signature: client.confirm(survivors) });
  }
  return signatures;
}

describe('stage transitions', () => {
  it('advertise → share → inbox → masked → confirm → unmask → done, and every out-of-order call throws UNEXPECTED_STAGE', async () => {
    const world = cohort();
    const { clients, neighboursOf, inboxOf } = world;
    const fresh = makeClient(1, { seed: 'fresh' });
    const calls: Record<string, (client: SecAggClient) => unknown> = {
      advertise: (client) => client.advertise(),
      share: (client) => client.share(neighboursOf(client.index)),
      receiveInbox: (client) => client.receiveInbox(inboxOf(client.index)),
      confirm: (client) => client.confirm(everyone),
      reveal: (client) => client.reveal([]),
    };
    const expectOnly = async (client: SecAggClient, allowed: string | undefined) => {
      const stage = client.stage;
      for (const [name, call] of Object.entries(calls)) {
        if (name === allowed) continue;
        expectSecAggError(() => call(client), 'UNEXPECTED_STAGE', new RegExp(`${name}\\(\\) called in stage ${stage}`));
        expect(client.stage).toBe(stage);
      }
      if (allowed !== 'mask') {
        await expect(client.mask(new Float32Array(8), 1)).rejects.toMatchObject({ code: 'UNEXPECTED_STAGE' });
        expect(client.stage).toBe(stage);
      }
    };
    await expectOnly(fresh, 'advertise');
    const client = clients[0]!; // already advertised and shared by cohort()
    expect(client.stage).toBe<ClientStage>('inbox');
    await expectOnly(client, 'receiveInbox');
    client.receiveInbox(inboxOf(1));
    expect(client.stage).toBe<ClientStage>('masked');
    await expectOnly(client, 'mask');
    const masked = await client.mask(new Float32Array(8).fill(0.5), 3);
    expect(masked).toHaveLength(9);
    expect(client.stage).toBe<ClientStage>('confirm');
    await expectOnly(client, 'confirm');
    expect(client.confirm(everyone)).toHaveLength(64);
    expect(client.stage).toBe<ClientStage>('unmask');
    await expectOnly(client, 'reveal');
    client.reveal(await neighbourSignatures(world, everyone));
    expect(client.stage).toBe<ClientStage>('done');
    await expectOnly(client, undefined);
    fresh.advertise();
    expect(fresh.stage).toBe<ClientStage>('share');
    await expectOnly(fresh, 'share');
  });

  it('a second mask() while the first is running is UNEXPECTED_STAGE (stage masking)', async () => {
    const { clients, inboxOf } = cohort();
    const client = clients[0]!;
    client.receiveInbox(inboxOf(1));
    const first = client.mask(new Float32Array(8), 1);
    expect(client.stage).toBe<ClientStage>('masking');
    await expect(client.mask(new Float32Array(8), 1)).rejects.toMatchObject({ code: 'UNEXPECTED_STAGE' });
    await first;
    expect(client.stage).toBe<ClientStage>('confirm');
  });
});

describe('the config', () => {
  it('an honest client refuses a threshold at or below (k + 1)/2, and a malformed config', () => {
    expectSecAggError(() => makeClient(1, { config: { threshold: 2, degree: 4 } }), 'REFUSED', /threshold 2 does not exceed \(degree 4 \+ 1\)\/2/);
    expectSecAggError(() => makeClient(1, { config: { threshold: 3, degree: 5 } }), 'REFUSED', /threshold 3 does not exceed \(degree 5 \+ 1\)\/2/);
    expect(makeClient(1, { config: { threshold: 4, degree: 5 } }).stage).toBe<ClientStage>('advertise');
    expectSecAggError(() => makeClient(1, { config: { threshold: 6 } }), 'INVALID_INPUT', /2 ≤ threshold ≤ degree/);
    expectSecAggError(() => makeClient(0), 'INVALID_INPUT', /index must be a positive integer/);
    expectSecAggError(() => makeClient(1, { round: -1 }), 'INVALID_INPUT', /round/);
  });
});

describe('share(): refusing a bad neighbour list', () => {
  const refusals: [string, (list: NeighbourKeys[]) => NeighbourKeys[], RegExp][] = [
    ['its own index', (list) => [...list.slice(1), { ...list[0]!, index: 1 }], /neighbour index 1 is this client or listed twice/],
    ['an index twice', (list) => [...list.slice(0, 3), { ...list[3]!, index: list[0]!.index }], /listed twice/],
    ['index 0', (list) => [{ ...list[0]!, index: 0 }, ...list.slice(1)], /not a positive integer/],
    ['a key used twice', (list) => [list[0]!, { ...list[1]!, maskKey: list[0]!.encryptionKey }, ...list.slice(2)], /repeats another key/],
    ['its own public key back', (list) => [{ ...list[0]!, maskKey: OWN_MASK_KEY_PLACEHOLDER }, ...list.slice(1)], /repeats another key/],
    ['a small-order key (32 zero bytes)', (list) => [{ ...list[0]!, encryptionKey: new Uint8Array(32) }, ...list.slice(1)], /small-order key/],
    ['a short key', (list) => [{ ...list[0]!, maskKey: new Uint8Array(31) }, ...list.slice(1)], /has 31 bytes/],
    ['more neighbours than the degree', (list) => [...list, { index: 9, encryptionKey: new Uint8Array(32).fill(3), maskKey: new Uint8Array(32).fill(4), signingKey: new Uint8Array(32).fill(5), signature: new Uint8Array(64) }], /5 neighbours exceed the degree 5/],
    ['too few to reach the threshold', (list) => list.slice(0, 2), /2 neighbours can never reach the threshold 4/],
  ];

  it.each(refusals)('refuses %s', (_name, corrupt, message) => {
    const { keys } = cohort();
    const client = makeClient(1, { seed: 'subject' });
    const own = client.advertise();
    const list = [...keys.values()].filter((k) => k.index !== 1);
    const corrupted = corrupt(list).map((entry) => (entry.maskKey === OWN_MASK_KEY_PLACEHOLDER ? { ...entry, maskKey: own.maskKey } : entry));
    expectSecAggError(() => client.share(corrupted), 'REFUSED', message);
    expect(client.stage).toBe<ClientStage>('failed');
  });
});
const OWN_MASK_KEY_PLACEHOLDER = new Uint8Array(32).fill(0xee);

describe('receiveInbox(): rejecting bad boxes (the whole inbox, naming the sender)', () => {
  it('accepts the honest inbox', () => {
    const { clients, inboxOf } = cohort();
    clients[0]!.receiveInbox(inboxOf(1));
    expect(clients[0]!.stage).toBe<ClientStage>('masked');
  });

  it.each<[string, (inbox: { from: number; box: Uint8Array }[], world: ReturnType<typeof cohort>) => { from: number; box: Uint8Array }[], SecAggErrorCode, RegExp]>([
    ['a flipped bit', (inbox) => inbox.map((entry, i) => (i === 2 ? { ...entry, box: flipBit(entry.box, 900) } : entry)), 'BAD_SHARE', /share box from 4 does not decrypt/],
    ['a box for another recipient', (inbox, world) => [...inbox.slice(0, 3), { from: 5, box: world.sent.get(5)!.find((b) => b.to === 2)!.box }], 'BAD_SHARE', /share box from 5 does not decrypt/],
    ['its own box bounced back', (inbox, world) => [{ from: 2, box: world.sent.get(1)!.find((b) => b.to === 2)!.box }, ...inbox.slice(1)], 'BAD_SHARE', /share box from 2 names sender 1, not 2/],
    ['a box from a non-neighbour', (inbox) => [...inbox, { from: 9, box: inbox[0]!.box }], 'BAD_SHARE', /share box from 9, which is not a neighbour/],
    ['two boxes from one sender', (inbox) => [...inbox, inbox[1]!], 'BAD_SHARE', /two share boxes from 3/],
    ['a truncated box', (inbox) => [{ ...inbox[0]!, box: inbox[0]!.box.subarray(0, 50) }, ...inbox.slice(1)], 'BAD_SHARE', /share box from 2 has 50 bytes/],
    ['fewer than t − 1 boxes (REFUSED: it could never reveal t shares)', (inbox) => inbox.slice(0, 2), 'REFUSED', /only 2 neighbours shared; the threshold 4 cannot be reached/],
  ])('rejects %s', (_name, corrupt, code, message) => {
    const world = cohort();
    const client = world.clients[0]!;
    expectSecAggError(() => client.receiveInbox(corrupt(world.inboxOf(1), world)), code, message);
    expect(client.stage).toBe<ClientStage>('failed');
  });

  it('rejects a box replayed from the previous round, although the sender kept the same keys', () => {
    // Same seeds in rounds 7 and 8, so every client has the same X25519 keys in both rounds.
    const earlier = cohort(7);
    const later = cohort(8);
    const publicKeys = ({ encryptionKey, maskKey, signingKey }: NeighbourKeys) => ({ encryptionKey, maskKey, signingKey });
    expect(publicKeys(later.keys.get(3)!)).toEqual(publicKeys(earlier.keys.get(3)!)); // the signatures differ: they bind the round
    const inbox = later.inboxOf(1).map((entry) => (entry.from === 3 ? { from: 3, box: earlier.sent.get(3)!.find((b) => b.to === 1)!.box } : entry));
    expectSecAggError(() => later.clients[0]!.receiveInbox(inbox), 'BAD_SHARE', /share box from 3 does not decrypt/);
  });
});

describe('mask()', () => {
  it('refuses a wrong length or weight without leaving its stage, and fails on NaN', async () => {
    const { clients, inboxOf } = cohort();
    const client = clients[0]!;
    client.receiveInbox(inboxOf(1));
    await expect(client.mask(new Float32Array(7), 1)).rejects.toThrow(/the update has 7 values; the model has 8/);
    await expect(client.mask(new Float32Array(8), 11)).rejects.toThrow(/weight must be an integer in 0..10/);
    expect(client.stage).toBe<ClientStage>('masked');
    await expect(client.mask(new Float32Array(8).fill(NaN), 1)).rejects.toThrow(/values\[0\] is NaN/);
    expect(client.stage).toBe<ClientStage>('failed');
  });
});

describe('confirm() and reveal()', () => {
  // The refusals of the consistency round, one by one, are in consistency.test.ts.
  it('reveals shares of b_v for the survivors it signed and of s_v^SK for a neighbour left out, never both for one client', async () => {
    const world = cohort();
    const client = world.clients[0]!;
    client.receiveInbox(world.inboxOf(1));
    await client.mask(new Float32Array(8), 1);
    const survivors = [1, 2, 3, 4]; // 5 shared, then sent no masked input
    client.confirm(survivors);
    const answer = client.reveal(await neighbourSignatures(world, survivors));
    expect(answer.selfMaskShares.map((s) => s.of)).toEqual([1, 2, 3, 4]);
    expect(answer.maskKeyShares.map((s) => s.of)).toEqual([5]);
    for (const { share } of [...answer.selfMaskShares, ...answer.maskKeyShares]) expect(share).toHaveLength(33);
    expect(client.stage).toBe<ClientStage>('done');
    expectSecAggError(() => client.reveal([]), 'UNEXPECTED_STAGE');
  });
});

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const copy = bytes.slice();
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
}
