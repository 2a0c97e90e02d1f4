/**
 * `azure-cluster-events`: POST and OPTIONS /events/azure, the Event Grid webhook (Event Grid
 * schema and CloudEvents 1.0). Authentication per `events.azure.auth` (a shared secret read
 * from env, SSM or Secrets Manager, or an Entra ID token), the subscription validation
 * handshake, then each AKS event recorded once and handed to the `rediscover-clusters` queue
 * (the worker makes the cloud calls, this function makes none). 400/401/405/413 refuse without
 * touching state or the queue.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { FleetConfig } from '../../shared/config/schema.ts';
import type { AzureEventAuth } from '../../shared/events/azure.ts';
import { fromApiGatewayV2, type HttpResponse, intakeAzure, jsonResponse } from '../../shared/events/http.ts';
import { EVENTS_METRIC_JOB, type EventWiring, receiveEvents } from '../../shared/events/intake.ts';
import { openEventIntake } from '../../shared/runtime/event-intake.ts';
import { deployedConfig, lambdaHandler, logger } from '../../shared/runtime/lambda.ts';
import { recordJobMetrics } from '../../shared/runtime/metrics.ts';
import { readSecret } from '../../shared/runtime/secrets.ts';

async function authOf(
  azure: NonNullable<NonNullable<FleetConfig['events']>['azure']>,
): Promise<AzureEventAuth> {
  const auth = azure.auth;
  if (auth.type === 'entra') return auth;
  return { type: 'secret', secret: await readSecret(auth.secret) };
}

/** Builds the handler over `wiring` (tests inject config and intake; the default is the deployment's). */
export function createAzureClusterEventsHandler(
  wiring: EventWiring = { config: deployedConfig, intake: openEventIntake },
) {
  return lambdaHandler<APIGatewayProxyEventV2, HttpResponse>().handler(
    async (event: APIGatewayProxyEventV2, _context, { signal }) => {
      const config = await wiring.config();
      const azure = config.events?.azure;
      if (!azure) {
        logger.error('Event endpoint not configured', { path: 'events.azure' });
        return jsonResponse(401, { error: 'unauthorized' });
      }
      const intake = await intakeAzure(fromApiGatewayV2(event), { auth: await authOf(azure) });
      if (intake.ignored > 0) recordJobMetrics(EVENTS_METRIC_JOB, { EventsIgnored: intake.ignored });
      if (intake.events.length === 0) {
        if (intake.response.statusCode >= 300 || intake.ignored > 0) {
          logger.warn('Event refused', {
            status: intake.response.statusCode,
            reason: intake.reason,
            ignored: intake.ignored,
          });
        }
        return intake.response;
      }
      if (intake.ignored > 0)
        logger.warn('Event ignored', { reason: intake.reason, ignored: intake.ignored });
      const result = await receiveEvents(intake.events, { config, logger, open: wiring.intake, signal });
      const accepted = result.accepted + result.replayed;
      // A validation event in the batch is still answered (Event Grid reads `validationResponse`).
      if (intake.validationResponse) {
        return jsonResponse(200, {
          ...intake.validationResponse,
          accepted,
          ignored: intake.ignored + result.ignored,
        });
      }
      return jsonResponse(accepted === 0 ? 202 : 200, { accepted, ignored: intake.ignored + result.ignored });
    },
  );
}

export const handler = createAzureClusterEventsHandler();
