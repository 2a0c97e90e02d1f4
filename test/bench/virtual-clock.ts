/**
 * A virtual clock for the quota bench and tests: `sleep` never waits for real time. Whenever
 * the process has nothing else to run (a `setImmediate` turn), the clock jumps to the earliest
 * pending sleep and wakes it, so an hour of rate-limited reading runs in as long as the work
 * itself takes.
 *
 * Work that waits on real I/O (zlib's threadpool) cannot be seen from here, so while work
 * wrapped in {@link VirtualClock.busy} runs, only its own sleeps move the clock: `background`
 * sleeps (a sampler, the end of a simulation) wait until no work is busy. Inside busy work, a
 * reader that waits on real I/O may see the clock move while other readers wait for tokens.
 */
import type { QuotaClock } from '../../shared/audit/quota.ts';
import type { Clock } from '../../shared/ports.ts';

interface Sleeper {
  at: number;
  seq: number;
  background: boolean;
  wake: () => void;
}

export class VirtualClock {
  #now: number;
  #seq = 0;
  #sleepers: Sleeper[] = [];
  #scheduled = false;
  #busy = 0;

  constructor(startMs: number) {
    this.#now = startMs;
  }

  /** Milliseconds since the epoch, virtual. */
  get ms(): number {
    return this.#now;
  }

  /** The clock as the buckets see it. */
  readonly quota: QuotaClock = {
    now: () => this.#now,
    sleep: (ms, signal) => this.sleep(ms, signal),
  };

  /** The clock as the jobs see it. */
  readonly clock: Clock = { now: () => new Date(this.#now) };

  /** Runs `work` as busy: background sleeps wait until it settles. */
  async busy<T>(work: () => Promise<T>): Promise<T> {
    this.#busy++;
    try {
      return await work();
    } finally {
      this.#busy--;
      this.#schedule();
    }
  }

  /**
   * Resolves when the virtual clock reaches now + `ms`; rejects with the signal's reason on
   * abort. A `background` sleep does not move the clock while work is busy.
   */
  sleep(ms: number, signal?: AbortSignal, options: { background?: boolean } = {}): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const sleeper: Sleeper = {
        at: this.#now + Math.max(0, ms),
        seq: this.#seq++,
        background: options.background === true,
        wake: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      // Kept sorted by (at, seq): sleeps mostly arrive in time order, so insert from the end.
      let i = this.#sleepers.length;
      while (i > 0) {
        const prev = this.#sleepers[i - 1] as Sleeper;
        if (prev.at < sleeper.at || (prev.at === sleeper.at && prev.seq < sleeper.seq)) break;
        i--;
      }
      this.#sleepers.splice(i, 0, sleeper);
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#advance());
  }

  /** Wakes every sleeper due at the earliest time it may move to. */
  #advance(): void {
    this.#scheduled = false;
    const first = this.#sleepers.find((s) => this.#busy === 0 || !s.background);
    // Busy work with no sleep of its own is on real I/O: the next sleep or its end reschedules.
    if (!first) return;
    this.#now = Math.max(this.#now, first.at);
    const due = this.#sleepers.filter((s) => s.at <= this.#now && (this.#busy === 0 || !s.background));
    this.#sleepers = this.#sleepers.filter((s) => !due.includes(s));
    for (const s of due) s.wake();
    if (this.#sleepers.length > 0) this.#schedule();
  }
}
