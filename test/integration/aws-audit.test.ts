/**
 * The EKS audit source and the S3 archive store against moto, through the recording AWS
 * proxy (to see which account asked, and to throttle): audit logging on/off from
 * DescribeCluster, FilterLogEvents windows and pages, a missing log group, 429s retried;
 * Object Lock checks, conditional creates, versions and tampering.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditSource, createS3ArchiveStore, sha256HexToBase64 } from '../../shared/clouds/aws/audit.ts';
import { AwsConfig } from '../../shared/config/schema.ts';
import type { Cluster } from '../../shared/model.ts';
import type { AuditEvent, AuditLogSource, Log } from '../../shared/ports.ts';
import {
  CloudApiError,
  FleetwardError,
  NotImmutableError,
  ObjectExistsError,
} from '../../shared/runtime/errors.ts';
import {
  alterObject,
  auditSeedKey,
  createAuditCluster,
  createLockedBucket,
  createUnlockedBucket,
  type SeededAuditLog,
  seedAuditLogs,
} from '../sandbox/aws-audit.ts';
import { type AwsProxy, startAwsProxy } from '../sandbox/aws-proxy.ts';
import { type MotoServer, startMoto } from '../sandbox/moto.ts';

const ACCOUNT = '111122223333';
const OTHER = '444455556666';
const REGION = 'eu-central-1';
const silent: Log = { debug() {}, info() {}, warn() {}, error() {} };

function cluster(over: Partial<Cluster> & Pick<Cluster, 'scope' | 'region' | 'name'>): Cluster {
  return {
    id: `aws/${over.scope}/${over.region}/${over.name}`,
    cloud: 'aws',
    kubernetesVersion: '1.31',
    endpoint: null,
    endpointAccess: 'public',
    secretsEncryptionKey: null,
    auditLogging: true,
    tags: {},
    status: 'running',
    providerStatus: 'ACTIVE',
    createdAt: null,
    country: 'DE',
    jurisdiction: 'eu',
    ...over,
  };
}

const AUDITED = cluster({ scope: ACCOUNT, region: REGION, name: 'prod-eu' });
const QUIET = cluster({ scope: ACCOUNT, region: REGION, name: 'dev-eu' });
const BIG = cluster({ scope: OTHER, region: 'eu-west-1', name: 'busy-eu' });

let moto: MotoServer;
let proxy: AwsProxy;
let config: AwsConfig;
let source: AuditLogSource;
let seeded: Map<string, SeededAuditLog>;
/** Seeding starts an hour ago: CloudWatch Logs refuses events older than 14 days. */
const START = new Date(Math.floor((Date.now() - 3_600_000) / 1000) * 1000);

async function readAll(
  from: AuditLogSource,
  c: Cluster,
  window: { since: Date; until: Date },
): Promise<AuditEvent[][]> {
  const pages: AuditEvent[][] = [];
  for await (const page of from.read(c, window)) pages.push(page);
  return pages;
}

const expected = (log: SeededAuditLog, since: number, until: number): Omit<AuditEvent, 'recordId'>[] =>
  log.lines
    .filter((l) => l.timestamp >= since && l.timestamp < until)
    .map((l) => ({
      auditID: l.auditID,
      stage: l.auditID === null ? null : 'ResponseComplete',
      timestamp: new Date(l.timestamp).toISOString(),
      raw: l.message,
    }));

/** The events without their `recordId`, after checking every one has its own (CloudWatch's eventId). */
function withoutRecordIds(events: AuditEvent[]): Omit<AuditEvent, 'recordId'>[] {
  const ids = events.map((e) => e.recordId);
  expect(ids.every((id) => typeof id === 'string' && id !== '')).toBe(true);
  expect(new Set(ids).size).toBe(ids.length);
  return events.map(({ recordId: _recordId, ...rest }) => rest);
}

beforeAll(async () => {
  moto = await startMoto();
  proxy = await startAwsProxy({ upstream: moto.url });
  config = AwsConfig.parse({
    endpoint: proxy.url,
    maxAttempts: 4,
    accounts: [
      { id: ACCOUNT, roleArn: `arn:aws:iam::${ACCOUNT}:role/fleetward-reader`, regions: [REGION] },
      { id: OTHER, roleArn: `arn:aws:iam::${OTHER}:role/fleetward-reader`, regions: ['eu-west-1'] },
    ],
  });
  await createAuditCluster(moto.url, {
    account: ACCOUNT,
    region: REGION,
    name: 'prod-eu',
    auditLogging: true,
  });
  await createAuditCluster(moto.url, {
    account: ACCOUNT,
    region: REGION,
    name: 'dev-eu',
    auditLogging: false,
  });
  seeded = await seedAuditLogs(moto.url, [{ account: ACCOUNT, region: REGION, name: 'prod-eu' }], {
    eventsPerCluster: 250,
    start: START,
    spacingMs: 1000,
    malformed: 3,
  });
  source = createAuditSource(config, { logger: silent }, { pageSize: 100 });
});

