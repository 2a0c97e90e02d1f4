/**
 * Export mode on EKS against moto (through the recording AWS proxy), as a user runs it: an EKS
 * cluster in export mode and an Object Lock evidence bucket in its region. `audit plan` shows the
 * create, `audit apply` makes the subscription filter and the Firehose stream, and events put
 * into the cluster's log group land in the bucket under `audit-export/<cluster-id>/` with no
 * Fleetward code in the path (moto delivers subscription → Firehose → S3 itself). Then drift:
 * the filter deleted or narrowed, the stream's destination moved to a bucket outside the
 * jurisdiction, and refusals: an evidence bucket outside the jurisdiction, one without Object Lock.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  CloudWatchLogsClient,
  DeleteSubscriptionFilterCommand,
  PutSubscriptionFilterCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import {
  DescribeDeliveryStreamCommand,
  FirehoseClient,
  UpdateDestinationCommand,
} from '@aws-sdk/client-firehose';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AUDIT_FILTER_PATTERN,
  exportPrefix,
  exportStreamName,
} from '../../shared/clouds/aws/audit-export.ts';
import { allGrants } from '../../shared/clouds/grants.ts';
import type { ExportApplyResult, ExportPlanResult } from '../../shared/jobs/audit-export.ts';
import {
  createAuditCluster,
  createLockedBucket,
  createUnlockedBucket,
  seedAuditLogs,
} from '../sandbox/aws-audit.ts';
import { type AwsProxy, startAwsProxy } from '../sandbox/aws-proxy.ts';
import { runFleetward } from '../sandbox/cli.ts';
import { type MotoServer, startMoto } from '../sandbox/moto.ts';
import { undeclaredCalls } from '../sandbox/request-log.ts';

const ACCOUNT = '111122223333';
const REGION = 'eu-central-1';
const CLUSTER = { account: ACCOUNT, region: REGION, name: 'prod-eu' };
const CLUSTER_ID = `aws/${ACCOUNT}/${REGION}/prod-eu`;
const TESTING = { accessKeyId: 'testing', secretAccessKey: 'testing' };

let moto: MotoServer;
let proxy: AwsProxy;
let dir: string;

function writeConfig(name: string, evidence: { bucket: string; region: string }): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(
    path,
    `version: 1
stage: dev
clouds:
  aws:
    endpoint: ${proxy.url}
    homeRegion: ${REGION}
    maxAttempts: 2
    accounts:
      - id: "${ACCOUNT}"
        roleArn: arn:aws:iam::${ACCOUNT}:role/fleetward-reader
        regions: [${REGION}]
jurisdictions:
  eu:
    preset: eu-gdpr
    evidence:
      aws: { bucket: ${evidence.bucket}, region: ${evidence.region} }
    audit: { mode: export, retentionDays: 30 }
state:
  type: sqlite
  path: ${join(dir, `${name}.db`)}
`,
  );
  return path;
}

async function cli<T>(
  config: string,
  ...args: string[]
): Promise<{ code: number | null; json: T; stderr: string }> {
  const run = await runFleetward(['audit', ...args, '--config', config, '--json', '--log-level', 'error']);
  try {
    return { code: run.code, json: JSON.parse(run.stdout) as T, stderr: run.stderr };
  } catch {
    throw new Error(`no JSON from audit ${args.join(' ')} (exit ${run.code}): ${run.stderr}${run.stdout}`);
  }
}

/** Clients in the cluster's account (its role assumed), for changing things behind Fleetward's back. */
async function memberClients() {
  const sts = new STSClient({ endpoint: moto.url, region: REGION, credentials: TESTING });
  const out = await sts.send(
    new AssumeRoleCommand({
      RoleArn: `arn:aws:iam::${ACCOUNT}:role/fleetward-reader`,
      RoleSessionName: 'test',
    }),
  );
  sts.destroy();
  const c = out.Credentials!;
  const credentials = {
    accessKeyId: c.AccessKeyId!,
    secretAccessKey: c.SecretAccessKey!,
    sessionToken: c.SessionToken!,
  };
  return {
    logs: new CloudWatchLogsClient({ endpoint: moto.url, region: REGION, credentials }),
    firehose: new FirehoseClient({ endpoint: moto.url, region: REGION, credentials }),
  };
}

