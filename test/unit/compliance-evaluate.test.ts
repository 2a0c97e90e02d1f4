/**
 * Per-cluster evaluation of every control, from records written to a real (in-memory
 * SQLite) state store in the shapes the jobs write them, then read back by loadEvidence.
 */
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type GkeCluster, normaliseCluster } from '../../shared/clouds/gcp/discovery.ts';
import { CONTROL_IDS } from '../../shared/compliance/catalogue.ts';
import { countStatuses, type EvaluationContext, evaluateCluster } from '../../shared/compliance/evaluate.ts';
import { type ClusterEvidence, emptyEvidence, loadEvidence } from '../../shared/compliance/evidence.ts';
import { ControlResult } from '../../shared/compliance/schema.ts';
import { FleetConfig } from '../../shared/config/schema.ts';
import { normalisePushMessage, parsePushBody } from '../../shared/events/gcp.ts';
import { type Bulletin, bulletinFinding, bulletinOf } from '../../shared/jobs/security-bulletin.ts';
import type { Cluster, Finding } from '../../shared/model.ts';
import type { StateStore, StoredItem } from '../../shared/ports.ts';
import { Residency } from '../../shared/residency/index.ts';
import type {
  AuditStatusRecord,
  AuditVerifyRecord,
  BackupRecord,
  BackupStatus,
  BudgetPlanResult,
  DrillRecord,
  StoredTagPlan,
} from '../../shared/state/records.ts';
import { SqliteStateStore } from '../../shared/state/sqlite.ts';

const NOW = new Date('2026-11-21T12:00:00.000Z');
const ACCOUNT = '111111111111';
const hoursAgo = (h: number) => new Date(NOW.getTime() - h * 3_600_000).toISOString();

function config(overrides: Record<string, unknown> = {}): FleetConfig {
  return FleetConfig.parse({
    version: 1,
    clouds: {
      aws: {
        accounts: [{ id: ACCOUNT, roleArn: `arn:aws:iam::${ACCOUNT}:role/fleetward`, regions: 'all' }],
      },
    },
    jurisdictions: {
      eu: {
        preset: 'eu-gdpr',
        backup: { rpoHours: 24 },
        drill: { intervalDays: 30, rtoMinutes: 60 },
        exceptions: [
          { allowCountries: ['CH'], reason: 'zurich dr site approved', expires: '2026-12-31' },
          { allowCountries: ['US'], reason: 'migration window closed', expires: '2026-01-31' },
        ],
      },
      in: { preset: 'in-dpdp' },
    },
    policies: { tags: { required: { owner: {}, 'cost-center': { pattern: 'cc-\\d+' } } } },
    budgets: [
      {
        name: 'aws-main',
        cloud: 'aws',
        scope: { account: ACCOUNT },
        amount: 1000,
        currency: 'USD',
        thresholds: [{ percent: 80, spend: 'actual' }],
        notify: { emails: ['finops@example.com'] },
      },
    ],
    ...overrides,
  });
}

function context(cfg: FleetConfig = config()): EvaluationContext {
  return { config: cfg, residency: new Residency(cfg.jurisdictions, { now: () => NOW }), now: NOW };
}

/** An EKS cluster in Frankfurt that passes every inventory-based control. */
function cluster(extra: Partial<Cluster> = {}): Cluster {
  const base: Cluster = {
    id: `aws/${ACCOUNT}/eu-central-1/prod`,
    cloud: 'aws',
    scope: ACCOUNT,
    region: 'eu-central-1',
    name: 'prod',
    kubernetesVersion: '1.34.2',
    endpoint: 'https://prod.example.internal',
    endpointAccess: 'private',
    secretsEncryptionKey: `arn:aws:kms:eu-central-1:${ACCOUNT}:key/0000`,
    auditLogging: true,
    tags: { owner: 'team-a', 'cost-center': 'cc-42' },
    status: 'running',
    providerStatus: 'ACTIVE',
    createdAt: '2025-01-01T00:00:00.000Z',
    country: 'DE',
    jurisdiction: 'eu',
  };
  const merged = { ...base, ...extra };
  if (extra.id === undefined) merged.id = `${merged.cloud}/${merged.scope}/${merged.region}/${merged.name}`;
  return merged;
}

/** The unassigned cluster of the sandbox: a region no jurisdiction covers. */
const unassigned = (extra: Partial<Cluster> = {}) =>
  cluster({ region: 'us-east-1', country: 'US', jurisdiction: 'unassigned', ...extra });
const kubeconfigCluster = (extra: Partial<Cluster> = {}) =>
  cluster({
    id: 'kubeconfig/lab/eu-central-1/ctx',
    cloud: 'kubeconfig',
    scope: 'lab',
    name: 'ctx',
    secretsEncryptionKey: null,
    auditLogging: null,
    endpointAccess: 'unknown',
    ...extra,
  });

// --- records, in the shapes the jobs write them -------------------------------------------

type Seed = { namespace: string; items: StoredItem[] }[];
type SeedFn = (c: Cluster) => Seed;

const put = (namespace: string, key: string, value: unknown): Seed => [
  { namespace, items: [{ key, value }] },
];
const all =
  (...fns: SeedFn[]): SeedFn =>
  (c) =>
    fns.flatMap((f) => f(c));

