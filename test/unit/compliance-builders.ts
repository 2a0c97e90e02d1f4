/**
 * Builders for compliance snapshot test objects: a realistic EU jurisdiction snapshot
 * (3 clusters on three clouds, 6 controls with law references, every status, evidence,
 * and a diff against a previous snapshot), valid against `JurisdictionSnapshot.parse`.
 * Every builder takes overrides; counts and the summary are derived, never typed in.
 */
import {
  type ClusterResult,
  type Control,
  type ControlResult,
  type ControlStatus,
  type EvidenceItem,
  JurisdictionSnapshot,
  SNAPSHOT_SCHEMA_VERSION,
  type SnapshotDiff,
  type StatusCounts,
} from '../../shared/compliance/schema.ts';

/** A six-control catalogue citing all four laws. */
export const CONTROLS: readonly Control[] = [
  {
    id: 'residency.cluster-region',
    title: 'Cluster runs inside the jurisdiction',
    rationale: 'Personal data processed by workloads stays in the countries the jurisdiction allows.',
    severity: 'critical',
    references: [
      { law: 'gdpr', cite: 'Art. 44', title: 'General principle for transfers' },
      { law: 'dpdp', cite: 's. 16(1)', title: 'Processing of personal data outside India' },
      { law: 'popia', cite: 's. 72(1)', title: 'Transfers of personal information outside Republic' },
      { law: 'ke-dpa', cite: 's. 48', title: 'Conditions for transfer out of Kenya' },
    ],
    evidence: ['inventory'],
    remedy: 'Move the cluster to a region of the jurisdiction or reassign it.',
  },
  {
    id: 'backup.recent',
    title: 'A backup completed in the last 24 hours',
    rationale: 'A recent backup keeps personal data available after an incident.',
    severity: 'high',
    references: [
      { law: 'gdpr', cite: 'Art. 32(1)(c)', title: 'Ability to restore availability and access' },
      { law: 'dpdp', cite: 's. 8(5)', title: 'Reasonable security safeguards' },
      { law: 'popia', cite: 's. 19(1)', title: 'Security measures on integrity and confidentiality' },
    ],
    evidence: ['backup-status'],
    remedy: 'Fix the Velero schedule and run a backup.',
  },
  {
    id: 'backup.residency',
    title: 'Backups are stored inside the jurisdiction',
    rationale: 'A backup is a copy of personal data and must not leave the jurisdiction.',
    severity: 'critical',
    references: [
      { law: 'gdpr', cite: 'Art. 44', title: 'General principle for transfers' },
      { law: 'ke-dpa', cite: 's. 50', title: 'Processing through a data server or data centre in Kenya' },
    ],
    evidence: ['inventory', 'backup-status'],
    remedy: 'Point the backup storage location at a bucket in the jurisdiction.',
  },
  {
    id: 'backup.immutable',
    title: 'Backup storage is write-once',
    rationale: 'Write-once storage protects backups against ransomware and accidental deletion.',
    severity: 'medium',
    references: [
      {
        law: 'gdpr',
        cite: 'Art. 32(1)(b)',
        title: 'Ongoing confidentiality, integrity, availability and resilience',
      },
      { law: 'popia', cite: 's. 19(2)', title: 'Safeguards against identified risks' },
    ],
    evidence: ['backup-status'],
    remedy: 'Enable Object Lock, a retention lock or an immutability policy on the backup bucket.',
  },
  {
    id: 'drill.restore-tested',
    title: 'A restore drill passed in the last 90 days',
    rationale: 'Only a tested restore shows that backups can bring data back.',
    severity: 'medium',
    references: [
      {
        law: 'gdpr',
        cite: 'Art. 32(1)(d)',
        title: 'Regularly testing, assessing and evaluating the effectiveness of measures',
      },
      { law: 'dpdp', cite: 's. 8(5)', title: 'Reasonable security safeguards' },
    ],
    evidence: ['drills'],
    remedy: 'Run a restore drill into the drill namespace.',
  },
  {
    id: 'audit.logs-collected',
    title: 'Kubernetes audit logs are collected in the jurisdiction',
    rationale: 'Audit logs show who accessed personal data and are themselves personal data.',
    severity: 'low',
    references: [
      { law: 'gdpr', cite: 'Art. 5(2)', title: 'Accountability' },
      { law: 'ke-dpa', cite: 's. 41(1)', title: 'Data protection by design or by default' },
    ],
    evidence: ['audit-status'],
    remedy: 'Enable control-plane audit logging and the regional audit collector.',
  },
];

/** The control ids, in catalogue order. */
export const CONTROL_IDS: readonly string[] = CONTROLS.map((c) => c.id);

/** One evidence item (a backup-status record, unless overridden). */
export function evidence(overrides: Partial<EvidenceItem> = {}): EvidenceItem {
  return {
    source: 'backup-status',
    recordId: 'backup-status/aws/111122223333/eu-west-1/prod-eu',
    observedAt: '2025-06-02T05:40:00Z',
    values: { lastBackupAt: '2025-06-02T03:00:00Z', phase: 'Completed', bucketRegion: 'eu-west-1' },
    ...overrides,
  };
}

