import fc from 'fast-check';
import type { NeighbourKeys } from '@shoal/protocol';
import { describe, expect, it } from 'vitest';
import { thrownBy } from '@shoal/testkit';
import { SecAggClient, SecAggError, SecAggServer, advertisementMessage, deriveSecAggParams, keyPairFromSecret, survivorsMessage } from '../src/index.js';
import type { SecAggErrorCode, SecAggParams, SurvivorSignature } from '../src/index.js';
import { nodeKeyAgreement, nodeMaskPrg, nodeSigning } from '../src/node.js';
import { identitySeedOf, seededRandomBytes, testClient } from './harness.js';
import { ringInIndexOrder } from './lying-coordinator.js';

// The honest-client rules of the consistency round (Bonawitz et al. §4), one refusal per test,
// and the advertisement signatures with pinned identities. Each refusal is a SecAggError the
// connection edge closes with; after it the client takes no further part.

const CONTEXT = { sessionId: 'session-a', round: 5 };
const full8 = deriveSecAggParams({ mode: 'secagg', cohortSize: 8, numParams: 8, bound: 1, maxWeight: 10 }); // t = 5
const plus12 = deriveSecAggParams({ mode: 'secagg+', cohortSize: 12, numParams: 8, bound: 1, maxWeight: 10 }); // k = 11, t = 7

interface CohortOptions {
  readonly seed?: string;
  /** Senders whose boxes the coordinator withholds from a client's inbox. */
  readonly withheld?: ReadonlyMap<number, readonly number[]>;
  /** Clients with pinned identities (identitySeedOf), so the test can sign for them. */
  readonly pinned?: boolean;
}

/** Real clients and an honest server (the SecAgg+ ring in index order) through the masked inputs: every client waits in stage confirm. */
async function maskedCohort(params: SecAggParams, options: CohortOptions = {}) {
  const { seed = 'consistency', withheld = new Map(), pinned = false } = options;
  const indices = Array.from({ length: params.cohortSize }, (_, i) => i + 1);
  const server = new SecAggServer({ ...CONTEXT, params, indices, prg: nodeMaskPrg, shuffle: ringInIndexOrder, agreement: nodeKeyAgreement, signing: nodeSigning });
  const clients = new Map(
    indices.map((index) => [
      index,
      testClient(params, index, CONTEXT, seededRandomBytes(`${seed}/${index}`), pinned ? { identitySeed: identitySeedOf(index, seed) } : {}),
    ]),
  );
  for (const [index, client] of clients) server.receiveAdvertise(index, client.advertise());
  const keys = server.closeAdvertise();
  for (const [index, client] of clients) server.receiveShares(index, client.share(keys.get(index)!).ciphertexts);
  const inboxes = server.closeShares();
  for (const [index, client] of clients) {
    client.receiveInbox(inboxes.get(index)!.filter((entry) => !withheld.get(index)?.includes(entry.from)));
    await client.mask(new Float32Array(params.numParams).fill(0.25), 1);
  }
  const neighboursOf = (index: number) => server.neighboursOf(index);
  return { clients, neighboursOf, client: (index: number) => clients.get(index)! };
}

/** Each listed client confirms `survivors`; returns their signatures. */
function confirmAll(clients: ReadonlyMap<number, SecAggClient>, survivors: readonly number[], signers: readonly number[] = survivors): Map<number, Uint8Array> {
  return new Map(signers.map((index) => [index, clients.get(index)!.confirm(survivors)]));
}

function forward(signatures: ReadonlyMap<number, Uint8Array>, from: readonly number[]): SurvivorSignature[] {
  return from.map((index) => ({ index, signature: signatures.get(index)! }));
}

function expectRefusal(client: SecAggClient, action: () => unknown, code: SecAggErrorCode, message: RegExp): void {
  const thrown = thrownBy(action);
  expect(thrown).toBeInstanceOf(SecAggError);
  expect((thrown as SecAggError).code).toBe(code);
  expect((thrown as SecAggError).message).toMatch(message);
  if (code === 'REFUSED') expect(client.stage).toBe('failed');
}

const everyone = [1, 2, 3, 4, 5, 6, 7, 8];