const backupStatus =
  (completedAt: string | null, extra: Partial<BackupStatus> = {}): SeedFn =>
  (c) =>
    put('backup-status', c.id, {
      clusterId: c.id,
      jurisdiction: c.jurisdiction,
      lastBackup: completedAt ? { name: 'b-last', phase: 'Completed', completedAt } : null,
      lastCompleted: completedAt ? { name: 'b-last', completedAt, itemsBackedUp: 10 } : null,
      rpoSeconds: null,
      rpoTargetSeconds: 86_400,
      rpoOk: null,
      findings: [],
      checkedAt: hoursAgo(1),
      ...extra,
    } satisfies BackupStatus);

const backup =
  (name: string, extra: Partial<BackupRecord> = {}): SeedFn =>
  (c) =>
    put('backups', `${c.id}/${name}`, {
      clusterId: c.id,
      jurisdiction: c.jurisdiction,
      name,
      window: hoursAgo(3),
      runId: 'run-1',
      storageLocation: 'default',
      bucket: { name: 'velero-eu', cloud: 'aws', region: 'eu-central-1' },
      namespaces: ['app'],
      createdAt: hoursAgo(3),
      phase: 'Completed',
      completedAt: hoursAgo(2),
      ...extra,
    } satisfies BackupRecord);

const drill =
  (id: string, extra: Partial<DrillRecord> = {}): SeedFn =>
  (c) =>
    put('drills', `${c.id}/${id}`, {
      id,
      sourceClusterId: c.id,
      targetClusterId: c.id,
      jurisdiction: c.jurisdiction,
      backupName: 'b-last',
      backupItems: 10,
      namespaces: ['app'],
      scratchNamespaces: ['fw-drill-app'],
      phase: 'done',
      result: 'pass',
      reasons: [],
      startedAt: hoursAgo(24 * 5),
      restoreCreatedAt: hoursAgo(24 * 5),
      restorePhase: 'Completed',
      itemsRestored: 10,
      workloads: { total: 1, ready: 1 },
      verifiedAt: hoursAgo(24 * 5 - 0.5),
      rtoSeconds: 1200,
      rtoTargetSeconds: 3600,
      scratchLeft: 0,
      finishedAt: hoursAgo(24 * 5 - 0.5),
      updatedAt: hoursAgo(24 * 5 - 0.5),
      ...extra,
    } satisfies DrillRecord);

const auditStatus =
  (extra: Partial<AuditStatusRecord> = {}): SeedFn =>
  (c) =>
    put('audit', `status/${c.id}`, {
      clusterId: c.id,
      jurisdiction: c.jurisdiction,
      archive: 'aws:audit-eu',
      location: { cloud: 'aws', region: 'eu-west-1' },
      inJurisdiction: true,
      compliantStorage: true,
      retentionDays: 400,
      checkedAt: hoursAgo(2),
      lastEventAt: hoursAgo(2.5),
      headSeq: 12,
      ...extra,
    } satisfies AuditStatusRecord);

const auditVerify =
  (extra: Partial<AuditVerifyRecord> = {}): SeedFn =>
  (c) =>
    put('audit', `verify/${c.id}`, {
      clusterId: c.id,
      ok: true,
      chunks: 12,
      events: 3400,
      verifiedAt: hoursAgo(6),
      ...extra,
    } satisfies AuditVerifyRecord);

const findings =
  (job: string, ...kinds: string[]): SeedFn =>
  (c) =>
    put(
      'findings',
      `${job}/${c.id}`,
      kinds.map(
        (kind): Finding => ({
          clusterId: c.id,
          jurisdiction: c.jurisdiction,
          kind,
          severity: 'high',
          message: `${kind} found`,
          at: hoursAgo(1),
        }),
      ),
    );

const tagPlan =
  (plan: Partial<StoredTagPlan['plan']> = {}): SeedFn =>
  (c) =>
    put('tags', `plan/${c.id}`, {
      runId: 'run-t',
      at: hoursAgo(4),
      plan: {
        clusterId: c.id,
        cloud: c.cloud,
        region: c.region,
        name: c.name,
        taggable: true,
        changes: [],
        findings: [],
        ...plan,
      },
    } satisfies StoredTagPlan);

const budgetPlan =
  (extra: Partial<BudgetPlanResult> = {}): SeedFn =>
  () =>
    put('budgets', 'plan/latest', {
      runId: 'run-b',
      at: hoursAgo(8),
      changes: [],
      findings: [],
      failures: [],
      summary: 'no changes',
      ...extra,
    } satisfies BudgetPlanResult);

/** GCP-2022-005, from the recorded SecurityBulletinEvent sample (test/fixtures/events/README.md). */
function sampleBulletin(extra: Partial<Bulletin> = {}): Bulletin {
  const body = JSON.parse(
    readFileSync('test/fixtures/events/gcp/notification-security-bulletin.json', 'utf8'),
  );
  return { ...bulletinOf(normalisePushMessage(parsePushBody(body))), ...extra };
}

/** The findings the bulletin job records, as it records them, when the cluster ran `version`. */
const bulletins =
  (version: string, ...list: Bulletin[]): SeedFn =>
  (c) =>
    put(
      'findings',
      `security-bulletin/${c.id}`,
      list.map((b) => bulletinFinding({ ...c, kubernetesVersion: version }, b, hoursAgo(48))),
    );

