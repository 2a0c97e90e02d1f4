import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import type { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { createWorkQueue } from '../../shared/clouds/aws/queue.ts';
import type { WorkQueue } from '../../shared/ports.ts';
import {
  BadWorkItemError,
  type ClusterWork,
  inProcess,
  parseWorkItem,
  queued,
  queueUrlVariable,
  type WorkItem,
} from '../../shared/runtime/dispatch.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { deployedDispatcher } from '../../shared/runtime/queue-dispatch.ts';
import { runBatch } from '../../shared/runtime/worker.ts';

const item = (clusterId: string): WorkItem => ({ job: 'backup-clusters', clusterId, runId: 'r-1' });

/** A job whose run records how many items were in flight at once. */
function countingWork() {
  let active = 0;
  let peak = 0;
  const work: ClusterWork<unknown, unknown, string> = {
    job: 'backup-clusters',
    plan: async () => [],
    run: async (_deps, i) => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, 5));
      active--;
      if (i.clusterId === 'boom') throw new Error('boom');
      return i.clusterId;
    },
  };
  return { work, peak: () => peak };
}

describe('dispatcher', () => {
  it('runs items in-process with at most `concurrency` in flight, in order', async () => {
    const { work, peak } = countingWork();
    const items = Array.from({ length: 20 }, (_, i) => item(`c${i}`));

    const done = await inProcess(3).dispatch(work, {}, items);

    expect(done).toEqual({ mode: 'in-process', results: items.map((i) => i.clusterId) });
    expect(peak()).toBe(3);
  });

  it('sends items to the job queue and runs nothing here', async () => {
    const { work, peak } = countingWork();
    const sent: WorkItem[] = [];
    const queue: WorkQueue = { send: async (_job, items) => void sent.push(...items) };

    const done = await queued(queue).dispatch(work, {}, [item('a'), item('b')]);

    expect(done).toEqual({ mode: 'queue', enqueued: 2 });
    expect(sent.map((i) => i.clusterId)).toEqual(['a', 'b']);
    expect(peak()).toBe(0);
  });

  it('refuses to send an item of another job to this job queue', async () => {
    const { work } = countingWork();
    const queue: WorkQueue = { send: async () => {} };

    await expect(
      queued(queue).dispatch(work, {}, [{ job: 'reconcile-tags', clusterId: 'a', runId: 'r' }]),
    ).rejects.toThrow(/item of job reconcile-tags dispatched with job backup-clusters/);
  });

  it('is in-process unless the deployment asks for the queue', async () => {
    expect((await deployedDispatcher(4, {})).mode).toBe('in-process');
    expect((await deployedDispatcher(4, { FLEETWARD_DISPATCH: 'queue' })).mode).toBe('queue');
  });
});

describe('work items', () => {
  it('reads an item with ids only', () => {
    const body = JSON.stringify({ ...item('aws/1/eu-west-1/a'), window: '2026-12-07T00:00:00.000Z' });

    expect(parseWorkItem(body)).toEqual({ ...item('aws/1/eu-west-1/a'), window: '2026-12-07T00:00:00.000Z' });
  });

  it.each([
    ['not JSON', '{', /work item is not JSON/],
    [
      'cluster data riding along',
      JSON.stringify({ ...item('a'), cluster: { name: 'a' } }),
      /work item \(root\):/,
    ],
    ['an unknown job', JSON.stringify({ ...item('a'), job: 'rm-rf' }), /work item job:/],
    ['a window that is no time', JSON.stringify({ ...item('a'), window: 'yesterday' }), /work item window:/],
  ])('refuses %s, naming the field', (_what, body, message) => {
    expect(() => parseWorkItem(body)).toThrow(BadWorkItemError);
    expect(() => parseWorkItem(body)).toThrow(message);
  });

  it('names each job queue variable after the job', () => {
    expect(queueUrlVariable('collect-audit-logs')).toBe('FLEETWARD_QUEUE_COLLECT_AUDIT_LOGS');
  });
});