afterAll(async () => {
  await proxy?.stop();
  await moto?.stop();
});

describe('aws audit source', () => {
  it('tells from DescribeCluster whether audit logging is on, in the cluster account', async () => {
    proxy.log.clear();
    await expect(source.enabled(AUDITED)).resolves.toEqual({ enabled: true });
    const off = await source.enabled(QUIET);
    expect(off.enabled).toBe(false);
    expect(off.reason).toMatch(/audit logging is not enabled.*api/);
    const describes = proxy.requests().filter((r) => r.operation === 'DescribeCluster');
    expect(describes.map((r) => [r.resource, r.scope, r.region])).toEqual([
      ['prod-eu', ACCOUNT, REGION],
      ['dev-eu', ACCOUNT, REGION],
    ]);
    // The role is assumed once per account, then kept.
    expect(proxy.requests().filter((r) => r.operation === 'AssumeRole')).toHaveLength(1);
  });

  it('refuses clusters outside the configured accounts and clouds', async () => {
    await expect(
      source.enabled(cluster({ scope: '999999999999', region: REGION, name: 'x' })),
    ).rejects.toThrow(FleetwardError);
    await expect(source.enabled({ ...AUDITED, cloud: 'gcp' })).rejects.toThrow(/not an eks cluster/);
  });

  it('reads exactly the events of [since, until), page by page, malformed lines with a null auditID', async () => {
    const log = seeded.get(auditSeedKey({ account: ACCOUNT, region: REGION, name: 'prod-eu' }));
    if (!log) throw new Error('not seeded');
    proxy.log.clear();
    const since = START.getTime() + 10_000;
    const until = START.getTime() + 230_000;
    const pages = await readAll(source, AUDITED, { since: new Date(since), until: new Date(until) });
    const want = expected(log, since, until);
    expect(want).toHaveLength(220);
    expect(pages.length).toBe(3);
    expect(pages.every((p) => p.length <= 100)).toBe(true);
    expect(withoutRecordIds(pages.flat())).toEqual(want);
    // Malformed lines are kept verbatim; the rest carry the auditID of their Event.
    const nulls = pages.flat().filter((e) => e.auditID === null);
    expect(nulls.length).toBeGreaterThan(0);
    expect(nulls.every((e) => !e.raw.startsWith('{"kind"') || !e.raw.endsWith('}'))).toBe(true);
    const parsed = pages.flat().filter((e) => e.auditID !== null);
    for (const e of parsed) {
      const event = JSON.parse(e.raw);
      expect(event).toMatchObject({
        kind: 'Event',
        apiVersion: 'audit.k8s.io/v1',
        stage: 'ResponseComplete',
      });
      expect(event.auditID).toBe(e.auditID);
    }
    const calls = proxy.requests().filter((r) => r.operation === 'FilterLogEvents');
    expect(calls).toHaveLength(3);
    expect(calls.every((r) => r.scope === ACCOUNT && r.region === REGION)).toBe(true);
  });

  it('reads the whole log with the default page size and nothing outside the window', async () => {
    const log = seeded.get(auditSeedKey({ account: ACCOUNT, region: REGION, name: 'prod-eu' }));
    if (!log) throw new Error('not seeded');
    const all = createAuditSource(config, { logger: silent });
    const since = START.getTime();
    const until = START.getTime() + 253_000; // the last line (index 252) is at +252 s
    const pages = await readAll(all, AUDITED, { since: new Date(since), until: new Date(until) });
    expect(pages).toHaveLength(1);
    expect(withoutRecordIds(pages.flat())).toEqual(expected(log, since, until));
    expect(pages.flat()).toHaveLength(253);
    // until is exclusive: a window ending at the last line's timestamp leaves it out.
    const before = await readAll(all, AUDITED, { since: new Date(since), until: new Date(since + 252_000) });
    expect(before.flat()).toHaveLength(252);
    // An empty window asks nothing.
    await expect(readAll(all, AUDITED, { since: new Date(until), until: new Date(until) })).resolves.toEqual(
      [],
    );
  });

  it('answers no events for a cluster without a log group', async () => {
    await expect(
      readAll(source, QUIET, { since: START, until: new Date(START.getTime() + 600_000) }),
    ).resolves.toEqual([]);
  });

  it('retries FilterLogEvents throttled with 429', async () => {
    proxy.log.clear();
    proxy.faults.add({ operation: 'FilterLogEvents', fault: { kind: 'throttle' }, times: 2 });
    try {
      const since = START.getTime();
      const until = START.getTime() + 50_000;
      const pages = await readAll(source, AUDITED, { since: new Date(since), until: new Date(until) });
      expect(pages.flat()).toHaveLength(50);
      const calls = proxy.requests().filter((r) => r.operation === 'FilterLogEvents');
      expect(calls.map((r) => r.status)).toEqual([429, 429, 200]);
    } finally {
      proxy.faults.clear();
    }
  });

  it('gives up after maxAttempts with a retryable CloudApiError', async () => {
    const impatient = createAuditSource({ ...config, maxAttempts: 2 }, { logger: silent });
    proxy.faults.add({ operation: 'FilterLogEvents', fault: { kind: 'throttle' }, times: 2 });
    try {
      const error = await readAll(impatient, AUDITED, {
        since: START,
        until: new Date(START.getTime() + 10_000),
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CloudApiError);
      expect(error).toMatchObject({ operation: 'FilterLogEvents', status: 429, retryable: true });
    } finally {
      proxy.faults.clear();
    }
  });

  it('pages through a log larger than one FilterLogEvents page (10,000 events)', async () => {
    const big = await seedAuditLogs(moto.url, [{ account: OTHER, region: 'eu-west-1', name: 'busy-eu' }], {
      eventsPerCluster: 12_000,
      start: START,
      spacingMs: 100,
      malformed: 5,
      seed: 7,
    });
    const log = big.get(auditSeedKey({ account: OTHER, region: 'eu-west-1', name: 'busy-eu' }));
    if (!log) throw new Error('not seeded');
    const all = createAuditSource(config, { logger: silent });
    const until = START.getTime() + 3_600_000;
    const pages = await readAll(all, BIG, { since: START, until: new Date(until) });
    expect(pages.map((p) => p.length)).toEqual([10_000, 2_005]);
    const events = pages.flat();
    expect(events.map((e) => e.auditID)).toEqual(log.lines.map((l) => l.auditID));
    expect(events.filter((e) => e.auditID === null)).toHaveLength(5);
  });
});

describe('aws s3 archive store', () => {
  const LOCKED = 'fw-evidence-eu';
  const body = new TextEncoder().encode('{"auditID":"a"}\n{"auditID":"b"}\n');
  const sha = createHash('sha256').update(body).digest('hex');
  const meta = { sha256: sha, contentType: 'application/x-ndjson' };

  beforeAll(async () => {
    await createLockedBucket(moto.url, LOCKED, REGION, 400);
    await createLockedBucket(moto.url, 'fw-evidence-short', REGION, 30);
    await createLockedBucket(moto.url, 'fw-evidence-governance', REGION, 400, { mode: 'GOVERNANCE' });
    await createUnlockedBucket(moto.url, 'fw-evidence-open', REGION);
    await createUnlockedBucket(moto.url, 'fw-evidence-versioned', REGION, { versioning: true });
    await createLockedBucket(moto.url, 'fw-evidence-us', 'us-east-1', 400);
  });

  const store = (bucket: string, region = REGION) =>
    createS3ArchiveStore(config, { bucket, region }, { logger: silent });

  it('accepts a COMPLIANCE-locked bucket that keeps objects long enough', async () => {
    const s = store(LOCKED);
    expect(s.id).toBe(`aws:${LOCKED}`);
    await expect(s.assertImmutable(400)).resolves.toBeUndefined();
    await expect(s.assertImmutable(365)).resolves.toBeUndefined();
  });

  it('refuses buckets that are not write-once for long enough, saying why', async () => {
    await expect(store(LOCKED).assertImmutable(401)).rejects.toThrow(/400 days, less than the 401/);
    await expect(store('fw-evidence-short').assertImmutable(400)).rejects.toThrow(NotImmutableError);
    await expect(store('fw-evidence-governance').assertImmutable(400)).rejects.toThrow(
      /GOVERNANCE, not COMPLIANCE/,
    );
    await expect(store('fw-evidence-open').assertImmutable(1)).rejects.toThrow(/object lock/);
    await expect(store('fw-evidence-versioned').assertImmutable(1)).rejects.toThrow(NotImmutableError);
    const error = await store('fw-evidence-open')
      .assertImmutable(1)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'NotImmutableError', store: 'aws:fw-evidence-open' });
  });

  it('locates the bucket through GetBucketLocation', async () => {
    await expect(store(LOCKED).location()).resolves.toEqual({ cloud: 'aws', region: REGION });
    await expect(store('fw-evidence-us', 'us-east-1').location()).resolves.toEqual({
      cloud: 'aws',
      region: 'us-east-1',
    });
    // A wrong configured region does not hide where the bucket is.
    await expect(store(LOCKED, 'us-east-1').location()).resolves.toEqual({ cloud: 'aws', region: REGION });
  });

  it('creates once with the sha-256 checksum, never overwrites, reads back by version', async () => {
    const s = store(LOCKED);
    proxy.log.clear();
    const key = 'audit/eu/prod-eu/2025-03-12/chunk-0001.ndjson';
    const created = await s.create(key, body, meta);
    expect(created.key).toBe(key);
    expect(created.version).toMatch(/.+/);
    await expect(s.create(key, new TextEncoder().encode('other'), meta)).rejects.toThrow(ObjectExistsError);
    await expect(s.get(key)).resolves.toEqual(body);
    await expect(s.get(key, { version: created.version })).resolves.toEqual(body);
    await expect(s.get('audit/eu/prod-eu/absent.ndjson')).resolves.toBeUndefined();
    // The bucket's own account, with the base credentials: no role assumed for evidence.
    const puts = proxy.requests().filter((r) => r.service === 's3' && r.operation === 'PutObject');
    expect(puts.length).toBeGreaterThanOrEqual(2);
    expect(puts.every((r) => r.accessKeyId === 'testing')).toBe(true);
  });

  it('shows tampering as a second version, the locked one still readable', async () => {
    const s = store(LOCKED);
    const key = 'audit/eu/prod-eu/2025-03-12/chunk-0002.ndjson';
    const original = await s.create(key, body, meta);
    await s.create('audit/eu/prod-eu/2025-03-12/chunk-0003.ndjson', body, meta);
    const forged = new TextEncoder().encode('{"auditID":"forged"}\n');
    const altered = await alterObject(moto.url, LOCKED, key, forged, REGION);
    const listed = await s.list('audit/eu/prod-eu/2025-03-12/chunk-000');
    expect(listed.map((e) => e.key)).toEqual([
      'audit/eu/prod-eu/2025-03-12/chunk-0001.ndjson',
      'audit/eu/prod-eu/2025-03-12/chunk-0002.ndjson',
      'audit/eu/prod-eu/2025-03-12/chunk-0003.ndjson',
    ]);
    expect(listed[1]?.versions).toEqual([altered, original.version]);
    expect(listed[0]?.versions).toHaveLength(1);
    await expect(s.get(key)).resolves.toEqual(forged);
    await expect(s.get(key, { version: original.version })).resolves.toEqual(body);
    await expect(s.list('audit/none/')).resolves.toEqual([]);
  });

  it('sends the base64 sha-256 checksum S3 verifies and the create-only condition', async () => {
    const key = 'audit/eu/prod-eu/2025-03-12/chunk-0004.ndjson';
    const seen: Record<string, string | string[] | undefined>[] = [];
    const remove = proxy.override(`s3:PUT /${LOCKED}/${key}`, (req, tools) => {
      seen.push(req.headers);
      return tools.forward();
    });
    try {
      await store(LOCKED).create(key, body, meta);
    } finally {
      remove();
    }
    expect(seen).toHaveLength(1);
    // moto does not verify checksums; S3 does, from exactly this header.
    expect(seen[0]?.['x-amz-checksum-sha256']).toBe(createHash('sha256').update(body).digest('base64'));
    expect(seen[0]?.['x-amz-sdk-checksum-algorithm']).toBe('SHA256');
    expect(seen[0]?.['if-none-match']).toBe('*');
    expect(seen[0]?.['content-type']).toBe('application/x-ndjson');
    expect(sha256HexToBase64(sha)).toBe(createHash('sha256').update(body).digest('base64'));
    expect(() => sha256HexToBase64('xyz')).toThrow(FleetwardError);
  });
});