const nothing: SeedFn = () => [];

// --- harness -----------------------------------------------------------------------------

let store: SqliteStateStore;
beforeEach(() => {
  store = new SqliteStateStore({ path: ':memory:', clock: { now: () => NOW } });
});
afterEach(async () => {
  await store.close();
});

async function seed(s: Seed): Promise<void> {
  for (const { namespace, items } of s) await store.putMany(namespace, items);
}

async function evaluate(c: Cluster, seedFn: SeedFn, ctx = context()): Promise<ControlResult[]> {
  await seed(seedFn(c));
  const evidence = (await loadEvidence(store, [c])).get(c.id)!;
  return evaluateCluster(c, evidence, ctx);
}

async function resultOf(control: string, c: Cluster, seedFn: SeedFn, ctx?: EvaluationContext) {
  const results = await evaluate(c, seedFn, ctx);
  const result = results.find((r) => r.control === control);
  if (!result) throw new Error(`no result for ${control}`);
  return result;
}

type Case = [name: string, c: Cluster, seed: SeedFn, status: ControlResult['status'], reason?: RegExp];

function controlCases(control: string, cases: Case[], ctx?: () => EvaluationContext) {
  describe(control, () => {
    it.each(cases)('%s', async (_name, c, seedFn, status, reason) => {
      // Act
      const result = await resultOf(control, c, seedFn, ctx?.());

      // Assess
      expect(result.status, result.reason).toBe(status);
      if (reason) expect(result.reason).toMatch(reason);
      expect(ControlResult.parse(result)).toEqual(result);
      expect(result.remedy !== undefined).toBe(status === 'fail');
      if (status !== 'not-applicable') expect(result.evidence.length).toBeGreaterThan(0);
    });
  });
}

// --- per control -------------------------------------------------------------------------

