import { SqsSchema } from '@aws-lambda-powertools/parser/schemas';
import type { z } from 'zod';

/**
 * Input of `restore-drill-worker`: an SQS event of the `restore-drill` queue (each record's body is a work item,
 * parsed and checked per record by the worker, so one bad record fails alone).
 */
export const RestoreDrillWorkerRequest = SqsSchema;

export type RestoreDrillWorkerRequest = z.infer<typeof RestoreDrillWorkerRequest>;
