import type { ClientConnection, ClientTransport } from '@shoal/client';
import { decodeFrame, type SeededRandom } from '@shoal/protocol';
import type { FaultStage } from './config.js';

export interface FaultPolicy {
  /** Probability that a selected client vanishes during a round. */
  readonly dropout: number;
  /** Where it vanishes; default: drawn at random among the round's stages. */
  readonly stage?: FaultStage;
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
 * Wraps a transport so that clients vanish like real devices do: when a round starts (a `train`
 * arrives), each client draws whether it will drop out and at which stage; at that stage, instead
 * of sending its message, it closes the connection. The client code itself is untouched: it sees
 * a lost connection and reconnects, as it would in the field.
 */
export function withFaults(inner: ClientTransport, policy: FaultPolicy, random: SeededRandom): ClientTransport {
  if (policy.dropout <= 0) return inner;
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