async function objectsUnder(
  bucket: string,
  prefix: string,
  region = REGION,
): Promise<{ key: string; body: Buffer }[]> {
  const s3 = new S3Client({ endpoint: moto.url, region, credentials: TESTING, forcePathStyle: true });
  try {
    const list = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    return Promise.all(
      (list.Contents ?? []).map(async (o) => {
        const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key! }));
        return { key: o.Key!, body: Buffer.from(await got.Body!.transformToByteArray()) };
      }),
    );
  } finally {
    s3.destroy();
  }
}

const planOf = (r: ExportPlanResult) => r.plans.find((p) => p.clusterId === CLUSTER_ID);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetward-export-'));
  moto = await startMoto();
  proxy = await startAwsProxy({ upstream: moto.url });
  await createAuditCluster(moto.url, { ...CLUSTER, auditLogging: true });
  // The log group exists once EKS has sent something.
  await seedAuditLogs(moto.url, [CLUSTER], {
    eventsPerCluster: 1,
    start: new Date(Date.now() - 60_000),
    spacingMs: 1,
    malformed: 0,
  });
  await createLockedBucket(moto.url, 'evidence-eu', REGION, 30);
  await createLockedBucket(moto.url, 'evidence-us', 'us-east-1', 30);
  await createUnlockedBucket(moto.url, 'evidence-unlocked', REGION, { versioning: true });
}, 120_000);

