import { Reconstructor, SecAggClient, SecAggError, SecAggServer, WordSum, decodeShare, elementToSecret, encodeUpdate, keyPairFromSecret, pairMaskKey, roundConfig, selfMaskKey } from '../src/index.js';
import type { RevealAnswer, RoundContext, SecAggParams, Share, Shuffle, Signing, SurvivorSignature } from '../src/index.js';
import { nodeKeyAgreement, nodeMaskPrg, nodeSigning } from '../src/node.js';
import { defaultValues, recordingRandomBytes } from './harness.js';

// A coordinator that routes keys honestly, may trim inboxes, and shows different survivor sets to
// different clients, driving real SecAggClients; and what it can rebuild from the reveals it gets.

/** Ed25519 that signs like nodeSigning but accepts every signature: a client without the consistency check (tests only). */
export const uncheckedSigning: Signing = { ...nodeSigning, verify: () => true };

/** The SecAgg+ ring in index order, so the test knows that i ± 1 … i ± (k − 1)/2 are i's neighbours. */
export const ringInIndexOrder: Shuffle = (items) => [...items];

export interface Lie {
  /** Clients whose inbox the coordinator trims, each with the senders whose boxes it still delivers. */
  readonly inboxes: ReadonlyMap<number, readonly number[]>;
  /** The survivor set shown to each client (ascending); a client not named is shown the honest U3, everyone. */
  readonly survivorSets: ReadonlyMap<number, readonly number[]>;
}

/**
 * A lie that would give the coordinator Σ_{q ∈ targets} x_q from clients that reveal whatever their
 * own survivor set implies (no consistency check), or undefined when no lie of this shape exists.
 *
 * To unmask the targets' sum it needs b_q of each target and s_y^SK of every non-target y a target
 * masks against (its inbox), each from `threshold` holders. A client x reveals s_y^SK when its set
 * leaves its neighbour y out; it still has to name threshold − 1 neighbours (their signatures are
 * forwarded), and only neighbours whose boxes it received, so it can leave out at most
 * |inbox(x)| − (threshold − 1). Who leaves out whom is a b-matching, solved as a max-flow. Targets
 * are never left out, so every holder of b_q reveals it.
 */
export function planLie(
  neighboursOf: (index: number) => readonly number[],
  cohort: readonly number[],
  threshold: number,
  targets: readonly number[],
  inboxes: ReadonlyMap<number, readonly number[]> = new Map(),
): Lie | undefined {
  const inboxOf = (x: number) => inboxes.get(x) ?? neighboursOf(x);
  const isTarget = new Set(targets);
  const needed = [...new Set(targets.flatMap((q) => inboxOf(q).filter((y) => !isTarget.has(y))))].sort((a, b) => a - b);
  for (const q of targets) {
    for (const y of inboxOf(q)) if (isTarget.has(y) && !inboxOf(y).includes(q)) throw new Error(`targets ${q} and ${y} must mask against each other`);
  }
  // Nodes: 0 source, 1 sink, then one per client, then one per needed secret.
  const clientNode = new Map(cohort.map((x, i) => [x, 2 + i]));
  const secretNode = new Map(needed.map((y, i) => [y, 2 + cohort.length + i]));
  const flow = new MaxFlow(2 + cohort.length + needed.length);
  const edges: { x: number; y: number; edge: number }[] = [];
  for (const x of cohort) {
    const inbox = inboxOf(x);
    flow.addEdge(0, clientNode.get(x)!, Math.max(0, inbox.length - (threshold - 1)));
    for (const y of inbox) if (secretNode.has(y)) edges.push({ x, y, edge: flow.addEdge(clientNode.get(x)!, secretNode.get(y)!, 1) });
  }
  for (const y of needed) flow.addEdge(secretNode.get(y)!, 1, threshold);
  if (flow.run(0, 1) < needed.length * threshold) return undefined;

  const leftOut = new Map<number, Set<number>>();
  for (const { x, y, edge } of edges) if (flow.used(edge)) (leftOut.get(x) ?? leftOut.set(x, new Set()).get(x)!).add(y);
  const survivorSets = new Map<number, number[]>();
  for (const x of cohort) {
    if (!leftOut.has(x) && !inboxes.has(x)) continue; // told the truth: shown everyone
    const omitted = leftOut.get(x) ?? new Set<number>();
    survivorSets.set(x, [x, ...inboxOf(x).filter((y) => !omitted.has(y))].sort((a, b) => a - b));
  }
  return { inboxes, survivorSets };
}

