import type { NeighbourKeys, SecAggRoundConfig } from '@shoal/protocol';
import { toHex } from './bytes.js';
import { isSafeThreshold } from './config.js';
import { encodeUpdate } from './encoding.js';
import { SecAggError } from './errors.js';
import type { AsyncKeyAgreement, KeyAgreement, KeyPair, RoundContext } from './keys.js';
import { KEY_BYTES, naclKeyAgreement } from './keys.js';
import type { MaskPrg } from './prg.js';
import { pairMaskKey, selfMaskKey } from './prg.js';
import { SECRET_BYTES, encodeShare, splitSecret } from './shamir.js';
import type { SharePair } from './share-crypto.js';
import { ShareBoxes, shareBoxKey } from './share-crypto.js';
import type { AsyncSigning, Signing, SigningKeyPair } from './signing.js';
import { SIGNING_SEED_BYTES, advertisementMessage, naclSigning, survivorsMessage } from './signing.js';
import { WordSum } from './word-sum.js';

/**
 * Where a client is in one SecAgg round; each method moves it one step:
 * advertise() → share() → receiveInbox() → mask() → confirm() → reveal() → done. A refusal or a bad
 * inbox moves it to `failed`, after which it takes no further part (the round treats it as a dropout).
 * `advertiseAsync()`, `shareAsync()`, `confirmAsync()` and `revealAsync()` are the same steps with
 * an asynchronous X25519 or Ed25519 (WebCrypto); while one awaits, the stage is `advertising`,
 * `sharing`, `confirming` or `revealing`, as it is `masking` during mask().
 */
export type ClientStage = 'advertise' | 'advertising' | 'share' | 'sharing' | 'inbox' | 'masked' | 'masking' | 'confirm' | 'confirming' | 'unmask' | 'revealing' | 'done' | 'failed';

export interface SecAggClientOptions {
  /** The `train.secagg` config of the round. */
  readonly config: SecAggRoundConfig;
  readonly round: number;
  readonly numParams: number;
  /** Cryptographic randomness (crypto.getRandomValues in production); asked for ≤ 65,536 bytes at a time. */
  readonly randomBytes: (n: number) => Uint8Array;
  /**
   * The randomness of the update's stochastic rounding to fixed point only. Default `randomBytes`.
   * Simulations seed it so a secure-aggregation run repeats exactly; a deployed client leaves it to
   * the CSPRNG: a coordinator that could predict it would learn which way each value was rounded.
   */
  readonly roundingBytes?: (n: number) => Uint8Array;
  readonly prg: MaskPrg;
  /**
   * X25519; default tweetnacl. An `AsyncKeyAgreement` (WebCrypto) works with `advertiseAsync()` and
   * `shareAsync()` only; a synchronous one with both forms.
   */
  readonly agreement?: KeyAgreement | AsyncKeyAgreement;
  /**
   * Ed25519; default tweetnacl. An `AsyncSigning` (WebCrypto) works with the asynchronous steps
   * (`advertiseAsync()`, `shareAsync()`, `confirmAsync()`, `revealAsync()`) only; a synchronous one
   * with both forms.
   */
  readonly signing?: Signing | AsyncSigning;
  /**
   * A pinned identity (docs/secagg.md, "Pinned identities"): the 32-byte Ed25519 seed this client
   * signs every round with. Default: a fresh signing key per round.
   */
  readonly identitySeed?: Uint8Array;
  /**
   * The identity keys this client accepts neighbours with, distributed by the app outside the
   * coordinator's reach. When given, a neighbour whose signing key is not one of them is refused:
   * the coordinator cannot invent clients. Default: any key (key distribution is then trusted).
   */
  readonly trustedIdentityKeys?: readonly Uint8Array[];
}

/** Stage 1's output: this round's three public keys and the signature binding them to this client. */
export interface Advertisement {
  readonly encryptionKey: Uint8Array;
  readonly maskKey: Uint8Array;
  readonly signingKey: Uint8Array;
  readonly signature: Uint8Array;
}

/** Stage 2's output: one sealed share box per neighbour. */
export interface Shares {
  readonly ciphertexts: { to: number; box: Uint8Array }[];
}

/** A signature this client must check before a step, and the refusal if it does not verify. */
interface SignatureCheck {
  readonly publicKey: Uint8Array;
  readonly message: Uint8Array;
  readonly signature: Uint8Array;
  readonly refusal: string;
}

