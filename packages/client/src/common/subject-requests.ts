import { ShoalError, type ClientMessage, type ForgottenMessage, type SubjectDataMessage } from '@shoal/protocol';

/** What the coordinator holds about this client (`client.requestHeldData()`), as it says. */
export type HeldData = Omit<SubjectDataMessage, 'type'>;

type Answer = SubjectDataMessage | ForgottenMessage;
type Waiter = { readonly type: Answer['type']; resolve(answer: Answer): void; reject(error: Error): void };

/**
 * Data-subject requests on one connection (docs/privacy.md, "What the coordinator holds about a
 * device"): each request waits for the coordinator's answer of its kind, in order; all waits reject
 * when the connection closes first.
 */
export class SubjectRequests {
  private readonly waiters: Waiter[] = [];
  private closedWith: Error | undefined;

  constructor(private readonly send: (message: ClientMessage) => void) {}

  /** Sends `message` and resolves with the next answer of `type`. */
  ask<T extends Answer['type']>(message: ClientMessage, type: T): Promise<Extract<Answer, { type: T }>> {
    if (this.closedWith !== undefined) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => {
      this.waiters.push({ type, resolve: resolve as (answer: Answer) => void, reject });
      this.send(message);
    });
  }

  /** An answer from the coordinator; one nobody asked for is dropped. */
  answer(answer: Answer): void {
    const index = this.waiters.findIndex((waiter) => waiter.type === answer.type);
    if (index >= 0) this.waiters.splice(index, 1)[0]!.resolve(answer);
  }

  /** The connection closed: every wait rejects, and later requests fail at once. */
  close(code: number, reason: string): void {
    this.closedWith = new ShoalError('CONNECTION_FAILED', `the connection closed (${code} ${reason}) before the coordinator answered`);
    for (const waiter of this.waiters.splice(0)) waiter.reject(this.closedWith);
  }
}
