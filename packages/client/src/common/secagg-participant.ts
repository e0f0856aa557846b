import type {
  AdvertiseMessage,
  InboxMessage,
  KeysMessage,
  MaskedMessage,
  RevealMessage,
  SecAggRoundConfig,
  SharesMessage,
  TrainConfig,
  UnmaskMessage,
} from '@shoal/protocol';
import { cryptoNoise, type NoiseSource } from '@shoal/dp';
import { SecAggClient, type KeyAgreement, type MaskPrg } from '@shoal/secagg';
import type { LocalUpdate } from './pipeline.js';

/**
 * One client's part in one secure-aggregation round: the SecAgg state machine plus the local
 * training that runs while keys and shares are exchanged. Each method answers one coordinator
 * message with the client's next one, so the client's round handler stays a flat dispatch.
 */
export class SecAggParticipant {
  private readonly secagg: SecAggClient;
  /** Adaptive clipping under SecAgg: the unclipped bit travels as one more masked value. */
  private readonly sendsBit: boolean;

  constructor(
    private readonly round: number,
    private readonly modelVersion: string,
    private readonly config: SecAggRoundConfig,
    private readonly train: TrainConfig,
    numParams: number,
    /** The round's trained update (already through the update pipeline). */
    private readonly training: Promise<LocalUpdate>,
    dependencies: { prg: MaskPrg; randomBytes: (n: number) => Uint8Array; agreement?: KeyAgreement },
    private readonly noise: NoiseSource = cryptoNoise(),
  ) {
    this.sendsBit = train.bitNoiseStd !== undefined;
    this.secagg = new SecAggClient({ config, round, numParams: numParams + (this.sendsBit ? 1 : 0), ...dependencies });
  }

  advertise(): AdvertiseMessage {
    return { type: 'advertise', round: this.round, ...this.secagg.advertise() };
  }

  onKeys(message: KeysMessage): SharesMessage {
    return { type: 'shares', round: this.round, ...this.secagg.share(message.neighbours) };
  }

  /** Stores the shares addressed to us, waits for training, then masks the weighted update. */
  async onInbox(message: InboxMessage): Promise<MaskedMessage> {
    this.secagg.receiveInbox(message.ciphertexts);
    const update = await this.training;
    // The weighted mean needs Σ wᵢ·xᵢ and Σ wᵢ without plaintext weights: pre-multiply, and send
    // the weight as one more masked coordinate.
    const weight = Math.min(update.numExamples, this.config.maxWeight);
    const d = update.delta.length;
    const values = new Float32Array(d + (this.sendsBit ? 1 : 0));
    for (let i = 0; i < d; i++) values[i] = weight * update.delta[i]!;
    if (this.sendsBit) values[d] = (update.unclipped ? 1 : 0) + (this.train.bitNoiseStd! > 0 ? this.train.bitNoiseStd! * this.noise.gaussian() : 0);
    const masked = await this.secagg.mask(values, weight);
    // Under distributed DP the coordinator is not trusted: send nothing about the data in the clear.
    const metrics = this.train.noiseStd === undefined ? { metrics: update.metrics } : {};
    return { type: 'masked', round: this.round, modelVersion: this.modelVersion, masked, ...metrics };
  }

  /** Reveals shares for the announced survivors and dropouts; throws SecAggError REFUSED when an honest client must not. */
  onUnmask(message: UnmaskMessage): RevealMessage {
    return { type: 'reveal', round: this.round, ...this.secagg.reveal({ survivors: message.survivors, dropped: message.dropped }) };
  }
}