describe('evaluateCluster', () => {
  controlCases('residency.cluster-region', [
    ['in a country of its jurisdiction', cluster(), nothing, 'pass', /inside jurisdiction "eu"/],
    ['in no jurisdiction (sandbox: unassigned)', unassigned(), nothing, 'fail', /no configured jurisdiction/],
    ['unknown region, no country', unassigned({ region: 'mars-1', country: null }), nothing, 'fail'],
    [
      'in a country a live exception allows',
      cluster({ region: 'eu-central-2', country: 'CH' }),
      nothing,
      'pass',
      /exception expiring 2026-12-31/,
    ],
    [
      'in a country whose exception expired',
      cluster({ region: 'us-east-2', country: 'US' }),
      nothing,
      'fail',
      /no live exception/,
    ],
    [
      'in a jurisdiction fleet.yaml no longer has',
      cluster({ jurisdiction: 'za' }),
      nothing,
      'fail',
      /no longer configures/,
    ],
    ['country not recorded', kubeconfigCluster({ country: null }), nothing, 'unknown'],
  ]);

  controlCases('residency.backup-storage', [
    ['latest backup in Frankfurt', cluster(), backup('b1'), 'pass', /velero-eu in DE/],
    [
      'latest backup in the US',
      cluster(),
      all(
        backup('b1'),
        backup('b2', {
          createdAt: hoursAgo(1),
          bucket: { name: 'velero-us', cloud: 'aws', region: 'us-east-1' },
        }),
      ),
      'fail',
      /velero-us is in US/,
    ],
    [
      'bucket in Zurich under a live exception',
      cluster(),
      backup('b1', { bucket: { name: 'velero-ch', cloud: 'aws', region: 'eu-central-2' } }),
      'pass',
      /exception/,
    ],
    [
      'bucket in an unknown region',
      cluster(),
      backup('b1', { bucket: { name: 'x', cloud: 'aws', region: 'moon-1' } }),
      'fail',
      /cannot be verified/,
    ],
    [
      'preflight found the BSL outside',
      cluster(),
      all(backup('b1'), findings('backup', 'bsl-outside-jurisdiction')),
      'fail',
      /refused/,
    ],
    [
      'only backups without a located bucket',
      cluster(),
      backup('b1', { bucket: null }),
      'unknown',
      /no backup record/,
    ],
    ['backup job never ran', cluster(), nothing, 'unknown', /no backup record/],
    ['unassigned cluster', unassigned(), nothing, 'not-applicable'],
  ]);

  controlCases('residency.audit-archive', [
    ['archive in Ireland', cluster(), auditStatus(), 'pass', /in IE/],
    [
      'archive in the US',
      cluster(),
      auditStatus({ location: { cloud: 'aws', region: 'us-east-1' } }),
      'fail',
      /outside/,
    ],
    [
      'archive in a local directory',
      cluster(),
      auditStatus({ archive: 'local:/x', location: null, compliantStorage: false }),
      'fail',
      /no cloud location/,
    ],
    [
      'audit job refused the archive',
      cluster(),
      all(auditStatus(), findings('audit', 'archive-outside-jurisdiction')),
      'fail',
    ],
    ['audit collect never ran', cluster(), nothing, 'unknown', /no audit status/],
    ['unassigned cluster', unassigned(), nothing, 'not-applicable'],
  ]);

  controlCases('security.secrets-encryption', [
    ['EKS with a KMS key', cluster(), nothing, 'pass'],
    ['EKS without a key (sandbox)', cluster({ secretsEncryptionKey: null }), nothing, 'fail'],
    [
      'GKE without a key (sandbox)',
      cluster({ cloud: 'gcp', scope: 'proj-a', region: 'europe-west3', secretsEncryptionKey: null }),
      nothing,
      'fail',
    ],
    [
      'AKS without a key (sandbox)',
      cluster({
        cloud: 'azure',
        scope: 'sub',
        region: 'westeurope',
        country: 'NL',
        secretsEncryptionKey: null,
      }),
      nothing,
      'fail',
    ],
    ['kubeconfig cannot tell', kubeconfigCluster(), nothing, 'unknown'],
  ]);

  it.each([
    ['aws', /associate-encryption-config/],
    ['gcp', /database-encryption-key/],
    ['azure', /azure-keyvault-kms/],
  ] as const)('names the %s setting to change when Secrets are not encrypted', async (cloud, remedy) => {
    const result = await resultOf(
      'security.secrets-encryption',
      cluster({ cloud, secretsEncryptionKey: null }),
      nothing,
    );
    expect(result.remedy).toMatch(remedy);
  });

  controlCases('security.private-endpoint', [
    ['private', cluster(), nothing, 'pass'],
    ['public only', cluster({ endpointAccess: 'public' }), nothing, 'fail', /public only/],
    [
      'public and private',
      cluster({ endpointAccess: 'public-and-private' }),
      nothing,
      'unknown',
      /authorised networks/,
    ],
    ['not reported', cluster({ endpointAccess: 'unknown' }), nothing, 'unknown'],
  ]);

  const aks = (extra: Partial<Cluster> = {}) =>
    cluster({
      cloud: 'azure',
      scope: 'sub',
      region: 'westeurope',
      country: 'NL',
      auditLogging: null,
      ...extra,
    });
  controlCases('audit.logging-enabled', [
    ['on in the inventory', cluster(), nothing, 'pass'],
    ['off in the inventory (sandbox)', cluster({ auditLogging: false }), nothing, 'fail', /off/],
    [
      'AKS with an audit-logging-off finding (sandbox)',
      aks(),
      findings('audit', 'audit-logging-off'),
      'fail',
    ],
    [
      'on in the inventory but the audit job found it off',
      cluster(),
      findings('audit', 'audit-logging-off'),
      'fail',
    ],
    ['AKS whose audit log the audit job read', aks(), auditStatus(), 'pass', /last successful collection/],
    ['AKS with nothing recorded', aks(), nothing, 'unknown', /does not report/],
    ['AKS with only another audit finding', aks(), findings('audit', 'audit-source-unreachable'), 'unknown'],
  ]);

  controlCases('audit.archive-current', [
    ['fresh and write-once', cluster(), auditStatus(), 'pass'],
    ['not write-once', cluster(), auditStatus({ compliantStorage: false }), 'fail', /not write-once/],
    [
      'immutability check failed',
      cluster(),
      all(auditStatus(), findings('audit', 'archive-not-immutable')),
      'fail',
    ],
    [
      'last collection 30 h ago',
      cluster(),
      auditStatus({ checkedAt: hoursAgo(30), lastEventAt: hoursAgo(30) }),
      'fail',
      /last successful audit collection/,
    ],
    [
      'collection ran but nothing archived',
      cluster(),
      auditStatus({ lastEventAt: null }),
      'fail',
      /no audit event/,
    ],
    [
      'collection ran but the newest event is 3 days old',
      cluster(),
      auditStatus({ lastEventAt: hoursAgo(72) }),
      'fail',
      /newest archived audit event/,
    ],
    [
      'exactly 26 h old',
      cluster(),
      auditStatus({ checkedAt: hoursAgo(26), lastEventAt: hoursAgo(26) }),
      'pass',
    ],
    ['audit collect never ran', cluster(), nothing, 'unknown'],
    ['unassigned cluster', unassigned(), nothing, 'not-applicable'],
  ]);

  controlCases('audit.chain-verified', [
    ['verified', cluster(), auditVerify(), 'pass', /12 chunks/],
    [
      'altered chunk',
      cluster(),
      auditVerify({
        ok: false,
        chunks: 3,
        firstProblem: { seq: 4, key: 'k4', problem: 'altered', detail: 'SHA-256 differs' },
      }),
      'fail',
      /seq 4/,
    ],
    [
      'chain conflict found by collect',
      cluster(),
      all(auditVerify(), findings('audit', 'audit-chain-conflict')),
      'fail',
    ],
    [
      'archive unreadable',
      cluster(),
      auditVerify({ ok: false, chunks: 0, error: { name: 'Error', message: 'access denied' } }),
      'unknown',
      /access denied/,
    ],
    ['never verified', cluster(), nothing, 'unknown', /never verified/],
    [
      'verified an empty chain',
      cluster(),
      auditVerify({ chunks: 0, events: 0 }),
      'unknown',
      /no archived chunk/,
    ],
    ['unassigned cluster', unassigned(), nothing, 'not-applicable'],
  ]);

  controlCases('backup.rpo', [
    ['completed 5 h ago', cluster(), backupStatus(hoursAgo(5)), 'pass'],
    ['completed 30 h ago', cluster(), backupStatus(hoursAgo(30)), 'fail', /over the RPO target of 24 h/],
    [
      'status old but a newer backup completed since',
      cluster(),
      all(backupStatus(hoursAgo(30)), backup('b9', { completedAt: hoursAgo(2) })),
      'pass',
      /b9/,
    ],
    ['no backup completed yet', cluster(), backupStatus(null), 'fail', /no backup/],
    ['reconcile never ran', cluster(), nothing, 'unknown'],
    [
      'a failed backup record only',
      cluster(),
      backup('b1', { phase: 'Failed', completedAt: hoursAgo(2) }),
      'fail',
      /no backup/,
    ],
    ['unassigned cluster', unassigned(), nothing, 'not-applicable'],
  ]);

  controlCases('backup.restore-drill', [
    ['passed 5 days ago in 20 min', cluster(), drill('d1'), 'pass'],
    [
      'failed',
      cluster(),
      drill('d1', { result: 'fail', reasons: ['2 of 3 workloads ready'] }),
      'fail',
      /2 of 3 workloads/,
    ],
    [
      'passed 40 days ago',
      cluster(),
      drill('d1', { startedAt: hoursAgo(24 * 40), finishedAt: hoursAgo(24 * 40 - 1) }),
      'fail',
      /30-day interval/,
    ],
    [
      'ran over the RTO',
      cluster(),
      drill('d1', { rtoSeconds: 5400 }),
      'fail',
      /over the RTO target of 60 min/,
    ],
    [
      'the newest of several drills decides',
      cluster(),
      all(
        drill('d0', { result: 'fail', startedAt: hoursAgo(24 * 9), finishedAt: hoursAgo(24 * 9) }),
        drill('d1'),
      ),
      'pass',
    ],
    [
      'only a drill in progress',
      cluster(),
      drill('d1', { phase: 'restoring', result: null, finishedAt: null }),
      'unknown',
      /not finished/,
    ],
    ['passed without a restore time', cluster(), drill('d1', { rtoSeconds: null }), 'unknown'],
    ['never drilled', cluster(), nothing, 'unknown', /no drill record/],
    ['unassigned cluster', unassigned(), nothing, 'not-applicable'],
  ]);

  controlCases('cost.required-tags', [
    ['inventory has both tags', cluster(), nothing, 'pass', /inventory/],
    [
      'inventory lacks owner',
      cluster({ tags: { 'cost-center': 'cc-1' } }),
      nothing,
      'fail',
      /owner: missing/,
    ],
    [
      'inventory cost-center breaks the pattern',
      cluster({ tags: { owner: 'a', 'cost-center': 'marketing' } }),
      nothing,
      'fail',
      /not allowed/,
    ],
    ['tag plan clean', cluster({ tags: {} }), tagPlan(), 'pass', /tag plan/],
    [
      'tag plan has a missing-tag finding',
      cluster(),
      tagPlan({
        findings: [{ kind: 'missing-tag', key: 'owner', message: 'owner: missing (required; not invented)' }],
      }),
      'fail',
    ],
    [
      'tag plan would write a default',
      cluster(),
      tagPlan({ changes: [{ key: 'owner', before: null, after: 'platform', source: 'default' }] }),
      'fail',
      /not written yet/,
    ],
    ['kubeconfig cluster', kubeconfigCluster(), nothing, 'not-applicable'],
  ]);

  it('marks required tags not applicable when none are configured', async () => {
    const ctx = context(config({ policies: {} }));
    const result = await resultOf('cost.required-tags', cluster({ tags: {} }), nothing, ctx);
    expect(result.status).toBe('not-applicable');
  });

  controlCases('cost.budget-coverage', [
    ['covered and created', cluster(), budgetPlan(), 'pass', /aws-main/],
    [
      'account no budget covers',
      cluster({ scope: '222222222222' }),
      budgetPlan(),
      'fail',
      /no budget in fleet.yaml covers AWS account 222222222222/,
    ],
    ['covered in config, plan never ran', cluster(), nothing, 'unknown', /no budget plan/],
    [
      'covered in config, not created yet',
      cluster(),
      budgetPlan({
        changes: [
          { action: 'create', address: `aws/${ACCOUNT}/fleetward-aws-main`, cloud: 'aws', name: 'aws-main' },
        ],
      }),
      'fail',
      /not created yet/,
    ],
    [
      'plan could not list AWS budgets',
      cluster(),
      budgetPlan({ failures: [{ cloud: 'aws', error: { name: 'Error', message: 'throttled' } }] }),
      'unknown',
    ],
    ['kubeconfig cluster', kubeconfigCluster(), nothing, 'not-applicable'],
  ]);

  controlCases('lifecycle.k8s-standard-support', [
    ['EKS 1.34 (until 2026-12-02)', cluster(), nothing, 'pass', /until 2026-12-02/],
    [
      'EKS v1.31.2-eks-1234',
      cluster({ kubernetesVersion: 'v1.31.2-eks-1234' }),
      nothing,
      'fail',
      /ended on 2025-11-26/,
    ],
    [
      'GKE 1.35.1-gke.1678000',
      cluster({ cloud: 'gcp', kubernetesVersion: '1.35.1-gke.1678000' }),
      nothing,
      'pass',
    ],
    ['AKS 1.33.2', cluster({ cloud: 'azure', kubernetesVersion: '1.33.2' }), nothing, 'fail'],
    [
      'a version newer than the calendar',
      cluster({ kubernetesVersion: '1.40.0' }),
      nothing,
      'unknown',
      /not in the aws support calendar/,
    ],
    ['no version reported', cluster({ kubernetesVersion: null }), nothing, 'unknown'],
    ['kubeconfig cluster', kubeconfigCluster(), nothing, 'not-applicable'],
  ]);

  const gke = (extra: Partial<Cluster> = {}) =>
    cluster({
      cloud: 'gcp',
      scope: 'proj-a',
      region: 'europe-west3',
      kubernetesVersion: '1.22.5-gke.1000',
      ...extra,
    });
  const intake = () =>
    context(
      config({
        events: {
          gcp: {
            audience: 'https://events.example.test/gcp',
            serviceAccountEmail: 'push@p.iam.gserviceaccount.com',
          },
        },
      }),
    );
  const other = sampleBulletin({
    bulletinId: 'GCP-2023-001',
    severity: 'high',
    cveIds: ['CVE-2022-0001'],
    affectedSupportedMinors: ['1.22'],
    patchedVersions: ['1.22.9-gke.100'],
    suggestedUpgradeTarget: '1.22.9-gke.100',
  });

  controlCases('lifecycle.security-bulletins', [
    [
      'GKE still on the version a bulletin affects',
      gke(),
      bulletins('1.22.5-gke.1000', sampleBulletin()),
      'fail',
      /GCP-2022-005.*1\.22\.5-gke\.1000.*1\.22\.6-gke\.600/,
    ],
    [
      'GKE upgraded to the patched version since',
      gke({ kubernetesVersion: '1.22.6-gke.600' }),
      bulletins('1.22.5-gke.1000', sampleBulletin()),
      'pass',
      /GCP-2022-005/,
    ],
    [
      'GKE upgraded to a minor the bulletin does not name',
      gke({ kubernetesVersion: '1.24.1-gke.100' }),
      bulletins('1.22.5-gke.1000', sampleBulletin()),
      'pass',
    ],
    [
      'GKE with one bulletin patched and another still open',
      gke({ kubernetesVersion: '1.22.6-gke.600' }),
      bulletins('1.22.5-gke.1000', sampleBulletin(), other),
      'fail',
      /^(?!.*GCP-2022-005).*GCP-2023-001/,
    ],
    [
      'GKE with a bulletin but no version reported now',
      gke({ kubernetesVersion: null }),
      bulletins('1.22.5-gke.1000', sampleBulletin()),
      'unknown',
      /version/,
    ],
    [
      'GKE with a bulletin finding recorded without its facts',
      gke(),
      findings('security-bulletin', 'security-bulletin'),
      'fail',
      /cannot be re-checked/,
    ],
    [
      'GKE with no bulletin, no Pub/Sub intake configured',
      gke(),
      nothing,
      'unknown',
      /events\.gcp is not configured/,
    ],
    ['EKS: no bulletins through cluster notifications', cluster(), nothing, 'not-applicable', /only GKE/],
    [
      'AKS: no bulletins through cluster notifications',
      cluster({ cloud: 'azure', scope: 'sub', region: 'westeurope', country: 'NL' }),
      nothing,
      'not-applicable',
      /only GKE/,
    ],
    ['kubeconfig cluster', kubeconfigCluster(), nothing, 'not-applicable'],
  ]);

  controlCases(
    'lifecycle.security-bulletins',
    [
      [
        'GKE with no bulletin and the Pub/Sub intake configured',
        gke(),
        nothing,
        'unknown',
        /cannot tell whether .* receives/,
      ],
    ],
    intake,
  );

  it('gives each bulletin\u2019s facts as evidence and the suggested upgrade as the remedy', async () => {
    // Act
    const result = await resultOf(
      'lifecycle.security-bulletins',
      gke(),
      bulletins('1.22.5-gke.1000', sampleBulletin()),
    );

    // Assess
    expect(result.remedy).toMatch(/1\.22\.6-gke\.1000/);
    expect(result.evidence).toContainEqual({
      source: 'findings',
      recordId: `findings/security-bulletin/${gke().id}`,
      observedAt: hoursAgo(48),
      values: expect.objectContaining({
        bulletinId: 'GCP-2022-005',
        severity: 'medium',
        cveIds: ['CVE-2021-43527'],
        clusterVersion: '1.22.5-gke.1000',
        patchedVersion: '1.22.6-gke.600',
        bulletinUri: 'https://cloud.google.com/kubernetes-engine/docs/security-bulletins#gcp-2022-005',
        affected: true,
      }),
    });
  });

  it('recommends a minor still in standard support when support ended', async () => {
    const result = await resultOf(
      'lifecycle.k8s-standard-support',
      cluster({ kubernetesVersion: '1.30.1' }),
      nothing,
    );
    expect(result.remedy).toMatch(/to 1\.34 or later/);
  });
});

