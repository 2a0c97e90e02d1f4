/**
 * `gcp-cluster-events`: POST /events/gcp, the Pub/Sub push endpoint for GKE cluster
 * notifications and the `container.googleapis.com` audit-log sink. The push's OIDC token is
 * verified (`events.gcp`), the message normalised, and the cluster handled on the one event
 * path. 200 acknowledges; 400/401/405/413 refuse without any cloud call or state access.
 */
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { dispatchEvents, EVENTS_METRIC_JOB, type EventWiring } from '../../shared/events/dispatch.ts';
import { fromApiGatewayV2, type HttpResponse, intakeGcp, jsonResponse } from '../../shared/events/http.ts';
import { openEventDeps } from '../../shared/runtime/deps.ts';
import { deployedConfig, lambdaHandler, logger } from '../../shared/runtime/lambda.ts';
import { recordJobMetrics } from '../../shared/runtime/metrics.ts';

/** Builds the handler over `wiring` (tests inject config and deps; the default is the deployment's). */
export function createGcpClusterEventsHandler(
  wiring: EventWiring = { config: deployedConfig, open: openEventDeps },
) {
  return lambdaHandler<APIGatewayProxyEventV2, HttpResponse>().handler(
    async (event: APIGatewayProxyEventV2, context: Context, { signal }) => {
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
      const result = await dispatchEvents(intake.events, {
        config,
        logger,
        open: wiring.open,
        signal,
        lambdaContext: context,
      });
      // Pub/Sub acknowledges 202 too: a message about a cluster we do not watch is not redelivered.
      if (result.handled.length === 0) return jsonResponse(202, { ignored: result.ignored });
      return jsonResponse(200, {
        accepted: result.handled.length,
        replayed: result.handled.filter((h) => h.replayed).length,
      });
    },
  );
}

export const handler = createGcpClusterEventsHandler();
