/**
 * Progress of a job, for whoever runs it in-process (the CLI draws it on stderr). Jobs never
 * write to a terminal: they call the optional `onProgress` of their run options once per
 * finished unit of work (a cluster, a cloud). A queue dispatch runs items elsewhere and reports
 * nothing here.
 */
import type { ClusterWork } from '../runtime/dispatch.ts';

/**
 * Called after each unit of work: `done` of `total` finished; `result` is the unit's result
 * when it has one (a thrown unit reports none). Must not throw.
 */
export type OnProgress<R = unknown> = (done: number, total: number, result?: R) => void;

/** `fn` wrapped to report each call's end to `onProgress`, counting up to `total`. */
export function counting<A extends unknown[], R>(
  total: number,
  onProgress: OnProgress<R> | undefined,
  fn: (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  if (!onProgress) return fn;
  let done = 0;
  return async (...args) => {
    try {
      const result = await fn(...args);
      onProgress(++done, total, result);
      return result;
    } catch (error) {
      onProgress(++done, total);
      throw error;
    }
  };
}

/** `work` whose every finished item reports to `onProgress` (of `total` items). */
export function reporting<D, S, R>(
  work: ClusterWork<D, S, R>,
  total: number,
  onProgress: OnProgress<R> | undefined,
): ClusterWork<D, S, R> {
  return onProgress ? { ...work, run: counting(total, onProgress, work.run.bind(work)) } : work;
}