/** A neighbour's signature of the survivor set, as the coordinator forwards it in `unmask`. */
export interface SurvivorSignature {
  readonly index: number;
  readonly signature: Uint8Array;
}

/** The answer to an unmask request: shares of b_v for survivors, of s_v^SK for dropped clients. */
export interface RevealAnswer {
  readonly selfMaskShares: { of: number; share: Uint8Array }[];
  readonly maskKeyShares: { of: number; share: Uint8Array }[];
}

/**
 * One client's side of a SecAgg round (Bonawitz et al. CCS'17, with SecAgg+ neighbourhoods),
 * as a pure state machine: no I/O, randomness and the PRG injected. Secrets never leave it
 * except as the shares the protocol sends; an honest client refuses requests that would reveal
 * both secrets of one client.
 */
export class SecAggClient {
  private currentStage: ClientStage = 'advertise';
  private readonly config: SecAggRoundConfig;
  private readonly context: RoundContext;
  private readonly boxes: ShareBoxes;
  private readonly numParams: number;
  private readonly randomBytes: (n: number) => Uint8Array;
  private readonly roundingBytes: (n: number) => Uint8Array;
  private readonly prg: MaskPrg;
  private readonly agreement: KeyAgreement | AsyncKeyAgreement;
  private readonly signing: Signing | AsyncSigning;
  private readonly identitySeed: Uint8Array | undefined;
  private readonly trustedIdentityKeys: ReadonlySet<string> | undefined;

  /** This round's Ed25519 key pair (the identity's when pinned). */
  private signingKeyPair: SigningKeyPair | undefined;
  /** The neighbours' advertised signing keys, from share(). */
  private readonly signingKeys = new Map<number, Uint8Array>();
  /** The one survivor set this client signed (confirm()), ascending. */
  private signedSurvivors: readonly number[] | undefined;
  private encryptionKeys: KeyPair | undefined;
  private maskKeys: KeyPair | undefined;
  private selfMaskSeed: Uint8Array | undefined;
  /** Per neighbour: the share-box key and the pairwise mask secret s_uv, both from share(). */
  private readonly links = new Map<number, { boxKey: Uint8Array; maskSecret: Uint8Array }>();
  /** Shares this client holds, of its own secrets and of each neighbour whose box it received. */
  private readonly held = new Map<number, SharePair>();

  constructor(options: SecAggClientOptions) {
    const { config, round, numParams } = options;
    if (!Number.isSafeInteger(round) || round < 0) throw new SecAggError('INVALID_INPUT', `round must be an integer ≥ 0, got ${round}`);
    if (!Number.isSafeInteger(numParams) || numParams < 1) throw new SecAggError('INVALID_INPUT', `numParams must be an integer ≥ 1, got ${numParams}`);
    if (!Number.isSafeInteger(config.index) || config.index < 1) throw new SecAggError('INVALID_INPUT', `index must be a positive integer, got ${config.index}`);
    if (!Number.isSafeInteger(config.threshold) || !Number.isSafeInteger(config.degree) || config.threshold < 2 || config.threshold > config.degree) {
      throw new SecAggError('INVALID_INPUT', `threshold ${config.threshold} and degree ${config.degree} need 2 ≤ threshold ≤ degree`);
    }
    // See secAggNeighbourhood: below it a lying coordinator could unmask a client.
    if (!isSafeThreshold(config.threshold, config.degree)) {
      throw new SecAggError('REFUSED', `threshold ${config.threshold} does not exceed (degree ${config.degree} + 1)/2`);
    }
    this.config = config;
    this.context = { sessionId: config.sessionId, round };
    this.boxes = new ShareBoxes(this.context);
    this.numParams = numParams;
    this.randomBytes = options.randomBytes;
    this.roundingBytes = options.roundingBytes ?? options.randomBytes;
    this.prg = options.prg;
    this.agreement = options.agreement ?? naclKeyAgreement;
    this.signing = options.signing ?? naclSigning;
    if (options.identitySeed !== undefined && options.identitySeed.length !== SIGNING_SEED_BYTES) {
      throw new SecAggError('INVALID_INPUT', `identitySeed must have ${SIGNING_SEED_BYTES} bytes, got ${options.identitySeed.length}`);
    }
    this.identitySeed = options.identitySeed;
    this.trustedIdentityKeys = options.trustedIdentityKeys && new Set(options.trustedIdentityKeys.map(toHex));
  }

