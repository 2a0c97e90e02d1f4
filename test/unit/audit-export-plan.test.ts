/**
 * The audit export job against a fake exporter: the diff and drift logic (each case passing and
 * failing), plan → apply → plan, the change limit, dry run, refusals (write-once, residency, no
 * bucket on the cluster's cloud), pull-mode leftovers, and collect skipping export-mode clusters.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createAuditExporters } from '../../shared/audit/exporters.ts';
import { FleetConfig, Jurisdiction } from '../../shared/config/schema.ts';
import { collect } from '../../shared/jobs/audit.ts';
import {
  type AppliedExportRecord,
  AUDIT_EXPORT_NS,
  type AuditExportDeps,
  apply,
  diffExport,
  driftFindings,
  filterDrift,
  plan,
} from '../../shared/jobs/audit-export.ts';
import type { Cluster } from '../../shared/model.ts';
import type { ArchiveStore, AuditExporter, ExportObserved, ExportSpec } from '../../shared/ports.ts';
import { Residency } from '../../shared/residency/index.ts';
import { NotImmutableError } from '../../shared/runtime/errors.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { INVENTORY, NS } from '../../shared/state/records.ts';
import { SqliteStateStore } from '../../shared/state/sqlite.ts';
import { auditCluster } from './audit-builders.ts';

const AT = '2026-12-01T10:00:00.000Z';
const SPEC: ExportSpec = {
  name: 'fleetward-audit',
  destination: 'arn:aws:firehose:eu-central-1:111111111111:deliverystream/fleetward-audit-abc',
  filter: '{ ($.apiVersion = "audit.k8s.io/v1") && ($.kind = "Event") }',
  settings: { bucketArn: 'arn:aws:s3:::evidence-eu', prefix: 'audit-export/x/', compression: 'UNCOMPRESSED' },
};
const seen = (over: Partial<ExportObserved> = {}): ExportObserved => ({
  name: SPEC.name,
  enabled: true,
  destination: SPEC.destination,
  filter: SPEC.filter,
  settings: { ...SPEC.settings },
  deliveryErrors: [],
  ...over,
});
const APPLIED: AppliedExportRecord = { runId: 'r', at: AT, clusterId: auditCluster.id, spec: SPEC };

describe('diffExport', () => {
  it('lists every field of a resource that does not exist, with before null', () => {
    const changes = diffExport(SPEC, null);
    expect(changes.map((c) => c.field)).toEqual([
      'destination',
      'filter',
      'settings.bucketArn',
      'settings.compression',
      'settings.prefix',
    ]);
    expect(changes.every((c) => c.before === null)).toBe(true);
  });

  it('is empty for a resource that says what the spec says, and names each field that differs', () => {
    expect(diffExport(SPEC, seen())).toEqual([]);
    expect(diffExport(SPEC, seen({ filter: '{ $.verb = "create" }', enabled: false }))).toEqual([
      { field: 'filter', before: '{ $.verb = "create" }', after: SPEC.filter },
      { field: 'enabled', before: 'false', after: 'true' },
    ]);
  });
});

describe('filterDrift', () => {
  it('calls a filter that keeps every condition and adds one narrowed, any other change changed', () => {
    expect(
      filterDrift(
        SPEC.filter,
        '{ ($.apiVersion = "audit.k8s.io/v1") && ($.kind = "Event") && ($.verb = "create") }',
      ),
    ).toBe('narrowed');
    expect(filterDrift(SPEC.filter, '{ $.kind = "Event" }')).toBe('changed');
    expect(filterDrift(SPEC.filter, '')).toBe('changed');
  });
});

describe('driftFindings', () => {
  const kinds = (observed: ExportObserved | null, applied?: AppliedExportRecord) =>
    driftFindings(auditCluster, SPEC, observed, applied, AT).map((f) => `${f.kind}:${f.severity}`);

  it.each([
    ['gone after an apply', null, APPLIED, ['export-missing:critical']],
    ['never applied', null, undefined, ['export-not-set-up:high']],
    ['disabled', seen({ enabled: false }), APPLIED, ['export-disabled:high']],
    [
      'destination changed',
      seen({ destination: 'arn:aws:firehose:us-east-1:1:deliverystream/x' }),
      APPLIED,
      ['export-destination-changed:critical'],
    ],
    [
      'filter narrowed',
      seen({ filter: `${SPEC.filter.slice(0, -2)} && ($.verb = "create") }` }),
      APPLIED,
      ['export-filter-narrowed:high'],
    ],
    ['filter changed', seen({ filter: '{ $.kind = "Event" }' }), APPLIED, ['export-filter-changed:high']],
    [
      'bucket changed',
      seen({ settings: { ...SPEC.settings, bucketArn: 'arn:aws:s3:::elsewhere' } }),
      APPLIED,
      ['export-settings-changed:critical'],
    ],
    [
      'compression changed',
      seen({ settings: { ...SPEC.settings, compression: 'GZIP' } }),
      APPLIED,
      ['export-settings-changed:medium'],
    ],
    [
      'delivery errors',
      seen({ deliveryErrors: ['S3.AccessDenied: denied'] }),
      APPLIED,
      ['export-delivery-errors:high'],
    ],
    ['as desired', seen(), APPLIED, []],
  ] as const)('%s', (_name, observed, applied, want) => {
    expect(kinds(observed, applied)).toEqual(want);
  });
});

// ---------------------------------------------------------------------------------------------

/** An exporter whose cloud is a map; `location`/`immutable` shape what checkDestination answers. */
function fakeExporter() {
  const resources = new Map<string, ExportObserved>();
  const calls: string[] = [];
  const state = { location: { cloud: 'aws' as const, region: 'eu-central-1' }, immutable: true };
  const exporter: AuditExporter = {
    cloud: 'aws',
    desired: (cluster, store) => ({
      ...SPEC,
      settings: {
        ...SPEC.settings,
        bucketArn: `arn:aws:s3:::${store.id.slice(4)}`,
        prefix: `audit-export/${cluster.id}/`,
      },
    }),
    async checkDestination(_c, spec) {
      calls.push(`check ${spec.settings.bucketArn}`);
      if (!state.immutable)
        throw new NotImmutableError(
          's3 bucket evidence-eu does not have object lock enabled',
          'aws:evidence-eu',
        );
      return state.location;
    },
    async observe(cluster) {
      calls.push(`observe ${cluster.id}`);
      return resources.get(cluster.id) ?? null;
    },
    async apply(cluster, spec) {
      calls.push(`apply ${cluster.id}`);
      resources.set(cluster.id, { ...spec, enabled: true, deliveryErrors: [] });
    },
    async exported(_c, spec) {
      return { store: { id: 'aws:evidence-eu' } as ArchiveStore, prefix: spec.settings.prefix ?? '' };
    },
  };
  return { exporter, resources, calls, state };
}