export interface LyingRound {
  readonly params: SecAggParams;
  readonly server: SecAggServer;
  readonly context: RoundContext;
  readonly clients: ReadonlyMap<number, SecAggClient>;
  /** Each client's masked input, as the coordinator received it. */
  readonly masked: ReadonlyMap<number, Uint32Array>;
  /** The targets' plain encodings, replayed from their recorded rounding draws (only the test knows them). */
  readonly encoded: ReadonlyMap<number, Uint32Array>;
  /** Each client's advertised mask public key s^PK. */
  readonly maskKeys: ReadonlyMap<number, Uint8Array>;
  /** The senders whose boxes each client received (whom it masks against). */
  readonly inboxOf: (index: number) => readonly number[];
  /** The survivor set each client was shown and signed. */
  readonly shown: ReadonlyMap<number, readonly number[]>;
  readonly answers: ReadonlyMap<number, RevealAnswer>;
  /** What each client that refused to reveal threw. */
  readonly refusals: ReadonlyMap<number, unknown>;
}

/**
 * One round against real clients (`clientSigning` is theirs) with a coordinator that follows
 * `lie`: it routes keys and boxes honestly except for trimmed inboxes, shows each client its set,
 * collects each client's one signature, and forwards to each client the best signatures it has:
 * those of its neighbours in its set that signed the very same set when they reach the threshold,
 * else every signature of a neighbour in its set (checked clients then refuse).
 */
export async function runLyingRound(options: { params: SecAggParams; lie: Lie; clientSigning: Signing; targets: readonly number[]; seed: string }): Promise<LyingRound> {
  const { params, lie, clientSigning, targets, seed } = options;
  const cohort = Array.from({ length: params.cohortSize }, (_, i) => i + 1);
  const context = { sessionId: 'session-a', round: 3 };
  const server = new SecAggServer({ ...context, params, indices: cohort, prg: nodeMaskPrg, shuffle: ringInIndexOrder, agreement: nodeKeyAgreement, signing: nodeSigning });
  const randomness = new Map(cohort.map((index) => [index, recordingRandomBytes(`${seed}/${index}`)]));
  const clients = new Map(
    cohort.map((index) => {
      const config = roundConfig(params, index, context.sessionId);
      const randomBytes = randomness.get(index)!.randomBytes;
      return [index, new SecAggClient({ config, round: context.round, numParams: params.numParams, randomBytes, prg: nodeMaskPrg, agreement: nodeKeyAgreement, signing: clientSigning })];
    }),
  );

  const maskKeys = new Map<number, Uint8Array>();
  for (const [index, client] of clients) {
    const advertised = client.advertise();
    maskKeys.set(index, advertised.maskKey);
    server.receiveAdvertise(index, advertised);
  }
  const keys = server.closeAdvertise();
  for (const [index, client] of clients) server.receiveShares(index, client.share(keys.get(index)!).ciphertexts);
  const routed = server.closeShares();
  const inboxes = new Map(cohort.map((index) => [index, routed.get(index)!.filter((entry) => lie.inboxes.get(index)?.includes(entry.from) ?? true)]));
  const inboxOf = (index: number) => inboxes.get(index)!.map((entry) => entry.from);

  const masked = new Map<number, Uint32Array>();
  const encoded = new Map<number, Uint32Array>();
  for (const [index, client] of clients) {
    client.receiveInbox(inboxes.get(index)!);
    const values = defaultValues(index, params);
    const weight = 1 + (index % params.maxWeight);
    const recorder = randomness.get(index)!;
    recorder.record(true);
    masked.set(index, await client.mask(values, weight));
    recorder.record(false);
    if (targets.includes(index)) encoded.set(index, encodeUpdate(values, weight, params, recorder.replay()));
  }

  const shown = new Map(cohort.map((index) => [index, lie.survivorSets.get(index) ?? cohort]));
  const signatures = new Map([...clients].map(([index, client]) => [index, client.confirm(shown.get(index)!)]));
  const sameSet = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
  const answers = new Map<number, RevealAnswer>();
  const refusals = new Map<number, unknown>();
  for (const [index, client] of clients) {
    const set = shown.get(index)!;
    const candidates = server.neighboursOf(index).filter((y) => set.includes(y));
    const valid = candidates.filter((y) => sameSet(shown.get(y)!, set));
    const forwarded: SurvivorSignature[] = (valid.length + 1 >= params.threshold ? valid : candidates).map((y) => ({ index: y, signature: signatures.get(y)! }));
    try {
      answers.set(index, client.reveal(forwarded));
    } catch (error) {
      if (!(error instanceof SecAggError)) throw error;
      refusals.set(index, error);
    }
  }
  return { params, server, context, clients, masked, encoded, maskKeys, inboxOf, shown, answers, refusals };
}