/** One result; `remedy` is set exactly when the status is `fail` (from the catalogue unless given). */
export function result(
  control: string,
  status: ControlStatus,
  overrides: Partial<Omit<ControlResult, 'control' | 'status'>> = {},
): ControlResult {
  const catalogued = CONTROLS.find((c) => c.id === control);
  const base: ControlResult = {
    control,
    status,
    reason: `${control} is ${status}`,
    evidence: [evidence({ source: catalogued?.evidence[0] ?? 'inventory' })],
  };
  if (status === 'fail') base.remedy = catalogued?.remedy ?? 'fix it';
  return { ...base, ...overrides };
}

/** Counts of each status in a list of results. */
export function countsOf(results: readonly { status: ControlStatus }[]): StatusCounts {
  const counts: StatusCounts = { pass: 0, fail: 0, 'not-applicable': 0, unknown: 0 };
  for (const r of results) counts[r.status] += 1;
  return counts;
}

/** A cluster with the given results (`counts` derived from them). */
export function cluster(
  overrides: Partial<Omit<ClusterResult, 'counts'>> & { results?: ControlResult[] } = {},
): ClusterResult {
  const results = overrides.results ?? CONTROL_IDS.map((id) => result(id, 'pass'));
  return {
    id: 'aws/111122223333/eu-west-1/prod-eu',
    name: 'prod-eu',
    cloud: 'aws',
    scope: '111122223333',
    region: 'eu-west-1',
    country: 'IE',
    kubernetesVersion: '1.33',
    ...overrides,
    results,
    counts: countsOf(results),
  };
}

/** The three clusters of the default snapshot: every status appears, with realistic reasons and evidence. */
export function defaultClusters(): ClusterResult[] {
  return [
    cluster({
      id: 'aws/111122223333/eu-west-1/prod-eu',
      name: 'prod-eu',
      results: [
        result('residency.cluster-region', 'pass', {
          reason: 'Region eu-west-1 is in IE, a country of the jurisdiction.',
          evidence: [
            evidence({
              source: 'inventory',
              recordId: 'inventory/aws/111122223333/eu-west-1/prod-eu',
              observedAt: '2025-06-02T05:30:00Z',
              values: { region: 'eu-west-1', country: 'IE' },
            }),
          ],
        }),
        result('backup.recent', 'pass', {
          reason: 'The last backup completed 2 h 40 min before the evaluation.',
          evidence: [evidence()],
        }),
        result('backup.residency', 'pass', { reason: 'The backup bucket is in eu-west-1 (IE).' }),
        result('backup.immutable', 'pass', { reason: 'Object Lock in COMPLIANCE mode, 30 days retention.' }),
        result('drill.restore-tested', 'fail', {
          reason: 'The last restore drill passed 131 days ago (limit 90).',
          remedy: 'Run a restore drill for prod-eu.',
          evidence: [
            evidence({
              source: 'drills',
              recordId: 'drills/aws/111122223333/eu-west-1/prod-eu/20250122030000',
              observedAt: '2025-01-22T03:20:00Z',
              values: { phase: 'Passed', restoredObjects: 412 },
            }),
          ],
        }),
        result('audit.logs-collected', 'pass', {
          reason: 'Audit logs collected up to 5 minutes before the evaluation.',
          evidence: [
            evidence({
              source: 'audit-status',
              recordId: 'audit-status/aws/111122223333/eu-west-1/prod-eu',
              observedAt: '2025-06-02T05:55:00Z',
              values: { lastEventAt: '2025-06-02T05:55:00Z', chunks: 288 },
            }),
          ],
        }),
      ],
    }),
    cluster({
      id: 'gcp/analytics-prod/europe-west3/analytics-de',
      name: 'analytics-de',
      cloud: 'gcp',
      scope: 'analytics-prod',
      region: 'europe-west3',
      country: 'DE',
      kubernetesVersion: '1.32',
      results: [
        result('residency.cluster-region', 'pass', { reason: 'Region europe-west3 is in DE.' }),
        result('backup.recent', 'fail', {
          reason: 'The last backup completed 3 days before the evaluation (limit 24 h).',
          evidence: [
            evidence({
              recordId: 'backup-status/gcp/analytics-prod/europe-west3/analytics-de',
              observedAt: '2025-05-30T02:10:00Z',
              values: { lastBackupAt: '2025-05-30T02:00:00Z', phase: 'PartiallyFailed', errors: 3 },
            }),
            evidence({
              source: 'inventory',
              recordId: 'inventory/gcp/analytics-prod/europe-west3/analytics-de',
              observedAt: '2025-06-02T05:31:00Z',
              values: { region: 'europe-west3', country: 'DE', status: 'running' },
            }),
          ],
        }),
        result('backup.residency', 'pass', { reason: 'The backup bucket is in europe-west3 (DE).' }),
        result('backup.immutable', 'pass', { reason: 'Bucket retention policy is locked (30 days).' }),
        result('drill.restore-tested', 'pass', { reason: 'A restore drill passed 12 days ago.' }),
        result('audit.logs-collected', 'unknown', {
          reason: 'No audit-status record for this cluster.',
          evidence: [],
        }),
      ],
    }),
    cluster({
      id: 'azure/0b6f2c1e-sub/rg-edge/edge-nl',
      name: 'edge-nl',
      cloud: 'azure',
      scope: '0b6f2c1e-sub',
      region: 'westeurope',
      country: 'NL',
      kubernetesVersion: '1.31',
      results: [
        result('residency.cluster-region', 'pass', { reason: 'Region westeurope is in NL.' }),
        result('backup.recent', 'pass', { reason: 'The last backup completed 5 h before the evaluation.' }),
        result('backup.residency', 'fail', {
          reason: 'The backup storage account is in eastus (US), outside the jurisdiction.',
          evidence: [
            evidence({
              recordId: 'backup-status/azure/0b6f2c1e-sub/rg-edge/edge-nl',
              observedAt: '2025-06-02T01:00:00Z',
              values: { storageAccount: 'edgebackups', location: 'eastus', country: 'US' },
            }),
          ],
        }),
        result('backup.immutable', 'unknown', {
          reason: 'The immutability policy of the storage account could not be read.',
        }),
        result('drill.restore-tested', 'not-applicable', {
          reason: 'The cluster runs no stateful workload: nothing to restore.',
        }),
        result('audit.logs-collected', 'pass', { reason: 'Audit logs collected up to 8 minutes ago.' }),
      ],
    }),
  ];
}