const OTHER: Cluster = { ...auditCluster, id: 'aws/111111111111/eu-central-1/orders', name: 'orders' };
let open: SqliteStateStore[] = [];
afterEach(async () => {
  for (const s of open) await s.close();
  open = [];
});

async function setup(
  audit: Record<string, unknown> = { mode: 'export' },
  evidence: Record<string, unknown> = {
    aws: { bucket: 'evidence-eu', region: 'eu-central-1' },
  },
) {
  const store = new SqliteStateStore({ path: ':memory:' });
  open.push(store);
  await store.putMany(
    INVENTORY,
    [auditCluster, OTHER].map((c) => ({ key: c.id, value: c })),
  );
  const config = FleetConfig.parse({
    version: 1,
    clouds: {
      aws: {
        accounts: [
          { id: '111111111111', roleArn: 'arn:aws:iam::111111111111:role/r', regions: ['eu-central-1'] },
        ],
      },
    },
    jurisdictions: { eu: { preset: 'eu-gdpr', evidence, audit } },
  });
  const fake = fakeExporter();
  const deps: AuditExportDeps = {
    config,
    store,
    residency: new Residency(config.jurisdictions),
    logger: silentLogger,
    clock: { now: () => new Date(AT) },
    exporters: createAuditExporters(
      config,
      { logger: silentLogger },
      {
        aws: async () => ({ createAuditExporter: () => fake.exporter }),
      },
    ),
    evidence: { for: async (j, cloud) => ({ id: `${cloud}:evidence-${j}` }) as ArchiveStore },
  };
  return { deps, store, fake };
}