describe('reveal(): an honest client refuses unless t of its neighbourhood signed the set it signed', () => {
  it('reveals with t − 1 valid neighbour signatures (itself the t-th): shares of b_v for every client it holds, none of s_v^SK', async () => {
    const { clients, client } = await maskedCohort(full8);
    const signatures = confirmAll(clients, everyone);
    const answer = client(1).reveal(forward(signatures, [2, 3, 4, 5]));
    expect(answer.selfMaskShares.map((entry) => entry.of)).toEqual(everyone);
    expect(answer.maskKeyShares).toEqual([]);
    expect(client(1).stage).toBe('done');
  });

  it('refuses a forged signature (64 random bytes)', async () => {
    const { clients, client } = await maskedCohort(full8);
    const signatures = confirmAll(clients, everyone);
    signatures.set(5, seededRandomBytes('forged')(64));
    expectRefusal(client(1), () => client(1).reveal(forward(signatures, [2, 3, 4, 5])), 'REFUSED', /the survivor-set signature of 5 does not verify on the set this client signed/);
  });

  it('refuses fewer than t signatures, itself counted', async () => {
    const { clients, client } = await maskedCohort(full8);
    const signatures = confirmAll(clients, everyone);
    expectRefusal(client(1), () => client(1).reveal(forward(signatures, [2, 3, 4])), 'REFUSED', /4 of its neighbourhood signed the survivor set; the threshold is 5/);
  });

  it('refuses a neighbour\'s genuine signature of a different set', async () => {
    const { clients, client } = await maskedCohort(full8);
    const signatures = confirmAll(clients, everyone, [1, 2, 3, 4]);
    signatures.set(5, client(5).confirm([1, 2, 3, 4, 5, 6, 7])); // 5 was told 8 dropped
    expectRefusal(client(1), () => client(1).reveal(forward(signatures, [2, 3, 4, 5])), 'REFUSED', /the survivor-set signature of 5 does not verify on the set this client signed/);
  });

  it('refuses when it was shown another survivor set than its neighbours: both sides of the lie refuse', async () => {
    const { clients, client } = await maskedCohort(full8);
    const toldEveryone = confirmAll(clients, everyone, [2, 3, 4, 5, 6, 7, 8]);
    const told8Dropped = confirmAll(clients, [1, 2, 3, 4, 5, 6, 7], [1]);
    const all = new Map([...toldEveryone, ...told8Dropped]);
    expectRefusal(client(1), () => client(1).reveal(forward(all, [2, 3, 4, 5])), 'REFUSED', /signature of 2 does not verify/);
    expectRefusal(client(2), () => client(2).reveal(forward(all, [1, 3, 4, 5])), 'REFUSED', /signature of 1 does not verify/);
  });

  it('refuses a signature from a client that is not its neighbour (SecAgg+), though it signed the same set', async () => {
    const { clients, client, neighboursOf } = await maskedCohort(plus12);
    const cohort = Array.from({ length: 12 }, (_, i) => i + 1);
    const stranger = cohort.find((v) => v !== 1 && !neighboursOf(1).includes(v))!;
    const signatures = confirmAll(clients, cohort);
    const neighbours = neighboursOf(1).slice(0, plus12.threshold - 2);
    expectRefusal(client(1), () => client(1).reveal(forward(signatures, [...neighbours, stranger])), 'REFUSED', new RegExp(`signature from ${stranger}, which is not a neighbour`));
  });

  it('refuses a signature listed twice', async () => {
    const { clients, client } = await maskedCohort(full8);
    const signatures = confirmAll(clients, everyone);
    expectRefusal(client(1), () => client(1).reveal(forward(signatures, [2, 2, 3, 4, 5])), 'REFUSED', /two survivor-set signatures from 2/);
  });

  it('refuses a signature from a neighbour its survivor set leaves out', async () => {
    const { clients, client } = await maskedCohort(full8);
    const signatures = confirmAll(clients, [1, 2, 3, 4, 5, 6, 7]);
    signatures.set(8, client(8).confirm(everyone));
    expectRefusal(client(1), () => client(1).reveal(forward(signatures, [2, 3, 4, 8])), 'REFUSED', /signature from 8, which is not a survivor/);
  });
});

