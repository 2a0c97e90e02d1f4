/**
 * What the fan-out benchmark and the fan-out reliability tests share: a synthetic fleet in a
 * state store, the deps one worker (one Lambda instance) opens, and the loop Lambda's SQS
 * event source runs around a worker function (receive up to 10, invoke `runBatch`, delete
 * what succeeded, let failures come back).
 *
 * Product code is used everywhere it matters to the queue path: the planner (`backupWork.plan`
 * + `queued(createWorkQueue)`), the worker (`runBatch(backupWork)`), the Kubernetes client
 * (`createKubeApi` on `@kubernetes/client-node`). Bench wiring replaces only what a cloud would
 * answer: the kube endpoint and token (a `KubeAccess` pointing at the memory responder instead
 * of minting EKS tokens) and the bucket lookup (every BSL bucket is in eu-central-1).
 */
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { parseConfig } from '../../shared/config/load.ts';
import type { FleetConfig } from '../../shared/config/schema.ts';
import { backupWork } from '../../shared/jobs/backup.ts';
import type { ClusterJobDeps } from '../../shared/jobs/fleet.ts';
import { createKubeApi } from '../../shared/kube/api.ts';
import type { Cluster } from '../../shared/model.ts';
import type { Clock, KubeAccess } from '../../shared/ports.ts';
import { Residency } from '../../shared/residency/index.ts';
import { createLimiter } from '../../shared/runtime/concurrency.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { runBatch } from '../../shared/runtime/worker.ts';
import { INVENTORY } from '../../shared/state/records.ts';
import { SqliteStateStore } from '../../shared/state/sqlite.ts';
import { KUBE_MEMORY_TOKEN } from '../sandbox/kube-memory.ts';

export const FANOUT_QUEUE = 'fleetward-bench-backup-clusters';
export const FANOUT_DLQ = 'fleetward-bench-backup-clusters-dlq';

/** A config with one jurisdiction (EU): every cluster of the fleet is backed up. */
export function fanoutConfig(kubeConcurrency = 32): FleetConfig {
  return parseConfig({
    version: 1,
    jurisdictions: { eu: { preset: 'eu-gdpr' } },
    clouds: {
      aws: {
        accounts: [
          {
            id: '123456789012',
            roleArn: 'arn:aws:iam::123456789012:role/fleetward',
            regions: ['eu-central-1'],
          },
        ],
      },
    },
    kubeAccess: { concurrency: kubeConcurrency, timeoutMs: 30_000, maxAttempts: 3 },
  });
}

/** Cluster `i` of the synthetic fleet: an EKS cluster in Frankfurt; its name is its kube responder key. */
export function fanoutCluster(i: number): Cluster {
  const name = `c${String(i).padStart(6, '0')}`;
  return {
    id: `aws/123456789012/eu-central-1/${name}`,
    cloud: 'aws',
    scope: '123456789012',
    region: 'eu-central-1',
    name,
    kubernetesVersion: '1.33',
    endpoint: `https://${name}.example.invalid`,
    endpointAccess: 'private',
    secretsEncryptionKey: null,
    auditLogging: true,
    tags: {},
    status: 'running',
    providerStatus: 'ACTIVE',
    createdAt: '2026-01-01T00:00:00Z',
    country: 'DE',
    jurisdiction: 'eu',
  };
}

/** Writes `count` clusters into the inventory of the store at `path` (a file every worker opens). */
export async function seedFleet(path: string, count: number): Promise<void> {
  const store = new SqliteStateStore({ path });
  try {
    for (let start = 0; start < count; start += 1000) {
      const chunk = Array.from({ length: Math.min(1000, count - start) }, (_, i) => fanoutCluster(start + i));
      await store.putMany(
        INVENTORY,
        chunk.map((c) => ({ key: c.id, value: c })),
      );
    }
  } finally {
    await store.close();
  }
}

/** A `KubeAccess` whose clusters all live on the memory responder (token fixed, one shared limiter). */
export function memoryKubeAccess(kube: { url: string; ca: string }, config: FleetConfig): KubeAccess {
  const limiter = createLimiter(config.kubeAccess.concurrency);
  return {
    async connect(cluster, options = {}) {
      return createKubeApi({
        server: `${kube.url}/clusters/${encodeURIComponent(cluster.name)}`,
        ca: kube.ca,
        token: async () => KUBE_MEMORY_TOKEN,
        refresh: async () => KUBE_MEMORY_TOKEN,
        timeoutMs: config.kubeAccess.timeoutMs,
        maxAttempts: config.kubeAccess.maxAttempts,
        limiter,
        signal: options.signal,
        cluster: cluster.id,
        baseDelayMs: 50,
      });
    },
  };
}

/** The deps one worker instance opens: the shared state store, the memory kube responder. */
export function workerDeps(options: {
  config: FleetConfig;
  statePath: string;
  kube: { url: string; ca: string };
  clock?: Clock;
}): ClusterJobDeps {
  return {
    config: options.config,
    store: new SqliteStateStore({ path: options.statePath }),
    kube: memoryKubeAccess(options.kube, options.config),
    buckets: { locate: async () => ({ cloud: 'aws', region: 'eu-central-1' }) },
    residency: new Residency(options.config.jurisdictions),
    logger: silentLogger,
    clock: options.clock ?? { now: () => new Date() },
  };
}

export interface LoopCounts {
  batches: number;
  succeeded: number;
  failed: number;
}

/**
 * One receive -> invoke -> acknowledge round, as Lambda's event source does it: up to 10
 * messages, `runBatch`, `DeleteMessageBatch` of the successes. Failed items are made visible
 * again at once (the visibility timeout, shortened: SQS would wait it out). `die` is consulted
 * after the batch ran and before the acknowledgement: `true` is a worker killed at that point
 * (nothing is acknowledged). Returns the messages received.
 */
export async function workerRound(
  sqs: SQSClient,
  queueUrl: string,
  deps: ClusterJobDeps,
  counts: LoopCounts,
  options: { waitSeconds?: number; batchSize?: number; signal?: AbortSignal; die?: () => boolean } = {},
): Promise<Message[]> {
  const received = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: options.batchSize ?? 10,
      WaitTimeSeconds: options.waitSeconds ?? 0,
      MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
    }),
  );
  const messages = received.Messages ?? [];
  if (messages.length === 0) return [];
  const event: SQSEvent = {
    Records: messages.map((m) => ({
      messageId: m.MessageId!,
      receiptHandle: m.ReceiptHandle!,
      body: m.Body!,
      attributes: m.Attributes as never,
      messageAttributes: {},
      md5OfBody: m.MD5OfBody!,
      eventSource: 'aws:sqs',
      eventSourceARN: `arn:aws:sqs:us-east-1:123456789012:${FANOUT_QUEUE}`,
      awsRegion: 'us-east-1',
    })),
  };
  const response = await runBatch(backupWork, deps, event, {
    logger: silentLogger,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (options.signal?.aborted || options.die?.()) return messages;
  counts.batches++;
  const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
  counts.failed += failed.size;
  counts.succeeded += messages.length - failed.size;
  const done = messages.filter((m) => !failed.has(m.MessageId!));
  const retry = messages.filter((m) => failed.has(m.MessageId!));
  if (done.length > 0)
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
      }),
    );
  for (const m of retry)
    await sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: queueUrl,
        ReceiptHandle: m.ReceiptHandle!,
        VisibilityTimeout: 0,
      }),
    );
  return messages;
}
