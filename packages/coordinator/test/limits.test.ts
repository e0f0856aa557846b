// The bookkeeping behind the coordinator's limits, on a fake clock: resume tokens expire and are
// bounded, and the bad-token back-off refuses one address only, for one window.
import { describe, expect, it } from 'vitest';
import { AddressBackoff } from '../src/backoff.js';
import { ClientRegistry, type ConnectedClient } from '../src/clients.js';

function fakeClock(): { now: () => number; advance(ms: number): void } {
  let time = 1_000;
  return { now: () => time, advance: (ms) => (time += ms) };
}

function client(identityKey?: Uint8Array): ConnectedClient {
  return {
    connection: { send() {}, close() {}, ping() {} },
    state: 'ready',
    capabilities: [],
    assignedRounds: new Set(),
    lastSeenMs: 0,
    ...(identityKey && { identityKey }),
  };
}

describe('ClientRegistry resume tokens', () => {
  it('resumes the same id within the TTL, once', () => {
    const clock = fakeClock();
    const registry = new ClientRegistry({ ttlMs: 1_000, maxTokens: 10 }, clock.now);
    const first = client();
    const { clientId, resumeToken } = registry.admit(first, undefined);
    registry.remove(first);
    clock.advance(999);
    const again = registry.admit(client(), resumeToken);
    expect(again.clientId).toBe(clientId);
    const replayed = registry.admit(client(), resumeToken);
    expect(replayed.clientId).not.toBe(clientId); // used tokens are gone
  });

  it('keeps a connected client\'s token valid however long it stays, and starts the TTL at disconnect', () => {
    const clock = fakeClock();
    const registry = new ClientRegistry({ ttlMs: 1_000, maxTokens: 10 }, clock.now);
    const first = client();
    const { clientId, resumeToken } = registry.admit(first, undefined);
    clock.advance(1_000_000);
    registry.remove(first);
    clock.advance(500);
    expect(registry.admit(client(), resumeToken).clientId).toBe(clientId);
  });

  it('drops a token once stale, and holds no entry for it', () => {
    const clock = fakeClock();
    const registry = new ClientRegistry({ ttlMs: 1_000, maxTokens: 10 }, clock.now);
    const first = client();
    const { clientId, resumeToken } = registry.admit(first, undefined);
    registry.remove(first);
    expect(registry.tokenCount).toBe(1);
    clock.advance(1_001);
    const later = client();
    expect(registry.admit(later, resumeToken).clientId).not.toBe(clientId);
    expect(registry.tokenCount).toBe(1); // only the new client's own token
  });

  it('holds at most maxTokens tokens of disconnected clients, however many come and go', () => {
    const clock = fakeClock();
    const registry = new ClientRegistry({ ttlMs: 3_600_000, maxTokens: 5 }, clock.now);
    const tokens: string[] = [];
    for (let i = 0; i < 1_000; i++) {
      const s = client();
      tokens.push(registry.admit(s, undefined).resumeToken);
      registry.remove(s);
    }
    expect(registry.tokenCount).toBe(5);
    // The newest five still resume; the oldest do not.
    expect(registry.admit(client(), tokens[999]).clientId).toBe('c1000');
    expect(registry.admit(client(), tokens[0]).clientId).toBe('c1001');
  });

  it('resumes a client enrolled with an identity key only when it presents the same key again', () => {
    const clock = fakeClock();
    const registry = new ClientRegistry({ ttlMs: 1_000, maxTokens: 10 }, clock.now);
    const key = new Uint8Array(32).fill(1);
    const enrol = () => {
      const enrolled = client(key);
      const admitted = registry.admit(enrolled, undefined);
      registry.remove(enrolled);
      return admitted;
    };
    // Another key, or none, with a stolen token: a new client; the token is not spent on it.
    const first = enrol();
    expect(registry.admit(client(new Uint8Array(32).fill(2)), first.resumeToken).clientId).not.toBe(first.clientId);
    expect(registry.admit(client(), first.resumeToken).clientId).not.toBe(first.clientId);
    expect(registry.admit(client(key.slice()), first.resumeToken).clientId).toBe(first.clientId);
    // A client that enrolled without a key does not gain its id back by presenting one.
    const plain = client();
    const unpinned = registry.admit(plain, undefined);
    registry.remove(plain);
    expect(registry.admit(client(key), unpinned.resumeToken).clientId).not.toBe(unpinned.clientId);
    expect(registry.admit(client(), unpinned.resumeToken).clientId).toBe(unpinned.clientId);
  });

  it('changed(signal) resolves on a change or an abort and leaves no waiter behind', async () => {
    const registry = new ClientRegistry({ ttlMs: 1_000, maxTokens: 10 });
    const stop = new AbortController();
    const waits: Promise<void>[] = [];
    for (let i = 0; i < 100; i++) {
      const wait = registry.changed(stop.signal);
      registry.admit(client(), undefined);
      waits.push(wait);
    }
    await Promise.all(waits);
    const last = registry.changed(stop.signal);
    stop.abort();
    await last;
    expect((registry as unknown as { waiters: Set<unknown> }).waiters.size).toBe(0);
  });
});

describe('AddressBackoff', () => {
  it('refuses an address after `limit` failures within the window, for one window, and no other address', () => {
    const clock = fakeClock();
    const backoff = new AddressBackoff({ limit: 3, windowMs: 10_000 }, clock.now);
    for (let i = 0; i < 2; i++) backoff.fail('10.0.0.1');
    expect(backoff.retryAfterMs('10.0.0.1')).toBeUndefined();
    backoff.fail('10.0.0.1');
    expect(backoff.retryAfterMs('10.0.0.1')).toBe(10_000);
    expect(backoff.retryAfterMs('10.0.0.2')).toBeUndefined();
    clock.advance(9_999);
    expect(backoff.retryAfterMs('10.0.0.1')).toBe(1);
    clock.advance(1);
    expect(backoff.retryAfterMs('10.0.0.1')).toBeUndefined();
    expect(backoff.size).toBe(0);
  });

  it('forgets failures older than the window', () => {
    const clock = fakeClock();
    const backoff = new AddressBackoff({ limit: 3, windowMs: 10_000 }, clock.now);
    backoff.fail('a');
    backoff.fail('a');
    clock.advance(10_000);
    backoff.fail('a');
    expect(backoff.retryAfterMs('a')).toBeUndefined();
  });

  it('tracks a bounded number of addresses', () => {
    const backoff = new AddressBackoff({ limit: 3, windowMs: 10_000 });
    for (let i = 0; i < 20_000; i++) backoff.fail(`addr-${i}`);
    expect(backoff.size).toBe(10_000);
  });
});