  get stage(): ClientStage {
    return this.currentStage;
  }

  get index(): number {
    return this.config.index;
  }

  /**
   * Stage 1: two fresh X25519 key pairs, c (share encryption) and s (pairwise masks), and an Ed25519
   * signing key (fresh, or the pinned identity); returns the three public keys and a signature of
   * them bound to this client's index, the session and the round.
   */
  advertise(): Advertisement {
    this.expectStage('advertise', 'advertise');
    const secrets = [this.random(KEY_BYTES), this.random(KEY_BYTES)] as const;
    const publicKeys = secrets.map((secret) => this.synchronous(this.agreement.publicKey(secret), 'advertise'));
    const signingKeyPair = this.synchronous(this.signing.keyPair(this.signingSeed()), 'advertise');
    const { keys, message } = this.advertised(secrets, publicKeys, signingKeyPair);
    const signature = this.synchronous(this.signing.sign(signingKeyPair, message), 'advertise');
    this.currentStage = 'share';
    return { ...keys, signature };
  }

  /** advertise() with an asynchronous X25519 or Ed25519 (or synchronous ones): the same randomness drawn in the same order, the same bytes. */
  async advertiseAsync(): Promise<Advertisement> {
    this.expectStage('advertise', 'advertiseAsync');
    const secrets = [this.random(KEY_BYTES), this.random(KEY_BYTES)] as const;
    const signingSeed = this.signingSeed();
    this.currentStage = 'advertising';
    const [publicKeys, signingKeyPair] = await this.failOnError(Promise.all([Promise.all(secrets.map((secret) => this.agreement.publicKey(secret))), this.signing.keyPair(signingSeed)]));
    const { keys, message } = this.advertised(secrets, publicKeys, signingKeyPair);
    const signature = await this.failOnError(Promise.resolve(this.signing.sign(signingKeyPair, message)));
    this.currentStage = 'share';
    return { ...keys, signature };
  }

  /** This round's Ed25519 seed: the pinned identity's, or fresh (drawn after the two X25519 secrets). */
  private signingSeed(): Uint8Array {
    return this.identitySeed ?? this.random(SIGNING_SEED_BYTES);
  }

  /** Keeps stage 1's key pairs; returns the three public keys and the message their signature covers. */
  private advertised(secrets: readonly [Uint8Array, Uint8Array], publicKeys: readonly Uint8Array[], signingKeyPair: SigningKeyPair) {
    this.encryptionKeys = { secretKey: secrets[0], publicKey: publicKeys[0]! };
    this.maskKeys = { secretKey: secrets[1], publicKey: publicKeys[1]! };
    this.signingKeyPair = signingKeyPair;
    const keys = { encryptionKey: this.encryptionKeys.publicKey, maskKey: this.maskKeys.publicKey, signingKey: signingKeyPair.publicKey };
    return { keys, message: advertisementMessage(this.context, this.config.index, keys) };
  }

  /**
   * Stage 2: draws the self-mask seed b_u, Shamir-shares b_u and s_u^SK t-of-(neighbours + 1) at
   * the holders' indices, and seals each neighbour's share pair in a box only it can open. Refuses
   * a neighbour list with this client's own index, a repeated index or key, a small-order key, more
   * neighbours than the degree allows, or too few to ever reach the threshold; with trusted
   * identity keys, also a neighbour whose signing key is not among them or whose advertisement
   * does not carry its signature. (Without them the signatures are not checked here: the
   * coordinator hands out the signing keys too, so one that substitutes an advertisement can sign
   * it, and the check could catch nothing.)
   */
  share(neighbours: readonly NeighbourKeys[]): Shares {
    this.expectStage('share', 'share');
    const signed = this.checkNeighbours(neighbours);
    this.checkSignatures(signed.map(({ publicKey, message, signature }) => this.synchronous(this.signing.verify(publicKey, message, signature), 'share')), signed);
    const agree = (secretKey: Uint8Array, publicKeys: Uint8Array[]) => this.synchronous(this.agreement.agreeMany(secretKey, publicKeys), 'share');
    return this.sealShares(neighbours, agree(this.encryptionKeys!.secretKey, neighbours.map((n) => n.encryptionKey)), agree(this.maskKeys!.secretKey, neighbours.map((n) => n.maskKey)));
  }