export interface Recovery {
  /** Σ masked_q minus every mask the coordinator could rebuild: Σ x_q's encoding if the attack worked. */
  readonly recovered: Uint32Array;
  /** Σ of the targets' true encodings mod 2^32. */
  readonly truth: Uint32Array;
  /** Words of `recovered` equal to `truth` (uniform words agree by chance with probability 2^−32 each). */
  readonly matchingWords: number;
  /** Shares collected of each target's b_q, and of each mask key the recovery used (s_y^SK, or with `ownKey` the target's). */
  readonly selfMaskShares: ReadonlyMap<number, number>;
  readonly maskKeyShares: ReadonlyMap<number, number>;
  /** Whether every s_y^SK rebuilt from threshold shares matches y's advertised public key. */
  readonly rebuiltKeysMatch: boolean;
}

/**
 * What the coordinator gets of Σ_{q ∈ targets} x_q: Σ masked_q minus PRG(b_q) and the pairwise
 * masks with each non-target y the targets mask against, from the secrets it rebuilds out of the
 * reveals (from fewer than threshold shares it interpolates what it has: a guess). The pairwise
 * masks come from s_y^SK of those y, or with `ownKey` from the target's own s_q^SK.
 */
export async function recoverSum(round: LyingRound, targets: readonly number[], options: { ownKey?: boolean } = {}): Promise<Recovery> {
  const { params, context } = round;
  const selfMask = sharesByOwner(round.answers, 'selfMaskShares');
  const maskKey = sharesByOwner(round.answers, 'maskKeyShares');
  let rebuiltKeysMatch = true;
  const rebuild = (owner: number, kind: 'self' | 'key') => {
    const shares = (kind === 'self' ? selfMask : maskKey).get(owner) ?? [];
    const element = shares.length === 0 ? 0n : new Reconstructor(Math.min(shares.length, params.threshold)).reconstruct(shares);
    const secret = elementToSecret(element) ?? new Uint8Array(32);
    if (kind === 'key' && shares.length >= params.threshold) rebuiltKeysMatch &&= equal(keyPairFromSecret(secret).publicKey, round.maskKeys.get(owner)!);
    return secret;
  };
  const sum = new WordSum(params.numParams + 1);
  const truth = new WordSum(params.numParams + 1);
  const keyOwners = new Set<number>();
  for (const q of targets) {
    sum.add(round.masked.get(q)!);
    truth.add(round.encoded.get(q)!);
    await nodeMaskPrg.addTo(sum, selfMaskKey(rebuild(q, 'self'), context), -1);
    for (const y of round.inboxOf(q)) {
      if (targets.includes(y)) continue; // the two targets' masks cancel in the sum
      const owner = options.ownKey ? q : y;
      keyOwners.add(owner);
      const [pairSecret] = nodeKeyAgreement.agreeMany(rebuild(owner, 'key'), [round.maskKeys.get(owner === q ? y : q)!]);
      // q added +PRG(s_qy) when q > y and −PRG(s_qy) otherwise; undo exactly that.
      await nodeMaskPrg.addTo(sum, pairMaskKey(pairSecret ?? new Uint8Array(32), q, y, context), q > y ? -1 : 1);
    }
  }
  const recovered = sum.toUint32Array();
  const truthWords = truth.toUint32Array();
  const counts = (shares: Map<number, Share[]>, owners: Iterable<number>) => new Map([...owners].sort((a, b) => a - b).map((owner) => [owner, shares.get(owner)?.length ?? 0]));
  return {
    recovered,
    truth: truthWords,
    matchingWords: recovered.filter((word, i) => word === truthWords[i]).length,
    selfMaskShares: counts(selfMask, targets),
    maskKeyShares: counts(maskKey, keyOwners),
    rebuiltKeysMatch,
  };
}

