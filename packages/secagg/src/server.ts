import type { ErrorCode, NeighbourKeys } from '@shoal/protocol';
import { equalBytes, toHex } from './bytes.js';
import type { SurvivorSignature } from './client.js';
import { decodeSum } from './encoding.js';
import { SecAggAbort, SecAggError } from './errors.js';
import type { Shuffle } from './graph.js';
import { ascending, checkIndices, neighbourGraph } from './graph.js';
import type { KeyAgreement, RoundContext } from './keys.js';
import { KEY_BYTES, isSmallOrder, naclKeyAgreement } from './keys.js';
import type { SecAggParams } from './params.js';
import { checkSecAggParams } from './params.js';
import type { MaskPrg } from './prg.js';
import type { Share } from './shamir.js';
import { Reconstructor, decodeShare, elementToSecret } from './shamir.js';
import { SHARE_BOX_BYTES } from './share-crypto.js';
import type { PairMasks, UnmaskJob, UnmaskRunner } from './unmask-job.js';
import { jobMasks, removeMasks, splitUnmaskJobs } from './unmask-job.js';
import type { Signing } from './signing.js';
import { advertisementMessage, naclSigning, survivorsMessage } from './signing.js';
import { WordSum } from './word-sum.js';

/**
 * Where the coordinator's side of a round is. Each stage collects one kind of client message and
 * is closed by the coordinator (at its deadline, or when every expected client answered):
 * advertise → share → masked → confirm → unmask → (finish) done. `aborted` when too few clients remain.
 */
export type ServerStage = 'advertise' | 'share' | 'masked' | 'confirm' | 'unmask' | 'finishing' | 'done' | 'aborted';

/** `late`: the message belongs to a stage already closed (a straggler); drop it and keep the connection. */
export type Receipt = 'accepted' | 'late';

export interface SecAggServerOptions {
  readonly round: number;
  readonly sessionId: string;
  readonly params: SecAggParams;
  /** The cohort's indices (Shamir x-coordinates), cohortSize of them. */
  readonly indices: readonly number[];
  readonly prg: MaskPrg;
  /** Places the cohort on the SecAgg+ ring; unused for full SecAgg. */
  readonly shuffle: Shuffle;
  /** X25519; default tweetnacl. `nodeKeyAgreement` is ~15× faster in Node. */
  readonly agreement?: KeyAgreement;
  /** Ed25519; default tweetnacl. `nodeSigning` is ~100× faster in Node. */
  readonly signing?: Signing;
  /** A client's pinned identity key, if it enrolled with one: its advertisement must then be signed with it. */
  readonly identityOf?: (index: number) => Uint8Array | undefined;
}

export interface MaskedClose {
  /** U3: clients whose masked input arrived, ascending: the set every survivor is asked to sign. */
  readonly survivors: number[];
  /** U2∖U3: clients that shared but sent no masked input. */
  readonly dropped: number[];
}

/** What the coordinator expects a survivor to reveal: its neighbourhood's part of U3 and of U2∖U3. */
interface UnmaskRequest {
  readonly survivors: readonly number[];
  readonly dropped: readonly number[];
}

/** A survivor's `reveal`: shares of b_v for announced survivors, of s_v^SK for announced dropped clients. */
export interface RevealedShares {
  readonly selfMaskShares: readonly { readonly of: number; readonly share: Uint8Array }[];
  readonly maskKeyShares: readonly { readonly of: number; readonly share: Uint8Array }[];
}

export interface AggregateResult {
  /** The unmasked sum of the encoded inputs, mod 2^32 (values then the weight word). */
  readonly encodedSum: Uint32Array;
  /** Σ of the survivors' weighted values, decoded. */
  readonly sum: Float64Array;
  readonly totalWeight: number;
  /** Clients in the sum (|U3|). */
  readonly count: number;
}

/**
 * The coordinator's side of one SecAgg round, a pure state machine: it checks every client
 * message, decides U1 ⊇ U2 ⊇ U3, routes keys and share boxes, folds masked inputs into one running
 * sum as they arrive (memory O(numParams), not O(clients × numParams)), and finally reconstructs
 * the secrets it is owed and removes the masks. A bad message throws SecAggError for that one
 * client; too few clients throws SecAggAbort for the round.
 */