describe('sqs work queue', () => {
  /** An SQS client that refuses the entries whose ids are listed, `times` times each. */
  function fakeSqs(refuse: Record<string, number>) {
    const batches: string[][] = [];
    const client = {
      send: async (command: SendMessageBatchCommand) => {
        const ids = command.input.Entries!.map((e) => e.Id!);
        batches.push(ids);
        const failed = ids.filter((id) => (refuse[id] ?? 0) > 0);
        for (const id of failed) refuse[id]!--;
        return {
          Successful: [],
          Failed: failed.map((Id) => ({ Id, SenderFault: false, Code: 'InternalError' })),
        };
      },
      destroy: () => {},
    } as unknown as SQSClient;
    return { client, batches };
  }
  const env = { [queueUrlVariable('backup-clusters')]: 'https://sqs.example.invalid/1/q' };

  it('sends 10 items to a batch and resends only the entries SQS refused', async () => {
    const { client, batches } = fakeSqs({ '3': 1, '11': 2 });
    const items = Array.from({ length: 23 }, (_, i) => item(`c${i}`));

    await createWorkQueue({ env, client }).send('backup-clusters', items);

    expect(batches.map((b) => b.length)).toEqual([10, 1, 10, 1, 1, 3]);
    expect(batches[1]).toEqual(['3']);
  });

  it('names the clusters whose items SQS kept refusing', async () => {
    const { client } = fakeSqs({ '1': 9 });

    await expect(
      createWorkQueue({ env, client }).send('backup-clusters', [item('a'), item('b'), item('c')]),
    ).rejects.toThrow(/sqs refused 1 items of the backup-clusters queue: b/);
  });

  it('says which queue is not deployed', async () => {
    const { client } = fakeSqs({});

    await expect(createWorkQueue({ env: {}, client }).send('reconcile-tags', [item('a')])).rejects.toThrow(
      /FLEETWARD_QUEUE_RECONCILE_TAGS is not set/,
    );
  });
});

describe('job metrics', () => {
  it('emits one embedded-metric-format line per call, in the Fleetward namespace, with the job as dimension', () => {
    // Prepare: a plain Node process, as Lambda runs the bundle, with metrics on
    const script = `import { recordJobMetrics } from ${JSON.stringify(resolve('shared/runtime/metrics.ts'))};
      recordJobMetrics('backup-clusters', { ItemsSucceeded: 9, ItemsFailed: 1 });`;
    const env: NodeJS.ProcessEnv = { ...process.env, POWERTOOLS_METRICS_NAMESPACE: 'Fleetward' };
    delete env.POWERTOOLS_METRICS_DISABLED;

    // Act
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env });

    // Assess
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]._aws.CloudWatchMetrics[0]).toMatchObject({
      Namespace: 'Fleetward',
      Dimensions: [expect.arrayContaining(['job'])],
    });
    expect(lines[0]).toMatchObject({ job: 'backup-clusters', ItemsSucceeded: 9, ItemsFailed: 1 });
  });
});

describe('worker batch', () => {
  const record = (body: unknown, id: string) => ({
    messageId: id,
    receiptHandle: `rh-${id}`,
    body: typeof body === 'string' ? body : JSON.stringify(body),
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: '1545082649183',
      SenderId: 'AIDAIENQZJOLO23YVJ4VO',
      ApproximateFirstReceiveTimestamp: '1545082649185',
    },
    messageAttributes: {},
    md5OfBody: 'e4e68fb7bd0e697a0ae8f1bb342846b3',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:eu-central-1:123456789012:fleetward-dev-backup-clusters',
    awsRegion: 'eu-central-1',
  });

  it('reports only the failed items and sums the metrics of the ones that succeeded', async () => {
    // Prepare: a created backup, one that exists already, one whose run fails, and a bad message
    const work: ClusterWork<unknown, unknown, { status: string }> = {
      job: 'backup-clusters',
      plan: async () => [],
      run: async (_deps, i) => ({ status: i.clusterId }),
      failure: (r) => (r.status === 'failed' ? 'kube api refused' : undefined),
      metrics: (r) => ({ BackupsCreated: r.status === 'created' ? 1 : 0 }),
    };
    const event = {
      Records: [
        record(item('created'), 'm1'),
        record(item('exists'), 'm2'),
        record(item('failed'), 'm3'),
        record('{"job":"backup-clusters"}', 'm4'),
        record(item('created'), 'm5'),
      ],
    };

    // Act
    const out = await runBatch(work, {}, event, { logger: silentLogger });

    // Assess
    expect(out.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['m3', 'm4']);
    expect(out.summary).toEqual({ received: 5, succeeded: 3, failed: 2, refused: 0 });
    expect(out.metrics).toEqual({ BackupsCreated: 2 });
  });

  it('never runs an item the deployment refuses (a cluster of another jurisdiction), and never retries it', async () => {
    // Prepare
    const ran: string[] = [];
    const work: ClusterWork<unknown, unknown, string> = {
      job: 'backup-clusters',
      plan: async () => [],
      run: async (_deps, i) => {
        ran.push(i.clusterId);
        return i.clusterId;
      },
    };
    const event = {
      Records: [record(item('aws/1/eu-central-1/eu'), 'm1'), record(item('aws/1/ap-south-1/in'), 'm2')],
    };

    // Act
    const out = await runBatch(work, {}, event, {
      logger: silentLogger,
      refuse: async (i) =>
        i.clusterId.includes('ap-south-1') ? 'the cluster is in jurisdiction in' : undefined,
    });

    // Assess
    expect(ran).toEqual(['aws/1/eu-central-1/eu']);
    expect(out.batchItemFailures).toEqual([]);
    expect(out.summary).toEqual({ received: 2, succeeded: 2, failed: 0, refused: 1 });
  });
});
