import { randomBytes } from 'node:crypto';
import { MAX_ROUNDS_PER_CLIENT } from '@shoal/protocol';
import type { PeerConnection } from './connection.js';

/** One connected client as the coordinator sees it. */
export interface ConnectedClient {
  readonly connection: PeerConnection;
  state: 'awaiting-hello' | 'ready' | 'closed';
  clientId?: string;
  /** From hello: optional features the client supports ('secagg', 'dp', ...). */
  capabilities: readonly string[];
  /** From hello: the pinned Ed25519 identity key it signs SecAgg rounds with, if it enrolled with one. */
  identityKey?: Uint8Array;
  /** Every round this client was selected for, so a late update can be told from a forged one. */
  readonly assignedRounds: Set<number>;
  lastSeenMs: number;
  /** Cancels the timer that closes the connection if no hello arrives in time; called at hello and at close. */
  cancelHelloTimer?: () => void;
}

/** How long resume tokens live and how many are kept. */
export interface ResumeTokenPolicy {
  /** How long a disconnected client's token stays valid. */
  readonly ttlMs: number;
  /** Tokens of disconnected clients kept at most; the oldest go first. */
  readonly maxTokens: number;
}

/**
 * Connected clients by id, plus resume tokens so a reconnecting client keeps its id. Kept behind
 * this small class so a shared store (see DESIGN.md §10) can replace it later.
 *
 * A connected client's token is valid as long as it stays connected; when it disconnects the
 * token gets `ttlMs` to be used, and it is removed when used, when stale, or when more than
 * `maxTokens` are waiting. So the registry holds O(connected + maxTokens) entries whatever the
 * churn: a stranger opening and closing connections leaves nothing behind for long.
 *
 * It also remembers, per client id, the rounds the id was selected for and sent its update for
 * (what `subject-access` reports): at most MAX_ROUNDS_PER_CLIENT of each (the newest), and only
 * while the id is connected or holds a released token, so that history is bounded the same way.
 */
export class ClientRegistry {
  private readonly byId = new Map<string, ConnectedClient>();
  /** Tokens of connected clients: token → client id. */
  private readonly liveTokens = new Map<string, string>();
  private readonly tokenOfId = new Map<string, string>();
  /** Tokens of disconnected clients in the order they were released, so the stalest comes first. */
  private readonly releasedTokens = new Map<string, { readonly clientId: string; readonly identity: string | undefined; readonly expiresAtMs: number }>();
  /** Rounds of each known id: selected (folded in from its connections as they close) and contributed. */
  private readonly rounds = new Map<string, { selected: number[]; contributed: number[] }>();
  private nextNumber = 1;
  private waiters = new Set<() => void>();

