// The honest clients of a chaos run: real Node `ShoalClient`s over real WebSockets. Their transport
// resolves the coordinator's address at each connect (as a DNS name or a load balancer would: the
// coordinator gets a new port every life), records what the coordinator sends, and cuts the
// connection at the planned stages.
import { ShoalClient, wsTransport, type ClientConnection, type ClientDataset, type ClientTransport } from '@shoal/client';
import { weightsHash } from '@shoal/coordinator';
import { ShoalError, createSeededRandom, decodeFrame, type CoordinatorMessage } from '@shoal/protocol';
import { CLIENT_KILL_STAGES, cutsConnection, type ClientKillStage } from '@shoal/testkit';

/** One coordinator message a client received, with the coordinator life it came from. */
export interface Observation {
  readonly life: number;
  readonly slot: number;
  readonly type: CoordinatorMessage['type'];
  readonly round?: number;
  /** `train`: the model version it trains from, the SecAgg session id, and the hash of the weights if it carried them. */
  readonly modelVersion?: string;
  readonly sessionId?: string;
  readonly weightsHash?: string;
  /** `result`: committed or aborted. */
  readonly status?: string;
}

/** A client's own account of a round it sent its part of (its `roundEnd` events). */
export interface Contribution {
  readonly slot: number;
  readonly round: number;
  readonly life: number;
}

export interface ChaosClientsOptions {
  readonly count: number;
  readonly token: string;
  readonly seed: number;
  /** Probability that a client's connection is cut on receiving one stage message. */
  readonly cutProbability: number;
}

interface Slot {
  readonly index: number;
  client: ShoalClient;
  stop: AbortController;
  running: Promise<void>;
  /** Incremented on each restart: a restarted client is a new device to the coordinator (new id, no cached model). */
  incarnation: number;
}

const FEATURES = 4;
const CLASSES = 3;
const EXAMPLES = 24;

/** Seeded examples of three Gaussian clusters in 4 dimensions, different for each slot. */
function clientData(seed: number, slot: number): ClientDataset {
  const random = createSeededRandom((seed * 7919 + slot * 104_729) >>> 0);
  const x = new Float32Array(EXAMPLES * FEATURES);
  const y = new Int32Array(EXAMPLES);
  for (let i = 0; i < EXAMPLES; i++) {
    const label = random.nextInt(CLASSES);
    y[i] = label;
    for (let f = 0; f < FEATURES; f++) x[i * FEATURES + f] = (f === label ? 1.5 : 0) + 0.5 * random.nextGaussian();
  }
  return { x, y, featureShape: [FEATURES] };
}

/**
 * The client fleet. `url` is where the coordinator of the current life listens (undefined while it
 * is down: connects then fail and the clients back off, as they would against a dead host).
 */
export class ChaosClients {
  url: string | undefined;
  life = 0;
  readonly observations: Observation[] = [];
  readonly contributions: Contribution[] = [];
  readonly cuts: Record<ClientKillStage, number> = Object.fromEntries(CLIENT_KILL_STAGES.map((stage) => [stage, 0])) as Record<ClientKillStage, number>;
  restarts = 0;
  /** Unexpected client failures: `run()` rejecting is one (an honest client must never give up). */
  readonly failures: string[] = [];
  private readonly slots: Slot[] = [];

  constructor(private readonly options: ChaosClientsOptions) {
    for (let index = 0; index < options.count; index++) {
      const slot = { index, incarnation: 0 } as Slot;
      this.slots.push(slot);
      this.launch(slot);
    }
  }

  /** Restarts the client in `slot` as a process restart would: its run stops, a fresh client (no resume token, no model) takes its place. */
  async restart(slotIndex: number): Promise<void> {
    const slot = this.slots[slotIndex]!;
    slot.stop.abort();
    await slot.running;
    slot.incarnation++;
    this.restarts++;
    this.launch(slot);
  }

  /** Stops every client and waits for their `run()`s to settle. */
  async stop(): Promise<void> {
    for (const slot of this.slots) slot.stop.abort();
    await Promise.all(this.slots.map((slot) => slot.running));
  }

  private launch(slot: Slot): void {
    const { seed, token } = this.options;
    const jitter = createSeededRandom((seed ^ (slot.index * 0x2545f491) ^ (slot.incarnation << 20)) >>> 0);
    slot.stop = new AbortController();
    slot.client = new ShoalClient({
      url: 'ws://coordinator.chaos.invalid', // never dialled: the transport asks the driver where the coordinator is now
      token,
      data: clientData(seed, slot.index),
      transport: this.transport(slot),
      reconnect: { initialDelayMs: 50, maxDelayMs: 400 },
      random: () => jitter.next(),
      shuffleSeed: seed + slot.index,
    });
    let sentIn: { round: number; life: number } | undefined;
    slot.client.on('roundEnd', ({ round, status }) => {
      if (status === 'sent') sentIn = { round, life: this.life };
      else if (status === 'committed' && sentIn?.round === round) this.contributions.push({ slot: slot.index, round, life: sentIn.life });
    });
    slot.running = slot.client.run({ signal: slot.stop.signal }).catch((error: unknown) => {
      this.failures.push(`client ${slot.index}: run() rejected: ${(error as Error).message}`);
    });
  }

  private transport(slot: Slot): ClientTransport {
    return {
      connect: async (_url, token, signal) => {
        const url = this.url;
        const life = this.life;
        if (url === undefined) throw new ShoalError('CONNECTION_FAILED', 'the coordinator is down');
        const connection = await wsTransport.connect(url, token, signal);
        return this.tapped(connection, slot, life);
      },
    };
  }

  /** `connection`, recording every coordinator message and cutting the connection where the plan says. */
  private tapped(connection: ClientConnection, slot: Slot, life: number): ClientConnection {
    let cut = false;
    return {
      send: (frame) => {
        if (!cut) connection.send(frame);
      },
      close: (code, reason) => connection.close(code, reason),
      onClose: (handler) => connection.onClose(handler),
      onFrame: (handler) =>
        connection.onFrame((frame) => {
          if (cut) return;
          const message = decodeFrame(frame) as CoordinatorMessage;
          this.observations.push(observe(message, life, slot.index));
          const stage = (CLIENT_KILL_STAGES as readonly string[]).includes(message.type) ? (message.type as ClientKillStage) : undefined;
          const round = 'round' in message ? message.round : undefined;
          if (stage !== undefined && round !== undefined && cutsConnection(this.options.seed, this.options.cutProbability, { life, slot: slot.index + 100 * slot.incarnation, round, stage })) {
            // The device drops off as the message arrives: it never answers it, and reconnects later.
            cut = true;
            this.cuts[stage]++;
            connection.close(1001, `chaos: connection cut at ${stage} of round ${round}`);
            return;
          }
          handler(frame);
        }),
    };
  }
}

function observe(message: CoordinatorMessage, life: number, slot: number): Observation {
  const base = { life, slot, type: message.type, ...('round' in message ? { round: message.round } : {}) };
  if (message.type === 'train') {
    return {
      ...base,
      modelVersion: message.modelVersion,
      ...(message.secagg ? { sessionId: message.secagg.sessionId } : {}),
      ...(message.weights ? { weightsHash: weightsHash(message.weights) } : {}),
    };
  }
  if (message.type === 'result') return { ...base, status: message.status, modelVersion: message.modelVersion };
  return base;
}
