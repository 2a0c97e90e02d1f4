/**
 * The queue path, end to end against the sandbox: a planner enqueues ids on a real SQS queue
 * (moto), a worker loop does what Lambda's SQS event source does (receive a batch, invoke the
 * worker, delete what succeeded, leave failures to be received again), and the state ends as
 * the in-process path leaves it. A redelivered item finds its own Backup; a poison item ends in
 * the dead-letter queue after 3 receives without holding up its batch.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkQueue } from '../../shared/clouds/aws/queue.ts';
import { loadConfig } from '../../shared/config/load.ts';
import type { FleetConfig } from '../../shared/config/schema.ts';
import { backupWork, run as runBackups } from '../../shared/jobs/backup.ts';
import { run as discover } from '../../shared/jobs/discover.ts';
import type { ClusterJobDeps } from '../../shared/jobs/fleet.ts';
import type { Cluster } from '../../shared/model.ts';
import { clusterJobDeps, discoverDeps } from '../../shared/runtime/deps.ts';
import { type ClusterWork, queued, queueUrlVariable, type WorkItem } from '../../shared/runtime/dispatch.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { runBatch } from '../../shared/runtime/worker.ts';
import { type BackupRecord, INVENTORY, NS } from '../../shared/state/records.ts';
import { type Sandbox, startSandbox } from '../sandbox/index.ts';

describe('fan-out through SQS (moto)', () => {
  let sandbox: Sandbox;
  let config: FleetConfig;
  let deps: ClusterJobDeps;
  let sqs: SQSClient;
  let queueUrl: string;
  let dlqUrl: string;

  beforeAll(async () => {
    sandbox = await startSandbox({ clusters: 12, dir: mkdtempSync(join(tmpdir(), 'fleetward-fanout-')) });
    config = await loadConfig(sandbox.configPath);
    const found = await discoverDeps(config, silentLogger);
    await discover(found);
    await found.store.close();
    deps = await clusterJobDeps(config, silentLogger);
    sqs = new SQSClient({
      endpoint: sandbox.moto.url,
      region: 'eu-central-1',
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'fleetward-test-backup-clusters-dlq' })))
      .QueueUrl!;
    const dlqArn = (
      await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))
    ).Attributes!.QueueArn!;
    queueUrl = (
      await sqs.send(
        new CreateQueueCommand({
          QueueName: 'fleetward-test-backup-clusters',
          Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 3 }) },
        }),
      )
    ).QueueUrl!;
  });
  afterAll(async () => {
    sqs?.destroy();
    await deps?.store.close();
    await sandbox?.stop();
  });

  /**
   * What Lambda's event source mapping does, in a loop: receive up to 10, invoke the worker,
   * delete the items it did not report failed, make the failed ones visible again at once (the
   * visibility timeout, shortened). `loseAcks` drops the deletes of the first batch, as a worker
   * that dies after its work and before SQS hears of it.
   */
  async function drain<S, R>(work: ClusterWork<ClusterJobDeps, S, R>, options: { loseAcks?: boolean } = {}) {
    const ran: string[] = [];
    let lose = options.loseAcks ?? false;
    for (let round = 0; round < 50; round++) {
      const received = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          MessageSystemAttributeNames: ['All'],
        }),
      );
      const messages = received.Messages ?? [];
      if (messages.length === 0) break;
      const event: SQSEvent = {
        Records: messages.map((m) => ({
          messageId: m.MessageId!,
          receiptHandle: m.ReceiptHandle!,
          body: m.Body!,
          attributes: m.Attributes as never,
          messageAttributes: {},
          md5OfBody: m.MD5OfBody!,
          eventSource: 'aws:sqs',
          eventSourceARN: 'arn:aws:sqs:eu-central-1:123456789012:fleetward-test-backup-clusters',
          awsRegion: 'eu-central-1',
        })),
      };
      const response = await runBatch(work, deps, event, { logger: silentLogger });
      const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
      for (const m of messages) {
        if (!failed.has(m.MessageId!)) ran.push(m.Body!);
        if (failed.has(m.MessageId!) || lose) {
          await sqs.send(
            new ChangeMessageVisibilityCommand({
              QueueUrl: queueUrl,
              ReceiptHandle: m.ReceiptHandle!,
              VisibilityTimeout: 0,
            }),
          );
        } else {
          await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle! }));
        }
      }
      lose = false;
    }
    return ran;
  }

  it('enqueues one id-only item per cluster and the workers back up every cluster once, even when acks are lost', async () => {
    // Prepare
    const queue = createWorkQueue({ env: { [queueUrlVariable('backup-clusters')]: queueUrl }, client: sqs });
    const clusters = (await deps.store.list<Cluster>(INVENTORY)).map((i) => i.value);

    // Act: plan and enqueue, then drain with the first batch's acknowledgements lost
    const planned = await runBackups(deps, {}, queued(queue));
    const ran = await drain(backupWork, { loseAcks: true });

    // Assess
    expect(planned.enqueued).toBe(clusters.length);
    expect(planned.outcomes).toEqual([]);
    const bodies = ran.map((b) => JSON.parse(b) as WorkItem);
    for (const body of bodies)
      expect(Object.keys(body).sort()).toEqual(['clusterId', 'job', 'runId', 'window']);
    // Every cluster ran at least once; the lost acks made some run twice.
    expect(new Set(bodies.map((b) => b.clusterId))).toEqual(new Set(clusters.map((c) => c.id)));
    expect(bodies.length).toBeGreaterThan(clusters.length);
    const records = (await deps.store.list<BackupRecord>(NS.backups)).map((i) => i.value);
    const backedUp = clusters.filter(
      (c) => sandbox.veleroBuckets.has(c.id) && c.jurisdiction !== 'unassigned',
    );
    expect(records.length).toBeGreaterThan(3);
    // One Backup per cluster and window: a redelivered item found its own Backup.
    expect(new Set(records.map((r) => r.clusterId)).size).toBe(records.length);
    for (const r of records) expect(backedUp.map((c) => c.id)).toContain(r.clusterId);
    expect(await depth(queueUrl)).toBe(0);
  });

  it('moves a poison item to the dead-letter queue after 3 receives, while the good items of its batch succeed', async () => {
    // Prepare: one item with a field no work item has, next to a good one
    const good = (await deps.store.list<Cluster>(INVENTORY)).map((i) => i.value)[0]!;
    const items = await backupWork.plan(deps, { clusterId: good.id });
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(items[0]) }));
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: JSON.stringify({ ...items[0], clusterId: 'aws/1/eu-west-1/x', cluster: { name: 'x' } }),
      }),
    );

    // Act
    const ran = await drain(backupWork);

    // Assess
    expect(ran.map((b) => (JSON.parse(b) as WorkItem).clusterId)).toEqual([good.id]);
    expect(await depth(queueUrl)).toBe(0);
    expect(await depth(dlqUrl)).toBe(1);
  });

  async function depth(url: string): Promise<number> {
    const out = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return (
      Number(out.Attributes?.ApproximateNumberOfMessages) +
      Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible)
    );
  }
});