export class SecAggServer {
  private currentStage: ServerStage = 'advertise';
  private readonly params: SecAggParams;
  private readonly context: RoundContext;
  private readonly prg: MaskPrg;
  private readonly agreement: KeyAgreement;
  private readonly signing: Signing;
  private readonly identityOf: (index: number) => Uint8Array | undefined;
  private readonly graph: Map<number, number[]>;

  private readonly keys = new Map<number, Omit<NeighbourKeys, 'index'>>();
  private readonly usedKeys = new Set<string>();
  /** U1 after closeAdvertise: who got keys, and whose keys each one got. */
  private readonly sentNeighbours = new Map<number, ReadonlySet<number>>();
  private readonly boxes = new Map<number, Map<number, Uint8Array>>();
  private u2 = new Set<number>();
  private readonly u3 = new Set<number>();
  /** U3 ascending, as announced for signing; then each confirmer's signature of it. */
  private announced: readonly number[] = [];
  private readonly confirmations = new Map<number, Uint8Array>();
  private readonly sum: WordSum;
  private requests = new Map<number, UnmaskRequest>();
  private readonly revealed = new Set<number>();
  /** Revealed shares per secret owner. */
  private readonly selfMaskShares = new Map<number, Share[]>();
  private readonly maskKeyShares = new Map<number, Share[]>();

  constructor(options: SecAggServerOptions) {
    const { params, indices, round, sessionId } = options;
    checkSecAggParams(params);
    checkIndices(indices);
    if (indices.length !== params.cohortSize) {
      throw new SecAggError('INVALID_INPUT', `${indices.length} indices for a cohort of ${params.cohortSize}`);
    }
    if (!Number.isSafeInteger(round) || round < 0) throw new SecAggError('INVALID_INPUT', `round must be an integer ≥ 0, got ${round}`);
    this.params = params;
    this.context = { sessionId, round };
    this.prg = options.prg;
    this.agreement = options.agreement ?? naclKeyAgreement;
    this.signing = options.signing ?? naclSigning;
    this.identityOf = options.identityOf ?? (() => undefined);
    this.graph = neighbourGraph(indices, params.degree, options.shuffle);
    this.sum = new WordSum(params.numParams + 1);
  }

  get stage(): ServerStage {
    return this.currentStage;
  }

  /** The neighbours of `index` in the round's graph (all cohort members, whether or not they answered). */
  neighboursOf(index: number): readonly number[] {
    return this.neighbours(index);
  }

  /**
   * Stage 1: a client's three public keys and its signature of them. Rejects wrong sizes,
   * small-order X25519 points, keys already in use, a signature that does not verify, and (for a
   * client enrolled with a pinned identity) a signing key other than its identity key.
   */
  receiveAdvertise(index: number, advertised: Omit<NeighbourKeys, 'index'>): Receipt {
    if (this.arrival(index, 'advertise') === 'late') return 'late';
    if (this.keys.has(index)) this.reject(index, 'sent advertise twice', 'DUPLICATE_MESSAGE');
    for (const [name, key] of [['encryptionKey', advertised.encryptionKey], ['maskKey', advertised.maskKey], ['signingKey', advertised.signingKey]] as const) {
      if (key.length !== KEY_BYTES) this.reject(index, `advertise.${name} has ${key.length} bytes`);
      if (this.usedKeys.has(toHex(key))) this.reject(index, `advertise.${name} repeats a key already advertised`);
      if (name !== 'signingKey' && isSmallOrder(key, this.agreement)) this.reject(index, `advertise.${name} is a small-order point`);
    }
    if (equalBytes(advertised.encryptionKey, advertised.maskKey)) this.reject(index, 'advertised one key for both purposes');
    const identity = this.identityOf(index);
    if (identity !== undefined && !equalBytes(advertised.signingKey, identity)) this.reject(index, 'advertised a signing key other than its enrolled identity key');
    if (!this.signing.verify(advertised.signingKey, advertisementMessage(this.context, index, advertised), advertised.signature)) {
      this.reject(index, 'advertise.signature does not verify under its signing key');
    }
    for (const key of [advertised.encryptionKey, advertised.maskKey, advertised.signingKey]) this.usedKeys.add(toHex(key));
    const { encryptionKey, maskKey, signingKey, signature } = advertised;
    this.keys.set(index, { encryptionKey: new Uint8Array(encryptionKey), maskKey: new Uint8Array(maskKey), signingKey: new Uint8Array(signingKey), signature: new Uint8Array(signature) });
    return 'accepted';
  }

