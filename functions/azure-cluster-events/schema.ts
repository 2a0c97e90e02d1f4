import { APIGatewayProxyEventV2Schema } from '@aws-lambda-powertools/parser/schemas/api-gatewayv2';
import type { z } from 'zod';

/** Input of `azure-cluster-events`: an API Gateway HTTP API (payload 2.0) request; the intake checks the rest. */
export const AzureClusterEventsRequest = APIGatewayProxyEventV2Schema;

export type AzureClusterEventsRequest = z.infer<typeof AzureClusterEventsRequest>;