  /**
   * share() with an asynchronous X25519 (or a synchronous one): the same checks, randomness and
   * bytes. Both agreements (share-box and mask keys with every neighbour) are computed up front,
   * each once; the rest of the step is synchronous.
   */
  async shareAsync(neighbours: readonly NeighbourKeys[]): Promise<Shares> {
    this.expectStage('share', 'shareAsync');
    const signed = this.checkNeighbours(neighbours);
    this.currentStage = 'sharing';
    const [verified, encryptionSecrets, maskSecrets] = await this.failOnError(
      Promise.all([
        Promise.all(signed.map(({ publicKey, message, signature }) => this.signing.verify(publicKey, message, signature))),
        this.agreement.agreeMany(this.encryptionKeys!.secretKey, neighbours.map((n) => n.encryptionKey)),
        this.agreement.agreeMany(this.maskKeys!.secretKey, neighbours.map((n) => n.maskKey)),
      ]),
    );
    this.checkSignatures(verified, signed);
    return this.sealShares(neighbours, encryptionSecrets, maskSecrets);
  }

  /**
   * Stage 2's refusals, before any agreement: see share(). Records the neighbours' signing keys;
   * returns the advertisement signatures to check (with trusted identity keys; none without).
   */
  private checkNeighbours(neighbours: readonly NeighbourKeys[]): SignatureCheck[] {
    const signed: SignatureCheck[] = [];
    const encryptionKeys = this.encryptionKeys!;
    const maskKeys = this.maskKeys!;
    const { index, threshold, degree } = this.config;
    this.refuseUnless(neighbours.length <= degree - 1, `${neighbours.length} neighbours exceed the degree ${degree}`);
    this.refuseUnless(neighbours.length + 1 >= threshold, `${neighbours.length} neighbours can never reach the threshold ${threshold}`);
    const seenIndices = new Set<number>([index]);
    const seenKeys = new Set<string>([toHex(encryptionKeys.publicKey), toHex(maskKeys.publicKey)]);
    for (const neighbour of neighbours) {
      this.refuseUnless(Number.isSafeInteger(neighbour.index) && neighbour.index >= 1, `neighbour index ${neighbour.index} is not a positive integer`);
      this.refuseUnless(!seenIndices.has(neighbour.index), `neighbour index ${neighbour.index} is this client or listed twice`);
      seenIndices.add(neighbour.index);
      for (const key of [neighbour.encryptionKey, neighbour.maskKey, neighbour.signingKey]) {
        this.refuseUnless(key.length === KEY_BYTES, `a key of neighbour ${neighbour.index} has ${key.length} bytes`);
        this.refuseUnless(!seenKeys.has(toHex(key)), `a key of neighbour ${neighbour.index} repeats another key`);
        seenKeys.add(toHex(key));
      }
      if (this.trustedIdentityKeys !== undefined) {
        this.refuseUnless(this.trustedIdentityKeys.has(toHex(neighbour.signingKey)), `neighbour ${neighbour.index} signs with a key that is not a trusted identity`);
        signed.push({
          publicKey: neighbour.signingKey,
          message: advertisementMessage(this.context, neighbour.index, neighbour),
          signature: neighbour.signature,
          refusal: `the advertisement of neighbour ${neighbour.index} does not carry its signature`,
        });
      }
      this.signingKeys.set(neighbour.index, neighbour.signingKey);
    }
    return signed;
  }

  /** Refuses at the first signature of `checks` that did not verify (`verified[i]`), with its refusal. */
  private checkSignatures(verified: readonly boolean[], checks: readonly SignatureCheck[]): void {
    for (const [i, check] of checks.entries()) this.refuseUnless(verified[i] === true, check.refusal);
  }