describe('evaluateCluster results', () => {
  it('returns one result per control, in catalogue order, each schema-valid', async () => {
    // Act
    const results = await evaluate(cluster(), nothing);

    // Assess
    expect(results.map((r) => r.control)).toEqual(CONTROL_IDS);
    for (const r of results) expect(ControlResult.safeParse(r).success).toBe(true);
  });

  it('never passes a control without evidence: a cluster with an empty store', () => {
    // Prepare: a cluster whose inventory says nothing either.
    const blank = kubeconfigCluster({ kubernetesVersion: null, country: null, tags: {} });

    // Act
    const results = evaluateCluster(blank, emptyEvidence(blank.id), context());

    // Assess
    expect(results.filter((r) => r.status === 'pass')).toEqual([]);
  });

  it('evaluates a fully evidenced cluster as passing everything', async () => {
    const results = await evaluate(
      cluster(),
      all(
        backup('b1'),
        backupStatus(hoursAgo(3)),
        drill('d1'),
        auditStatus(),
        auditVerify(),
        tagPlan(),
        budgetPlan(),
      ),
    );
    // Only GKE publishes security bulletins as cluster notifications: not applicable to this EKS cluster.
    const others = results.filter((r) => r.control !== 'lifecycle.security-bulletins');
    expect(others.filter((r) => r.status !== 'pass').map((r) => `${r.control}: ${r.reason}`)).toEqual([]);
    expect(countStatuses(results)).toEqual({
      pass: CONTROL_IDS.length - 1,
      fail: 0,
      'not-applicable': 1,
      unknown: 0,
    });
  });

  it('records where each piece of evidence came from', async () => {
    const results = await evaluate(cluster(), all(backupStatus(hoursAgo(3)), auditVerify()));
    const rpo = results.find((r) => r.control === 'backup.rpo')!;
    const chain = results.find((r) => r.control === 'audit.chain-verified')!;
    expect(rpo.evidence.map((e) => e.recordId)).toContain(`backup-status/${cluster().id}`);
    expect(chain.evidence).toContainEqual(
      expect.objectContaining({
        source: 'audit-verify',
        recordId: `audit/verify/${cluster().id}`,
        observedAt: hoursAgo(6),
      }),
    );
  });
});

