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
   * Moves time forward by `ms`, firing every timer due on the way in time order, and lets the
   * promise jobs they start run before returning (so awaits that depend on them have moved on).
   */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      const due = [...this.timers].filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      this.timers.delete(due);
      this.time = due.at;
      due.fn();
      await settle();
    }
    this.time = end;
    await settle();
  }
}

/** Lets queued promise jobs (and the ones they queue) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise((resolve) => setImmediate(resolve));
}
