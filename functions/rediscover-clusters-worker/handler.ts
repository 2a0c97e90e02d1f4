/**
 * `rediscover-clusters-worker`: consumes the `rediscover-clusters` queue the event functions
 * fill. Each item names one received event (ids only); the worker reads it from the state
 * store, resolves a GKE project number, rediscovers the cluster, updates the inventory,
 * re-evaluates its controls and tells Slack (`shared/jobs/cluster-event.ts`). Only the
 * clouds the batch names are loaded. Failed items are reported to SQS, retried, then
 * dead-lettered; a redelivered item acts once (idempotency by event).
 */
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { EventCloud } from '../../shared/events/model.ts';
import { rediscoverWork, runRediscoverItem } from '../../shared/jobs/cluster-event.ts';
import { openEventDeps } from '../../shared/runtime/deps/events.ts';
import { parseWorkItem, type WorkItem } from '../../shared/runtime/dispatch.ts';
import { deployedConfig, lambdaHandler, logger } from '../../shared/runtime/lambda.ts';
import { recordJobMetrics } from '../../shared/runtime/metrics.ts';
import { runBatch } from '../../shared/runtime/worker.ts';

const CLOUDS: readonly EventCloud[] = ['aws', 'gcp', 'azure'];

/** The clouds a batch names (from the items' cluster ids); a record that does not parse names none. */
export function cloudsOf(event: SQSEvent): EventCloud[] {
  const clouds = new Set<EventCloud>();
  for (const record of event.Records) {
    try {
      const cloud = parseWorkItem(record.body).clusterId.split('/')[0] as EventCloud;
      if (CLOUDS.includes(cloud)) clouds.add(cloud);
    } catch {
      // runBatch reports it as a failed item.
    }
  }
  return [...clouds];
}

export const handler = lambdaHandler<SQSEvent, SQSBatchResponse>().handler(
  async (event, context, { signal }) => {
    const config = await deployedConfig();
    const deps = await openEventDeps(config, logger, cloudsOf(event));
    try {
      // The Lambda context rides along, so an in-progress event expires with this invocation.
      const work = {
        ...rediscoverWork,
        run: (d: typeof deps, item: WorkItem, s?: AbortSignal) =>
          runRediscoverItem(d, item, { signal: s, lambdaContext: context }),
      };
      const { batchItemFailures, summary } = await runBatch(work, deps, event, {
        context,
        signal,
        logger,
      });
      recordJobMetrics(rediscoverWork.job, {
        ItemsSucceeded: summary.succeeded,
        ItemsFailed: summary.failed,
      });
      return { batchItemFailures };
    } finally {
      await deps.close();
    }
  },
);
