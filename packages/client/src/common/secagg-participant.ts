import type {
  AdvertiseMessage,
  ConfirmMessage,
  InboxMessage,
  KeysMessage,
  MaskedMessage,
  RevealMessage,
  SharesMessage,
  SurvivorsMessage,
  TrainMetrics,
  UnmaskMessage,
} from '@shoal/protocol';
import { SecAggClient, type SecAggClientOptions } from '@shoal/secagg';

/**
 * The pure client's options (the round's `train.secagg` as `config`, the PRG, randomness, X25519,
 * Ed25519, a pinned identity and trusted identity keys if the app uses them), with the values
 * masked per update as `numValues` and the version `masked` names.
 */
export interface SecAggParticipantOptions extends Omit<SecAggClientOptions, 'numParams'> {
  /** The global version the round trains from; `masked` names it. */
  readonly modelVersion: string;
  /** Values masked per update: the model's parameters plus any extra values (`RoundPlan.updateValues`). */
  readonly numValues: number;
}

/** What one client puts into the secure sum. */
export interface MaskInput {
  /** The update, already through the update pipeline; masked as `weight · delta`. */
  readonly delta: Float32Array;
  /** The update's integer weight in 0..`config.maxWeight`; masked as one more word. */
  readonly weight: number;
  /** Values summed as they are after the weighted delta (adaptive clipping's noised unclipped bit). Default: none. */
  readonly extra?: readonly number[];
  /** Training metrics sent in the clear with the masked words. Default: none. */
  readonly metrics?: TrainMetrics;
}

/**
 * The wire side of one client's secure-aggregation round: each method turns a coordinator message
 * into the pure `SecAggClient` step it asks for, and that step's output into the client's message.
 * Which weight, which extra values and whether metrics travel is the round's decision (round.ts).
 */
export class SecAggParticipant {
  private readonly secagg: SecAggClient;
  private readonly round: number;
  private readonly modelVersion: string;

  constructor(options: SecAggParticipantOptions) {
    const { modelVersion, numValues, ...client } = options;
    this.round = client.round;
    this.modelVersion = modelVersion;
    this.secagg = new SecAggClient({ ...client, numParams: numValues });
  }

  /** Stage 1: this round's public keys, signed. X25519 and Ed25519 may be asynchronous (WebCrypto in browsers), hence the promise. */
  async advertise(): Promise<AdvertiseMessage> {
    return { type: 'advertise', round: this.round, ...(await this.secagg.advertiseAsync()) };
  }

  /**
   * Stage 2: a share box for each neighbour, after one X25519 with each neighbour's two keys (each
   * agreement computed once, up front); throws SecAggError REFUSED for a neighbour list an honest
   * client must not answer.
   */
  async share(keys: KeysMessage): Promise<SharesMessage> {
    return { type: 'shares', round: this.round, ...(await this.secagg.shareAsync(keys.neighbours)) };
  }

  /** After stage 2: keeps the shares addressed to us; throws SecAggError BAD_SHARE or REFUSED for a bad inbox. */
  receiveInbox(inbox: InboxMessage): void {
    this.secagg.receiveInbox(inbox.ciphertexts);
  }

  /**
   * Stage 3: the weighted mean needs Σ wᵢ·xᵢ and Σ wᵢ without plaintext weights, so the delta is
   * pre-multiplied by the weight and the weight travels as one more masked word.
   */
  async mask({ delta, weight, extra = [], metrics }: MaskInput): Promise<MaskedMessage> {
    const values = new Float32Array(delta.length + extra.length);
    for (let i = 0; i < delta.length; i++) values[i] = weight * delta[i]!;
    values.set(extra, delta.length);
    const masked = await this.secagg.mask(values, weight);
    return { type: 'masked', round: this.round, modelVersion: this.modelVersion, masked, ...(metrics !== undefined ? { metrics } : {}) };
  }

  /**
   * Stage 4: signs the round's one survivor set (Ed25519 may be asynchronous: WebCrypto in
   * browsers); throws SecAggError REFUSED for a set an honest client must not sign.
   */
  async confirm(announced: SurvivorsMessage): Promise<ConfirmMessage> {
    return { type: 'confirm', round: this.round, signature: await this.secagg.confirmAsync(announced.survivors) };
  }

  /**
   * Stage 5: the shares its signed survivor set implies, once the neighbours' signatures of that set
   * verify (all checked at once); throws SecAggError REFUSED unless enough neighbours signed it.
   */
  async reveal(unmask: UnmaskMessage): Promise<RevealMessage> {
    return { type: 'reveal', round: this.round, ...(await this.secagg.revealAsync(unmask.signatures)) };
  }
}
