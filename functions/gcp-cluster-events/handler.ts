/**
 * `gcp-cluster-events`: POST /events/gcp, the Pub/Sub push endpoint for GKE cluster
 * notifications and the `container.googleapis.com` audit-log sink. The push's OIDC token is
 * verified (`events.gcp`), the message normalised, recorded once and handed to the
 * `rediscover-clusters` queue; the worker makes the cloud calls, this function makes none.
 * 200 acknowledges; 400/401/405/413 refuse without touching state or the queue.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { fromApiGatewayV2, type HttpResponse, intakeGcp, jsonResponse } from '../../shared/events/http.ts';
import { EVENTS_METRIC_JOB, type EventWiring, receiveEvents } from '../../shared/events/intake.ts';
import { openEventIntake } from '../../shared/runtime/event-intake.ts';
import { deployedConfig, lambdaHandler, logger } from '../../shared/runtime/lambda.ts';
import { recordJobMetrics } from '../../shared/runtime/metrics.ts';

/** Builds the handler over `wiring` (tests inject config and intake; the default is the deployment's). */
export function createGcpClusterEventsHandler(
  wiring: EventWiring = { config: deployedConfig, intake: openEventIntake },
) {
  return lambdaHandler<APIGatewayProxyEventV2, HttpResponse>().handler(
    async (event: APIGatewayProxyEventV2, _context, { signal }) => {
      const config = await wiring.config();
      const gcp = config.events?.gcp;
      if (!gcp) {
        logger.error('Event endpoint not configured', { path: 'events.gcp' });
        return jsonResponse(401, { error: 'unauthorized' });
      }
      const intake = await intakeGcp(fromApiGatewayV2(event), gcp);
      if (intake.ignored > 0) recordJobMetrics(EVENTS_METRIC_JOB, { EventsIgnored: intake.ignored });
      if (intake.events.length === 0) {
        logger.warn('Event refused', {
          status: intake.response.statusCode,
          reason: intake.reason,
          ignored: intake.ignored,
        });
        return intake.response;
      }
      const result = await receiveEvents(intake.events, { config, logger, open: wiring.intake, signal });
      // Pub/Sub acknowledges 202 too: a message about a cluster we do not watch is not redelivered.
      if (result.accepted + result.replayed === 0) return jsonResponse(202, { ignored: result.ignored });
      return jsonResponse(200, { accepted: result.accepted + result.replayed, replayed: result.replayed });
    },
  );
}

export const handler = createGcpClusterEventsHandler();
