/**
 * GKE audit logs end to end against the local clouds: the Cloud Logging audit source reads
 * the logging fake (no credentials, loopback), and the Cloud Storage archive writes to the
 * GCS fake's evidence buckets (retention policy, generations, conditional create).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cloudLoggingRecordId } from '../../shared/audit/chunks.ts';
import { auditFilter, createAuditSource, createGcsArchiveStore } from '../../shared/clouds/gcp/audit.ts';
import { type GkeCluster, normaliseCluster } from '../../shared/clouds/gcp/discovery.ts';
import { GcpConfig } from '../../shared/config/schema.ts';
import type { Cluster } from '../../shared/model.ts';
import type { AuditEvent, Log } from '../../shared/ports.ts';
import {
  CloudApiError,
  ConfigError,
  FleetwardError,
  NotImmutableError,
  ObjectExistsError,
} from '../../shared/runtime/errors.ts';
import { FaultInjector } from '../sandbox/faults.ts';
import { type GcsFake, startGcsFake } from '../sandbox/gcs-fake.ts';
import { type LoggingFake, startLoggingFake } from '../sandbox/logging-fake.ts';

const PROJECT = 'fleetward-test';
const LOCATION = 'europe-west3';
const START = '2025-03-01T00:00:00.000Z';
const silent: Log = { debug() {}, info() {}, warn() {}, error() {} };
const retried: Record<string, unknown>[] = [];
const recording: Log = { ...silent, info: (message, ...extra) => retried.push({ message, ...extra[0] }) };

function cluster(name: string, over: Partial<Cluster> = {}): Cluster {
  return {
    id: `gcp/${PROJECT}/${LOCATION}/${name}`,
    cloud: 'gcp',
    scope: PROJECT,
    region: LOCATION,
    name,
    kubernetesVersion: '1.31',
    endpoint: null,
    endpointAccess: 'public',
    secretsEncryptionKey: null,
    auditLogging: true,
    tags: {},
    status: 'running',
    providerStatus: 'RUNNING',
    createdAt: null,
    country: 'DE',
    jurisdiction: 'eu',
    ...over,
  };
}

async function readAll(iterable: AsyncIterable<AuditEvent[]>): Promise<AuditEvent[][]> {
  const pages: AuditEvent[][] = [];
  for await (const page of iterable) pages.push(page);
  return pages;
}

const faults = new FaultInjector();
let logging: LoggingFake;
let gcs: GcsFake;
let config: GcpConfig;

beforeAll(async () => {
  [logging, gcs] = await Promise.all([startLoggingFake({ faults }), startGcsFake()]);
  config = GcpConfig.parse({
    loggingEndpoint: logging.endpoint,
    storageEndpoint: gcs.endpoint,
    insecure: true,
    maxAttempts: 3,
    timeoutMs: 5_000,
    projects: [{ id: PROJECT }],
  });
  // 2,500 entries one second apart: 00:00:00 .. 00:41:39.
  logging.seed(PROJECT, LOCATION, 'prod-eu', 2_500, { start: START, spacingMs: 1_000 });
  logging.seed(PROJECT, LOCATION, 'staging-eu', 50, { start: START, spacingMs: 1_000 });
  logging.seed(PROJECT, 'europe-west1', 'prod-eu', 50, { start: START, spacingMs: 1_000 });
  logging.seed('other-project', LOCATION, 'prod-eu', 50, { start: START, spacingMs: 1_000 });
  gcs.createBucket('fw-evidence-locked', LOCATION, { retentionDays: 400, locked: true });
  gcs.createBucket('fw-evidence-unlocked', LOCATION, { retentionDays: 400, locked: false });
  gcs.createBucket('fw-evidence-short', LOCATION, { retentionDays: 30, locked: true });
  gcs.createBucket('fw-evidence-none', LOCATION);
  gcs.createBucket('fw-evidence-eu', 'EU', { retentionDays: 400, locked: true });
});

afterAll(async () => {
  await Promise.all([logging?.stop(), gcs?.stop()]);
});

beforeEach(() => {
  faults.clear();
  retried.length = 0;
});

describe('gcp audit source', () => {
  it('reads every GKE cluster: Admin Activity audit logs cannot be switched off', async () => {
    const source = createAuditSource(config, { logger: silent });
    await expect(source.enabled(cluster('prod-eu'))).resolves.toEqual({ enabled: true });
    await expect(source.enabled(cluster('prod-eu', { auditLogging: null }))).resolves.toEqual({
      enabled: true,
    });
    // An inventory record from before discovery stopped reading loggingService as an audit switch.
    await expect(source.enabled(cluster('prod-eu', { auditLogging: false }))).resolves.toEqual({
      enabled: true,
    });
  });

  it('reads a cluster discovered with loggingService none: its Admin Activity audit logs are still written', async () => {
    // The recorded cluster of test/fixtures/gcp/README.md, as discovery reports it.
    const sample = JSON.parse(
      readFileSync(new URL('../fixtures/gcp/gke-cluster-logging-none.json', import.meta.url), 'utf8'),
    ) as GkeCluster;
    const discovered = { ...normaliseCluster(PROJECT, sample), country: 'US', jurisdiction: 'unassigned' };
    const source = createAuditSource(config, { logger: silent });
    await expect(source.enabled(discovered)).resolves.toEqual({ enabled: true });
  });

  it('reads exactly the entries of the cluster in [since, until), page by page', async () => {
    const source = createAuditSource(config, { logger: silent });
    const since = new Date(Date.parse(START) + 100_000);
    const until = new Date(Date.parse(START) + 2_300_000);
    const before = logging.requests().length;
    const pages = await readAll(source.read(cluster('prod-eu'), { since, until }));
    const events = pages.flat();

    const expected = logging
      .entries()
      .filter(
        (e) =>
          e.resource.labels.project_id === PROJECT &&
          e.resource.labels.location === LOCATION &&
          e.resource.labels.cluster_name === 'prod-eu' &&
          Date.parse(e.timestamp) >= since.getTime() &&
          Date.parse(e.timestamp) < until.getTime(),
      );
    expect(expected).toHaveLength(2_200);
    expect(pages.map((p) => p.length)).toEqual([1000, 1000, 200]);
    expect(events.map((e) => e.auditID)).toEqual(expected.map((e) => e.insertId));
    expect(events[0]).toEqual({
      auditID: expected[0]!.insertId,
      recordId: cloudLoggingRecordId(expected[0]!.logName, expected[0]!.timestamp, expected[0]!.insertId),
      timestamp: since.toISOString(),
      raw: JSON.stringify(expected[0]),
    });
    expect(new Set(events.map((e) => e.recordId)).size).toBe(events.length);
    expect(JSON.parse(events[0]!.raw)).toEqual(expected[0]);

    const requests = logging.requests().slice(before);
    expect(requests).toHaveLength(3);
    expect(requests.every((r) => r.bearer === false)).toBe(true);
    expect(requests[0]!.body).toEqual({
      resourceNames: [`projects/${PROJECT}`],
      filter: auditFilter(cluster('prod-eu'), since, until),
      orderBy: 'timestamp asc',
      pageSize: 1000,
    });
    expect(auditFilter(cluster('prod-eu'), since, until)).toBe(
      `resource.type="k8s_cluster" AND resource.labels.cluster_name="prod-eu" AND resource.labels.location="${LOCATION}" AND logName:"cloudaudit.googleapis.com" AND timestamp>="${since.toISOString()}" AND timestamp<"${until.toISOString()}"`,
    );
  });

  it('keeps clusters apart by name, location and project, and yields nothing for an empty window', async () => {
    const source = createAuditSource(config, { logger: silent });
    const window = { since: new Date(START), until: new Date(Date.parse(START) + 3_600_000) };
    const staging = (await readAll(source.read(cluster('staging-eu'), window))).flat();
    const west1 = (await readAll(source.read(cluster('prod-eu', { region: 'europe-west1' }), window))).flat();
    const other = (await readAll(source.read(cluster('prod-eu', { scope: 'other-project' }), window))).flat();
    const none = await readAll(
      source.read(cluster('prod-eu'), { since: new Date('2024-01-01T00:00:00Z'), until: new Date(START) }),
    );

    for (const [events, name, location, project] of [
      [staging, 'staging-eu', LOCATION, PROJECT],
      [west1, 'prod-eu', 'europe-west1', PROJECT],
      [other, 'prod-eu', LOCATION, 'other-project'],
    ] as const) {
      expect(events).toHaveLength(50);
      for (const event of events) {
        expect(JSON.parse(event.raw).resource.labels).toEqual({
          project_id: project,
          location,
          cluster_name: name,
        });
      }
    }
    expect(none).toEqual([]);
  });

  it('retries 429 RESOURCE_EXHAUSTED (honouring Retry-After) and 503', async () => {
    faults.add({
      cloud: 'gcp',
      operation: 'entries.list',
      scope: PROJECT,
      fault: { kind: 'throttle', retryAfterSeconds: 1 },
      times: 1,
    });
    faults.add({ cloud: 'gcp', operation: 'entries.list', fault: { kind: 'error', status: 503 }, times: 1 });
    const source = createAuditSource(config, { logger: recording });
    const started = Date.now();
    const events = (
      await readAll(
        source.read(cluster('staging-eu'), {
          since: new Date(START),
          until: new Date(Date.parse(START) + 3_600_000),
        }),
      )
    ).flat();

    expect(events).toHaveLength(50);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(retried.map((r) => [r.operation, r.attempt, (r.error as { message: string }).message])).toEqual([
      ['entries.list', 1, expect.stringMatching(/Quota exceeded/)],
      ['entries.list', 2, expect.any(String)],
    ]);
    expect(retried[0]!.delayMs).toBeGreaterThanOrEqual(1000);
  });

  it('fails with a CloudApiError once attempts run out, and on a refused request', async () => {
    faults.add({ cloud: 'gcp', operation: 'entries.list', fault: { kind: 'error', status: 503 }, times: 3 });
    const source = createAuditSource(config, { logger: silent });
    const window = { since: new Date(START), until: new Date(Date.parse(START) + 60_000) };
    await expect(readAll(source.read(cluster('prod-eu'), window))).rejects.toMatchObject({
      name: 'CloudApiError',
      operation: 'entries.list',
      status: 503,
      retryable: true,
    });
    const bad = await readAll(source.read(cluster('prod-eu', { scope: 'Not A Project' }), window)).catch(
      (error: unknown) => error,
    );
    expect(bad).toBeInstanceOf(CloudApiError);
    expect(bad).toMatchObject({ status: 400, retryable: false });
  });

  it('refuses insecure without a loopback logging endpoint', () => {
    const base = { insecure: true, projects: [{ id: PROJECT }] };
    expect(() => createAuditSource(GcpConfig.parse(base), { logger: silent })).toThrow(ConfigError);
    expect(() =>
      createAuditSource(GcpConfig.parse({ ...base, loggingEndpoint: 'https://logging.googleapis.com' }), {
        logger: silent,
      }),
    ).toThrow(ConfigError);
    expect(() =>
      createAuditSource(
        GcpConfig.parse({ projects: [{ id: PROJECT }], loggingEndpoint: 'http://logging.example.internal' }),
        { logger: silent },
      ),
    ).toThrow(ConfigError);
  });
});

describe('gcs archive store', () => {
  const store = (bucket: string) =>
    createGcsArchiveStore(config, { bucket, location: LOCATION }, { logger: silent });
  const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

  it('reports the bucket region and refuses a multi-region bucket', async () => {
    expect(store('fw-evidence-locked').id).toBe('gcs:fw-evidence-locked');
    await expect(store('fw-evidence-locked').location()).resolves.toEqual({ cloud: 'gcp', region: LOCATION });
    await expect(store('fw-evidence-eu').location()).rejects.toThrow(FleetwardError);
    await expect(store('fw-no-such-bucket').location()).rejects.toMatchObject({
      name: 'CloudApiError',
      status: 404,
    });
  });

  it('passes a locked retention policy long enough and refuses the rest', async () => {
    await expect(store('fw-evidence-locked').assertImmutable(400)).resolves.toBeUndefined();
    await expect(store('fw-evidence-locked').assertImmutable(401)).rejects.toThrow(NotImmutableError);
    await expect(store('fw-evidence-unlocked').assertImmutable(400)).rejects.toThrow(/not locked/);
    await expect(store('fw-evidence-short').assertImmutable(400)).rejects.toMatchObject({
      name: 'NotImmutableError',
      store: 'gcs:fw-evidence-short',
    });
    await expect(store('fw-evidence-none').assertImmutable(1)).rejects.toThrow(/no retention policy/);
  });

  it('creates objects once, with their generation as version, and refuses a second create', async () => {
    const archive = store('fw-evidence-locked');
    const body = new TextEncoder().encode('{"auditID":"a"}\n{"auditID":"b"}\n');
    const created = await archive.create('audit/prod-eu/2025/03/01/chunk-0001.jsonl', body, {
      sha256: sha256(body),
      contentType: 'application/x-ndjson',
    });
    expect(created.key).toBe('audit/prod-eu/2025/03/01/chunk-0001.jsonl');
    expect(created.version).toMatch(/^\d+$/);
    const stored = gcs.objects('fw-evidence-locked').find((o) => o.name === created.key)!;
    expect(stored.resource).toMatchObject({
      generation: created.version,
      contentType: 'application/x-ndjson',
      metadata: { sha256: sha256(body) },
    });

    const again = await archive
      .create(created.key, new TextEncoder().encode('other'), { sha256: 'x', contentType: 'text/plain' })
      .catch((error: unknown) => error);
    expect(again).toBeInstanceOf(ObjectExistsError);
    expect(again).toMatchObject({ key: created.key });
    expect(gcs.versions('fw-evidence-locked', created.key)).toHaveLength(1);

    const read = await archive.get(created.key);
    expect(Buffer.from(read!).equals(Buffer.from(body))).toBe(true);
    await expect(archive.get('audit/none.jsonl')).resolves.toBeUndefined();
    await expect(archive.get(created.key, { version: '1' })).resolves.toBeUndefined();
  });

  it('keeps every generation: a tampered object lists two versions and both stay readable', async () => {
    const archive = store('fw-evidence-locked');
    const body = new TextEncoder().encode('original evidence\n');
    const key = 'audit/prod-eu/2025/03/01/chunk-0002.jsonl';
    const first = await archive.create(key, body, {
      sha256: sha256(body),
      contentType: 'application/x-ndjson',
    });
    const other = await archive.create('audit/prod-eu/2025/03/02/chunk-0001.jsonl', body, {
      sha256: sha256(body),
      contentType: 'application/x-ndjson',
    });
    const tampered = gcs.alterObject('fw-evidence-locked', key, new TextEncoder().encode('forged\n'));

    const listed = await archive.list('audit/prod-eu/2025/03/');
    // `created` is the latest generation's timeCreated (the hourly digests place objects by it).
    const created = expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
    expect(listed).toEqual([
      {
        key: 'audit/prod-eu/2025/03/01/chunk-0001.jsonl',
        versions: [expect.stringMatching(/^\d+$/)],
        created,
      },
      { key, versions: [tampered.resource.generation, first.version], created },
      { key: 'audit/prod-eu/2025/03/02/chunk-0001.jsonl', versions: [other.version], created },
    ]);
    expect(BigInt(tampered.resource.generation)).toBeGreaterThan(BigInt(first.version));
    expect(new TextDecoder().decode(await archive.get(key))).toBe('forged\n');
    expect(new TextDecoder().decode(await archive.get(key, { version: first.version }))).toBe(
      'original evidence\n',
    );
    await expect(archive.list('audit/elsewhere/')).resolves.toEqual([]);
  });

  it('is refused deletes and overwrites by the retention policy, like GCS', async () => {
    const key = 'audit/prod-eu/2025/03/01/chunk-0001.jsonl';
    const deleted = await fetch(
      `${gcs.endpoint}/storage/v1/b/fw-evidence-locked/o/${encodeURIComponent(key)}`,
      { method: 'DELETE' },
    );
    expect(deleted.status).toBe(403);
    expect(await deleted.json()).toMatchObject({
      error: { code: 403, errors: [{ reason: 'retentionPolicyNotMet' }] },
    });
    const overwrite = await fetch(
      `${gcs.endpoint}/upload/storage/v1/b/fw-evidence-locked/o?uploadType=media&name=${encodeURIComponent(key)}`,
      { method: 'POST', body: 'x' },
    );
    expect(overwrite.status).toBe(403);
    const conditional = await fetch(
      `${gcs.endpoint}/upload/storage/v1/b/fw-evidence-locked/o?uploadType=media&ifGenerationMatch=0&name=${encodeURIComponent(key)}`,
      { method: 'POST', body: 'x' },
    );
    expect(conditional.status).toBe(412);
    expect(await conditional.json()).toMatchObject({
      error: { code: 412, errors: [{ reason: 'conditionNotMet', domain: 'global' }] },
    });
    expect(gcs.versions('fw-evidence-locked', key)).toHaveLength(1);
  });

  it('retries a throttled create and still creates exactly once', async () => {
    const throttling = new FaultInjector();
    const guarded = await startGcsFake({ faults: throttling });
    try {
      guarded.createBucket('fw-evidence-retry', LOCATION, { retentionDays: 400, locked: true });
      throttling.add({
        cloud: 'gcp',
        operation: 'objects.insert',
        fault: { kind: 'error', status: 503 },
        times: 1,
      });
      const archive = createGcsArchiveStore(
        { ...config, storageEndpoint: guarded.endpoint },
        { bucket: 'fw-evidence-retry', location: LOCATION },
        { logger: recording },
      );
      const body = new TextEncoder().encode('chunk\n');
      const created = await archive.create('audit/x.jsonl', body, {
        sha256: sha256(body),
        contentType: 'application/x-ndjson',
      });
      expect(guarded.versions('fw-evidence-retry')).toHaveLength(1);
      expect(created.version).toBe(guarded.objects('fw-evidence-retry')[0]!.resource.generation);
      expect(retried.some((r) => r.operation === 'objects.insert')).toBe(true);
    } finally {
      await guarded.stop();
    }
  });
});
