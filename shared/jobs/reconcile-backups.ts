/**
 * The backup reconciler: reads the phase of every Backup Fleetward created, records the
 * terminal ones (start, completion, item counts, errors, warnings), and computes RPO per
 * cluster = now - completion of the newest Completed backup, against its jurisdiction's
 * target. Read-only towards clusters; `backup status` runs it too.
 */
import type { Cluster } from '../model.ts';
import { type ClusterWork, type Dispatcher, inProcess } from '../runtime/dispatch.ts';
import { errorInfo } from '../runtime/errors.ts';
import { type BackupRecord, type BackupStatus, INVENTORY, NS } from '../state/records.ts';
import { CONDITION, type Finding } from '../velero/preflight.ts';
import { isTerminalBackup, LABELS, MANAGED_BY, VELERO_API, type VeleroBackup } from '../velero/resources.ts';
import { type ClusterJobDeps, type ClusterScope, inventory, recordFindings, runId } from './fleet.ts';

export interface ReconcileResult {
  statuses: BackupStatus[];
  /** Terminal phases recorded for the first time this run. */
  recorded: number;
}

/** The record of `backup` after observing it: what the live object says, over what was known. */
export function mergeBackup(
  record: BackupRecord | undefined,
  backup: VeleroBackup,
  cluster: Pick<Cluster, 'id' | 'jurisdiction'>,
): BackupRecord {
  const s = backup.status ?? {};
  const base: BackupRecord = record ?? {
    clusterId: cluster.id,
    jurisdiction: cluster.jurisdiction,
    name: backup.metadata.name!,
    window: '',
    runId: backup.metadata.labels?.[LABELS.run] ?? '',
    storageLocation: backup.spec.storageLocation ?? '',
    bucket: null,
    namespaces: backup.spec.includedNamespaces ?? [],
    createdAt: backup.metadata.creationTimestamp ?? '',
    phase: 'New',
  };
  // Velero leaves the phase empty (or absent) until its controller picks the Backup up: that is `New`.
  const out: BackupRecord = { ...base, phase: s.phase || 'New' };
  if (s.startTimestamp) out.startedAt = s.startTimestamp;
  if (s.completionTimestamp) out.completedAt = s.completionTimestamp;
  if (s.expiration) out.expiresAt = s.expiration;
  if (s.progress?.totalItems !== undefined) out.totalItems = s.progress.totalItems;
  if (s.progress?.itemsBackedUp !== undefined) out.itemsBackedUp = s.progress.itemsBackedUp;
  if (s.errors !== undefined) out.errors = s.errors;
  if (s.warnings !== undefined) out.warnings = s.warnings;
  if (s.validationErrors?.length) out.validationErrors = s.validationErrors;
  if (s.failureReason) out.failureReason = s.failureReason;
  return out;
}

export interface BackupSummary {
  lastBackup: BackupStatus['lastBackup'];
  lastCompleted: BackupStatus['lastCompleted'];
  rpoSeconds: number | null;
  rpoTargetSeconds: number | null;
  rpoOk: boolean | null;
  problems: Pick<Finding, 'kind' | 'severity' | 'message'>[];
}

/** The backup summary of one cluster from its records: last backup, last good one, RPO and what is wrong. */
export function summarizeBackups(
  list: BackupRecord[],
  now: Date,
  rpoTargetSeconds: number | null,
): BackupSummary {
  const problems: BackupSummary['problems'] = [];
  const records = [...list].sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1));
  const last = records.at(-1)!;
  const completed = records
    .filter((r) => r.phase === 'Completed' && r.completedAt)
    .sort((a, b) => (a.completedAt! < b.completedAt! ? -1 : 1));
  const good = completed.at(-1);
  const rpoSeconds = good
    ? Math.max(0, Math.round((now.getTime() - Date.parse(good.completedAt!)) / 1000))
    : null;
  const rpoOk = rpoSeconds === null || rpoTargetSeconds === null ? null : rpoSeconds <= rpoTargetSeconds;
  if (last.phase !== 'Completed' && isTerminalBackup(last.phase)) {
    const detail = last.validationErrors?.join('; ') ?? last.failureReason ?? `${last.errors ?? 0} error(s)`;
    problems.push({
      kind: 'backup-failed',
      severity: 'high',
      message: `backup ${last.name} ended ${last.phase} (${detail})`,
    });
  }
  // Velero always stamps a Completed backup's completion; one without it cannot give an RPO, and is not
  // "no backup": it is named, so whoever reads the status looks at that Backup.
  const untimed = records.filter((r) => r.phase === 'Completed' && !r.completedAt).at(-1);
  if (untimed && (!good || untimed.createdAt > good.createdAt)) {
    problems.push({
      kind: 'backup-untimed',
      severity: 'high',
      message: `backup ${untimed.name} is Completed without a completionTimestamp: its age (RPO) cannot be measured`,
    });
  } else if (!good) {
    problems.push({ kind: 'no-completed-backup', severity: 'high', message: CONDITION.noCompletedBackup });
  }
  if (rpoOk === false) {
    problems.push({
      kind: 'rpo-exceeded',
      severity: 'critical',
      message: `RPO ${rpoSeconds} s exceeds the target of ${rpoTargetSeconds} s`,
    });
  }
  return {
    lastBackup: {
      name: last.name,
      phase: last.phase,
      completedAt: last.completedAt ?? null,
      ...(last.failureReason ? { failureReason: last.failureReason } : {}),
    },
    lastCompleted: good
      ? { name: good.name, completedAt: good.completedAt!, itemsBackedUp: good.itemsBackedUp ?? null }
      : null,
    rpoSeconds,
    rpoTargetSeconds,
    rpoOk,
    problems,
  };
}

