/** Addresses tracked at most; past it the oldest entry goes, so a scan of many addresses costs O(1) memory. */
const MAX_TRACKED_ADDRESSES = 10_000;

interface Failures {
  /** When the current window opened. */
  readonly sinceMs: number;
  readonly count: number;
  /** Set once `count` reached the limit: refused until then. */
  readonly refusedUntilMs?: number;
}

/**
 * Counts failed attempts (bad-token upgrades) per remote address and refuses an address that
 * failed `limit` times within `windowMs`, for `windowMs`. It slows token guessing without
 * touching addresses that never fail. Note that clients behind one NAT share an address: one of
 * them guessing tokens gets them all refused for a window (they retry with backoff).
 */
export class AddressBackoff {
  private readonly failures = new Map<string, Failures>();

  constructor(
    private readonly policy: { readonly limit: number; readonly windowMs: number },
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds until `address` may try again, or undefined when it is not refused. */
  retryAfterMs(address: string): number | undefined {
    const entry = this.current(address);
    if (entry?.refusedUntilMs === undefined) return undefined;
    return Math.max(1, entry.refusedUntilMs - this.now());
  }

  fail(address: string): void {
    const now = this.now();
    const entry = this.current(address);
    const count = (entry?.count ?? 0) + 1;
    const next: Failures = {
      sinceMs: entry?.sinceMs ?? now,
      count,
      ...(count >= this.policy.limit ? { refusedUntilMs: now + this.policy.windowMs } : {}),
    };
    this.failures.delete(address); // re-inserted last: the map stays ordered by last failure
    this.failures.set(address, next);
    if (this.failures.size > MAX_TRACKED_ADDRESSES) this.failures.delete(this.failures.keys().next().value!);
  }

  /** Addresses tracked now (for tests and metrics). */
  get size(): number {
    return this.failures.size;
  }

  /** The entry of `address` unless its window (or refusal) is over, in which case it is forgotten. */
  private current(address: string): Failures | undefined {
    const entry = this.failures.get(address);
    if (entry === undefined) return undefined;
    const now = this.now();
    const over = entry.refusedUntilMs !== undefined ? now >= entry.refusedUntilMs : now - entry.sinceMs >= this.policy.windowMs;
    if (!over) return entry;
    this.failures.delete(address);
    return undefined;
  }
}
