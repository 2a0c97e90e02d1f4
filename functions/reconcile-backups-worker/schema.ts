import { SqsSchema } from '@aws-lambda-powertools/parser/schemas';
import type { z } from 'zod';

/**
 * Input of `reconcile-backups-worker`: an SQS event of the `reconcile-backups` queue (each record's body is a work item,
 * parsed and checked per record by the worker, so one bad record fails alone).
 */
export const ReconcileBackupsWorkerRequest = SqsSchema;

export type ReconcileBackupsWorkerRequest = z.infer<typeof ReconcileBackupsWorkerRequest>;