describe('countStatuses', () => {
  it.each([
    [[], { pass: 0, fail: 0, 'not-applicable': 0, unknown: 0 }],
    [
      ['pass', 'fail', 'fail', 'unknown', 'not-applicable', 'pass', 'pass'],
      { pass: 3, fail: 2, 'not-applicable': 1, unknown: 1 },
    ],
  ] as const)('counts %j', (statuses, counts) => {
    expect(countStatuses(statuses.map((status) => ({ status })))).toEqual(counts);
  });
});

describe('loadEvidence', () => {
  /** Wraps a store and counts the reads, by namespace and prefix. */
  function counting(inner: StateStore) {
    const lists: string[] = [];
    const gets: string[] = [];
    const wrapped: StateStore = {
      get: (ns, key) => {
        gets.push(`${ns}/${key}`);
        return inner.get(ns, key);
      },
      list: (ns, options) => {
        lists.push(`${ns}/${options?.prefix ?? ''}`);
        return inner.list(ns, options);
      },
      putMany: (ns, items) => inner.putMany(ns, items),
      putIfAbsent: (ns, item) => inner.putIfAbsent(ns, item),
      deleteMany: (ns, keys) => inner.deleteMany(ns, keys),
      close: () => inner.close(),
    };
    return { wrapped, lists, gets };
  }

  it('reads each namespace once for the whole fleet, whatever its size', async () => {
    // Prepare
    const clusters = Array.from({ length: 25 }, (_, i) => cluster({ name: `c${i}` }));
    for (const c of clusters)
      await seed(all(backupStatus(hoursAgo(1)), backup('b1'), drill('d1'), auditStatus())(c));
    const { wrapped, lists, gets } = counting(store);

    // Act
    const evidence = await loadEvidence(wrapped, clusters);

    // Assess
    expect(evidence.size).toBe(25);
    expect(new Set(lists).size).toBe(lists.length);
    expect(lists.length).toBeLessThanOrEqual(8);
    expect(gets).toEqual(['budgets/plan/latest']);
    expect(
      [...evidence.values()].every((e) => e.backupStatus && e.backups.length === 1 && e.drills.length === 1),
    ).toBe(true);
  });

  it('reads only the records of one cluster when asked about one (the event path)', async () => {
    // Prepare: `prod` and `prod-2` share a key prefix; each has a backup, a drill and a status.
    const prod = cluster();
    const prod2 = cluster({ name: 'prod-2' });
    for (const c of [prod, prod2])
      await seed(all(backupStatus(hoursAgo(1)), backup('b1'), drill('d1'), auditStatus())(c));
    const { wrapped, lists } = counting(store);

    // Act
    const evidence = await loadEvidence(wrapped, [prod]);

    // Assess
    const e = evidence.get(prod.id)!;
    expect(e.backups.map((b) => b.recordId)).toEqual([`backups/${prod.id}/b1`]);
    expect(e.drills).toHaveLength(1);
    expect(e.backupStatus?.recordId).toBe(`backup-status/${prod.id}`);
    expect(lists).toContain(`backups/${prod.id}`);
    expect(lists).toContain(`drills/${prod.id}`);
    expect(lists).not.toContain('backups/');
  });

  it('gives each record to its own cluster, even when one id prefixes another', async () => {
    // Prepare: `.../prod` and `.../prod-2`, plus records of a cluster not asked about.
    const prod = cluster();
    const prod2 = cluster({ name: 'prod-2' });
    const other = cluster({ name: 'gone' });
    for (const c of [prod, prod2, other]) {
      await seed(
        all(
          backup(`b-${c.name}`),
          drill(`d-${c.name}`),
          auditStatus({ archive: `aws:${c.name}` }),
          findings('backup', 'velero-missing'),
          tagPlan(),
        )(c),
      );
    }
    // Audit namespace records that are not status or verify records are not evidence.
    await store.putMany('audit', [{ key: `head/${prod.id}`, value: { seq: 3 } }]);

    // Act
    const evidence = await loadEvidence(store, [prod, prod2]);

    // Assess
    const a = evidence.get(prod.id)!;
    const b = evidence.get(prod2.id)!;
    expect([...evidence.keys()]).toEqual([prod.id, prod2.id]);
    expect(a.backups.map((r) => r.value.name)).toEqual(['b-prod']);
    expect(b.backups.map((r) => r.value.name)).toEqual(['b-prod-2']);
    expect(a.drills.map((r) => r.recordId)).toEqual([`drills/${prod.id}/d-prod`]);
    expect(b.auditStatus?.value.archive).toBe('aws:prod-2');
    expect(a.auditStatus?.recordId).toBe(`audit/status/${prod.id}`);
    expect(Object.keys(a.findings)).toEqual(['backup']);
    expect(a.findings.backup?.recordId).toBe(`findings/backup/${prod.id}`);
    expect(a.tagPlan?.recordId).toBe(`tags/plan/${prod.id}`);
  });

  it('orders backups by creation and drills by start', async () => {
    const c = cluster();
    await seed(
      all(
        backup('z-old', { createdAt: hoursAgo(50) }),
        backup('a-new', { createdAt: hoursAgo(2) }),
        drill('z-first', { startedAt: hoursAgo(100) }),
        drill('a-second', { startedAt: hoursAgo(10) }),
      )(c),
    );
    const e = (await loadEvidence(store, [c])).get(c.id)!;
    expect(e.backups.map((b) => b.value.name)).toEqual(['z-old', 'a-new']);
    expect(e.drills.map((d) => d.value.id)).toEqual(['z-first', 'a-second']);
  });

  it('gives a cluster the store knows nothing about an empty entry', async () => {
    const c = cluster();
    const e: ClusterEvidence | undefined = (await loadEvidence(store, [c])).get(c.id);
    expect(e).toEqual(emptyEvidence(c.id));
  });
});

