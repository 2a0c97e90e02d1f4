/**
 * The queue path under worker deaths and poison, end to end over loopback: the planner
 * enqueues on the in-memory SQS responder (contract-tested against moto, with an injected
 * clock so visibility timeouts expire without sleeping), workers run `runBatch(backupWork)`
 * against the kube memory responder, which keeps every Backup object so the test can count
 * them per cluster.
 *
 * A killed worker is one whose every kube call is aborted from a random call on (the request
 * that call made still reaches the API server, so a Backup may be created whose answer is
 * lost), or one that dies after its batch ran and before it acknowledged it. Nothing it held is
 * acknowledged; after the visibility timeout a fresh worker drains the queue.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkQueue } from '../../shared/clouds/aws/queue.ts';
import { backupWork } from '../../shared/jobs/backup.ts';
import { queued, queueUrlVariable, type WorkItem } from '../../shared/runtime/dispatch.ts';
import { type BackupRecord, NS } from '../../shared/state/records.ts';
import { backupName, windowStart } from '../../shared/velero/resources.ts';
import {
  FANOUT_DLQ,
  FANOUT_QUEUE,
  fanoutCluster,
  fanoutConfig,
  type LoopCounts,
  seedFleet,
  workerDeps,
  workerRound,
} from '../bench/fanout-fleet.ts';
import { type KubeMemory, startKubeMemory } from '../sandbox/kube-memory.ts';
import { type SqsMemory, startSqsMemory } from '../sandbox/sqs-memory.ts';

const CLUSTERS = 12;
const TRIALS = 50;
const DAY_MS = 86_400_000;

describe('fan-out reliability (in-memory SQS, kube memory responder)', () => {
  let dir: string;
  let statePath: string;
  let sqsMemory: SqsMemory;
  let kube: KubeMemory;
  let sqs: SQSClient;
  let queueUrl: string;
  let dlqUrl: string;
  /** Added to the SQS responder's clock: moving it on expires visibility timeouts. */
  let skewMs = 0;
  let onKubeRequest: ((key: string, method: string, path: string) => void) | undefined;
  const config = fanoutConfig();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleetward-fanout-reliability-'));
    statePath = join(dir, 'state.db');
    await seedFleet(statePath, CLUSTERS);
    sqsMemory = await startSqsMemory({ now: () => Date.now() + skewMs });
    kube = await startKubeMemory({ onRequest: (key, method, path) => onKubeRequest?.(key, method, path) });
    sqs = new SQSClient({
      endpoint: sqsMemory.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: FANOUT_DLQ }))).QueueUrl!;
    const dlqArn = (
      await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))
    ).Attributes!.QueueArn!;
    queueUrl = (
      await sqs.send(
        new CreateQueueCommand({
          QueueName: FANOUT_QUEUE,
          Attributes: {
            VisibilityTimeout: '30',
            RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 3 }),
          },
        }),
      )
    ).QueueUrl!;
  });
  afterAll(async () => {
    sqs?.destroy();
    await sqsMemory?.stop();
    await kube?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const depth = async (url: string) => {
    const a = (
      await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: url,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      )
    ).Attributes;
    return Number(a?.ApproximateNumberOfMessages) + Number(a?.ApproximateNumberOfMessagesNotVisible);
  };

  /** Plans and enqueues one window's items for every cluster (the planner's own path). */
  async function enqueueWindow(at: Date): Promise<WorkItem[]> {
    const planner = workerDeps({ config, statePath, kube, clock: { now: () => at } });
    try {
      const items = await backupWork.plan(planner, {});
      const queue = createWorkQueue({
        env: { [queueUrlVariable('backup-clusters')]: queueUrl },
        client: sqs,
      });
      await queued(queue).dispatch(backupWork, planner, items);
      return items;
    } finally {
      await planner.store.close();
    }
  }

  it(`loses no item and duplicates no Backup when a worker is killed at a random point (${TRIALS} trials)`, async () => {
    const random = seeded(20261207);
    const report = {
      trials: 0,
      killedAtKubeCall: 0,
      killedBeforeAck: 0,
      items: 0,
      lost: 0,
      duplicates: 0,
      dlq: 0,
    };
    let day = Date.parse('2026-06-01T09:00:00Z');
    for (let trial = 0; trial < TRIALS; trial++) {
      // Prepare: a new window (new Backup names), a kill point
      day += DAY_MS;
      const at = new Date(day);
      const items = await enqueueWindow(at);
      const atKubeCall = random() < 0.6;
      // A backup item makes 7-11 kube calls (discovery is cached per client); 6 per item keeps the kill inside the pass.
      const killAt = 1 + Math.floor(random() * 6 * CLUSTERS);
      const dieBeforeAckOfBatch = Math.floor(random() * 2);

      // Act: worker A runs until it is killed
      const killer = new AbortController();
      let calls = 0;
      onKubeRequest = () => {
        if (atKubeCall && ++calls === killAt) killer.abort(new Error('worker killed'));
      };
      const a = workerDeps({ config, statePath, kube, clock: { now: () => at } });
      const counts: LoopCounts = { batches: 0, succeeded: 0, failed: 0 };
      let batch = 0;
      let killed = false;
      for (;;) {
        const die = () => !atKubeCall && batch++ === dieBeforeAckOfBatch;
        let dead = false;
        const got = await workerRound(sqs, queueUrl, a, counts, {
          signal: killer.signal,
          die: () => (dead = die()),
        });
        if (killer.signal.aborted || dead) {
          killed = true;
          break;
        }
        if (got.length === 0) break;
      }
      onKubeRequest = undefined;
      await a.store.close();
      // The dead worker's messages come back after the visibility timeout; worker B drains.
      skewMs += 31_000;
      const b = workerDeps({ config, statePath, kube, clock: { now: () => at } });
      for (let round = 0; round < 20; round++) {
        if ((await workerRound(sqs, queueUrl, b, counts)).length === 0 && (await depth(queueUrl)) === 0)
          break;
      }

      // Assess (counted, then asserted once for all trials)
      const name = backupName(windowStart(at, DAY_MS));
      const records = new Set(
        (await b.store.list<BackupRecord>(NS.backups))
          .filter((r) => r.value.name === name)
          .map((r) => r.value.clusterId),
      );
      await b.store.close();
      report.trials++;
      if (killed && atKubeCall) report.killedAtKubeCall++;
      if (killed && !atKubeCall) report.killedBeforeAck++;
      report.items += items.length;
      for (let i = 0; i < CLUSTERS; i++) {
        const c = fanoutCluster(i);
        const backups = kube.backups(c.name);
        if (!backups.includes(name) || !records.has(c.id)) report.lost++;
        // One Backup per cluster for each trial so far.
        report.duplicates += Math.max(0, backups.length - (trial + 1));
      }
      report.dlq = await depth(dlqUrl);
    }
    console.log(
      `fan-out kill trials: ${report.trials} trials, ${report.killedAtKubeCall} killed at a random kube call, ${report.killedBeforeAck} killed between run and delete; ${report.items} items: lost ${report.lost}, duplicate Backups ${report.duplicates}, DLQ ${report.dlq}`,
    );
    expect(report.killedAtKubeCall + report.killedBeforeAck).toBe(TRIALS);
    expect(report.killedAtKubeCall).toBeGreaterThan(10);
    expect(report.killedBeforeAck).toBeGreaterThan(10);
    expect(report).toMatchObject({ lost: 0, duplicates: 0, dlq: 0 });
    expect(await depth(queueUrl)).toBe(0);
  });

  it('moves poison to the dead-letter queue after 3 receives, while the rest of its batch is done in the first round', async () => {
    // Prepare: one batch of 10: 8 good items, a malformed message, and an item whose Backup create always fails
    const at = new Date('2027-01-15T09:00:00Z');
    const planner = workerDeps({ config, statePath, kube, clock: { now: () => at } });
    const planned = await backupWork.plan(planner, {});
    await planner.store.close();
    const good = planned.slice(0, 8);
    const failing = planned[8]!;
    const failingName = fanoutCluster(8).name;
    const bodies = [
      ...good.slice(0, 4).map((i) => JSON.stringify(i)),
      JSON.stringify({ ...good[0], clusterId: 'aws/1/eu-west-1/x', cluster: { name: 'x' } }),
      JSON.stringify(failing),
      ...good.slice(4).map((i) => JSON.stringify(i)),
    ];
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: bodies.map((body, i) => ({ Id: String(i), MessageBody: body })),
      }),
    );
    onKubeRequest = (key, method) => {
      if (key === failingName && method === 'POST') throw new Error('admission webhook down');
    };
    const worker = workerDeps({ config, statePath, kube, clock: { now: () => at } });
    const counts: LoopCounts = { batches: 0, succeeded: 0, failed: 0 };
    const name = backupName(windowStart(at, DAY_MS));
    const goodDone = () =>
      good.filter((i) => kube.backups(i.clusterId.split('/').pop()!).includes(name)).length;

    try {
      // Act: the first round
      const first = await workerRound(sqs, queueUrl, worker, counts);
      const afterFirst = { received: first.length, goodDone: goodDone(), depth: await depth(queueUrl) };
      // ...then rounds until the queue is empty
      const receives = new Map<string, number>();
      for (let round = 0; round < 10; round++) {
        const got = await workerRound(sqs, queueUrl, worker, counts);
        for (const m of got) receives.set(m.Body!, Number(m.Attributes?.ApproximateReceiveCount));
        if (got.length === 0) break;
      }

      // Assess
      expect(afterFirst).toEqual({ received: 10, goodDone: 8, depth: 2 });
      expect([...receives.values()]).toEqual([3, 3]);
      expect(await depth(queueUrl)).toBe(0);
      expect(await depth(dlqUrl)).toBe(2);
      expect(kube.backups(failingName)).not.toContain(name);
    } finally {
      onKubeRequest = undefined;
      await worker.store.close();
    }
  });
});

/** A small deterministic generator (mulberry32): every run kills at the same points. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
