/**
 * The worker side of a job's queue: an SQS event source hands a worker function a batch of
 * work items; each runs through the job's `run(item)`, and Powertools' batch processor reports
 * the ones that failed (`ReportBatchItemFailures`) so SQS redelivers only those. After 3
 * receives the queue moves an item to its dead-letter queue, so a poison item never blocks its
 * batch and never loops. An item is failed when it is not a valid work item of this job, when
 * `run` throws, or when the job calls its result a failure worth another delivery.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { Cluster } from '../model.ts';
import { notifyAfterJob } from '../notify/notifier.ts';
import type { Log, StateStore } from '../ports.ts';
import { INVENTORY } from '../state/records.ts';
import { BadWorkItemError, type ClusterWork, parseWorkItem, type WorkItem } from './dispatch.ts';
import { errorInfo, FleetwardError } from './errors.ts';
import { deployedConfig, lambdaHandler, logger } from './lambda.ts';
import { type JobMetric, recordJobMetrics } from './metrics.ts';

/** `run` finished, and the job says the result is a failure another delivery may mend. */
export class WorkItemFailedError extends FleetwardError {
  readonly clusterId: string;
  constructor(item: WorkItem, reason: string) {
    super(`${item.job} failed for ${item.clusterId}: ${reason}`);
    this.name = 'WorkItemFailedError';
    this.clusterId = item.clusterId;
  }
}

/** What one batch did, for the worker's log line and metrics. */
export interface BatchSummary {
  received: number;
  /** Ran and done, or refused (see `refuse`): either way SQS may delete them. */
  succeeded: number;
  failed: number;
  /** Items this deployment must not act on (a cluster of another jurisdiction): never run, never retried. */
  refused: number;
}

/** Runs one SQS batch of `work`'s items; answers the partial batch response SQS reads. */
export async function runBatch<D, S, R>(
  work: ClusterWork<D, S, R>,
  deps: D,
  event: SQSEvent,
  options: {
    context?: Context;
    signal?: AbortSignal;
    logger: Log;
    /** Why this deployment must not run `item` (`undefined`: run it). */
    refuse?: (item: WorkItem) => Promise<string | undefined>;
  },
): Promise<SQSBatchResponse & { summary: BatchSummary; metrics: Partial<Record<JobMetric, number>> }> {
  const processor = new BatchProcessor(EventType.SQS);
  const totals: Partial<Record<JobMetric, number>> = {};
  let refused = 0;
  const handle = async (record: SQSRecord): Promise<R | undefined> => {
    const item = parseWorkItem(record.body);
    if (item.job !== work.job) {
      throw new BadWorkItemError(`work item of job ${item.job} on the ${work.job} queue`);
    }
    const refusal = await options.refuse?.(item);
    if (refusal !== undefined) {
      // Retrying cannot make it this deployment's cluster: drop it, loudly.
      refused++;
      options.logger.warn('Work item refused', { job: work.job, clusterId: item.clusterId, reason: refusal });
      return undefined;
    }
    const result = await work.run(deps, item, options.signal);
    const why = work.failure?.(result);
    if (why !== undefined) throw new WorkItemFailedError(item, why);
    for (const [name, value] of Object.entries(work.metrics?.(result) ?? {}) as [JobMetric, number][]) {
      totals[name] = (totals[name] ?? 0) + value;
    }
    return result;
  };
  const response = await processPartialResponse(event, handle, processor, {
    ...(options.context ? { context: options.context } : {}),
    // One item's failure never fails the others; a batch where all fail is reported item by item too.
    throwOnFullBatchFailure: false,
  });
  const failed = response.batchItemFailures.length;
  const summary = {
    received: event.Records.length,
    succeeded: event.Records.length - failed,
    failed,
    refused,
  };
  if (failed > 0) {
    options.logger.warn('Work items failed', {
      job: work.job,
      ...summary,
      errors: processor.errors.slice(0, 5).map((e) => errorInfo(e)),
    });
  } else {
    options.logger.info('Work items done', { job: work.job, ...summary });
  }
  return { ...response, summary, metrics: totals };
}

/**
 * A worker function: opens the job's deps once per invocation, runs the batch, notifies the
 * job's new findings when any item succeeded, and answers SQS's partial batch response.
 */
export function workerHandler<D extends { store: StateStore }, S, R>(
  work: ClusterWork<D, S, R>,
  options: { open: () => Promise<D>; close?: (deps: D) => Promise<void>; notifyJob: string },
) {
  return lambdaHandler<SQSEvent, SQSBatchResponse>().handler(async (event, context, { signal }) => {
    const deps = await options.open();
    // A regional deployment serves one jurisdiction and never acts on a cluster of another.
    const jurisdiction = process.env.FLEETWARD_JURISDICTION || undefined;
    const refuse = jurisdiction
      ? async (item: WorkItem) => {
          const cluster = await deps.store.get<Cluster>(INVENTORY, item.clusterId);
          return cluster && cluster.jurisdiction !== jurisdiction
            ? `the cluster is in jurisdiction ${cluster.jurisdiction}; this deployment serves ${jurisdiction}`
            : undefined;
        }
      : undefined;
    try {
      const { batchItemFailures, summary, metrics } = await runBatch(work, deps, event, {
        context,
        signal,
        logger,
        ...(refuse ? { refuse } : {}),
      });
      recordJobMetrics(work.job, {
        ItemsSucceeded: summary.succeeded,
        ItemsFailed: summary.failed,
        ...metrics,
      });
      if (summary.succeeded > 0) {
        await notifyAfterJob(
          { config: await deployedConfig(), store: deps.store, logger },
          options.notifyJob,
          {
            jurisdiction: process.env.FLEETWARD_JURISDICTION || undefined,
          },
        );
      }
      return { batchItemFailures };
    } finally {
      await (options.close ? options.close(deps) : deps.store.close());
    }
  });
}
