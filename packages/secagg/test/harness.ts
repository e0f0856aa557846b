import { createCipheriv, createHash } from 'node:crypto';
import { createSeededRandom, shuffled } from '@shoal/protocol';
import type { KeyAgreement, MaskPrg, RoundContext, SecAggClientOptions, SecAggParams, Shuffle, Signing } from '../src/index.js';
import { SecAggAbort, SecAggClient, SecAggServer, encodeUpdate, roundConfig } from '../src/index.js';
import type { AggregateResult, MaskedClose } from '../src/index.js';
import { nodeKeyAgreement, nodeMaskPrg, nodeSigning } from '../src/node.js';

/**
 * Deterministic test randomness: an AES-128-CTR stream keyed by a hash of `seed`, so every run
 * sees the same keys, shares and roundings. (Production passes crypto.getRandomValues.)
 */
export function seededRandomBytes(seed: string | number): (n: number) => Uint8Array {
  const key = createHash('sha256').update(`shoal-secagg-test/${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return (n) => new Uint8Array(cipher.update(Buffer.alloc(n)));
}

export function seededShuffle(seed: number): Shuffle {
  const random = createSeededRandom(seed);
  return (items) => shuffled(items, random);
}

/**
 * A client as the tests here build one: the Node fast paths (same bytes as tweetnacl), the round's
 * config for `index`, and `randomBytes` (deterministic in tests); `options` adds or overrides.
 */
export function testClient(params: SecAggParams, index: number, context: RoundContext, randomBytes: (n: number) => Uint8Array, options: Partial<SecAggClientOptions> = {}): SecAggClient {
  const config = roundConfig(params, index, context.sessionId);
  return new SecAggClient({ config, round: context.round, numParams: params.numParams, randomBytes, prg: nodeMaskPrg, agreement: nodeKeyAgreement, signing: nodeSigning, ...options });
}

/** Records what a client draws while `recording` is on, so a test can replay its encoding randomness. */
export function recordingRandomBytes(seed: string | number) {
  const source = seededRandomBytes(seed);
  const recorded: Uint8Array[] = [];
  let recording = false;
  return {
    randomBytes: (n: number) => {
      const bytes = source(n);
      if (recording) recorded.push(bytes.slice());
      return bytes;
    },
    record(on: boolean) {
      recording = on;
    },
    /** A randomBytes that hands back the recorded draws in order. */
    replay: () => {
      let next = 0;
      return (n: number) => {
        const bytes = recorded[next++];
        if (bytes === undefined || bytes.length !== n) throw new Error('replay out of step with the recording');
        return bytes;
      };
    },
  };
}

/** Where clients stop answering. Indices in each list are distinct clients. */
export interface Dropouts {
  /** Advertised, then never shared (U1 but not U2). */
  readonly afterAdvertise?: readonly number[];
  /** Shared, then never sent a masked input (U2∖U3: their pairwise masks must be removed). */
  readonly afterShare?: readonly number[];
  /** Sent a masked input, then gone before the survivor set (in U3, never confirm or reveal). */
  readonly afterMasked?: readonly number[];
  /** Got the unmask request but their reveal arrives only after the coordinator finished. */
  readonly duringUnmask?: readonly number[];
}

export interface RoundOutcome {
  readonly params: SecAggParams;
  readonly server: SecAggServer;
  readonly clients: SecAggClient[];
  /** Set when the round finished. */
  readonly result?: AggregateResult;
  /** Set when the round aborted. */
  readonly abort?: SecAggAbort;
  /** The server call that aborted the round. */
  readonly abortedAt?: 'closeAdvertise' | 'closeShares' | 'closeMasked' | 'closeConfirm' | 'finish';
  /** What closeMasked announced, when the round got that far. */
  readonly maskedClose?: MaskedClose;
  /** Σ of the survivors' encoded inputs mod 2^32, recomputed from their recorded rounding draws. */
  readonly expectedEncodedSum: Uint32Array;
  /** Σ of the survivors' weighted values in float64. */
  readonly plainSum: Float64Array;
  readonly weights: number[];
  /** Clients that revealed. */
  readonly revealers: number[];
}

export interface RoundOptions {
  readonly params: SecAggParams;
  readonly dropouts?: Dropouts;
  readonly seed?: number;
  readonly round?: number;
  readonly sessionId?: string;
  readonly prg?: MaskPrg;
  readonly clientAgreement?: KeyAgreement;
  /** Ed25519 of the clients; default node:crypto (tweetnacl gives the same bytes, ~100× slower). */
  readonly clientSigning?: Signing;
  /** Each client's weighted values; default small deterministic values within the bound. */
  readonly values?: (index: number) => Float32Array;
  /**
   * Pinned identities: each client signs with a fixed identity seed, trusts exactly the cohort's
   * identity keys, and the server checks each advertisement against the enrolled key. Default off.
   */
  readonly identities?: boolean;
}

/** The pinned identity seed of a client in the tests (deterministic). */
export function identitySeedOf(index: number, seed: string | number = 'identity'): Uint8Array {
  return seededRandomBytes(`${seed}/identity/${index}`)(32);
}

/** Runs one whole round through real clients and a real server, honest on both sides. */
export async function runRound(options: RoundOptions): Promise<RoundOutcome> {
  const { params, dropouts = {}, seed = 1, round = 7, sessionId = 'session-a' } = options;
  const prg = options.prg ?? nodeMaskPrg;
  const indices = Array.from({ length: params.cohortSize }, (_, i) => i + 1);
  const identityKeys = new Map(indices.map((index) => [index, nodeSigning.keyPair(identitySeedOf(index, seed)).publicKey]));
  const identityOf = options.identities ? (index: number) => identityKeys.get(index) : undefined;
  const server = new SecAggServer({ round, sessionId, params, indices, prg, shuffle: seededShuffle(seed), agreement: nodeKeyAgreement, signing: nodeSigning, ...(identityOf && { identityOf }) });
  const randomness = new Map(indices.map((index) => [index, recordingRandomBytes(`${seed}/${index}`)]));
  const clients = indices.map(
    (index) =>
      new SecAggClient({
        config: roundConfig(params, index, sessionId),
        round,
        numParams: params.numParams,
        randomBytes: randomness.get(index)!.randomBytes,
        prg,
        signing: options.clientSigning ?? nodeSigning,
        ...(options.clientAgreement === undefined ? {} : { agreement: options.clientAgreement }),
        ...(options.identities && { identitySeed: identitySeedOf(index, seed), trustedIdentityKeys: [...identityKeys.values()] }),
      }),
  );
  const valuesOf = options.values ?? ((index: number) => defaultValues(index, params));
  const gone = new Set<number>();
  const expectedEncodedSum = new Uint32Array(params.numParams + 1);
  const plainSum = new Float64Array(params.numParams);
  const weights: number[] = [];
  const revealers: number[] = [];
  const partial = { params, server, clients, expectedEncodedSum, plainSum, weights, revealers };
  const alive = () => clients.filter((client) => !gone.has(client.index));
  let step: NonNullable<RoundOutcome['abortedAt']> = 'closeAdvertise';

  try {
    for (const client of alive()) server.receiveAdvertise(client.index, client.advertise());
    const keys = server.closeAdvertise();
    step = 'closeShares';
    for (const index of dropouts.afterAdvertise ?? []) gone.add(index);
    for (const client of alive()) {
      const neighbours = keys.get(client.index);
      if (neighbours === undefined) gone.add(client.index); // pruned by the coordinator: a dropout
      else server.receiveShares(client.index, client.share(neighbours).ciphertexts);
    }
    const inboxes = server.closeShares();
    step = 'closeMasked';
    for (const index of dropouts.afterShare ?? []) gone.add(index);
    for (const client of alive()) {
      const inbox = inboxes.get(client.index);
      if (inbox === undefined) {
        gone.add(client.index);
        continue;
      }
      client.receiveInbox(inbox);
      const values = valuesOf(client.index);
      const weight = 1 + (client.index % params.maxWeight);
      const recorder = randomness.get(client.index)!;
      recorder.record(true);
      const masked = await client.mask(values, weight);
      recorder.record(false);
      server.receiveMasked(client.index, masked);
      // The survivor's plain encoding, from the same rounding draws: what the sum must equal.
      const encoded = encodeUpdate(values, weight, params, recorder.replay());
      for (let i = 0; i < encoded.length; i++) expectedEncodedSum[i] = expectedEncodedSum[i]! + encoded[i]!;
      for (let i = 0; i < values.length; i++) plainSum[i] = plainSum[i]! + values[i]!;
      weights.push(weight);
    }
    const maskedClose = server.closeMasked();
    step = 'closeConfirm';
    for (const index of dropouts.afterMasked ?? []) gone.add(index);
    for (const client of alive()) {
      if (maskedClose.survivors.includes(client.index)) server.receiveConfirm(client.index, client.confirm(maskedClose.survivors));
    }
    const forwarded = server.closeConfirm();
    step = 'finish';
    const lateReveals: [number, ReturnType<SecAggClient['reveal']>][] = [];
    for (const client of alive()) {
      const signatures = forwarded.get(client.index);
      if (signatures === undefined) continue;
      const answer = client.reveal(signatures);
      if (dropouts.duringUnmask?.includes(client.index)) lateReveals.push([client.index, answer]);
      else {
        server.receiveReveal(client.index, answer);
        revealers.push(client.index);
      }
    }
    let result: AggregateResult;
    try {
      result = await server.finish();
    } catch (error) {
      if (error instanceof SecAggAbort) return { ...partial, abort: error, abortedAt: step, maskedClose };
      throw error;
    }
    for (const [index, answer] of lateReveals) {
      if (server.receiveReveal(index, answer) !== 'late') throw new Error('a reveal after finish must be late');
    }
    return { ...partial, result, maskedClose };
  } catch (error) {
    if (error instanceof SecAggAbort) return { ...partial, abort: error, abortedAt: step };
    throw error;
  }
}

/** Deterministic values spread over ±bound/2, different per client. */
export function defaultValues(index: number, params: SecAggParams): Float32Array {
  return Float32Array.from({ length: params.numParams }, (_, i) => Math.sin(index * 7.1 + i * 0.37) * params.bound * 0.5);
}