afterAll(async () => {
  await proxy?.stop();
  await moto?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('audit export on EKS (moto)', () => {
  let config: string;

  it('plans the create, applies it, delivers events into the evidence bucket, then plans no change', async () => {
    config = writeConfig('fleet', { bucket: 'evidence-eu', region: REGION });
    proxy.log.clear();

    const planned = await cli<ExportPlanResult>(config, 'plan');
    expect(planned.code).toBe(0);
    const p = planOf(planned.json);
    expect(p?.action).toBe('create');
    expect(p?.spec?.destination).toBe(
      `arn:aws:firehose:${REGION}:${ACCOUNT}:deliverystream/${exportStreamName(CLUSTER_ID)}`,
    );
    expect(p?.spec?.filter).toBe(AUDIT_FILTER_PATTERN);
    expect(p?.findings.map((f) => f.kind)).toEqual(['export-not-set-up']);

    const applied = await cli<ExportApplyResult>(config, 'apply');
    expect(applied.code).toBe(0);
    expect(applied.json.outcomes).toEqual([{ clusterId: CLUSTER_ID, action: 'create', status: 'applied' }]);

    // The cloud delivers: PutLogEvents into the cluster's log group, no Fleetward process running.
    const seeded = await seedAuditLogs(moto.url, [CLUSTER], {
      eventsPerCluster: 5,
      start: new Date(Date.now() - 30_000),
      spacingMs: 10,
      malformed: 0,
      seed: 7,
    });
    const objects = await objectsUnder('evidence-eu', exportPrefix(CLUSTER_ID));
    expect(objects.length).toBeGreaterThan(0);
    expect(
      objects.every((o) =>
        /^audit-export\/aws\/111122223333\/eu-central-1\/prod-eu\/\d{4}\/\d{2}\/\d{2}\/\d{2}\//.test(o.key),
      ),
    ).toBe(true);
    const records = objects.map((o) => JSON.parse(gunzipSync(o.body).toString('utf8')));
    const messages = records.flatMap((r) => r.logEvents.map((e: { message: string }) => e.message));
    const sent = [...seeded.values()][0]!.lines.map((l) => l.message);
    expect(messages).toEqual(expect.arrayContaining(sent));
    expect(
      records.every(
        (r) => r.logGroup === `/aws/eks/prod-eu/cluster` && r.subscriptionFilters[0] === 'fleetward-audit',
      ),
    ).toBe(true);

    const again = await cli<ExportPlanResult>(config, 'plan');
    expect(planOf(again.json)).toMatchObject({ action: 'none', changes: [], findings: [] });

    // Every call these flows made has a declared grant (the generated IAM includes them).
    expect(undeclaredCalls(proxy.log.entries, allGrants()).map((m) => m.call)).toEqual([]);
  }, 120_000);

  it('names a deleted filter as missing and puts it back', async () => {
    const m = await memberClients();
    await m.logs.send(
      new DeleteSubscriptionFilterCommand({
        logGroupName: '/aws/eks/prod-eu/cluster',
        filterName: 'fleetward-audit',
      }),
    );
    const gone = await cli<ExportPlanResult>(config, 'plan');
    expect(planOf(gone.json)?.action).toBe('create');
    expect(planOf(gone.json)?.findings.map((f) => `${f.kind}:${f.severity}`)).toEqual([
      'export-missing:critical',
    ]);
    expect((await cli<ExportApplyResult>(config, 'apply')).code).toBe(0);
    expect(planOf((await cli<ExportPlanResult>(config, 'plan')).json)?.action).toBe('none');
    m.logs.destroy();
    m.firehose.destroy();
  }, 60_000);

  it('names a narrowed filter, and apply restores it', async () => {
    const m = await memberClients();
    const planned = planOf((await cli<ExportPlanResult>(config, 'plan')).json)!;
    await m.logs.send(
      new PutSubscriptionFilterCommand({
        logGroupName: '/aws/eks/prod-eu/cluster',
        filterName: 'fleetward-audit',
        filterPattern: '{ ($.apiVersion = "audit.k8s.io/v1") && ($.kind = "Event") && ($.verb = "delete") }',
        destinationArn: planned.spec!.destination,
        roleArn: planned.spec!.settings.logsRoleArn,
      }),
    );
    const narrowed = planOf((await cli<ExportPlanResult>(config, 'plan')).json)!;
    expect(narrowed.action).toBe('update');
    expect(narrowed.changes.map((c) => c.field)).toEqual(['filter']);
    expect(narrowed.findings.map((f) => f.kind)).toEqual(['export-filter-narrowed']);
    await cli(config, 'apply');
    expect(planOf((await cli<ExportPlanResult>(config, 'plan')).json)?.action).toBe('none');
    m.logs.destroy();
    m.firehose.destroy();
  }, 60_000);

  it('names a stream moved to a bucket outside the jurisdiction as critical drift, and apply moves it back', async () => {
    const m = await memberClients();
    const name = exportStreamName(CLUSTER_ID);
    const d = await m.firehose.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: name }));
    await m.firehose.send(
      new UpdateDestinationCommand({
        DeliveryStreamName: name,
        CurrentDeliveryStreamVersionId: d.DeliveryStreamDescription!.VersionId,
        DestinationId: d.DeliveryStreamDescription!.Destinations![0]!.DestinationId,
        ExtendedS3DestinationUpdate: { BucketARN: 'arn:aws:s3:::evidence-us' },
      }),
    );
    const moved = planOf((await cli<ExportPlanResult>(config, 'plan')).json)!;
    expect(moved.action).toBe('update');
    expect(moved.changes).toContainEqual({
      field: 'settings.bucketArn',
      before: 'arn:aws:s3:::evidence-us',
      after: 'arn:aws:s3:::evidence-eu',
    });
    expect(moved.findings.map((f) => `${f.kind}:${f.severity}`)).toEqual([
      'export-settings-changed:critical',
    ]);
    await cli(config, 'apply');
    const back = await m.firehose.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: name }));
    expect(
      back.DeliveryStreamDescription?.Destinations?.[0]?.ExtendedS3DestinationDescription?.BucketARN,
    ).toBe('arn:aws:s3:::evidence-eu');
    m.logs.destroy();
    m.firehose.destroy();
  }, 60_000);

  it.each([
    // The config check refuses a bucket configured outside the jurisdiction; this one is configured
    // in the cluster's region but lives in us-east-1: the bucket locator tells.
    [
      'an evidence bucket outside the jurisdiction',
      'outside',
      { bucket: 'evidence-us', region: REGION },
      /in us-east-1/,
    ],
    [
      'an evidence bucket without Object Lock',
      'unlocked',
      { bucket: 'evidence-unlocked', region: REGION },
      /object lock/,
    ],
  ])(
    'refuses %s: a critical finding, apply exits 1 and creates nothing',
    async (_what, name, evidence, why) => {
      const refusedConfig = writeConfig(name, evidence);
      const m = await memberClients();
      const version = () =>
        m.firehose
          .send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: exportStreamName(CLUSTER_ID) }))
          .then(
            (d) => d.DeliveryStreamDescription?.VersionId,
            () => 'absent',
          );
      const before = await version();
      const applied = await cli<ExportApplyResult>(refusedConfig, 'apply');
      expect(applied.code).toBe(1);
      expect(applied.json.outcomes).toEqual([
        { clusterId: CLUSTER_ID, action: expect.any(String), status: 'refused' },
      ]);
      const p = planOf(applied.json)!;
      expect(p.refused).toMatch(why);
      expect(p.findings.map((f) => f.severity)).toContain('critical');
      // Nothing was applied: the stream is as it was (or still absent).
      expect(await version()).toBe(before);
      m.logs.destroy();
      m.firehose.destroy();
    },
    60_000,
  );
});