describe('confirm(): an honest client signs one well-formed set per round', () => {
  it.each<[string, readonly number[], RegExp]>([
    ['a set that is not ascending', [1, 2, 3, 5, 4, 6, 7, 8], /not strictly ascending/],
    ['a set that names a client twice', [1, 2, 3, 3, 4, 5, 6, 7, 8], /not strictly ascending/],
    ['a set that leaves itself out', [2, 3, 4, 5, 6, 7, 8], /this client \(1\) is not announced as a survivor/],
    ['a set of fewer than t members', [1, 2, 3, 4], /4 survivors announced; the threshold is 5/],
  ])('refuses %s', async (_name, survivors, message) => {
    const { client } = await maskedCohort(full8);
    expectRefusal(client(1), () => client(1).confirm(survivors), 'REFUSED', message);
  });

  it('refuses a set naming a neighbour whose share box it never received', async () => {
    const { client } = await maskedCohort(full8, { withheld: new Map([[1, [8]]]) });
    expectRefusal(client(1), () => client(1).confirm(everyone), 'REFUSED', /survivor 8 is a neighbour whose shares this client never received/);
  });

  it('accepts a set leaving out a neighbour whose box it never received, and then reveals that neighbour\'s s^SK share', async () => {
    const { clients, client } = await maskedCohort(full8);
    const signatures = confirmAll(clients, [1, 2, 3, 4, 5, 6, 7]);
    const answer = client(1).reveal(forward(signatures, [2, 3, 4, 5]));
    expect(answer.selfMaskShares.map((entry) => entry.of)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(answer.maskKeyShares.map((entry) => entry.of)).toEqual([8]);
  });

  it('signs only once: a second confirm() is UNEXPECTED_STAGE, and the first signature still stands', async () => {
    const { clients, client } = await maskedCohort(full8);
    const signatures = confirmAll(clients, everyone);
    expectRefusal(client(1), () => client(1).confirm([1, 2, 3, 4, 5, 6, 7]), 'UNEXPECTED_STAGE', /confirm\(\) called in stage unmask/);
    expect(client(1).stage).toBe('unmask');
    expect(client(1).reveal(forward(signatures, [2, 3, 4, 5])).selfMaskShares).toHaveLength(8);
  });
});

describe('what a reveal answer can hold (property over random survivor sets, SecAgg+)', () => {
  // n = 16, k = 7, t = 5: each client has 6 neighbours and 9 non-neighbours. The neighbours sign
  // whatever set the client is shown (they collude, with their pinned identity seeds); the client
  // itself is honest. Some boxes may be withheld from it (at most k − t, so it still masks).
  const params = deriveSecAggParams({ mode: 'secagg+', cohortSize: 16, numParams: 4, degree: 7, maxDropout: 0.2, bound: 1, maxWeight: 10 });
  const cohort = Array.from({ length: 16 }, (_, i) => i + 1);

  it('never s^SK shares of a non-neighbour or of an announced survivor, never both secrets of one owner, and exactly one secret of each client it holds', async () => {
    expect(params.threshold).toBe(5);
    const outcomes = { refusedConfirm: 0, refusedReveal: 0, revealed: 0 };
    const positions = [0, 1, 2, 3, 4, 5];
    const nextSubject = subjects('property');
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 6 }),
        fc.shuffledSubarray(positions, { minLength: 6, maxLength: 6 }),
        fc.subarray([0, 1, 2, 3, 4, 5, 6, 7, 8]),
        fc.subarray(positions, { maxLength: params.degree - params.threshold }),
        async (namedCount, neighbourOrder, strangerPositions, withheldPositions) => {
          // Which of the subject's 6 neighbours and 9 non-neighbours are announced, and whose boxes it never got.
          const { subject, client, inbox, seed } = nextSubject();
          const neighbours = ringNeighbours(subject);
          const strangers = cohort.filter((v) => v !== subject && !neighbours.includes(v));
          const withheld = withheldPositions.map((i) => neighbours[i]!);
          client.receiveInbox(inbox.filter((entry) => !withheld.includes(entry.from)));
          await client.mask(new Float32Array(params.numParams), 1);
          const named = neighbourOrder.slice(0, namedCount).map((i) => neighbours[i]!);
          const survivors = [subject, ...named, ...strangerPositions.map((i) => strangers[i]!)].sort((a, b) => a - b);
          const held = new Set([subject, ...neighbours.filter((v) => !withheld.includes(v))]);
          let signed: Uint8Array;
          try {
            signed = client.confirm(survivors);
          } catch (error) {
            expect((error as SecAggError).code).toBe('REFUSED'); // too few, or names a withheld neighbour
            expect(survivors.length < params.threshold || named.some((v) => withheld.includes(v))).toBe(true);
            outcomes.refusedConfirm++;
            return;
          }
          expect(signed).toHaveLength(64);
          const message = survivorsMessage(CONTEXT, survivors);
          const signatures = named.map((index) => ({ index, signature: nodeSigning.sign(nodeSigning.keyPair(identitySeedOf(index, seed)), message) }));
          let answer;
          try {
            answer = client.reveal(signatures);
          } catch (error) {
            expect((error as SecAggError).code).toBe('REFUSED');
            expect(named.length + 1).toBeLessThan(params.threshold);
            outcomes.refusedReveal++;
            return;
          }
          outcomes.revealed++;
          const selfMaskOwners = answer.selfMaskShares.map((entry) => entry.of);
          const maskKeyOwners = answer.maskKeyShares.map((entry) => entry.of);
          for (const of of maskKeyOwners) {
            expect(neighbours).toContain(of); // never a non-neighbour (nor itself)
            expect(survivors).not.toContain(of); // never an announced survivor
            expect(selfMaskOwners).not.toContain(of); // never both secrets of one owner
          }
          expect([...selfMaskOwners, ...maskKeyOwners].sort((a, b) => a - b)).toEqual([...held].sort((a, b) => a - b));
        },
      ),
      { numRuns: 100, seed: 20_240_601 },
    );
    // Every branch ran, so the property was checked on real answers.
    expect(Math.min(outcomes.refusedConfirm, outcomes.refusedReveal, outcomes.revealed), JSON.stringify(outcomes)).toBeGreaterThanOrEqual(5);
  });

  /** The ring in index order: the 3 clients on each side. */
  function ringNeighbours(index: number): number[] {
    return [-3, -2, -1, 1, 2, 3].map((d) => ((index - 1 + d + 16) % 16) + 1);
  }

  /**
   * Clients that have shared and wait for their inbox, one at a time: the 16 of a round (with pinned
   * identities), then those of a fresh round. The ring is in index order, so any client will do.
   */
  function subjects(seed: string) {
    let round: { clients: Map<number, SecAggClient>; inboxes: Map<number, { from: number; box: Uint8Array }[]> } | undefined;
    let next = cohort.length + 1;
    return () => {
      if (next > cohort.length) {
        round = sharedRound(seed);
        next = 1;
      }
      const subject = next++;
      return { subject, client: round!.clients.get(subject)!, inbox: round!.inboxes.get(subject)!, seed };
    };
  }

  function sharedRound(seed: string) {
    const server = new SecAggServer({ ...CONTEXT, params, indices: cohort, prg: nodeMaskPrg, shuffle: ringInIndexOrder, agreement: nodeKeyAgreement, signing: nodeSigning });
    for (const index of cohort) expect([...server.neighboursOf(index)]).toEqual(ringNeighbours(index).sort((a, b) => a - b));
    const clients = new Map(
      cohort.map((index) => [
        index,
        testClient(params, index, CONTEXT, seededRandomBytes(`${seed}/${index}`), { identitySeed: identitySeedOf(index, seed) }),
      ]),
    );
    for (const [index, client] of clients) server.receiveAdvertise(index, client.advertise());
    const keys = server.closeAdvertise();
    for (const [index, client] of clients) server.receiveShares(index, client.share(keys.get(index)!).ciphertexts);
    return { clients, inboxes: server.closeShares() };
  }
});