describe('audit export job', () => {
  it('plans a create, applies it, records what it applied, and then plans no change', async () => {
    const { deps, store, fake } = await setup();

    const first = await plan(deps);
    expect(first.plans.map((p) => [p.clusterId, p.action])).toEqual([
      [OTHER.id, 'create'],
      [auditCluster.id, 'create'],
    ]);
    expect(first.plans[1]?.findings.map((f) => f.kind)).toEqual(['export-not-set-up']);
    expect(fake.calls.filter((c) => c.startsWith('apply'))).toEqual([]);

    const done = await apply(deps, { dryRun: false });
    expect(done.applied).toBe(2);
    expect(fake.resources.get(auditCluster.id)?.settings.prefix).toBe(`audit-export/${auditCluster.id}/`);
    const record = await store.get<AppliedExportRecord>(AUDIT_EXPORT_NS, `applied/${auditCluster.id}`);
    expect(record?.spec.destination).toBe(SPEC.destination);
    expect(await store.get(NS.findings, `audit-export/${auditCluster.id}`)).toBeUndefined();

    const again = await plan(deps);
    expect(again.plans.map((p) => p.action)).toEqual(['none', 'none']);
    expect(again.summary).toMatchObject({ create: 0, update: 0, unchanged: 2, findings: 0 });
  });

  it('refuses the whole apply above the change limit, and applies nothing in a dry run', async () => {
    const { deps, fake } = await setup();
    const limited = await apply(deps, { dryRun: false, maxChanges: 1 });
    expect(limited.tooMany).toMatchObject({ clusters: 2, maxChanges: 1 });
    const dry = await apply(deps, { dryRun: true });
    expect(dry.outcomes.map((o) => o.status)).toEqual(['planned', 'planned']);
    expect(fake.calls.filter((c) => c.startsWith('apply'))).toEqual([]);
    // Outside prod, dry run is the default.
    expect((await apply(deps)).dryRun).toBe(true);
  });

  it('refuses a destination that is not write-once: a critical finding, nothing applied', async () => {
    const { deps, fake } = await setup();
    fake.state.immutable = false;
    const result = await apply(deps, { dryRun: false, clusterId: auditCluster.id });
    expect(result.outcomes).toEqual([{ clusterId: auditCluster.id, action: 'create', status: 'refused' }]);
    expect(result.plans[0]?.findings.map((f) => `${f.kind}:${f.severity}`)).toContain(
      'export-destination-refused:critical',
    );
    expect(fake.resources.size).toBe(0);
  });

  it('refuses a destination outside the jurisdiction (residency guard)', async () => {
    const { deps, fake } = await setup();
    fake.state.location = { cloud: 'aws', region: 'us-east-1' };
    const result = await apply(deps, { dryRun: false });
    expect(result.outcomes.map((o) => o.status)).toEqual(['refused', 'refused']);
    expect(result.plans[0]?.findings.map((f) => f.kind)).toContain('export-outside-jurisdiction');
    expect(fake.resources.size).toBe(0);
  });

  it("makes a jurisdiction without a bucket on the cluster's cloud a finding: export cannot cross clouds", async () => {
    const { deps, fake } = await setup(
      { mode: 'export' },
      { gcp: { bucket: 'evidence-eu-gcs', location: 'europe-west3' } },
    );
    const result = await plan(deps, { clusterId: auditCluster.id });
    expect(result.plans[0]).toMatchObject({ action: 'skip' });
    expect(result.plans[0]?.findings.map((f) => f.kind)).toEqual(['export-no-evidence-bucket']);
    expect(fake.calls).toEqual([]);
  });

  it('names drift after an apply: the resource gone, then a narrowed filter', async () => {
    const { deps, fake } = await setup();
    await apply(deps, { dryRun: false, clusterId: auditCluster.id });
    fake.resources.delete(auditCluster.id);
    const gone = await plan(deps, { clusterId: auditCluster.id });
    expect(gone.plans[0]?.action).toBe('create');
    expect(gone.plans[0]?.findings.map((f) => f.kind)).toEqual(['export-missing']);
    await apply(deps, { dryRun: false, clusterId: auditCluster.id });
    const r = fake.resources.get(auditCluster.id)!;
    fake.resources.set(auditCluster.id, {
      ...r,
      filter: `${SPEC.filter.slice(0, -2)} && ($.verb = "delete") }`,
    });
    const narrowed = await plan(deps, { clusterId: auditCluster.id });
    expect(narrowed.plans[0]?.action).toBe('update');
    expect(narrowed.plans[0]?.changes.map((c) => c.field)).toEqual(['filter']);
    expect(narrowed.plans[0]?.findings.map((f) => f.kind)).toEqual(['export-filter-narrowed']);
  });

  it('reports a pull-mode cluster whose export still exists, and deletes nothing', async () => {
    const { deps, store, fake } = await setup({ mode: 'export' });
    await apply(deps, { dryRun: false, clusterId: auditCluster.id });
    (deps.config.jurisdictions.eu!.audit as { mode: string }).mode = 'pull';
    const result = await apply(deps, { dryRun: false });
    expect(result.plans.map((p) => [p.clusterId, p.action, p.findings.map((f) => f.kind)])).toEqual([
      [auditCluster.id, 'skip', ['export-left-in-pull-mode']],
    ]);
    expect(fake.resources.has(auditCluster.id)).toBe(true);
    // Once it is gone by hand, nothing is reported and it is no longer looked for.
    fake.resources.delete(auditCluster.id);
    expect((await plan(deps)).plans).toEqual([]);
    expect(await store.get(AUDIT_EXPORT_NS, `applied/${auditCluster.id}`)).toBeUndefined();
  });

  it('leaves export-mode clusters out of pull collection, with a note and no finding', async () => {
    const { store } = await setup();
    const jurisdictions = {
      eu: Jurisdiction.parse({ preset: 'eu-gdpr', audit: { clusters: { [auditCluster.id]: 'export' } } }),
    };
    let read = 0;
    const result = await collect(
      {
        config: { jurisdictions },
        store,
        residency: new Residency(jurisdictions),
        logger: silentLogger,
        clock: { now: () => new Date(AT) },
        // A source that counts reads: the quota report may look a cluster's source up, but an
        // export-mode cluster is never read.
        sources: {
          for() {
            return {
              enabled: async () => ({ enabled: true }),
              async *read() {
                read++;
                yield [];
              },
            };
          },
        },
        archives: { for: async () => ({ id: 'aws:evidence-eu' }) as ArchiveStore },
      },
      { clusterId: auditCluster.id },
    );
    expect(result.outcomes).toEqual([
      {
        clusterId: auditCluster.id,
        status: 'skipped',
        findings: [],
        note: 'export mode: the cloud delivers',
      },
    ]);
    expect(read).toBe(0);
  });
});
