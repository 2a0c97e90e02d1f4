/**
 * The work queues of a deployment: one standard SQS queue per job, its URL in the function's
 * environment (`FLEETWARD_QUEUE_<JOB>`, set by serverless.yml). Items go out with
 * `SendMessageBatch`, 10 to a request (SQS's limit); entries SQS refuses in a batch are sent
 * again (up to 3 tries) and then named in the error, so a planner never reports an item
 * enqueued that is not. The function's own role credentials are used (no AssumeRole): the
 * queues live in the deployment's account.
 */
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { WorkQueue } from '../../ports.ts';
import { queueUrlVariable, type WorkItem, type WorkJob } from '../../runtime/dispatch.ts';
import { CloudApiError, FleetwardError } from '../../runtime/errors.ts';

/** SQS accepts at most 10 entries in one SendMessageBatch. */
const BATCH = 10;
const TRIES = 3;

export function createWorkQueue(
  options: { env?: NodeJS.ProcessEnv; client?: SQSClient } = {},
): WorkQueue & { close(): void } {
  const env = options.env ?? process.env;
  const client = options.client ?? new SQSClient({ maxAttempts: 5, retryMode: 'standard' });
  return {
    async send(job: WorkJob, items: readonly WorkItem[], sendOptions = {}) {
      const variable = queueUrlVariable(job);
      const url = env[variable];
      if (!url) throw new FleetwardError(`${variable} is not set: the ${job} queue is not deployed`);
      for (let start = 0; start < items.length; start += BATCH) {
        let pending = items.slice(start, start + BATCH).map((item, i) => ({
          Id: String(start + i),
          MessageBody: JSON.stringify(item),
        }));
        for (let attempt = 1; pending.length > 0; attempt++) {
          let failedIds: string[];
          try {
            const out = await client.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: pending }), {
              ...(sendOptions.signal ? { abortSignal: sendOptions.signal } : {}),
            });
            failedIds = (out.Failed ?? []).map((f) => f.Id ?? '');
          } catch (error) {
            throw new CloudApiError(
              `sqs SendMessageBatch failed for the ${job} queue`,
              { cloud: 'aws', operation: 'SendMessageBatch', retryable: true },
              { cause: error },
            );
          }
          pending = pending.filter((e) => failedIds.includes(e.Id));
          if (pending.length > 0 && attempt >= TRIES) {
            const clusters = pending.map((e) => items[Number(e.Id)]?.clusterId);
            throw new CloudApiError(
              `sqs refused ${pending.length} items of the ${job} queue: ${clusters.join(', ')}`,
              { cloud: 'aws', operation: 'SendMessageBatch', retryable: true },
            );
          }
        }
      }
    },
    close() {
      client.destroy();
    },
  };
}

/** Provider permissions of this adapter's calls (shared/clouds/permissions.ts). */
export const PERMISSIONS: readonly import('../permissions.ts').PermissionGrant[] = [
  {
    provider: 'aws',
    holder: 'function',
    capability: 'queue-send',
    permission: 'sqs:SendMessage',
    calls: ['sqs:SendMessageBatch', 'sqs:SendMessage'],
    why: "hand work items (one per cluster or scope) to the job's worker queue",
  },
];
