/**
 * `on-cluster-event`: EKS control-plane API calls recorded by CloudTrail, delivered by an
 * EventBridge rule (see serverless.yml), parsed with the Powertools EventBridge schema and
 * handled on the one event path. Events Fleetward does not act on are logged and counted,
 * not thrown (retrying them cannot help); a cloud failure throws, so Lambda retries the
 * asynchronous invocation and the idempotency record makes the retry act only once.
 */
import type { Context } from 'aws-lambda';
import { parseEksEvent } from '../../shared/events/aws.ts';
import { dispatchEvents, EVENTS_METRIC_JOB, type EventWiring } from '../../shared/events/dispatch.ts';
import { type ClusterEvent, MalformedEventError, UnsupportedEventError } from '../../shared/events/model.ts';
import type { ClusterEventResult } from '../../shared/jobs/cluster-event.ts';
import { openEventDeps } from '../../shared/runtime/deps.ts';
import { deployedConfig, lambdaHandler, logger } from '../../shared/runtime/lambda.ts';
import { recordJobMetrics } from '../../shared/runtime/metrics.ts';

/** What one invocation did. */
export type OnClusterEventResult =
  | { status: 'handled'; result: ClusterEventResult }
  | { status: 'ignored'; reason: string };

/** Builds the handler over `wiring` (tests inject config and deps; the default is the deployment's). */
export function createOnClusterEventHandler(
  wiring: EventWiring = { config: deployedConfig, open: openEventDeps },
) {
  return lambdaHandler<unknown, OnClusterEventResult>().handler(
    async (input: unknown, context: Context, { signal }): Promise<OnClusterEventResult> => {
      let event: ClusterEvent;
      try {
        event = parseEksEvent(input);
      } catch (error) {
        if (!(error instanceof UnsupportedEventError || error instanceof MalformedEventError)) throw error;
        const reason = error instanceof MalformedEventError ? error.reason : error.message;
        logger.warn('Event ignored', { reason, kind: error.name, ignored: 1 });
        recordJobMetrics(EVENTS_METRIC_JOB, { EventsIgnored: 1 });
        return { status: 'ignored', reason };
      }
      const config = await wiring.config();
      const result = await dispatchEvents([event], {
        config,
        logger,
        open: wiring.open,
        signal,
        lambdaContext: context,
      });
      const handled = result.handled[0];
      return handled
        ? { status: 'handled', result: handled }
        : { status: 'ignored', reason: 'cluster scope not configured' };
    },
  );
}

export const handler = createOnClusterEventHandler();
