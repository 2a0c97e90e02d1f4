/**
 * The records jobs write to the state store and others (the compliance evidence, the
 * reports, the notifier) read back: the namespaces, the shape of their keys, and the value
 * of each record. Readers depend on this module, never on the job that writes a record, so
 * `shared/compliance/` reads evidence without importing any job. Types and key shapes only:
 * no I/O and no imports beyond types.
 *
 * | namespace       | key                          | value                      | written by        |
 * | --------------- | ---------------------------- | -------------------------- | ----------------- |
 * | `inventory`     | `<cluster-id>`               | `Cluster`                  | discover          |
 * | `backups`       | `<cluster-id>/<backup-name>` | {@link BackupRecord}       | backup, reconcile |
 * | `backup-status` | `<cluster-id>`               | {@link BackupStatus}       | reconcile-backups |
 * | `drills`        | `<cluster-id>/<drill-id>`    | {@link DrillRecord}        | drill             |
 * | `findings`      | `<job>/<cluster-id>`         | `Finding[]`                | every job         |
 * | `audit`         | `status/<cluster-id>`        | {@link AuditStatusRecord}  | audit collect     |
 * | `audit`         | `verify/<cluster-id>`        | {@link AuditVerifyRecord}  | audit verify      |
 * | `tags`          | `plan/<cluster-id>`          | {@link StoredTagPlan}      | tags              |
 * | `budgets`       | `plan/latest`                | {@link BudgetPlanResult}   | budgets           |
 */
import type { BudgetChange, BudgetFinding, CoverageFinding, FieldDiff } from '../budgets/plan.ts';
import type { BudgetCloud } from '../budgets/port.ts';
import type { Finding as BaseFinding, RegionCloud } from '../model.ts';
import type { ErrorInfo } from '../runtime/errors.ts';
import type { ClusterTagPlan } from '../tags/render.ts';
import type { Finding } from '../velero/preflight.ts';

// ---------------------------------------------------------------------------------------------
// Inventory

/** State-store namespace of the cluster inventory: one `Cluster` per `<cluster-id>`. */
export const INVENTORY = 'inventory';

// ---------------------------------------------------------------------------------------------
// Velero jobs and findings

/** State-store namespaces of the Velero jobs. */
export const NS = {
  /** One record per Backup: `<cluster-id>/<backup-name>`. */
  backups: 'backups',
  /** Per-cluster backup summary (last good backup, RPO, preflight): `<cluster-id>`. */
  backupStatus: 'backup-status',
  /** One record per drill: `<cluster-id>/<drill-name>`. */
  drills: 'drills',
  /** Open findings of a job for a cluster: `<job>/<cluster-id>`. */
  findings: 'findings',
} as const;

/** Key of a job's open findings for a cluster in {@link NS}`.findings` (job names have no slash). */
export const findingsKey = (job: string, clusterId: string) => `${job}/${clusterId}`;

/** What the job remembers of each Backup it created or observed. */
export interface BackupRecord {
  clusterId: string;
  jurisdiction: string;
  name: string;
  window: string;
  runId: string;
  storageLocation: string;
  bucket: { name: string; cloud: string; region: string } | null;
  namespaces: string[];
  createdAt: string;
  phase: string;
  startedAt?: string;
  completedAt?: string;
  expiresAt?: string;
  totalItems?: number;
  itemsBackedUp?: number;
  errors?: number;
  warnings?: number;
  validationErrors?: string[];
  /** Velero's `status.failureReason` of a Failed backup. */
  failureReason?: string;
}

/** Per-cluster backup summary, as `backup status` shows it and the compliance snapshot reads it. */
export interface BackupStatus {
  clusterId: string;
  jurisdiction: string;
  /** Newest Backup of any phase. */
  lastBackup: { name: string; phase: string; completedAt: string | null; failureReason?: string } | null;
  /** Newest Completed Backup. */
  lastCompleted: { name: string; completedAt: string; itemsBackedUp: number | null } | null;
  rpoSeconds: number | null;
  rpoTargetSeconds: number | null;
  rpoOk: boolean | null;
  findings: Finding[];
  checkedAt: string;
}

export type DrillPhase = 'restoring' | 'verifying' | 'cleaning' | 'done';

export interface DrillRecord {
  id: string;
  sourceClusterId: string;
  targetClusterId: string;
  jurisdiction: string;
  backupName: string;
  backupItems: number | null;
  namespaces: string[];
  scratchNamespaces: string[];
  phase: DrillPhase;
  result: 'pass' | 'fail' | null;
  reasons: string[];
  startedAt: string;
  restoreCreatedAt: string;
  restorePhase: string | null;
  itemsRestored: number | null;
  workloads: { total: number; ready: number } | null;
  /** Cluster time: when the restore was verified (the last of restore completion and workloads available). */
  verifiedAt: string | null;
  /** verifiedAt - the Restore's creationTimestamp, both from the cluster's own objects. */
  rtoSeconds: number | null;
  /** Restore status as Velero left it (terminal). */
  restoreCompletedAt?: string | null;
  restoreTotalItems?: number | null;
  restoreErrors?: number;
  restoreWarnings?: number;
  restoreFailureReason?: string;
  /** Our clock when the drill saw the restore verified. */
  observedAt?: string | null;
  /** observedAt - verifiedAt (>= 0): how late the poll came; not part of the RTO. */
  pollLagMs?: number | null;
  /** `cluster`: every time came from the objects; `observed`: some workload carried none, its time is observedAt. */
  rtoEvidence?: 'cluster' | 'observed' | null;
  rtoTargetSeconds: number;
  scratchLeft: number | null;
  finishedAt: string | null;
  updatedAt: string;
}

