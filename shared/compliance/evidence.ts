/**
 * The evidence of every control, read from the state store in one pass: each namespace
 * (or the prefix of it that holds the records) is listed once for the whole fleet and
 * split per cluster, never one `get` per cluster per namespace. Records of clusters not
 * in the list passed are ignored. Nothing here judges: `evaluate.ts` does.
 */

import type { Cluster, Finding } from '../model.ts';
import type { StateStore, StoredItem } from '../ports.ts';
import {
  AUDIT_NS,
  type AuditStatusRecord,
  type AuditVerifyRecord,
  auditStatusKey,
  auditVerifyKey,
  type BackupRecord,
  type BackupStatus,
  BUDGET_PLAN_KEY,
  BUDGETS_NS,
  type BudgetPlanResult,
  type DrillRecord,
  NS,
  type StoredTagPlan,
  TAG_PLAN_PREFIX,
  TAGS_NS,
} from '../state/records.ts';

/** A stored record and the key it was read under (`<namespace>/<key>`, for evidence items). */
export interface Recorded<T> {
  recordId: string;
  value: T;
}

/** Everything the state store holds about one cluster that a control reads. */
export interface ClusterEvidence {
  clusterId: string;
  /** `backup-status/<cluster-id>`: the reconciler's summary (last completed backup, RPO). */
  backupStatus: Recorded<BackupStatus> | null;
  /** `backups/<cluster-id>/<name>`: every Backup recorded, oldest first (by `createdAt`). */
  backups: Recorded<BackupRecord>[];
  /** `drills/<cluster-id>/<drill-id>`: drills of this cluster as the source, oldest first (by `startedAt`). */
  drills: Recorded<DrillRecord>[];
  /** `audit/status/<cluster-id>`: the last successful audit collection. */
  auditStatus: Recorded<AuditStatusRecord> | null;
  /** `audit/verify/<cluster-id>`: the last `audit verify` of the chain. */
  auditVerify: Recorded<AuditVerifyRecord> | null;
  /** `findings/<job>/<cluster-id>`: open findings by job (`backup`, `audit`, `tags`, ...). */
  findings: Record<string, Recorded<Finding[]>>;
  /** `tags/plan/<cluster-id>`: the last tag plan. */
  tagPlan: Recorded<StoredTagPlan> | null;
  /** `budgets/plan/latest`: the fleet's last budget plan (the same record for every cluster). */
  budgetPlan: Recorded<BudgetPlanResult> | null;
}

/** A cluster's evidence when the store holds nothing about it. */
export function emptyEvidence(clusterId: string): ClusterEvidence {
  return {
    clusterId,
    backupStatus: null,
    backups: [],
    drills: [],
    auditStatus: null,
    auditVerify: null,
    findings: {},
    tagPlan: null,
    budgetPlan: null,
  };
}

/**
 * The cluster a key of a `<cluster-id>/<name>` namespace belongs to. Cluster ids contain
 * slashes themselves, so the id is matched against the known ids rather than split.
 */
function ownerOf(key: string, ids: ReadonlySet<string>): string | undefined {
  for (let at = key.lastIndexOf('/'); at > 0; at = key.lastIndexOf('/', at - 1)) {
    const id = key.slice(0, at);
    if (ids.has(id)) return id;
  }
  return undefined;
}

const byText =
  <T>(field: (v: T) => string | null | undefined) =>
  (a: Recorded<T>, b: Recorded<T>) => {
    const x = field(a.value) ?? '';
    const y = field(b.value) ?? '';
    return x < y ? -1 : x > y ? 1 : 0;
  };

/**
 * Reads the evidence of `clusters` from `store`: `backup-status`, `backups`, `drills`,
 * `audit` (`status/` and `verify/` only), `findings`, `tags` (`plan/` only) are each listed
 * once, and `budgets/plan/latest` is read once. Every cluster gets an entry, empty when the
 * store holds nothing about it.
 */
export async function loadEvidence(
  store: StateStore,
  clusters: readonly Cluster[],
): Promise<Map<string, ClusterEvidence>> {
  const ids = new Set(clusters.map((c) => c.id));
  const out = new Map(clusters.map((c) => [c.id, emptyEvidence(c.id)]));
  const statusPrefix = auditStatusKey('');
  const verifyPrefix = auditVerifyKey('');
  // One cluster (a cloud event): read only its records — backups and drills accumulate over
  // the whole fleet's history, so listing those namespaces per event would grow without bound.
  const one = clusters.length === 1 ? clusters[0]!.id : undefined;
  const byPrefix = <T>(namespace: string, prefix = '') =>
    store.list<T>(namespace, { prefix: one === undefined ? prefix : `${prefix}${one}` });
  const [statuses, backups, drills, auditStatuses, auditVerifies, findings, tagPlans, budgetPlan] =
    await Promise.all([
      byPrefix<BackupStatus>(NS.backupStatus),
      byPrefix<BackupRecord>(NS.backups),
      byPrefix<DrillRecord>(NS.drills),
      byPrefix<AuditStatusRecord>(AUDIT_NS, statusPrefix),
      byPrefix<AuditVerifyRecord>(AUDIT_NS, verifyPrefix),
      store.list<Finding[]>(NS.findings),
      byPrefix<StoredTagPlan>(TAGS_NS, TAG_PLAN_PREFIX),
      store.get<BudgetPlanResult>(BUDGETS_NS, BUDGET_PLAN_KEY),
    ]);
  const rec = <T>(namespace: string, item: StoredItem<T>): Recorded<T> => ({
    recordId: `${namespace}/${item.key}`,
    value: item.value,
  });

  for (const item of statuses) {
    const evidence = out.get(item.key);
    if (evidence) evidence.backupStatus = rec(NS.backupStatus, item);
  }
  for (const item of backups) {
    const id = ownerOf(item.key, ids);
    if (id !== undefined) out.get(id)!.backups.push(rec(NS.backups, item));
  }
  for (const item of drills) {
    // The record names its source cluster; the key (`<source-id>/<drill-id>`) says the same.
    const id = ids.has(item.value.sourceClusterId) ? item.value.sourceClusterId : ownerOf(item.key, ids);
    if (id !== undefined) out.get(id)!.drills.push(rec(NS.drills, item));
  }
  for (const item of auditStatuses) {
    const evidence = out.get(item.key.slice(statusPrefix.length));
    if (evidence) evidence.auditStatus = rec(AUDIT_NS, item);
  }
  for (const item of auditVerifies) {
    const evidence = out.get(item.key.slice(verifyPrefix.length));
    if (evidence) evidence.auditVerify = rec(AUDIT_NS, item);
  }
  for (const item of findings) {
    // `<job>/<cluster-id>`: job names have no slash.
    const slash = item.key.indexOf('/');
    if (slash <= 0) continue;
    const evidence = out.get(item.key.slice(slash + 1));
    if (evidence) evidence.findings[item.key.slice(0, slash)] = rec(NS.findings, item);
  }
  for (const item of tagPlans) {
    const evidence = out.get(item.key.slice(TAG_PLAN_PREFIX.length));
    if (evidence) evidence.tagPlan = rec(TAGS_NS, item);
  }
  const plan: Recorded<BudgetPlanResult> | null =
    budgetPlan === undefined ? null : { recordId: `${BUDGETS_NS}/${BUDGET_PLAN_KEY}`, value: budgetPlan };
  for (const evidence of out.values()) {
    evidence.budgetPlan = plan;
    evidence.backups.sort(byText((b) => b.createdAt));
    evidence.drills.sort(byText((d) => d.startedAt));
  }
  return out;
}