  /**
   * Ends stage 1. U1 = the clients that advertised, less any whose advertised neighbourhood is too
   * small to ever reach the threshold (their secrets could not be rebuilt). Returns, for each
   * client of U1, its neighbours in U1 with their keys. SecAggAbort when |U1| < threshold.
   */
  closeAdvertise(): Map<number, NeighbourKeys[]> {
    this.expectStage('advertise', 'closeAdvertise');
    const u1 = this.pruned(new Set(this.keys.keys()), 'advertised');
    const keysMessages = new Map<number, NeighbourKeys[]>();
    for (const index of u1) {
      const neighbours = this.neighbours(index).filter((v) => u1.has(v));
      this.sentNeighbours.set(index, new Set(neighbours));
      keysMessages.set(index, neighbours.map((v) => ({ index: v, ...this.keys.get(v)! })));
    }
    this.currentStage = 'share';
    return keysMessages;
  }

  /** Stage 2: a client's share boxes: exactly one of SHARE_BOX_BYTES for each neighbour it was sent keys of. */
  receiveShares(index: number, ciphertexts: readonly { to: number; box: Uint8Array }[]): Receipt {
    if (this.arrival(index, 'share') === 'late') return 'late';
    const expected = this.sentNeighbours.get(index);
    if (expected === undefined) this.reject(index, 'sent shares without being sent keys');
    if (this.boxes.has(index)) this.reject(index, 'sent shares twice', 'DUPLICATE_MESSAGE');
    const boxes = new Map<number, Uint8Array>();
    for (const { to, box } of ciphertexts) {
      if (!expected.has(to)) this.reject(index, `sent a share box to ${to}, not one of its neighbours`);
      if (boxes.has(to)) this.reject(index, `sent two share boxes to ${to}`);
      if (box.length !== SHARE_BOX_BYTES) this.reject(index, `sent a share box of ${box.length} bytes to ${to}, not ${SHARE_BOX_BYTES}`);
      boxes.set(to, new Uint8Array(box));
    }
    if (boxes.size !== expected.size) this.reject(index, `sent ${boxes.size} share boxes for ${expected.size} neighbours`);
    this.boxes.set(index, boxes);
    return 'accepted';
  }

  /**
   * Ends stage 2. U2 = the clients whose shares arrived, less any left with too few neighbours in
   * U2 to reach the threshold. Returns each member's inbox: the boxes addressed to it by its
   * neighbours in U2 (boxes to or from anyone outside U2 are never forwarded, so a client masks
   * against exactly its neighbours in U2). SecAggAbort when |U2| < threshold.
   */
  closeShares(): Map<number, { from: number; box: Uint8Array }[]> {
    this.expectStage('share', 'closeShares');
    this.u2 = this.pruned(new Set(this.boxes.keys()), 'shared');
    const inboxes = new Map<number, { from: number; box: Uint8Array }[]>();
    for (const u of this.u2) {
      const senders = this.neighbours(u).filter((v) => this.u2.has(v));
      inboxes.set(u, senders.map((v) => ({ from: v, box: this.boxes.get(v)!.get(u)! })));
    }
    this.boxes.clear();
    this.currentStage = 'masked';
    return inboxes;
  }

  /** Stage 3: a masked input of numParams + 1 words from a member of U2, folded into the running sum at once. */
  receiveMasked(index: number, masked: Uint32Array): Receipt {
    if (this.arrival(index, 'masked') === 'late') return 'late';
    if (!this.u2.has(index)) this.reject(index, 'sent a masked input without an inbox (not in U2)');
    if (this.u3.has(index)) this.reject(index, 'sent a masked input twice', 'DUPLICATE_MESSAGE');
    if (!(masked instanceof Uint32Array) || masked.length !== this.sum.length) {
      this.reject(index, `sent a masked input of ${masked.length} words, not ${this.sum.length}`, 'LENGTH_MISMATCH');
    }
    this.sum.add(masked);
    this.u3.add(index);
    return 'accepted';
  }

