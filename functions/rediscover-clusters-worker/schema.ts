import { SqsSchema } from '@aws-lambda-powertools/parser/schemas';
import type { z } from 'zod';

/**
 * Input of `rediscover-clusters-worker`: an SQS event of the `rediscover-clusters` queue (each record's body is a work item,
 * parsed and checked per record by the worker, so one bad record fails alone).
 */
export const RediscoverClustersWorkerRequest = SqsSchema;

export type RediscoverClustersWorkerRequest = z.infer<typeof RediscoverClustersWorkerRequest>;
