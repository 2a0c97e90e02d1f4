import { SqsSchema } from '@aws-lambda-powertools/parser/schemas';
import type { z } from 'zod';

/**
 * Input of `reconcile-tags-worker`: an SQS event of the `reconcile-tags` queue (each record's body is a work item,
 * parsed and checked per record by the worker, so one bad record fails alone).
 */
export const ReconcileTagsWorkerRequest = SqsSchema;

export type ReconcileTagsWorkerRequest = z.infer<typeof ReconcileTagsWorkerRequest>;