// ---------------------------------------------------------------------------------------------
// Security bulletins (findings of the event path)

/** The job name findings are recorded under (`findings` / `security-bulletin/<cluster-id>`). */
export const SECURITY_BULLETIN_JOB = 'security-bulletin';
/** The kind of a bulletin finding. */
export const SECURITY_BULLETIN_KIND = 'security-bulletin';

/** What a bulletin finding records of its bulletin (JSON-safe: no `undefined`). */
export interface BulletinFacts {
  bulletinId: string;
  /** GKE's severity, as a finding severity. */
  severity: BaseFinding['severity'];
  cveIds: string[];
  affectedSupportedMinors: string[];
  patchedVersions: string[];
  suggestedUpgradeTarget: string | null;
  bulletinUri: string | null;
  manualStepsRequired: boolean;
  /** The cluster's version when the finding was recorded. */
  version: string;
}

/** A `security-bulletin` finding; `bulletin` is absent only on findings recorded before it was kept. */
export type BulletinFinding = BaseFinding & { bulletin?: BulletinFacts };

// ---------------------------------------------------------------------------------------------
// Audit

/** State-store namespace of the audit job: chain heads, seen shards, status and verify records. */
export const AUDIT_NS = 'audit';

/**
 * `status/<cluster-id>`: what the last successful collection checked, as the compliance
 * snapshot reads it (archive location, immutability, freshness of the chain).
 */
export interface AuditStatusRecord {
  clusterId: string;
  jurisdiction: string;
  /** The archive's id (`aws:<bucket>`, `gcs:<bucket>`, `azure:<account>/<container>`, `local:<dir>`). */
  archive: string;
  /** Where the archive lives; `null` for a local directory. */
  location: { cloud: RegionCloud; region: string } | null;
  /** The residency guard passed for `location`. */
  inJurisdiction: boolean;
  /** `assertImmutable(retentionDays)` passed (and the store is not a local directory). */
  compliantStorage: boolean;
  retentionDays: number;
  /** When this collection ran. */
  checkedAt: string;
  /** Time of the newest archived event (`null` before the first). */
  lastEventAt: string | null;
  /** Seq of the chain head. */
  headSeq: number;
}

export type ChainProblem = 'missing' | 'altered' | 'extra-version' | 'broken-link' | 'gap';

/**
 * What `verify` concluded of one cluster:
 * - `intact`: every chunk from seq 1 to the head was read back and checks out;
 * - `broken`: a chunk is missing, altered, re-versioned or unlinked (`firstProblem`): possible tampering;
 * - `unverified`: the evidence store (or the state store) could not be reached or read (`error`):
 *   nothing is known about the chain, which is never taken for tampering;
 * - `nothing-archived`: there is no chain to verify (`reason`): audit logging off, a cluster in
 *   no configured jurisdiction, a kubeconfig cluster (no audit log source), or no chunk yet.
 */
export type VerifyStatus = 'intact' | 'broken' | 'unverified' | 'nothing-archived';

export interface VerifyClusterResult {
  clusterId: string;
  status: VerifyStatus;
  /** `false` when the chain is `broken` or `unverified`. */
  ok: boolean;
  /** Chunks checked good before the first problem (or before the store became unreadable). */
  chunks: number;
  events: number;
  /** The first bad chunk; `key` is `null` for a gap (no object names the seq). */
  firstProblem?: { seq: number; key: string | null; problem: ChainProblem; detail: string };
  /** Why the chain is `unverified`: the archive could not be read. */
  error?: ErrorInfo;
  /** Why there is `nothing-archived`. */
  reason?: string;
}

/** `verify/<cluster-id>`: the last `audit verify` of a cluster's chain (records of older versions lack `status`). */
export interface AuditVerifyRecord extends Omit<VerifyClusterResult, 'status'> {
  status?: VerifyStatus;
  verifiedAt: string;
}

/** Keys of the records above. */
export const auditStatusKey = (clusterId: string) => `status/${clusterId}`;
export const auditVerifyKey = (clusterId: string) => `verify/${clusterId}`;

// ---------------------------------------------------------------------------------------------
// Tags

/** State-store namespace of the tag job. */
export const TAGS_NS = 'tags';
/** Prefix of the latest tag plan of each cluster: `plan/<cluster-id>`. */
export const TAG_PLAN_PREFIX = 'plan/';

/** What `plan/<cluster-id>` holds. */
export interface StoredTagPlan {
  runId: string;
  at: string;
  plan: ClusterTagPlan;
}

// ---------------------------------------------------------------------------------------------
// Budgets

/** State-store namespace of the budgets job. */
export const BUDGETS_NS = 'budgets';
/** Key of the fleet's latest budget plan (the drift as last seen). */
export const BUDGET_PLAN_KEY = 'plan/latest';

/** A change as results and records show it (no provider internals). */
export interface ChangeView {
  action: BudgetChange['action'];
  address: string;
  cloud: BudgetCloud;
  name: string;
  /** Fields that differ (updates only). */
  diffs?: FieldDiff[];
  /** `amount 5000 USD monthly` of the budget created or deleted. */
  detail?: string;
}

/** A cloud that could not be listed, or one budget change that failed. */
export interface BudgetFailure {
  cloud: BudgetCloud;
  /** The budget's address, when one change failed (absent: the whole cloud could not be read). */
  address?: string;
  error: ErrorInfo;
}

export interface BudgetPlanResult {
  runId: string;
  at: string;
  changes: ChangeView[];
  findings: CoverageFinding[];
  /**
   * Managed budgets that could not be read in full (the rest of their cloud's plan stands).
   * Absent in plans recorded before it existed.
   */
  budgetFindings?: BudgetFinding[];
  failures: BudgetFailure[];
  summary: string;
}