  /** The rest of stage 2, given X25519 of each neighbour's encryption and mask keys (null: small order). */
  private sealShares(neighbours: readonly NeighbourKeys[], encryptionSecrets: readonly (Uint8Array | null)[], maskSecrets: readonly (Uint8Array | null)[]): Shares {
    const { index, threshold } = this.config;
    for (const [i, neighbour] of neighbours.entries()) {
      const encryptionSecret = encryptionSecrets[i];
      const maskSecret = maskSecrets[i];
      this.refuseUnless(encryptionSecret != null && maskSecret != null, `neighbour ${neighbour.index} has a small-order key`);
      this.links.set(neighbour.index, { boxKey: shareBoxKey(encryptionSecret!, this.context), maskSecret: maskSecret! });
    }

    this.selfMaskSeed = this.random(SECRET_BYTES);
    const holders = [index, ...neighbours.map((n) => n.index)];
    const selfMaskShares = splitSecret(this.selfMaskSeed, threshold, holders, (n) => this.random(n));
    const maskKeyShares = splitSecret(this.maskKeys!.secretKey, threshold, holders, (n) => this.random(n));
    this.held.set(index, { selfMaskShare: selfMaskShares[0]!.y, maskKeyShare: maskKeyShares[0]!.y });
    const ciphertexts = neighbours.map((neighbour, i) => {
      const pair = { selfMaskShare: selfMaskShares[i + 1]!.y, maskKeyShare: maskKeyShares[i + 1]!.y };
      return { to: neighbour.index, box: this.boxes.seal(this.links.get(neighbour.index)!.boxKey, this.random(24), { sender: index, recipient: neighbour.index }, pair) };
    });
    this.currentStage = 'inbox';
    return { ciphertexts };
  }

  /**
   * After stage 2: the boxes of the neighbours that shared (U2). The whole inbox is rejected
   * (BAD_SHARE naming the sender) if any box is from an unknown or repeated sender, or fails to
   * open or to name this sender, this recipient, this round and session. Dropping only the bad box
   * would be worse: its sender still masks against this client, so the masks would no longer
   * cancel and the sum would be silently wrong; rejecting the inbox makes this client a clean
   * dropout whose pairwise masks the coordinator removes.
   */
  receiveInbox(ciphertexts: readonly { from: number; box: Uint8Array }[]): void {
    this.expectStage('inbox', 'receiveInbox');
    const received = new Map<number, SharePair>();
    for (const { from, box } of ciphertexts) {
      const link = this.links.get(from);
      if (link === undefined) this.fail('BAD_SHARE', `share box from ${from}, which is not a neighbour`);
      if (received.has(from)) this.fail('BAD_SHARE', `two share boxes from ${from}`);
      const opened = this.boxes.open(link.boxKey, box, { sender: from, recipient: this.config.index });
      if (!opened.ok) this.fail('BAD_SHARE', `share box from ${from} ${opened.reason}`);
      received.set(from, opened.shares);
    }
    this.refuseUnless(received.size + 1 >= this.config.threshold, `only ${received.size} neighbours shared; the threshold ${this.config.threshold} cannot be reached`);
    for (const [from, pair] of received) this.held.set(from, pair);
    this.currentStage = 'masked';
  }

  /**
   * Stage 3: encodes `weightedValues` (the update already multiplied by `weight`, clamped to
   * ±bound) and the integer `weight`, then adds PRG(b_u) and, for each neighbour v that shared,
   * +PRG(s_uv) if u > v else −PRG(s_uv). Returns numParams + 1 words.
   */
  async mask(weightedValues: Float32Array, weight: number): Promise<Uint32Array> {
    this.expectStage('masked', 'mask');
    if (weightedValues.length !== this.numParams) {
      throw new SecAggError('INVALID_INPUT', `the update has ${weightedValues.length} values; the model has ${this.numParams}`);
    }
    if (!Number.isSafeInteger(weight) || weight < 0 || weight > this.config.maxWeight) {
      throw new SecAggError('INVALID_INPUT', `weight must be an integer in 0..${this.config.maxWeight}, got ${weight}`);
    }
    this.currentStage = 'masking';
    try {
      const encoded = encodeUpdate(weightedValues, weight, this.config, (n) => this.random(n, this.roundingBytes));
      const masked = new WordSum(encoded.length);
      masked.add(encoded);
      await this.prg.addTo(masked, selfMaskKey(this.selfMaskSeed!, this.context), 1);
      const u = this.config.index;
      for (const v of this.held.keys()) {
        if (v === u) continue;
        await this.prg.addTo(masked, pairMaskKey(this.links.get(v)!.maskSecret, u, v, this.context), u > v ? 1 : -1);
      }
      this.currentStage = 'confirm';
      return masked.toUint32Array();
    } catch (error) {
      this.finishWith('failed');
      throw error;
    }
  }