describe('a GKE cluster with loggingService none (recorded sample, test/fixtures/gcp/README.md)', () => {
  const sample = JSON.parse(
    readFileSync(new URL('../fixtures/gcp/gke-cluster-logging-none.json', import.meta.url), 'utf8'),
  ) as GkeCluster;
  // Moved to an EU region so the archive controls have a jurisdiction to measure against.
  const gke = (extra: Partial<Cluster> = {}): Cluster => ({
    ...normaliseCluster('example-project', { ...sample, location: 'europe-west1' }),
    country: 'BE',
    jurisdiction: 'eu',
    ...extra,
  });

  it('is discovered with its audit trail on: GKE always writes Admin Activity audit logs', () => {
    expect(sample.loggingService).toBe('none');
    expect(gke().auditLogging).toBe(true);
  });

  it('passes audit.logging-enabled, and the evidence says what is and is not captured', async () => {
    // Act
    const result = await resultOf('audit.logging-enabled', gke(), nothing);

    // Assess
    expect(result.status, result.reason).toBe('pass');
    expect(result.reason).toMatch(/writes of standard-cluster-1 are always audited \(Admin Activity/);
    expect(result.reason).toMatch(/reads are audited only if Data Access audit logs are enabled/);
    const coverage = result.evidence.find((e) => e.source === 'audit-coverage');
    expect(coverage?.values).toMatchObject({
      captured: expect.stringMatching(
        /^Admin Activity audit logs: .*impossible to disable, whatever .*loggingService/,
      ),
      notVerified: expect.stringMatching(/^Data Access audit logs: .*only if the project.s IAM audit config/),
      reference: expect.stringMatching(/^https:\/\/cloud\.google\.com\/kubernetes-engine\//),
    });
    expect(ControlResult.parse(result)).toEqual(result);
  });

  it('is not failed by a record from before: inventory false or an audit-logging-off finding', async () => {
    const result = await resultOf(
      'audit.logging-enabled',
      gke({ auditLogging: false }),
      findings('audit', 'audit-logging-off'),
    );
    expect(result.status, result.reason).toBe('pass');
  });

  it('the archive controls measure its archive like any other cluster', async () => {
    const results = await evaluate(gke(), auditStatus());
    const status = (id: string) => results.find((r) => r.control === id)?.status;
    expect(status('audit.archive-current')).toBe('pass');
    expect(status('residency.audit-archive')).toBe('pass');
  });

  it('an EKS cluster with the audit log type off still fails (no such guarantee on AWS)', async () => {
    const result = await resultOf('audit.logging-enabled', cluster({ auditLogging: false }), nothing);
    expect(result.status).toBe('fail');
    expect(result.evidence.some((e) => e.source === 'audit-coverage')).toBe(false);
  });
});
