/**
 * GKE export mode against the local clouds: the exporter manages a Log Router sink in the
 * logging fake, the fake routes the cluster's audit entries as Cloud Logging does and writes
 * them into the GCS fake's evidence bucket (no Fleetward code in between); drift (sink
 * disabled, destination moved out of the jurisdiction, retention unlocked, filter narrowed)
 * shows in `observe` / `checkDestination`.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createGcsArchiveStore } from '../../shared/clouds/gcp/audit.ts';
import {
  createGkeAuditExporter,
  EXPORT_PREFIX,
  SINK_NAME_PREFIX,
  sinkFilter,
} from '../../shared/clouds/gcp/audit-export.ts';
import { GcpConfig } from '../../shared/config/schema.ts';
import type { Cluster } from '../../shared/model.ts';
import type { AuditExporter, ExportSpec, Log } from '../../shared/ports.ts';
import { Residency } from '../../shared/residency/guard.ts';
import {
  CloudApiError,
  FleetwardError,
  NotImmutableError,
  ResidencyError,
} from '../../shared/runtime/errors.ts';
import { FaultInjector } from '../sandbox/faults.ts';
import { type GcsFake, startGcsFake } from '../sandbox/gcs-fake.ts';
import { type LogEntry, type LoggingFake, startLoggingFake } from '../sandbox/logging-fake.ts';

const PROJECT = 'fleetward-test';
const LOCATION = 'europe-west3';
const EVIDENCE = 'fleetward-evidence-eu';
const OUTSIDE = 'fleetward-evidence-us';
const RETENTION_DAYS = 30;
const silent: Log = { debug() {}, info() {}, warn() {}, error() {} };

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

const faults = new FaultInjector();
const residency = new Residency({ eu: { preset: 'eu-gdpr' } });
let logging: LoggingFake;
let gcs: GcsFake;
let config: GcpConfig;
let exporter: AuditExporter;
let prod: Cluster;
let spec: ExportSpec;
let hour = 0;

/** Entries of a fresh hour of 2025-03-01, so each test's delivered files are its own. */
function seed(c: Cluster, count: number, location = c.region): LogEntry[] {
  const start = `2025-03-01T${String(hour++).padStart(2, '0')}:00:00.000Z`;
  return logging.seed(c.scope, location, c.name, count, { start, spacingMs: 1_000 });
}

