/**
 * The one place that knows how a job's work is spread out. A per-cluster job has two parts:
 * `plan(deps, scope) -> items` and `run(deps, item)`. The dispatcher either runs the items
 * here with a limiter (the CLI, small fleets) or sends them to the job's work queue, where a
 * worker function runs each one (a deployment, `FLEETWARD_DISPATCH=queue`). Jobs never know
 * which. An item carries ids only (job, cluster id, run id, window): never cluster data or
 * credentials; the worker reads the cluster from the inventory by its id.
 */
import { z } from 'zod';
import type { WorkQueue } from '../ports.ts';
import { createLimiter } from './concurrency.ts';
import { FleetwardError } from './errors.ts';
import { type JobMetric, recordJobMetrics } from './metrics.ts';

/** The jobs whose work goes through the dispatcher, each with its own queue and worker. */
export const WORK_JOBS = [
  'backup-clusters',
  'reconcile-backups',
  'restore-drill',
  'collect-audit-logs',
  'reconcile-tags',
  /** One received cloud event: rediscover its cluster (see `shared/jobs/cluster-event.ts`). */
  'rediscover-clusters',
] as const;
export type WorkJob = (typeof WORK_JOBS)[number];

/** One unit of work: what a queue message carries. Strict: nothing else may ride along. */
export const WorkItem = z.strictObject({
  job: z.enum(WORK_JOBS),
  clusterId: z.string().min(1).max(1024),
  runId: z.string().min(1).max(64),
  /** The schedule window the planner computed (ISO time), so a late delivery acts on the planned window. */
  window: z.iso.datetime().optional(),
  /** Validate on the server and write nothing (backups, tags). */
  dryRun: z.boolean().optional(),
  /** Restore drills: start one when due, now, or never (only advance). */
  start: z.enum(['due', 'force', 'never']).optional(),
});
export type WorkItem = z.infer<typeof WorkItem>;

/** A job in the shape the dispatcher runs: plan the items, run one item. */
export interface ClusterWork<D, S, R> {
  job: WorkJob;
  /** The items of one run, ids only; cheap (reads the inventory, calls no cluster). */
  plan(deps: D, scope: S): Promise<WorkItem[]>;
  /** Runs one item; idempotent, so a redelivered item finds its own Backup, chunk, drill or tags. */
  run(deps: D, item: WorkItem, signal?: AbortSignal): Promise<R>;
  /**
   * Why a result is a failure worth another delivery (a worker then reports the item failed,
   * and after 3 receives the queue moves it to its dead-letter queue); `undefined` when done.
   * Findings (Velero missing, a refused location) are results, not failures: retrying cannot help.
   */
  failure?(result: R): string | undefined;
  /** What one result adds to the job's metrics (summed per worker batch; see `metrics.ts`). */
  metrics?(result: R): Partial<Record<JobMetric, number>>;
}

/** What a dispatch did: the results of every item (in-process), or how many were enqueued. */
export type Dispatched<R> = { mode: 'in-process'; results: R[] } | { mode: 'queue'; enqueued: number };

export interface Dispatcher {
  readonly mode: 'in-process' | 'queue';
  dispatch<D, S, R>(
    work: ClusterWork<D, S, R>,
    deps: D,
    items: readonly WorkItem[],
    signal?: AbortSignal,
  ): Promise<Dispatched<R>>;
}

/** Runs every item here, at most `concurrency` at once; one item's failure never stops the others. */
export function inProcess(concurrency: number): Dispatcher {
  return {
    mode: 'in-process',
    async dispatch(work, deps, items, signal) {
      const limit = createLimiter(concurrency);
      const results = await Promise.all(items.map((item) => limit(() => work.run(deps, item, signal))));
      return { mode: 'in-process', results };
    },
  };
}

/** Sends every item to the job's queue; the job's worker runs them. */
export function queued(queue: WorkQueue): Dispatcher {
  return {
    mode: 'queue',
    async dispatch(work, _deps, items, signal) {
      const wrong = items.find((i) => i.job !== work.job);
      if (wrong) throw new FleetwardError(`item of job ${wrong.job} dispatched with job ${work.job}`);
      await queue.send(work.job, items, signal ? { signal } : {});
      recordJobMetrics(work.job, { ItemsPlanned: items.length });
      return { mode: 'queue', enqueued: items.length };
    },
  };
}

/** Environment variable naming a job's queue URL in a deployment, e.g. `FLEETWARD_QUEUE_BACKUP_CLUSTERS`. */
export function queueUrlVariable(job: WorkJob): string {
  return `FLEETWARD_QUEUE_${job.toUpperCase().replace(/-/g, '_')}`;
}

/** Parses a queue message body into an item, naming the bad field; never trusts the queue. */
export function parseWorkItem(body: string): WorkItem {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    throw new BadWorkItemError('work item is not JSON');
  }
  const parsed = WorkItem.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BadWorkItemError(
      `work item ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return parsed.data;
}

/** A queue message that is not a work item: retrying cannot help, it belongs in the dead-letter queue. */
export class BadWorkItemError extends FleetwardError {
  constructor(message: string) {
    super(message);
    this.name = 'BadWorkItemError';
  }
}