/** The diff of the default clusters against a previous snapshot (edge-nl added, legacy-fr removed). */
export function defaultChanges(): SnapshotDiff {
  return {
    previous: {
      generatedAt: '2025-06-01T06:00:00Z',
      sha256: '9c1185a5c5e9fc54612808977ee8f548b2258d31c1f2f6ff3c2ee1f7a5d3e6b4',
    },
    newlyFailing: [
      {
        clusterId: 'azure/0b6f2c1e-sub/rg-edge/edge-nl',
        control: 'backup.residency',
        before: null,
        after: 'fail',
      },
      {
        clusterId: 'gcp/analytics-prod/europe-west3/analytics-de',
        control: 'backup.recent',
        before: 'pass',
        after: 'fail',
      },
    ],
    newlyFixed: [
      {
        clusterId: 'aws/111122223333/eu-west-1/prod-eu',
        control: 'backup.immutable',
        before: 'fail',
        after: 'pass',
      },
    ],
    otherChanges: [
      {
        clusterId: 'gcp/analytics-prod/europe-west3/analytics-de',
        control: 'audit.logs-collected',
        before: 'pass',
        after: 'unknown',
      },
    ],
    addedClusters: ['azure/0b6f2c1e-sub/rg-edge/edge-nl'],
    removedClusters: ['aws/111122223333/eu-west-3/legacy-fr'],
  };
}

/** An empty diff: the first snapshot of a jurisdiction. */
export function firstSnapshotChanges(): SnapshotDiff {
  return {
    previous: null,
    newlyFailing: [],
    newlyFixed: [],
    otherChanges: [],
    addedClusters: [],
    removedClusters: [],
  };
}

/** Overrides of {@link buildSnapshot}; `summary` is always derived from `clusters`. */
export type SnapshotOverrides = Partial<Omit<JurisdictionSnapshot, 'summary'>>;

/**
 * A realistic EU (GDPR) jurisdiction snapshot, parsed by `JurisdictionSnapshot` (so an invalid
 * override fails loudly). The summary is derived from the clusters.
 */
export function buildSnapshot(overrides: SnapshotOverrides = {}): JurisdictionSnapshot {
  const clusters = overrides.clusters ?? defaultClusters();
  const catalogue = overrides.catalogue ?? { version: '2025.06.0', controls: [...CONTROLS] };
  const byControl: Record<string, StatusCounts> = {};
  for (const control of catalogue.controls) {
    byControl[control.id] = countsOf(
      clusters.flatMap((c) => c.results.filter((r) => r.control === control.id).slice(0, 1)),
    );
  }
  const counts = countsOf(clusters.flatMap((c) => c.results));
  return JurisdictionSnapshot.parse({
    schemaVersion: SNAPSHOT_SCHEMA_VERSION,
    kind: 'fleetward.jurisdiction-snapshot',
    generatedAt: '2025-06-02T06:00:00Z',
    stage: 'prod',
    jurisdiction: {
      id: 'eu',
      name: 'European Union (GDPR)',
      laws: ['gdpr'],
      countries: ['DE', 'FR', 'IE', 'NL'],
    },
    catalogue,
    changes: defaultChanges(),
    ...overrides,
    clusters,
    summary: { clusters: clusters.length, counts, byControl },
  });
}