/** Changes a sink as a console user would (`sinks.update` with a mask), past Fleetward. */
async function edit(name: string, mask: string, body: Record<string, unknown>): Promise<number> {
  const url = `${logging.endpoint}/v2/projects/${PROJECT}/sinks/${name}?updateMask=${mask}&uniqueWriterIdentity=true`;
  const response = await fetch(url, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await response.text();
  return response.status;
}

function sinkCalls(): string[] {
  return logging
    .requests()
    .filter((r) => r.operation.startsWith('sinks.'))
    .map((r) => r.operation);
}

beforeAll(async () => {
  gcs = await startGcsFake();
  logging = await startLoggingFake({ faults, storage: gcs });
  config = GcpConfig.parse({
    loggingEndpoint: logging.endpoint,
    storageEndpoint: gcs.endpoint,
    insecure: true,
    maxAttempts: 3,
    timeoutMs: 5_000,
    projects: [{ id: PROJECT }],
  });
  exporter = createGkeAuditExporter(config, { logger: silent });
  prod = cluster('prod-eu');
  const store = createGcsArchiveStore(config, { bucket: EVIDENCE, location: LOCATION }, { logger: silent });
  spec = exporter.desired(prod, store);
});

afterAll(async () => {
  await Promise.all([logging?.stop(), gcs?.stop()]);
});

beforeEach(() => {
  faults.clear();
  gcs.createBucket(EVIDENCE, LOCATION, { retentionDays: RETENTION_DAYS, locked: true });
  gcs.createBucket(OUTSIDE, 'us-east1', { retentionDays: RETENTION_DAYS, locked: true });
});

describe('gke audit export', () => {
  it('wants one sink per cluster, filtered to its audit log, into the evidence bucket', () => {
    expect(spec).toEqual({
      name: 'fleetward-audit-prod-eu-europe-west3',
      destination: `storage.googleapis.com/${EVIDENCE}`,
      filter:
        'resource.type="k8s_cluster" AND resource.labels.cluster_name="prod-eu" AND resource.labels.location="europe-west3" AND logName:"cloudaudit.googleapis.com"',
      settings: {},
    });
  });

  it('checks the destination: locked retention, single region, inside the jurisdiction', async () => {
    const location = await exporter.checkDestination(prod, spec, RETENTION_DAYS);

    expect(location).toEqual({ cloud: 'gcp', region: LOCATION });
    expect(residency.assertResidency({ jurisdiction: 'eu', clusterId: prod.id }, location).country).toBe(
      'DE',
    );
  });

  it('creates the sink, which then observes as desired', async () => {
    expect(await exporter.observe(prod, spec)).toBeNull();

    await exporter.apply(prod, spec);
    const observed = await exporter.observe(prod, spec);

    expect(observed).toMatchObject({
      name: spec.name,
      enabled: true,
      destination: spec.destination,
      filter: spec.filter,
      deliveryErrors: [],
    });
    expect(observed?.settings.writerIdentity).toMatch(
      /^serviceAccount:p\d{12}-\d{6}@gcp-sa-logging\.iam\.gserviceaccount\.com$/,
    );
    const create = logging.requests().find((r) => r.operation === 'sinks.create');
    expect(create?.body).toMatchObject({
      name: spec.name,
      destination: spec.destination,
      filter: spec.filter,
    });
  });

  it('delivers the cluster’s entries into the bucket with no fleetward call in the data path', async () => {
    await exporter.apply(prod, spec);
    const before = { logging: logging.requests().length, gcs: gcs.requests().length };
    const mine = seed(prod, 30);
    seed(cluster('staging-eu'), 10);
    seed(prod, 10, 'europe-west1'); // same name, other location: another cluster

    const deliveries = logging.deliverSinks();

    // Nothing called either API between ingestion and the objects landing.
    expect(logging.requests().length).toBe(before.logging);
    expect(gcs.requests().length).toBe(before.gcs);
    expect(deliveries.every((d) => d.error === undefined)).toBe(true);
    const { store, prefix } = await exporter.exported(prod, spec);
    expect(prefix).toBe(EXPORT_PREFIX);
    expect(store.id).toBe(`gcs:${EVIDENCE}`);
    const listed = await store.list(prefix);
    const names = listed.map((o) => o.key);
    const at = mine[0]!.timestamp.slice(0, 13).replace('T', '/').replace(/-/g, '/');
    const hh = mine[0]!.timestamp.slice(11, 13);
    expect(names).toEqual(
      expect.arrayContaining([
        `cloudaudit.googleapis.com/activity/${at.slice(0, 10)}/${hh}:00:00_${hh}:59:59_S0.json`,
        `cloudaudit.googleapis.com/data_access/${at.slice(0, 10)}/${hh}:00:00_${hh}:59:59_S0.json`,
      ]),
    );
    const lines: LogEntry[] = [];
    for (const { key } of listed.filter((o) => o.key.includes(`/${hh}:00:00_`))) {
      const bytes = await store.get(key);
      lines.push(
        ...Buffer.from(bytes!)
          .toString('utf8')
          .trimEnd()
          .split('\n')
          .map((l) => JSON.parse(l) as LogEntry),
      );
    }
    expect(lines.map((e) => e.insertId).sort()).toEqual(mine.map((e) => e.insertId).sort());
    expect(
      new Set(lines.map((e) => `${e.resource.labels.cluster_name}/${e.resource.labels.location}`)),
    ).toEqual(new Set(['prod-eu/europe-west3']));
  });

  it('is idempotent: a second apply reads the sink and changes nothing', async () => {
    await exporter.apply(prod, spec);
    const [before] = logging.sinks(PROJECT).filter((s) => s.name === spec.name);
    const calls = sinkCalls().length;

    await exporter.apply(prod, spec);

    expect(sinkCalls().slice(calls)).toEqual(['sinks.get']);
    expect(logging.sinks(PROJECT).find((s) => s.name === spec.name)).toEqual(before);
  });

  it('creates once when two runs race (the loser updates after 409)', async () => {
    const other = cluster('race-eu');
    const otherSpec = exporter.desired(other, { id: `gcs:${EVIDENCE}` } as never);

    await Promise.all([exporter.apply(other, otherSpec), exporter.apply(other, otherSpec)]);

    expect(logging.sinks(PROJECT).filter((s) => s.name === otherSpec.name)).toHaveLength(1);
    expect(await exporter.observe(other, otherSpec)).toMatchObject({
      enabled: true,
      filter: otherSpec.filter,
    });
  });

  it('retries a throttled read', async () => {
    faults.add({ cloud: 'gcp', operation: 'sinks.get', fault: { kind: 'throttle' }, times: 1 });

    await exporter.apply(prod, spec);

    expect(logging.requests().at(-1)).toMatchObject({ operation: 'sinks.get', status: 200 });
  });

  it('fails with a cloud api error when the sink cannot be read', async () => {
    faults.add({ cloud: 'gcp', operation: 'sinks.get', fault: { kind: 'error', status: 503 }, times: 3 });

    await expect(exporter.observe(prod, spec)).rejects.toThrow(CloudApiError);
  });
});

describe('gke audit export drift', () => {
  beforeEach(async () => {
    await exporter.apply(prod, spec);
  });

  it('a disabled sink observes as not enabled, exports nothing, and apply enables it again', async () => {
    expect(await edit(spec.name, 'disabled', { disabled: true })).toBe(200);

    expect((await exporter.observe(prod, spec))?.enabled).toBe(false);
    seed(prod, 5);
    expect(logging.deliverSinks().filter((d) => d.sink === spec.name)).toEqual([]);

    await exporter.apply(prod, spec);
    expect((await exporter.observe(prod, spec))?.enabled).toBe(true);
    expect(sinkCalls().at(-2)).toBe('sinks.update');
  });

  it('a destination moved out of the jurisdiction is refused by the residency guard', async () => {
    expect(await edit(spec.name, 'destination', { destination: `storage.googleapis.com/${OUTSIDE}` })).toBe(
      200,
    );
    const observed = (await exporter.observe(prod, spec))!;
    expect(observed.destination).not.toBe(spec.destination);

    const location = await exporter.checkDestination(
      prod,
      { ...spec, destination: observed.destination },
      RETENTION_DAYS,
    );

    expect(location).toEqual({ cloud: 'gcp', region: 'us-east1' });
    expect(() => residency.assertResidency({ jurisdiction: 'eu', clusterId: prod.id }, location)).toThrow(
      ResidencyError,
    );
    await exporter.apply(prod, spec);
    expect((await exporter.observe(prod, spec))?.destination).toBe(spec.destination);
  });

  it('an unlocked retention policy is refused', async () => {
    gcs.createBucket(EVIDENCE, LOCATION, { retentionDays: RETENTION_DAYS, locked: false });

    await expect(exporter.checkDestination(prod, spec, RETENTION_DAYS)).rejects.toThrow(/not locked/);
    await expect(exporter.checkDestination(prod, spec, RETENTION_DAYS)).rejects.toThrow(NotImmutableError);
  });

  it('a retention shorter than required is refused', async () => {
    gcs.createBucket(EVIDENCE, LOCATION, { retentionDays: 7, locked: true });

    await expect(exporter.checkDestination(prod, spec, RETENTION_DAYS)).rejects.toThrow(NotImmutableError);
  });

  it('a multi-region bucket is refused', async () => {
    gcs.createBucket('fleetward-evidence-multi', 'EU', { retentionDays: RETENTION_DAYS, locked: true });

    await expect(
      exporter.checkDestination(
        prod,
        { ...spec, destination: 'storage.googleapis.com/fleetward-evidence-multi' },
        RETENTION_DAYS,
      ),
    ).rejects.toThrow(/multi-region/);
  });

  it('a narrowed filter observes as a different filter, drops what it no longer matches, and apply restores it', async () => {
    const narrowed = `${sinkFilter(prod)} AND logName:"cloudaudit.googleapis.com%2Factivity"`;
    expect(await edit(spec.name, 'filter', { filter: narrowed })).toBe(200);

    const observed = await exporter.observe(prod, spec);
    expect(observed?.filter).toBe(narrowed);
    expect(observed?.filter).not.toBe(spec.filter);
    const seeded = seed(prod, 8);
    const delivered = logging.deliverSinks().filter((d) => d.sink === spec.name);
    expect(delivered.reduce((n, d) => n + d.entries, 0)).toBe(
      seeded.filter((e) => e.logName.endsWith('activity')).length,
    );
    expect(delivered.every((d) => d.object?.startsWith('cloudaudit.googleapis.com/activity/'))).toBe(true);

    await exporter.apply(prod, spec);
    expect((await exporter.observe(prod, spec))?.filter).toBe(spec.filter);
  });

  it('a sink into a bucket that does not exist delivers nothing and the fake keeps the error', async () => {
    const ghost = cluster('ghost-eu');
    const ghostSpec = exporter.desired(ghost, { id: 'gcs:fleetward-no-such-bucket' } as never);
    await exporter.apply(ghost, ghostSpec);
    seed(ghost, 3);

    const failed = logging.deliverSinks().filter((d) => d.sink === ghostSpec.name);

    expect(failed).toHaveLength(2);
    expect(failed.every((d) => /does not exist/.test(d.error ?? ''))).toBe(true);
    expect(logging.sinkErrors().map((d) => d.sink)).toContain(ghostSpec.name);
    expect(gcs.objects('fleetward-no-such-bucket')).toEqual([]);
    await expect(exporter.checkDestination(ghost, ghostSpec, RETENTION_DAYS)).rejects.toThrow(CloudApiError);
  });
});

describe('gke audit export rejections', () => {
  it('never touches a sink that is not fleetward’s', async () => {
    const calls = sinkCalls().length;

    await expect(exporter.apply(prod, { ...spec, name: 'audit-to-siem' })).rejects.toThrow(
      new RegExp(`only manages sinks named ${SINK_NAME_PREFIX}`),
    );
    expect(sinkCalls().length).toBe(calls);
  });

  it('refuses a destination that is not a cloud storage bucket', async () => {
    const bq = { ...spec, destination: 'bigquery.googleapis.com/projects/p/datasets/audit' };

    await expect(exporter.checkDestination(prod, bq, RETENTION_DAYS)).rejects.toThrow(FleetwardError);
    await expect(exporter.exported(prod, bq)).rejects.toThrow(/not write into a cloud storage bucket/);
  });

  it('refuses an evidence store on another cloud', () => {
    expect(() => exporter.desired(prod, { id: 'aws:fleetward-evidence' } as never)).toThrow(/not one/);
  });
});