  constructor(
    private readonly policy: ResumeTokenPolicy,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Admits a client: reuses the id behind a valid resume token unless that id is still connected,
   * or the client now presents another identity key than it enrolled with (then it is a new client).
   */
  admit(client: ConnectedClient, resumeToken: string | undefined): { clientId: string; resumeToken: string } {
    this.dropStaleTokens();
    const released = resumeToken === undefined ? undefined : this.releasedTokens.get(resumeToken);
    let clientId: string;
    if (released !== undefined && !this.byId.has(released.clientId) && released.identity === identityText(client)) {
      this.releasedTokens.delete(resumeToken!); // one use only
      clientId = released.clientId;
    } else {
      clientId = `c${this.nextNumber++}`; // `byAdmission` orders by this number
    }
    const token = randomBytes(18).toString('base64url');
    this.liveTokens.set(token, clientId);
    this.tokenOfId.set(clientId, token);
    client.clientId = clientId;
    this.byId.set(clientId, client);
    this.notify();
    return { clientId, resumeToken: token };
  }

  remove(client: ConnectedClient): void {
    const clientId = client.clientId;
    if (clientId === undefined || this.byId.get(clientId) !== client) return;
    this.byId.delete(clientId);
    const token = this.tokenOfId.get(clientId);
    if (token !== undefined) {
      this.tokenOfId.delete(clientId);
      this.liveTokens.delete(token);
      this.releasedTokens.set(token, { clientId, identity: identityText(client), expiresAtMs: this.now() + this.policy.ttlMs });
    }
    const history = this.historyOf(clientId);
    history.selected = newest(history.selected, client.assignedRounds);
    this.dropStaleTokens();
    this.notify();
  }

  /** `clientId` sent its update (plain or masked) for `round`. Called for every update: O(1) in the usual, newest-round case. */
  contributed(clientId: string, round: number): void {
    const history = this.historyOf(clientId);
    const rounds = history.contributed;
    const last = rounds.at(-1);
    if (last === round) return;
    if (last === undefined || last < round) {
      rounds.push(round);
      if (rounds.length > MAX_ROUNDS_PER_CLIENT) rounds.shift();
    } else {
      history.contributed = newest(rounds, [round]); // a late update for an older round
    }
  }

  /** Everything held about a connected client's id (docs/privacy.md, "What the coordinator holds about a device"). */
  heldAbout(client: ConnectedClient): { resumeTokenHeld: boolean; selectedRounds: number[]; contributedRounds: number[] } {
    const clientId = client.clientId!;
    const history = this.rounds.get(clientId);
    return {
      resumeTokenHeld: this.tokenOfId.has(clientId) || [...this.releasedTokens.values()].some((entry) => entry.clientId === clientId),
      selectedRounds: newest(history?.selected ?? [], client.assignedRounds),
      contributedRounds: [...(history?.contributed ?? [])],
    };
  }

  /**
   * Forgets a connected client's id for good: its entry, its live and released resume tokens and its
   * round history. The connection is then closed by the caller; its `remove` finds nothing left.
   */
  erase(client: ConnectedClient): void {
    const clientId = client.clientId;
    if (clientId === undefined || this.byId.get(clientId) !== client) return;
    this.byId.delete(clientId);
    const token = this.tokenOfId.get(clientId);
    if (token !== undefined) this.liveTokens.delete(token);
    this.tokenOfId.delete(clientId);
    for (const [released, entry] of this.releasedTokens) if (entry.clientId === clientId) this.releasedTokens.delete(released);
    this.rounds.delete(clientId);
    client.assignedRounds.clear();
    this.notify();
  }

  /** Whether the registry holds anything about `clientId` (an entry, a token or rounds). */
  knows(clientId: string): boolean {
    return this.byId.has(clientId) || this.tokenOfId.has(clientId) || this.rounds.has(clientId) || [...this.releasedTokens.values()].some((entry) => entry.clientId === clientId);
  }

  private historyOf(clientId: string): { selected: number[]; contributed: number[] } {
    let history = this.rounds.get(clientId);
    if (history === undefined) this.rounds.set(clientId, (history = { selected: [], contributed: [] }));
    return history;
  }

  /** Clients admitted and still connected (a count, so waiting for enough of them costs nothing per join). */
  get connectedCount(): number {
    return this.byId.size;
  }

  get(clientId: string): ConnectedClient | undefined {
    return this.byId.get(clientId);
  }

  /** Clients that said hello and are still connected, in the order they (re)connected; `byAdmission` sorts them by first admission. */
  ready(): ConnectedClient[] {
    return [...this.byId.values()].filter((s) => s.state === 'ready');
  }

  /** Resume tokens held: of connected clients, and of disconnected ones still valid. */
  get tokenCount(): number {
    return this.liveTokens.size + this.releasedTokens.size;
  }

  /** Resolves at the next admission or removal, or when `signal` aborts; holds nothing after that. */
  changed(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const wake = () => {
        this.waiters.delete(wake);
        signal.removeEventListener('abort', wake);
        resolve();
      };
      this.waiters.add(wake);
      signal.addEventListener('abort', wake, { once: true });
    });
  }

  /** Released tokens expire in release order (one ttl for all), so the stale ones are at the front. */
  private dropStaleTokens(): void {
    const now = this.now();
    for (const [token, entry] of this.releasedTokens) {
      if (entry.expiresAtMs > now && this.releasedTokens.size <= this.policy.maxTokens) break;
      this.releasedTokens.delete(token);
      // The id can never come back: nothing about it is kept.
      if (!this.byId.has(entry.clientId)) this.rounds.delete(entry.clientId);
    }
  }

  private notify(): void {
    for (const wake of [...this.waiters]) wake();
  }
}

/** `kept` plus `more`, ascending, without repeats, cut to the newest MAX_ROUNDS_PER_CLIENT. */
function newest(kept: readonly number[], more: Iterable<number>): number[] {
  return [...new Set([...kept, ...more])].sort((a, b) => a - b).slice(-MAX_ROUNDS_PER_CLIENT);
}

/** Orders client ids as the registry numbered them (`c2` before `c10`). */
export function byAdmission(a: string, b: string): number {
  return Number(a.slice(1)) - Number(b.slice(1));
}

function identityText(client: ConnectedClient): string | undefined {
  return client.identityKey === undefined ? undefined : Buffer.from(client.identityKey).toString('hex');
}