async function reconcileCluster(deps: ClusterJobDeps, cluster: Cluster, signal?: AbortSignal) {
  const now = deps.clock.now();
  const findings: Finding[] = [];
  const finding = (kind: Finding['kind'], severity: Finding['severity'], message: string) =>
    findings.push({
      clusterId: cluster.id,
      jurisdiction: cluster.jurisdiction,
      kind,
      severity,
      message,
      at: now.toISOString(),
    });
  const known = new Map(
    (await deps.store.list<BackupRecord>(NS.backups, { prefix: `${cluster.id}/` })).map((i) => [
      i.value.name,
      i.value,
    ]),
  );
  let recorded = 0;
  try {
    const api = await deps.kube.connect(cluster, signal ? { signal } : {});
    const live = await api.list<VeleroBackup>(VELERO_API, 'Backup', {
      namespace: deps.config.velero.namespace,
      labelSelector: `${LABELS.managedBy}=${MANAGED_BY}`,
    });
    const updates: BackupRecord[] = [];
    for (const backup of live) {
      const before = known.get(backup.metadata.name!);
      // Terminal records never change again: skip the write (and keep the first observation).
      if (before && isTerminalBackup(before.phase)) continue;
      const after = mergeBackup(before, backup, cluster);
      if (isTerminalBackup(after.phase)) recorded++;
      if (JSON.stringify(before) !== JSON.stringify(after)) updates.push(after);
      known.set(after.name, after);
    }
    await deps.store.putMany(
      NS.backups,
      updates.map((r) => ({ key: `${cluster.id}/${r.name}`, value: r })),
    );
  } catch (error) {
    if (signal?.aborted) throw error;
    if (known.size === 0) return undefined;
    finding('kube-unreachable', 'high', `cannot read Backups: ${errorInfo(error).message}`);
  }
  if (known.size === 0) return undefined;

  const targetHours = deps.config.jurisdictions[cluster.jurisdiction]?.backup.rpoHours;
  const summary = summarizeBackups(
    [...known.values()],
    now,
    targetHours === undefined ? null : targetHours * 3600,
  );
  for (const p of summary.problems) finding(p.kind, p.severity, p.message);
  const { rpoSeconds, rpoTargetSeconds, rpoOk } = summary;
  if (rpoOk === false) {
    deps.logger.warn('RPO target exceeded', { cluster: cluster.id, rpoSeconds, rpoTargetSeconds });
  }
  const status: BackupStatus = {
    clusterId: cluster.id,
    jurisdiction: cluster.jurisdiction,
    lastBackup: summary.lastBackup,
    lastCompleted: summary.lastCompleted,
    rpoSeconds,
    rpoTargetSeconds,
    rpoOk,
    findings,
    checkedAt: now.toISOString(),
  };
  await deps.store.putMany(NS.backupStatus, [{ key: cluster.id, value: status }]);
  await recordFindings(deps.store, 'reconcile-backups', cluster.id, findings);
  return { status, recorded };
}

type Reconciled = Awaited<ReturnType<typeof reconcileCluster>>;

/** The reconciler as the dispatcher runs it: one item per assigned cluster. */
export const reconcileWork: ClusterWork<ClusterJobDeps, ClusterScope, Reconciled> = {
  job: 'reconcile-backups',
  async plan(deps, scope) {
    const clusters = (await inventory(deps.store, scope)).filter((c) => c.jurisdiction !== 'unassigned');
    const run = runId(deps.clock.now());
    return clusters.map((c) => ({ job: 'reconcile-backups', clusterId: c.id, runId: run }));
  },
  async run(deps, item, signal) {
    const cluster = await deps.store.get<Cluster>(INVENTORY, item.clusterId);
    // A cluster gone from the inventory since the plan has nothing left to reconcile.
    return cluster ? reconcileCluster(deps, cluster, signal) : undefined;
  },
  metrics: (r) => ({ RpoBreaches: r?.status.rpoOk === false ? 1 : 0 }),
};

/** Reconciles every cluster that has Fleetward Backups (or one cluster). */
export async function run(
  deps: ClusterJobDeps,
  options: ClusterScope & { signal?: AbortSignal } = {},
  dispatcher: Dispatcher = inProcess(deps.config.kubeAccess.concurrency * 4),
): Promise<ReconcileResult & { enqueued?: number }> {
  const items = await reconcileWork.plan(deps, options);
  const done = await dispatcher.dispatch(reconcileWork, deps, items, options.signal);
  if (done.mode === 'queue') {
    deps.logger.info('Backup reconciles enqueued', { enqueued: done.enqueued });
    return { statuses: [], recorded: 0, enqueued: done.enqueued };
  }
  const finished = done.results.filter((r) => r !== undefined);
  const statuses = finished.map((r) => r.status);
  const recorded = finished.reduce((n, r) => n + r.recorded, 0);
  deps.logger.info('Backups reconciled', {
    clusters: statuses.length,
    recorded,
    rpoExceeded: statuses.filter((s) => s.rpoOk === false).length,
  });
  return { statuses, recorded };
}