  /**
   * Stage 4, the consistency check (Bonawitz et al. §4): signs the survivor set U3 the coordinator
   * announced, the whole set, ascending. Refuses (REFUSED) a list that is not strictly ascending,
   * leaves this client out, has fewer than threshold members, or names a neighbour whose shares this
   * client never received (U3 must lie within the U2 it saw). An honest client signs once per round.
   */
  confirm(survivors: readonly number[]): Uint8Array {
    this.expectStage('confirm', 'confirm');
    const message = this.checkSurvivors(survivors);
    const signature = this.synchronous(this.signing.sign(this.signingKeyPair!, message), 'confirm');
    this.signedSurvivors = [...survivors];
    this.currentStage = 'unmask';
    return signature;
  }

  /** confirm() with an asynchronous Ed25519 (or a synchronous one): the same checks, the same signature. */
  async confirmAsync(survivors: readonly number[]): Promise<Uint8Array> {
    this.expectStage('confirm', 'confirmAsync');
    const message = this.checkSurvivors(survivors);
    this.currentStage = 'confirming';
    const signature = await this.failOnError(Promise.resolve(this.signing.sign(this.signingKeyPair!, message)));
    this.signedSurvivors = [...survivors];
    this.currentStage = 'unmask';
    return signature;
  }

  /** Stage 4's refusals (see confirm()); the message to sign. */
  private checkSurvivors(survivors: readonly number[]): Uint8Array {
    const { index, threshold } = this.config;
    for (const v of survivors) this.refuseUnless(Number.isSafeInteger(v) && v >= 1 && v < 2 ** 32, `survivor ${v} is not a client index`);
    for (let i = 1; i < survivors.length; i++) this.refuseUnless(survivors[i - 1]! < survivors[i]!, 'the survivor set is not strictly ascending');
    this.refuseUnless(survivors.includes(index), `this client (${index}) is not announced as a survivor`);
    this.refuseUnless(survivors.length >= threshold, `${survivors.length} survivors announced; the threshold is ${threshold}`);
    for (const v of survivors) {
      this.refuseUnless(!this.links.has(v) || this.held.has(v), `survivor ${v} is a neighbour whose shares this client never received`);
    }
    return survivorsMessage(this.context, survivors);
  }

  /**
   * Stage 5: given its neighbours' signatures of the survivor set, reveals shares of b_v for each
   * neighbour v (and itself) in that set and of s_v^SK for each neighbour that shared but is not in
   * it; never both for one v, nothing for a non-neighbour. Refuses (REFUSED; the client then takes
   * no further part) unless at least threshold members of its neighbourhood, itself included,
   * signed exactly the set it signed: a signature that does not verify (forged, or of another set),
   * or one from a non-neighbour, a non-survivor or twice from one client, is refused outright.
   */
  reveal(signatures: readonly SurvivorSignature[]): RevealAnswer {
    this.expectStage('unmask', 'reveal');
    const signers = this.checkSigners(signatures);
    this.checkSignatures(signers.checks.map(({ publicKey, message, signature }) => this.synchronous(this.signing.verify(publicKey, message, signature), 'reveal')), signers.checks);
    this.refuseSigners(signers);
    return this.revealShares();
  }

  /** reveal() with an asynchronous Ed25519 (or a synchronous one): the same checks (the signatures verified at once), the same answer. */
  async revealAsync(signatures: readonly SurvivorSignature[]): Promise<RevealAnswer> {
    this.expectStage('unmask', 'revealAsync');
    const signers = this.checkSigners(signatures);
    this.currentStage = 'revealing';
    const verified = await this.failOnError(Promise.all(signers.checks.map(({ publicKey, message, signature }) => this.signing.verify(publicKey, message, signature))));
    this.checkSignatures(verified, signers.checks);
    this.refuseSigners(signers);
    return this.revealShares();
  }

