import { SqsSchema } from '@aws-lambda-powertools/parser/schemas';
import type { z } from 'zod';

/**
 * Input of `backup-clusters-worker`: an SQS event of the `backup-clusters` queue (each record's body is a work item,
 * parsed and checked per record by the worker, so one bad record fails alone).
 */
export const BackupClustersWorkerRequest = SqsSchema;

export type BackupClustersWorkerRequest = z.infer<typeof BackupClustersWorkerRequest>;