  /**
   * Ends stage 3: U3 = the clients whose masked input arrived, dropped = U2∖U3. Aborts (before any
   * secret is revealed) when |U3| < threshold, or when some secret the coordinator will need
   * (b_u of a survivor, s_v^SK of a dropped client with a surviving neighbour) has fewer than
   * threshold surviving holders. Returns U3, which every survivor is sent to sign.
   */
  closeMasked(): MaskedClose {
    this.expectStage('masked', 'closeMasked');
    const survivors = [...this.u3].sort(ascending);
    const dropped = [...this.u2].filter((v) => !this.u3.has(v)).sort(ascending);
    if (survivors.length < this.params.threshold) {
      this.abort(`only ${survivors.length} of the ${this.u2.size} clients that shared sent a masked input; the threshold is ${this.params.threshold}`);
    }
    this.checkRecoverable(this.u3);
    this.announced = survivors;
    this.currentStage = 'confirm';
    return { survivors, dropped };
  }

  /** Stage 4: a survivor's signature of the announced U3, checked against the signing key it advertised. */
  receiveConfirm(index: number, signature: Uint8Array): Receipt {
    if (this.arrival(index, 'confirm') === 'late') return 'late';
    if (!this.u3.has(index)) this.reject(index, 'sent a confirmation without being a survivor (not in U3)');
    if (this.confirmations.has(index)) this.reject(index, 'sent a confirmation twice', 'DUPLICATE_MESSAGE');
    if (!this.signing.verify(this.keys.get(index)!.signingKey, survivorsMessage(this.context, this.announced), signature)) {
      this.reject(index, 'signed something other than the announced survivor set');
    }
    this.confirmations.set(index, new Uint8Array(signature));
    return 'accepted';
  }

  /**
   * Ends stage 4. A survivor that confirmed is sent threshold − 1 of its neighbours' signatures of
   * U3 (with its own, the threshold it checks; more would only cost it verifications), and only
   * when it has that many (else it would refuse to reveal). Aborts when some secret the
   * coordinator needs has fewer than threshold holders left among those it can ask. Returns, for
   * each survivor to ask, the signatures to forward.
   */
  closeConfirm(): Map<number, SurvivorSignature[]> {
    this.expectStage('confirm', 'closeConfirm');
    const { threshold } = this.params;
    const forwarded = new Map<number, SurvivorSignature[]>();
    for (const w of this.confirmations.keys()) {
      const signers = this.neighbours(w).filter((v) => this.confirmations.has(v));
      if (signers.length + 1 >= threshold) forwarded.set(w, signers.slice(0, threshold - 1).map((v) => ({ index: v, signature: this.confirmations.get(v)! })));
    }
    this.checkRecoverable(new Set(forwarded.keys()));
    for (const w of forwarded.keys()) {
      const holding = [w, ...this.neighbours(w)].filter((v) => this.u2.has(v)).sort(ascending);
      this.requests.set(w, { survivors: holding.filter((v) => this.u3.has(v)), dropped: holding.filter((v) => !this.u3.has(v)) });
    }
    this.currentStage = 'unmask';
    return forwarded;
  }

  /**
   * Stage 5: a survivor's shares, exactly those its signed U3 implies (shares of b_v for its
   * neighbours in U3, of s_v^SK for its neighbours in U2∖U3), each a valid field element.
   */
  receiveReveal(index: number, reveal: RevealedShares): Receipt {
    if (this.arrival(index, 'unmask') === 'late') return 'late';
    const request = this.requests.get(index);
    if (request === undefined) this.reject(index, 'sent a reveal without an unmask request (not in U3)');
    if (this.revealed.has(index)) this.reject(index, 'sent a reveal twice', 'DUPLICATE_MESSAGE');
    const selfMaskOwners = new Set(reveal.selfMaskShares.map((entry) => entry.of));
    for (const { of } of reveal.maskKeyShares) if (selfMaskOwners.has(of)) this.reject(index, `revealed both secrets of ${of}`);
    const selfMask = this.parseShares(index, reveal.selfMaskShares, request.survivors, 'self-mask');
    const maskKey = this.parseShares(index, reveal.maskKeyShares, request.dropped, 'mask-key');
    for (const [of, y] of selfMask) pushTo(this.selfMaskShares, of, { x: index, y });
    for (const [of, y] of maskKey) pushTo(this.maskKeyShares, of, { x: index, y });
    this.revealed.add(index);
    return 'accepted';
  }

