/**
 * A clock that moves only when the test says so: `now()` starts at 0, timers fire (in time order)
 * during `advance`. It fits the coordinator's `Clock` port (`now`, `after`) without importing it.
 */
export class FakeClock {
  private time = 0;
  private readonly timers = new Set<{ readonly at: number; readonly fn: () => void }>();

  now(): number {
    return this.time;
  }

  after(ms: number, fn: () => void): () => void {
    const timer = { at: this.time + Math.max(0, ms), fn };
    this.timers.add(timer);
    return () => this.timers.delete(timer);
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.size;
  }

  /**
   * Moves time forward by `ms` at once, firing every timer due on the way in time order, before
   * returning: for a test that must move the clock from inside a callback (e.g. at an exact batch).
   */
  tick(ms: number): void {
    const end = this.time + ms;
    for (let due = this.nextDue(end); due !== undefined; due = this.nextDue(end)) this.fire(due);
    this.time = end;
  }

  /**
   * Moves time forward by `ms`, firing every timer due on the way in time order, and lets the
   * promise jobs each one starts run before the next fires and before returning (so awaits that
   * depend on them have moved on).
   */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (let due = this.nextDue(end); due !== undefined; due = this.nextDue(end)) {
      this.fire(due);
      await settle();
    }
    this.time = end;
    await settle();
  }

  private nextDue(end: number): { readonly at: number; readonly fn: () => void } | undefined {
    return [...this.timers].filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
  }

  private fire(timer: { readonly at: number; readonly fn: () => void }): void {
    this.timers.delete(timer);
    this.time = timer.at;
    timer.fn();
  }
}

/** Lets queued promise jobs (and the ones they queue) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise((resolve) => setImmediate(resolve));
}