function sharesByOwner(answers: ReadonlyMap<number, RevealAnswer>, kind: keyof RevealAnswer): Map<number, Share[]> {
  const byOwner = new Map<number, Share[]>();
  for (const [holder, answer] of answers) {
    for (const { of, share } of answer[kind]) {
      const y = decodeShare(share);
      if (y === null) throw new Error(`client ${holder} revealed a malformed share of ${of}`);
      (byOwner.get(of) ?? byOwner.set(of, []).get(of)!).push({ x: holder, y });
    }
  }
  return byOwner;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** Edmonds–Karp max-flow on a small graph (a few hundred nodes). */
class MaxFlow {
  private readonly to: number[] = [];
  private readonly capacity: number[] = [];
  private readonly original: number[] = [];
  private readonly adjacent: number[][];

  constructor(nodes: number) {
    this.adjacent = Array.from({ length: nodes }, () => []);
  }

  /** Adds an edge and returns its id. */
  addEdge(from: number, to: number, capacity: number): number {
    const id = this.to.length;
    this.to.push(to, from);
    this.capacity.push(capacity, 0);
    this.original.push(capacity, 0);
    this.adjacent[from]!.push(id);
    this.adjacent[to]!.push(id + 1);
    return id;
  }

  /** Whether edge `id` carries flow. */
  used(id: number): boolean {
    return this.capacity[id]! < this.original[id]!;
  }

  run(source: number, sink: number): number {
    let total = 0;
    for (;;) {
      const via = new Array<number>(this.adjacent.length).fill(-1);
      const queue = [source];
      const seen = new Set([source]);
      while (queue.length > 0 && !seen.has(sink)) {
        const node = queue.shift()!;
        for (const edge of this.adjacent[node]!) {
          const next = this.to[edge]!;
          if (this.capacity[edge]! > 0 && !seen.has(next)) {
            seen.add(next);
            via[next] = edge;
            queue.push(next);
          }
        }
      }
      if (!seen.has(sink)) return total;
      let bottleneck = Infinity;
      for (let node = sink; node !== source; node = this.to[via[node]! ^ 1]!) bottleneck = Math.min(bottleneck, this.capacity[via[node]!]!);
      for (let node = sink; node !== source; node = this.to[via[node]! ^ 1]!) {
        this.capacity[via[node]!]! -= bottleneck;
        this.capacity[via[node]! ^ 1]! += bottleneck;
      }
      total += bottleneck;
    }
  }
}
