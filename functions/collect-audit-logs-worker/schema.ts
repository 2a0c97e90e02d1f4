import { SqsSchema } from '@aws-lambda-powertools/parser/schemas';
import type { z } from 'zod';

/**
 * Input of `collect-audit-logs-worker`: an SQS event of the `collect-audit-logs` queue (each record's body is a work item,
 * parsed and checked per record by the worker, so one bad record fails alone).
 */
export const CollectAuditLogsWorkerRequest = SqsSchema;

export type CollectAuditLogsWorkerRequest = z.infer<typeof CollectAuditLogsWorkerRequest>;