  /**
   * Stage 5's checks of the signers, in the order the signatures came: the signature of each that
   * passes them, up to the first that does not (`refusal`: why). Refused in that order: the first
   * signature that does not verify, else that refusal, else too few signers.
   */
  private checkSigners(signatures: readonly SurvivorSignature[]): { checks: SignatureCheck[]; refusal?: string; signers: number } {
    const survivors = new Set(this.signedSurvivors);
    const message = survivorsMessage(this.context, this.signedSurvivors!);
    const signers = new Set<number>([this.config.index]);
    const checks: SignatureCheck[] = [];
    for (const { index, signature } of signatures) {
      const signingKey = this.signingKeys.get(index);
      const refusal =
        signingKey === undefined
          ? `a survivor-set signature from ${index}, which is not a neighbour`
          : !survivors.has(index)
            ? `a survivor-set signature from ${index}, which is not a survivor`
            : signers.has(index)
              ? `two survivor-set signatures from ${index}`
              : undefined;
      if (refusal !== undefined) return { checks, refusal, signers: signers.size };
      checks.push({ publicKey: signingKey!, message, signature, refusal: `the survivor-set signature of ${index} does not verify on the set this client signed` });
      signers.add(index);
    }
    return { checks, signers: signers.size };
  }

  /** Once every signature in `checks` verified: refuses a signer that broke the rules, or too few signers. */
  private refuseSigners({ refusal, signers }: { refusal?: string; signers: number }): void {
    if (refusal !== undefined) this.fail('REFUSED', refusal);
    this.refuseUnless(signers >= this.config.threshold, `${signers} of its neighbourhood signed the survivor set; the threshold is ${this.config.threshold}`);
  }

  /** The rest of stage 5, once the signatures verified: the shares the signed survivor set implies. */
  private revealShares(): RevealAnswer {
    const survivors = new Set(this.signedSurvivors);
    const held = [...this.held.keys()].sort((a, b) => a - b);
    const answer: RevealAnswer = {
      selfMaskShares: held.filter((v) => survivors.has(v)).map((of) => ({ of, share: encodeShare(this.held.get(of)!.selfMaskShare) })),
      maskKeyShares: held.filter((v) => !survivors.has(v)).map((of) => ({ of, share: encodeShare(this.held.get(of)!.maskKeyShare) })),
    };
    this.finishWith('done');
    return answer;
  }

  private expectStage(expected: ClientStage, method: string): void {
    if (this.currentStage !== expected) {
      throw new SecAggError('UNEXPECTED_STAGE', `${method}() called in stage ${this.currentStage}; it belongs to stage ${expected}`);
    }
  }

  private refuseUnless(condition: boolean, reason: string): asserts condition {
    if (!condition) this.fail('REFUSED', reason);
  }

  private fail(code: 'REFUSED' | 'BAD_SHARE', reason: string): never {
    this.finishWith('failed');
    throw new SecAggError(code, reason);
  }

  /** Ends the round for this client and drops every secret it held. */
  private finishWith(stage: 'done' | 'failed'): void {
    this.currentStage = stage;
    this.encryptionKeys = undefined;
    this.maskKeys = undefined;
    this.selfMaskSeed = undefined;
    this.signingKeyPair = undefined;
    this.signedSurvivors = undefined;
    this.links.clear();
    this.held.clear();
    this.signingKeys.clear();
  }

  /** The value of a synchronous X25519 or Ed25519 call; a promise here means an asynchronous one reached a synchronous step, a caller bug. */
  private synchronous<T>(result: T | Promise<T>, method: 'advertise' | 'share' | 'confirm' | 'reveal'): T {
    if (result instanceof Promise) {
      result.catch(() => {}); // its outcome no longer matters
      this.finishWith('failed');
      throw new SecAggError(
        'INVALID_INPUT',
        `${method}() needs a synchronous X25519 (KeyAgreement) and Ed25519 (Signing); with an asynchronous one (AsyncKeyAgreement, AsyncSigning) call ${method}Async()`,
      );
    }
    return result;
  }

  /** `pending`'s value; if it rejects, this client fails (takes no further part) and the error goes on. */
  private async failOnError<T>(pending: Promise<T>): Promise<T> {
    try {
      return await pending;
    } catch (error) {
      this.finishWith('failed');
      throw error;
    }
  }

  private random(n: number, source = this.randomBytes): Uint8Array {
    const bytes = source(n);
    if (!(bytes instanceof Uint8Array) || bytes.length !== n) throw new RangeError(`${source === this.randomBytes ? 'randomBytes' : 'roundingBytes'}(${n}) returned ${bytes?.length} bytes`);
    return bytes;
  }
}
