// Worker threads for the end of a SecAgg round: regenerating the masks of the survivors and of the
// dropped clients (AES-CTR keystreams and X25519) is the bulk of the coordinator's work there, and
// the masks are independent, so `SecAggServer.finish` cuts them into jobs (`UnmaskJob`) that these
// threads run side by side. Owned by one Coordinator: created on the first round that needs them,
// terminated when its run ends or it is stopped (`close`).
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { SecAggAbort, type UnmaskJob, type UnmaskRunner } from '@shoal/secagg';
import { startModuleWorker } from './module-worker.js';

/** A job for a worker, and its answer: the partial sum, or why the job failed. */
export interface ToUnmaskWorker {
  readonly id: number;
  readonly job: UnmaskJob;
}
export type FromUnmaskWorker = { readonly id: number; readonly partial: Uint32Array } | { readonly id: number; readonly failure: string };

/**
 * Below this much work (masks × words of each mask) a round is unmasked in the calling thread.
 * Measured here (bench/secagg-server.bench.ts, "unmask crossover", warm threads, d = 100,001):
 * the pool lost at 6·10^6–2.6·10^7 mask words (0.4–0.8×), broke even near 10^8 (1.1×) and won
 * at 4·10^8 (1.46×); a pool's first round also starts its threads (~0.7 s from the TypeScript
 * sources, less from dist). So 2^27 ≈ 1.3·10^8: a 500-client SecAgg+ round with dropouts uses the
 * threads, a full-SecAgg round without dropouts (500 masks) does not. docs/secagg.md has the figures.
 */
export const MIN_POOL_MASK_WORDS = 2 ** 27;

export interface UnmaskWorkersOptions {
  /** Threads; default min(2, os.availableParallelism()). With fewer than 2 every round is unmasked in the calling thread. */
  readonly threads?: number;
  /** Work (masks × words) below which a round stays in the calling thread; default MIN_POOL_MASK_WORDS. */
  readonly minMaskWords?: number;
}

/** This module's own extension says whether it runs from the TypeScript sources or from dist. */
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_ENTRY = new URL(FROM_SOURCE ? './unmask-worker.ts' : './unmask-worker.js', import.meta.url);

interface PendingJob {
  readonly worker: Worker;
  readonly resolve: (partial: Uint32Array) => void;
  readonly reject: (error: SecAggAbort) => void;
}

export class UnmaskWorkers implements UnmaskRunner {
  readonly threads: number;
  private readonly minMaskWords: number;
  /** The live threads: none until a round needs them, none again after `close`. */
  private workers: Worker[] = [];
  private readonly pending = new Map<number, PendingJob>();
  private nextId = 0;

  constructor(options: UnmaskWorkersOptions = {}) {
    const threads = options.threads ?? Math.min(2, availableParallelism());
    if (!Number.isSafeInteger(threads) || threads < 0) throw new RangeError(`unmask threads must be an integer ≥ 0, got ${threads}`);
    this.threads = threads;
    this.minMaskWords = options.minMaskWords ?? MIN_POOL_MASK_WORDS;
  }

  /** Threads currently running (0 before the first big round and after `close`). */
  get threadCount(): number {
    return this.workers.length;
  }

  /** One job per thread when the work is worth it, else 0: the calling thread does it. */
  parts(masks: number, words: number): number {
    return this.threads >= 2 && masks * words >= this.minMaskWords ? this.threads : 0;
  }

  /**
   * Runs job i on thread i mod threads and returns the partial sums in job order. A job that fails
   * or a thread that dies rejects with SecAggAbort (the round aborts, the coordinator goes on); a
   * dead thread is replaced on the next run.
   */
  async run(jobs: readonly UnmaskJob[]): Promise<readonly Uint32Array[]> {
    while (this.workers.length < Math.max(1, this.threads)) this.workers.push(this.start());
    const workers = this.workers;
    return Promise.all(jobs.map((job, i) => this.post(workers[i % workers.length]!, job)));
  }

  /** Terminates every thread and waits until they are gone; jobs still running reject. */
  async close(): Promise<void> {
    const workers = this.workers;
    this.workers = [];
    for (const worker of workers) this.failJobsOf(worker, 'the unmask threads were closed (the coordinator is stopping)');
    await Promise.all(workers.map((worker) => worker.terminate()));
  }

  private start(): Worker {
    const worker = startModuleWorker(WORKER_ENTRY);
    worker.on('message', (message: FromUnmaskWorker) => {
      const job = this.pending.get(message.id);
      if (job === undefined) return;
      this.pending.delete(message.id);
      if ('partial' in message) job.resolve(message.partial);
      else job.reject(new SecAggAbort(`an unmask job failed in a worker thread: ${message.failure}`));
    });
    worker.on('error', (error) => this.lose(worker, `an unmask worker thread crashed: ${error.message}`));
    worker.on('messageerror', (error) => this.lose(worker, `an unmask worker thread sent a message that could not be read: ${error.message}`));
    worker.on('exit', (code) => this.lose(worker, `an unmask worker thread exited with code ${code}`));
    return worker;
  }

  private post(worker: Worker, job: UnmaskJob): Promise<Uint32Array> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { worker, resolve, reject });
      worker.postMessage({ id, job } satisfies ToUnmaskWorker);
    });
  }

  /** A thread died (not by `close`): its jobs fail and it is dropped, so the next run starts a fresh one. */
  private lose(worker: Worker, reason: string): void {
    if (!this.workers.includes(worker)) return; // closed on purpose, or already lost
    this.workers = this.workers.filter((w) => w !== worker);
    this.failJobsOf(worker, reason);
    void worker.terminate();
  }

  private failJobsOf(worker: Worker, reason: string): void {
    for (const [id, job] of this.pending) {
      if (job.worker !== worker) continue;
      this.pending.delete(id);
      job.reject(new SecAggAbort(reason));
    }
  }
}
