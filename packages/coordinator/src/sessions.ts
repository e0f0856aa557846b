import { randomBytes } from 'node:crypto';
import type { PeerConnection } from './connection.js';

/** One connected client as the coordinator sees it. */
export interface ClientSession {
  readonly connection: PeerConnection;
  state: 'awaiting-hello' | 'ready' | 'closed';
  clientId?: string;
  numExamples: number;
  /** From hello: optional features the client supports ('secagg', 'dp', ...). */
  capabilities: readonly string[];
  /** The global version this client is known to hold (sent by us or announced in hello). */
  heldVersion?: string;
  /** The round the client is training for, if any. */
  busyRound?: number;
  /** Every round this client was selected for, so a late update can be told from a forged one. */
  readonly assignedRounds: Set<number>;
  lastSeenMs: number;
}

/**
 * Connected clients by id, plus resume tokens so a reconnecting client keeps its id. Kept behind
 * this small class so a shared store (see DESIGN.md §10) can replace it later.
 */
export class ClientRegistry {
  private readonly byId = new Map<string, ClientSession>();
  private readonly idByResumeToken = new Map<string, string>();
  private nextNumber = 1;
  private waiters: (() => void)[] = [];

  /** Admits a session: reuses the id behind a known resume token unless that id is still connected. */
  admit(session: ClientSession, resumeToken: string | undefined): { clientId: string; resumeToken: string } {
    const resumedId = resumeToken === undefined ? undefined : this.idByResumeToken.get(resumeToken);
    const clientId = resumedId !== undefined && !this.byId.has(resumedId) ? resumedId : `c${this.nextNumber++}`;
    if (resumedId === clientId && resumeToken !== undefined) this.idByResumeToken.delete(resumeToken);
    const token = randomBytes(18).toString('base64url');
    this.idByResumeToken.set(token, clientId);
    session.clientId = clientId;
    this.byId.set(clientId, session);
    this.notify();
    return { clientId, resumeToken: token };
  }

  remove(session: ClientSession): void {
    if (session.clientId !== undefined && this.byId.get(session.clientId) === session) {
      this.byId.delete(session.clientId);
      this.notify();
    }
  }

  get(clientId: string): ClientSession | undefined {
    return this.byId.get(clientId);
  }

  /** Ready clients not training, in admission order (so seeded sampling is reproducible). */
  idle(): ClientSession[] {
    return [...this.byId.values()].filter((s) => s.state === 'ready' && s.busyRound === undefined);
  }

  all(): ClientSession[] {
    return [...this.byId.values()];
  }

  /** Resolves at the next admission or removal. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
