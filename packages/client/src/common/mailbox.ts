import { ShoalError, type CoordinatorMessage, type RoundResultMessage } from '@shoal/protocol';
import type { Clock } from '@shoal/protocol';

/** The messages a round waits for once its `train` has started it. */
export type RoundMessageKind = 'keys' | 'inbox' | 'survivors' | 'unmask' | 'result';

export type CoordinatorMessageOf<K extends CoordinatorMessage['type']> = Extract<CoordinatorMessage, { type: K }>;

/**
 * Why a round is over for this client: the coordinator's `result` for it (aborted, or committed
 * without this client), a `train` or `welcome` that supersedes it, the connection closing, or
 * `run()` stopping. (The round's own deadline ends only the client's part: it still hears the result.)
 */
export type RoundOver = { readonly by: 'result'; readonly result: RoundResultMessage } | { readonly by: 'superseded' | 'closed' | 'stopped' };

/** A coordinator message and when it arrived, on the client's clock. */
export interface Received {
  readonly message: CoordinatorMessage;
  readonly at: number;
}

/** One round's view of the mailbox, from its `train` until `close`. */
export interface RoundMail {
  /** Aborted, with a `RoundOver` reason, once the round is over for this client. */
  readonly over: AbortSignal;
  /**
   * The round's next message, which must be of `kind`. Rejects with ShoalError ABORTED (cause: the
   * signal's reason) once `signal` aborts, except that a wait for the `result` resolves with the
   * result that ended the round (and skips the round's stage messages, which are stale by then);
   * rejects with UNEXPECTED_MESSAGE when the round's next message is of another kind (the
   * coordinator broke the round's order).
   */
  next<K extends RoundMessageKind>(kind: K, signal: AbortSignal): Promise<CoordinatorMessageOf<K>>;
  /** The round is done with the mailbox: its late messages go to the connection loop, which drops them. */
  close(): void;
}

/**
 * The coordinator's messages on one connection, in arrival order, for whoever pulls them: the
 * connection loop between rounds (`take`), the round in progress during one (`next`). A message
 * that ends the open round (its `result`, a `train` or a `welcome`) ends it the moment it arrives,
 * so local training stops within one batch instead of whenever the round next looks.
 */
export class Mailbox {
  private readonly queue: Received[] = [];
  private closed = false;
  private readonly waiters = new Set<() => void>();
  private open: { readonly round: number; readonly over: AbortController; readonly release: () => void } | undefined;

  constructor(private readonly clock: Clock) {}

  /** Files a message from the coordinator. */
  put(message: CoordinatorMessage): void {
    if (this.closed) return;
    this.queue.push({ message, at: this.clock.now() });
    this.endRoundIfOver();
    this.notify();
  }

  /** The connection is closing: the open round is over, `take` answers `undefined`, and later messages are dropped. */
  close(): void {
    this.closed = true;
    this.open?.over.abort({ by: 'closed' } satisfies RoundOver);
    this.open?.release();
    this.notify();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The next message, for the connection loop between rounds; `undefined` once the connection is closing. */
  async take(): Promise<Received | undefined> {
    for (;;) {
      if (this.closed) return undefined;
      const next = this.queue.shift();
      if (next !== undefined) return next;
      await this.change();
    }
  }

  /**
   * Opens `round`, whose `train` was just taken: until `close`, its messages wait for `next`, and
   * `over` aborts when the round is over for this client (`signal`: `run()` stopping).
   */
  openRound(round: number, signal: AbortSignal): RoundMail {
    const over = new AbortController();
    const onStop = () => over.abort({ by: 'stopped' } satisfies RoundOver);
    const open = { round, over, release: () => signal.removeEventListener('abort', onStop) };
    this.open = open;
    if (this.closed) over.abort({ by: 'closed' } satisfies RoundOver);
    else if (signal.aborted) onStop();
    else signal.addEventListener('abort', onStop, { once: true });
    this.endRoundIfOver(); // a message already queued may end it
    return {
      over: over.signal,
      next: (kind, until) => this.next(round, kind, until),
      close: () => {
        open.release();
        if (this.open === open) this.open = undefined;
      },
    };
  }

  private async next<K extends RoundMessageKind>(round: number, kind: K, signal: AbortSignal): Promise<CoordinatorMessageOf<K>> {
    for (;;) {
      if (signal.aborted) {
        const over = signal.reason as RoundOver;
        if (kind === 'result' && over.by === 'result') return over.result as CoordinatorMessageOf<K>;
        throw new ShoalError('ABORTED', `round ${round}: stopped waiting for ${kind} (${over.by})`, { cause: over });
      }
      // `evaluate` is answered between rounds, by the connection loop, even when it names this round's number.
      const index = this.queue.findIndex(({ message }) => message.type !== 'welcome' && message.type !== 'train' && message.type !== 'evaluate' && 'round' in message && message.round === round);
      if (index >= 0) {
        const { message } = this.queue.splice(index, 1)[0]!;
        if (message.type === kind) return message as CoordinatorMessageOf<K>;
        // Awaiting the result, the client has left the round's stages: a message for one is stale.
        if (kind === 'result') continue;
        throw new ShoalError('UNEXPECTED_MESSAGE', `round ${round}: the coordinator sent ${message.type} where ${kind} was due`);
      }
      await this.change(signal);
    }
  }

  /** Ends the open round when a queued message says it is over; its `result` is taken with it. */
  private endRoundIfOver(): void {
    const open = this.open;
    if (open === undefined || open.over.signal.aborted) return;
    for (const [i, { message }] of this.queue.entries()) {
      if (message.type === 'result' && message.round === open.round) {
        this.queue.splice(i, 1);
        return open.over.abort({ by: 'result', result: message } satisfies RoundOver);
      }
      if (message.type === 'train' || message.type === 'welcome') return open.over.abort({ by: 'superseded' } satisfies RoundOver);
    }
  }

  /** Resolves when a message arrives, the mailbox closes, or `signal` aborts. */
  private change(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