  /**
   * Ends the round: rebuilds b_u of each survivor and s_v^SK of each dropped client from the
   * revealed shares, regenerates the masks they imply (PRG(b_u); PRG(s_uv) for each surviving
   * neighbour u of a dropped v, via X25519(s_v^SK, s_u^PK)), removes them from the running sum and
   * decodes it. SecAggAbort when a secret has fewer than threshold shares, or its shares are
   * inconsistent (a rebuilt mask key that does not match the advertised public key).
   *
   * The secrets are rebuilt and checked here; the mask regeneration (the bulk of the work) runs in
   * this thread, or, when `runner` asks for parts, as `UnmaskJob`s it runs elsewhere (the
   * coordinator's worker threads). The sum is bit for bit the same either way.
   */
  async finish(runner?: UnmaskRunner): Promise<AggregateResult> {
    this.expectStage('unmask', 'finish');
    this.currentStage = 'finishing';
    try {
      const whole = this.unmaskJob();
      const parts = runner?.parts(jobMasks(whole), whole.words) ?? 0;
      if (runner === undefined || parts === 0) {
        await removeMasks(this.sum, whole, this.prg, this.agreement);
      } else {
        for (const partial of await runner.run(splitUnmaskJobs(whole, parts))) this.sum.add(partial);
      }
      const encodedSum = this.sum.toUint32Array();
      const decoded = decodeSum(encodedSum, this.u3.size, this.params);
      this.currentStage = 'done';
      return { encodedSum, sum: decoded.sum, totalWeight: decoded.totalWeight, count: this.u3.size };
    } catch (error) {
      this.currentStage = 'aborted'; // a failing PRG or runner too: the round cannot finish
      throw error;
    }
  }

  /** Every secret rebuilt and checked: the whole mask regeneration as one job. */
  private unmaskJob(): UnmaskJob {
    const reconstructor = new Reconstructor(this.params.threshold);
    const selfMaskSeeds: Uint8Array[] = [];
    for (const u of [...this.u3].sort(ascending)) {
      const seed = elementToSecret(this.rebuild(reconstructor, this.selfMaskShares, u, 'self-mask seed'));
      if (seed === null) this.abort(`the shares of the self-mask seed of ${u} are inconsistent`);
      selfMaskSeeds.push(seed);
    }
    const pairMasks: PairMasks[] = [];
    for (const v of [...this.u2].filter((v) => !this.u3.has(v)).sort(ascending)) {
      const survivingNeighbours = this.neighbours(v).filter((u) => this.u3.has(u));
      if (survivingNeighbours.length === 0) continue;
      const secretKey = elementToSecret(this.rebuild(reconstructor, this.maskKeyShares, v, 'mask key'));
      if (secretKey === null || !equalBytes(this.agreement.publicKey(secretKey), this.keys.get(v)!.maskKey)) {
        this.abort(`the rebuilt mask key of dropped client ${v} does not match its advertised key`);
      }
      pairMasks.push({ dropped: v, secretKey, survivors: survivingNeighbours.map((u) => ({ index: u, maskKey: this.keys.get(u)!.maskKey })) });
    }
    return { context: this.context, words: this.sum.length, selfMaskSeeds, pairMasks };
  }

  // ---- helpers ----

  private neighbours(index: number): readonly number[] {
    const neighbours = this.graph.get(index);
    if (neighbours === undefined) throw new SecAggError('INVALID_INPUT', `client ${index} is not in the cohort`);
    return neighbours;
  }

