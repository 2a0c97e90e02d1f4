import { APIGatewayProxyEventV2Schema } from '@aws-lambda-powertools/parser/schemas/api-gatewayv2';
import type { z } from 'zod';

/** Input of `gcp-cluster-events`: an API Gateway HTTP API (payload 2.0) request; the intake checks the rest. */
export const GcpClusterEventsRequest = APIGatewayProxyEventV2Schema;

export type GcpClusterEventsRequest = z.infer<typeof GcpClusterEventsRequest>;
