/**
 * `on-cluster-event`: EKS control-plane API calls recorded by CloudTrail, delivered by an
 * EventBridge rule (see serverless.yml), parsed with the Powertools EventBridge schema,
 * recorded once and handed to the `rediscover-clusters` queue like the HTTP endpoints' events
 * (one path; the worker makes the cloud calls). Events Fleetward does not act on are logged
 * and counted, not thrown (retrying them cannot help); a state or queue failure throws, so
 * Lambda retries the asynchronous invocation and the event record makes the retry send once.
 */
import { parseEksEvent } from '../../shared/events/aws.ts';
import { EVENTS_METRIC_JOB, type EventWiring, receiveEvents } from '../../shared/events/intake.ts';
import { type ClusterEvent, MalformedEventError, UnsupportedEventError } from '../../shared/events/model.ts';
import { openEventIntake } from '../../shared/runtime/event-intake.ts';
import { deployedConfig, lambdaHandler, logger } from '../../shared/runtime/lambda.ts';
import { recordJobMetrics } from '../../shared/runtime/metrics.ts';

/** What one invocation did. */
export type OnClusterEventResult =
  | { status: 'accepted'; replayed: boolean }
  | { status: 'ignored'; reason: string };

/** Builds the handler over `wiring` (tests inject config and intake; the default is the deployment's). */
export function createOnClusterEventHandler(
  wiring: EventWiring = { config: deployedConfig, intake: openEventIntake },
) {
  return lambdaHandler<unknown, OnClusterEventResult>().handler(
    async (input: unknown, _context, { signal }): Promise<OnClusterEventResult> => {
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
      const result = await receiveEvents([event], { config, logger, open: wiring.intake, signal });
      return result.accepted + result.replayed > 0
        ? { status: 'accepted', replayed: result.replayed > 0 }
        : { status: 'ignored', reason: 'cluster scope not configured' };
    },
  );
}

export const handler = createOnClusterEventHandler();