  /** Checks a message's sender and stage: throws for unknown senders and early messages, says 'late' for stragglers. */
  private arrival(index: number, stage: 'advertise' | 'share' | 'masked' | 'confirm' | 'unmask'): Receipt {
    this.neighbours(index);
    const order: readonly ServerStage[] = ['advertise', 'share', 'masked', 'confirm', 'unmask', 'finishing', 'done'];
    if (this.currentStage === 'aborted' || order.indexOf(this.currentStage) > order.indexOf(stage)) return 'late';
    if (this.currentStage !== stage) {
      throw new SecAggError('UNEXPECTED_STAGE', `client ${index} sent a ${stage} message during stage ${this.currentStage}`);
    }
    return 'accepted';
  }

  /**
   * Aborts unless each secret the coordinator will need has threshold holders among `askable`:
   * b_u of every u ∈ U3 (held by u and its neighbours in U2), s_v^SK of every v ∈ U2∖U3 with a
   * neighbour in U3 (held by its neighbours in U2).
   */
  private checkRecoverable(askable: ReadonlySet<number>): void {
    const { threshold } = this.params;
    for (const u of this.u3) {
      const holders = [u, ...this.neighbours(u)].filter((w) => askable.has(w) && this.u2.has(w)).length;
      if (holders < threshold) this.abort(`the self-mask seed of ${u} has ${holders} share holders left to ask; the threshold is ${threshold}`);
    }
    for (const v of this.u2) {
      if (this.u3.has(v)) continue;
      if (!this.neighbours(v).some((w) => this.u3.has(w))) continue; // no surviving input carries a mask of v
      const holders = this.neighbours(v).filter((w) => askable.has(w)).length;
      if (holders < threshold) this.abort(`the mask key of dropped client ${v} has ${holders} share holders left to ask; the threshold is ${threshold}`);
    }
  }

  /** Removes, until none is left, members whose neighbourhood within the set cannot reach the threshold. */
  private pruned(members: Set<number>, what: string): Set<number> {
    const { threshold } = this.params;
    let removed = true;
    while (removed) {
      removed = false;
      for (const u of members) {
        if (this.neighbours(u).filter((v) => members.has(v)).length + 1 < threshold) {
          members.delete(u);
          removed = true;
        }
      }
    }
    if (members.size < threshold) this.abort(`only ${members.size} clients ${what} with enough neighbours; the threshold is ${threshold}`);
    return members;
  }

  private parseShares(index: number, entries: RevealedShares['selfMaskShares'], expectedList: readonly number[], kind: string): Map<number, bigint> {
    const expected = new Set(expectedList);
    const parsed = new Map<number, bigint>();
    for (const { of, share } of entries) {
      if (!expected.has(of)) this.reject(index, `revealed a ${kind} share of ${of}, which it was not asked for`);
      if (parsed.has(of)) this.reject(index, `revealed two ${kind} shares of ${of}`);
      const y = decodeShare(share);
      if (y === null) throw new SecAggError('BAD_SHARE', `client ${index} revealed a malformed ${kind} share of ${of}`);
      parsed.set(of, y);
    }
    if (parsed.size !== expected.size) this.reject(index, `revealed ${parsed.size} ${kind} shares; ${expected.size} were asked for`);
    return parsed;
  }

  private rebuild(reconstructor: Reconstructor, shares: Map<number, Share[]>, owner: number, what: string): bigint {
    const available = shares.get(owner) ?? [];
    if (available.length < this.params.threshold) {
      this.abort(`only ${available.length} shares of the ${what} of ${owner} arrived; the threshold is ${this.params.threshold}`);
    }
    return reconstructor.reconstruct(available);
  }

  private expectStage(expected: ServerStage, method: string): void {
    if (this.currentStage !== expected) {
      throw new SecAggError('UNEXPECTED_STAGE', `${method}() called in stage ${this.currentStage}; it belongs to stage ${expected}`);
    }
  }

  private reject(index: number, reason: string, errorCode?: ErrorCode): never {
    throw new SecAggError('INVALID_INPUT', `client ${index} ${reason}`, errorCode);
  }

  private abort(reason: string): never {
    this.currentStage = 'aborted';
    throw new SecAggAbort(reason);
  }
}

function pushTo(map: Map<number, Share[]>, key: number, share: Share): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [share]);
  else list.push(share);
}