describe('advertisement signatures and pinned identities', () => {
  /** Eight clients with pinned identities, advertised; returns what the coordinator would send each. */
  function advertised(options: { trusted?: boolean } = {}) {
    const indices = everyone;
    const identityKeys = indices.map((index) => nodeSigning.keyPair(identitySeedOf(index)).publicKey);
    const clients = new Map(
      indices.map((index) => [
        index,
        testClient(full8, index, CONTEXT, seededRandomBytes(`identities/${index}`), { identitySeed: identitySeedOf(index), ...(options.trusted && { trustedIdentityKeys: identityKeys }) }),
      ]),
    );
    const keys = new Map(indices.map((index) => [index, { index, ...clients.get(index)!.advertise() }]));
    const neighboursOf = (index: number): NeighbourKeys[] => [...keys.values()].filter((entry) => entry.index !== index);
    return { clients, keys, neighboursOf, identityKeys };
  }

  const freshKey = (label: string) => keyPairFromSecret(seededRandomBytes(label)(32)).publicKey;

  function server(identityOf?: (index: number) => Uint8Array | undefined) {
    return new SecAggServer({ ...CONTEXT, params: full8, indices: everyone, prg: nodeMaskPrg, shuffle: ringInIndexOrder, agreement: nodeKeyAgreement, signing: nodeSigning, ...(identityOf && { identityOf }) });
  }

  function expectViolation(action: () => unknown, message: RegExp): void {
    const thrown = thrownBy(action);
    expect(thrown).toBeInstanceOf(SecAggError);
    expect((thrown as SecAggError).code).toBe('INVALID_INPUT');
    expect((thrown as SecAggError).errorCode).toBe('SECAGG_VIOLATION');
    expect((thrown as SecAggError).message).toMatch(message);
  }

  it('the server rejects an advertisement whose signature does not verify (a mask key swapped in transit) with SECAGG_VIOLATION', () => {
    const { keys } = advertised();
    expectViolation(() => server().receiveAdvertise(1, { ...keys.get(1)!, maskKey: freshKey('swapped') }), /client 1 advertise.signature does not verify under its signing key/);
  });

  it('a server with pinned identities rejects an advertisement signed, validly, with another key than the enrolled one', () => {
    const { keys, identityKeys } = advertised();
    const pinning = server((index) => identityKeys[index - 1]);
    expect(pinning.receiveAdvertise(1, keys.get(1)!)).toBe('accepted');
    const impostorSeed = seededRandomBytes('impostor')(32);
    const impostor = nodeSigning.keyPair(impostorSeed);
    const forged = { ...keys.get(2)!, signingKey: impostor.publicKey };
    const signature = nodeSigning.sign(impostor, advertisementMessage(CONTEXT, 2, forged));
    expect(nodeSigning.verify(impostor.publicKey, advertisementMessage(CONTEXT, 2, forged), signature)).toBe(true);
    expectViolation(() => pinning.receiveAdvertise(2, { ...forged, signature }), /client 2 advertised a signing key other than its enrolled identity key/);
  });

  it('a client with trusted identity keys refuses a neighbour whose mask key the coordinator swapped (its signature no longer verifies)', () => {
    const { clients, neighboursOf } = advertised({ trusted: true });
    const list = neighboursOf(1).map((entry) => (entry.index === 2 ? { ...entry, maskKey: freshKey('swapped') } : entry));
    expectRefusal(clients.get(1)!, () => clients.get(1)!.share(list), 'REFUSED', /the advertisement of neighbour 2 does not carry its signature/);
  });

  it('a client with trusted identity keys refuses a neighbour the coordinator invented (fresh keys, signed by a fresh key of its own)', () => {
    const { clients, neighboursOf } = advertised({ trusted: true });
    const sybil = nodeSigning.keyPair(seededRandomBytes('sybil')(32));
    const invented = { encryptionKey: freshKey('sybil-c'), maskKey: freshKey('sybil-s'), signingKey: sybil.publicKey };
    const entry = { index: 2, ...invented, signature: nodeSigning.sign(sybil, advertisementMessage(CONTEXT, 2, invented)) };
    const list = neighboursOf(1).map((neighbour) => (neighbour.index === 2 ? entry : neighbour));
    expectRefusal(clients.get(1)!, () => clients.get(1)!.share(list), 'REFUSED', /neighbour 2 signs with a key that is not a trusted identity/);
  });

  it('a client with trusted identity keys shares with the neighbours it trusts', () => {
    const { clients, neighboursOf } = advertised({ trusted: true });
    expect(clients.get(1)!.share(neighboursOf(1)).ciphertexts.map((entry) => entry.to)).toEqual([2, 3, 4, 5, 6, 7, 8]);
  });

  it('without trusted identity keys a client does not check advertisement signatures: the coordinator that hands out the signing keys could re-sign any swap', () => {
    const { clients, neighboursOf } = advertised();
    const list = neighboursOf(1).map((entry) => (entry.index === 2 ? { ...entry, maskKey: freshKey('swapped') } : entry));
    expect(clients.get(1)!.share(list).ciphertexts).toHaveLength(7);
  });
});
