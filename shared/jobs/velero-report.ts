/** Views of the Velero records for `backup status` and `drill status`: JSON shapes and tables. */
import type { StateStore } from '../ports.ts';
import { type BackupStatus, type DrillRecord, findingsKey, NS } from '../state/records.ts';
import type { Finding } from '../velero/preflight.ts';
import { inventory } from './fleet.ts';

export interface ClusterBackupView {
  clusterId: string;
  jurisdiction: string;
  lastBackup: BackupStatus['lastBackup'];
  lastCompleted: BackupStatus['lastCompleted'];
  rpoSeconds: number | null;
  rpoTargetSeconds: number | null;
  rpoOk: boolean | null;
  findings: Finding[];
}

async function findingsOf(store: StateStore, jobs: string[], clusterId: string): Promise<Finding[]> {
  const lists = await Promise.all(
    jobs.map((job) => store.get<Finding[]>(NS.findings, findingsKey(job, clusterId))),
  );
  return lists.flatMap((l) => l ?? []);
}

/** Every cluster of the inventory with its backup summary and open findings. */
export async function backupView(store: StateStore, clusterId?: string): Promise<ClusterBackupView[]> {
  const clusters = await inventory(store, clusterId);
  return Promise.all(
    clusters.map(async (c) => {
      const status = await store.get<BackupStatus>(NS.backupStatus, c.id);
      const findings = await findingsOf(store, ['backup', 'reconcile-backups'], c.id);
      return {
        clusterId: c.id,
        jurisdiction: c.jurisdiction,
        lastBackup: status?.lastBackup ?? null,
        lastCompleted: status?.lastCompleted ?? null,
        rpoSeconds: status?.rpoSeconds ?? null,
        rpoTargetSeconds: status?.rpoTargetSeconds ?? null,
        rpoOk: status?.rpoOk ?? null,
        findings,
      };
    }),
  );
}

export interface ClusterDrillView {
  clusterId: string;
  jurisdiction: string;
  drill: {
    id: string;
    target: string;
    backup: string;
    phase: DrillRecord['phase'];
    result: DrillRecord['result'];
    rtoSeconds: number | null;
    rtoTargetSeconds: number;
    withinRto: boolean | null;
    itemsRestored: number | null;
    backupItems: number | null;
    scratchNamespacesLeft: number | null;
    reasons: string[];
    startedAt: string;
    finishedAt: string | null;
  } | null;
  findings: Finding[];
}

/** Every cluster with its newest drill and open drill findings. */
export async function drillView(store: StateStore, clusterId?: string): Promise<ClusterDrillView[]> {
  const clusters = (await inventory(store, clusterId)).filter((c) => c.jurisdiction !== 'unassigned');
  return Promise.all(
    clusters.map(async (c) => {
      const drills = (await store.list<DrillRecord>(NS.drills, { prefix: `${c.id}/` })).map((i) => i.value);
      const d = drills.sort((a, b) => (a.startedAt < b.startedAt ? 1 : -1))[0];
      return {
        clusterId: c.id,
        jurisdiction: c.jurisdiction,
        drill: d
          ? {
              id: d.id,
              target: d.targetClusterId,
              backup: d.backupName,
              phase: d.phase,
              result: d.result,
              rtoSeconds: d.rtoSeconds,
              rtoTargetSeconds: d.rtoTargetSeconds,
              withinRto: d.rtoSeconds === null ? null : d.rtoSeconds <= d.rtoTargetSeconds,
              itemsRestored: d.itemsRestored,
              backupItems: d.backupItems,
              scratchNamespacesLeft: d.scratchLeft,
              reasons: d.reasons,
              startedAt: d.startedAt,
              finishedAt: d.finishedAt,
            }
          : null,
        findings: await findingsOf(store, ['restore-drill'], c.id),
      };
    }),
  );
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [headers, ...rows]
    .map(
      (r) =>
        `  ${r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd()}`,
    )
    .join('\n');
}

const duration = (s: number | null) =>
  s === null
    ? '-'
    : s < 120
      ? `${s} s`
      : s < 7200
        ? `${Math.round(s / 60)} min`
        : `${(s / 3600).toFixed(1)} h`;

export function renderBackupView(view: ClusterBackupView[]): string {
  const rows = view.map((v) => [
    v.clusterId,
    v.jurisdiction,
    v.lastBackup ? `${v.lastBackup.name} ${v.lastBackup.phase}` : '-',
    duration(v.rpoSeconds),
    v.rpoTargetSeconds === null ? '-' : duration(v.rpoTargetSeconds),
    v.rpoOk === null ? '-' : v.rpoOk ? 'ok' : 'EXCEEDED',
    v.findings.map((f) => f.kind).join(', ') || '-',
  ]);
  const out = [
    table(['CLUSTER', 'JURISDICTION', 'LAST BACKUP', 'RPO', 'TARGET', 'RPO OK', 'FINDINGS'], rows),
  ];
  const failed = view.filter((v) => v.lastBackup?.failureReason);
  if (failed.length > 0) {
    out.push('', 'Failure reasons:');
    for (const v of failed)
      out.push(
        `  ${v.clusterId}: ${v.lastBackup!.name} ${v.lastBackup!.phase}: ${v.lastBackup!.failureReason}`,
      );
  }
  const findings = view.flatMap((v) => v.findings);
  if (findings.length > 0) {
    out.push('', `Findings (${findings.length}):`);
    for (const f of findings) out.push(`  ${f.severity.padEnd(8)} ${f.clusterId}: ${f.message}`);
  }
  return out.join('\n');
}

export function renderDrillView(view: ClusterDrillView[]): string {
  const rows = view.map((v) => [
    v.clusterId,
    v.drill ? v.drill.phase : '-',
    v.drill?.result ?? '-',
    v.drill?.rtoSeconds === null || !v.drill ? '-' : `${v.drill.rtoSeconds} s`,
    v.drill ? `${v.drill.rtoTargetSeconds} s` : '-',
    v.drill?.scratchNamespacesLeft === null || !v.drill ? '-' : String(v.drill.scratchNamespacesLeft),
    v.drill?.reasons.join('; ') || v.findings.map((f) => f.message).join('; ') || '-',
  ]);
  return table(['CLUSTER', 'PHASE', 'RESULT', 'RTO', 'TARGET', 'SCRATCH LEFT', 'NOTES'], rows);
}
