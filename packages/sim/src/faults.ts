import { createHash } from 'node:crypto';
import type { ClientConnection, ClientTransport } from '@shoal/client';
import { createSeededRandom, decodeFrame, type SeededRandom } from '@shoal/protocol';
import type { FaultStage, StragglerPolicy } from './config.js';

export interface FaultPolicy {
  /** Probability that a selected client vanishes during a round. */
  readonly dropout: number;
  /** Where it vanishes; default: drawn at random among the round's stages. */
  readonly stage?: FaultStage;
  /** Probability that a selected client is a straggler in a round (FedProx's systems heterogeneity). Default 0. */
  readonly stragglers?: number;
  /** What a straggler does: trains fewer epochs and sends that (`partial`), or never sends its update (`drop`). Default `partial`. */
  readonly stragglerPolicy?: StragglerPolicy;
}

/** The message whose sending marks each stage. */
const STAGE_OF_MESSAGE: Readonly<Record<string, FaultStage>> = {
  advertise: 'advertise',
  shares: 'share',
  masked: 'masked',
  confirm: 'confirm',
  update: 'train',
  reveal: 'unmask',
};

const SECAGG_STAGES: readonly FaultStage[] = ['advertise', 'share', 'masked', 'confirm', 'unmask'];

/**
 * Client number `clientNumber`'s own fault draws: seeded by a hash of (seed, client number), so
 * whether and where a client drops out depends on nothing but the run's seed and its number: not
 * on the order in which frames reach other clients, nor on the thread or process hosting it.
 */
export function faultRandom(seed: number, clientNumber: number): SeededRandom {
  const digest = createHash('sha256').update(`shoal-faults:${seed}:${clientNumber}`).digest();
  return createSeededRandom(digest.readUInt32LE(0));
}

/**
 * Client number `clientNumber`'s straggling in `round`, as FedProx's experiments draw it: with
 * probability `stragglers` it is a straggler, and a straggler manages a number of epochs drawn
 * uniformly from 1 to E − 1 of the E asked for (1 when E is 1). Drawn from a hash of (seed, client
 * number, round), so it depends on nothing else: not on the thread hosting the client, nor on the
 * rounds it was not selected for.
 */
export function straggling(seed: number, clientNumber: number, round: number, stragglers: number): { readonly straggles: boolean; epochs(asked: number): number } {
  const digest = createHash('sha256').update(`shoal-stragglers:${seed}:${clientNumber}:${round}`).digest();
  const straggles = digest.readUInt32LE(0) / 2 ** 32 < stragglers;
  const draw = digest.readUInt32LE(4) / 2 ** 32;
  return { straggles, epochs: (asked) => (straggles && asked > 1 ? 1 + Math.floor(draw * (asked - 1)) : asked) };
}

/**
 * Wraps a transport so that clients vanish like real devices do: when a round starts (a `train`
 * arrives), each client draws whether it will drop out and at which stage; at that stage, instead
 * of sending its message, it closes the connection. The client code itself is untouched: it sees
 * a lost connection and reconnects, as it would in the field. `random` is the draws of the clients
 * that use this transport: give each client its own (`faultRandom`) so a run is reproducible.
 */
export function withFaults(inner: ClientTransport, policy: FaultPolicy, random: SeededRandom, straggles: (round: number) => boolean = () => false): ClientTransport {
  const dropsStragglers = (policy.stragglers ?? 0) > 0 && policy.stragglerPolicy === 'drop';
  if (policy.dropout <= 0 && !dropsStragglers) return inner;
  return {
    async connect(url, token, signal) {
      const connection = await inner.connect(url, token, signal);
      const doomed = new Map<number, FaultStage>(); // round → the stage at which this client vanishes
      let closed = false;
      const wrapped: ClientConnection = {
        send(frame) {
          if (closed) return;
          const { type, round } = peek(frame);
          const stage = type === undefined ? undefined : STAGE_OF_MESSAGE[type];
          const fatal = round === undefined ? undefined : doomed.get(round);
          // In a SecAgg round the masked input is the trained update: 'train' and 'masked' coincide.
          if (stage !== undefined && fatal !== undefined && (stage === fatal || (fatal === 'train' && stage === 'masked'))) {
            closed = true;
            connection.close(1001, `simulated dropout before ${fatal}`);
            return;
          }
          connection.send(frame);
        },
        close: (code, reason) => connection.close(code, reason),
        onFrame(handler) {
          connection.onFrame((frame) => {
            const message = peek(frame);
            if (message.type === 'train' && message.round !== undefined && random.next() < policy.dropout) {
              const stages = message.secagg ? SECAGG_STAGES : (['train'] as const);
              doomed.set(message.round, policy.stage ?? stages[random.nextInt(stages.length)]!);
            } else if (message.type === 'train' && message.round !== undefined && dropsStragglers && straggles(message.round)) {
              doomed.set(message.round, 'train'); // FedAvg's treatment of a straggler: its update never arrives
            }
            handler(frame);
          });
        },
        onClose: (handler) => connection.onClose(handler),
      };
      return wrapped;
    },
  };
}

function peek(frame: Uint8Array): { type?: string; round?: number; secagg?: unknown } {
  try {
    const value = decodeFrame(frame) as { type?: unknown; round?: unknown; secagg?: unknown };
    return {
      ...(typeof value.type === 'string' ? { type: value.type } : {}),
      ...(typeof value.round === 'number' ? { round: value.round } : {}),
      ...(value.secagg !== undefined ? { secagg: value.secagg } : {}),
    };
  } catch {
    return {};
  }
}
