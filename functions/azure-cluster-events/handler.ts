/**
 * `azure-cluster-events`: POST and OPTIONS /events/azure, the Event Grid webhook (Event Grid
 * schema and CloudEvents 1.0). Authentication per `events.azure.auth` (a shared secret read
 * from env, SSM or Secrets Manager, or an Entra ID token), the subscription validation
 * handshake, then each AKS event on the one event path. 400/401/405/413 refuse without any
 * cloud call or state access.
 */
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import type { FleetConfig } from '../../shared/config/schema.ts';
import type { AzureEventAuth } from '../../shared/events/azure.ts';
import { dispatchEvents, EVENTS_METRIC_JOB, type EventWiring } from '../../shared/events/dispatch.ts';
import { fromApiGatewayV2, type HttpResponse, intakeAzure, jsonResponse } from '../../shared/events/http.ts';
import { openEventDeps } from '../../shared/runtime/deps.ts';
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

/** Builds the handler over `wiring` (tests inject config and deps; the default is the deployment's). */
export function createAzureClusterEventsHandler(
  wiring: EventWiring = { config: deployedConfig, open: openEventDeps },
) {
  return lambdaHandler<APIGatewayProxyEventV2, HttpResponse>().handler(
    async (event: APIGatewayProxyEventV2, context: Context, { signal }) => {
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
      const result = await dispatchEvents(intake.events, {
        config,
        logger,
        open: wiring.open,
        signal,
        lambdaContext: context,
      });
      // A validation event in the batch is still answered (Event Grid reads `validationResponse`).
      if (intake.validationResponse) {
        return jsonResponse(200, {
          ...intake.validationResponse,
          accepted: result.handled.length,
          ignored: intake.ignored + result.ignored,
        });
      }
      return jsonResponse(result.handled.length === 0 ? 202 : 200, {
        accepted: result.handled.length,
        ignored: intake.ignored + result.ignored,
      });
    },
  );
}

export const handler = createAzureClusterEventsHandler();
