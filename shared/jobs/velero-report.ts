/** Views of the Velero records for `backup status` and `drill status`: JSON shapes and tables. */
import type { StateStore } from '../ports.ts';
import { type Column, renderTable, TABLE_WIDTH, wrapHanging } from '../runtime/table.ts';
import { type BackupStatus, type DrillRecord, findingsKey, NS } from '../state/records.ts';
import type { Finding } from '../velero/preflight.ts';
import { couldNotStart } from './drill.ts';
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

const duration = (s: number | null) =>
  s === null
    ? '-'
    : s < 120
      ? `${s} s`
      : s < 7200
        ? `${Math.round(s / 60)} min`
        : `${(s / 3600).toFixed(1)} h`;

const BACKUP_COLUMNS: Column<ClusterBackupView>[] = [
  { title: 'CLUSTER', value: (v) => v.clusterId, key: true },
  { title: 'JURISDICTION', value: (v) => v.jurisdiction, wide: true },
  { title: 'LAST BACKUP', value: (v) => v.lastBackup?.phase ?? '-', narrow: true },
  {
    title: 'LAST BACKUP',
    value: (v) => (v.lastBackup ? `${v.lastBackup.name} ${v.lastBackup.phase}` : '-'),
    wide: true,
  },
  { title: 'RPO', value: (v) => duration(v.rpoSeconds) },
  { title: 'TARGET', value: (v) => duration(v.rpoTargetSeconds), wide: true },
  { title: 'RPO OK', value: (v) => (v.rpoOk === null ? '-' : v.rpoOk ? 'ok' : 'EXCEEDED') },
  { title: 'FINDINGS', value: (v) => v.findings.map((f) => f.kind).join(', ') || '-', wrap: true },
];

/** Options of the text views: `wide` shows the optional columns and lifts the 120-column limit. */
export interface ViewOptions {
  wide?: boolean;
}

/** The backup view's clusters: `ok` (within the RPO, no finding), `with findings`, or `pending` (neither yet). */
export function backupCounts(view: readonly ClusterBackupView[]): Record<string, number> {
  const findings = view.filter((v) => v.findings.length > 0).length;
  const ok = view.filter((v) => v.findings.length === 0 && v.rpoOk === true).length;
  return { ok, 'with findings': findings, pending: view.length - ok - findings };
}

export function renderBackupView(view: ClusterBackupView[], options: ViewOptions = {}): string {
  const wide = options.wide === true;
  const width = wide ? Number.POSITIVE_INFINITY : TABLE_WIDTH;
  const out = [renderTable(BACKUP_COLUMNS, view, { wide })];
  const failed = view.filter((v) => v.lastBackup?.failureReason);
  if (failed.length > 0) {
    out.push('', 'Failure reasons:');
    for (const v of failed)
      out.push(
        ...wrapHanging(
          `  ${v.clusterId}: `,
          `${v.lastBackup!.name} ${v.lastBackup!.phase}: ${v.lastBackup!.failureReason}`,
          4,
          width,
        ),
      );
  }
  const findings = view.flatMap((v) => v.findings);
  if (findings.length > 0) {
    out.push('', `Findings (${findings.length}):`);
    for (const f of findings)
      out.push(...wrapHanging(`  ${f.severity.padEnd(8)} ${f.clusterId}: `, f.message, 11, width));
  }
  return out.join('\n');
}

/** Where a cluster's drilling stands, in the words of the RESULT column and the summary line. */
export type DrillOutcome = 'pass' | 'fail' | 'running' | 'could not run' | 'no drill';

export function drillOutcome(v: ClusterDrillView): DrillOutcome {
  if (v.findings.some(couldNotStart)) return 'could not run';
  if (!v.drill) return 'no drill';
  if (v.drill.phase !== 'done') return 'running';
  return v.drill.result === 'pass' ? 'pass' : 'fail';
}

/** The drill view's clusters per outcome, for the summary line. */
export function drillCounts(view: readonly ClusterDrillView[]): Record<DrillOutcome, number> {
  const counts: Record<DrillOutcome, number> = {
    pass: 0,
    fail: 0,
    running: 0,
    'could not run': 0,
    'no drill': 0,
  };
  for (const v of view) counts[drillOutcome(v)]++;
  return counts;
}

/** The RESULT column: the outcome, or the phase of a running drill. */
const drillState = (v: ClusterDrillView) => {
  const outcome = drillOutcome(v);
  return outcome === 'running' ? v.drill!.phase : outcome === 'no drill' ? '-' : outcome;
};

function drillNotes(v: ClusterDrillView): string {
  // The RESULT column already says "could not run": the note says why.
  const why = (f: Finding) => (couldNotStart(f) ? f.message.replace(/^drill not started: /, '') : f.message);
  const notes =
    v.drill?.reasons.length && drillOutcome(v) !== 'could not run'
      ? [...v.drill.reasons]
      : v.findings.map(why);
  const left = v.drill?.scratchNamespacesLeft;
  if (left) notes.push(`${left} scratch namespace(s) left`);
  return notes.join('; ') || '-';
}

const DRILL_COLUMNS: Column<ClusterDrillView>[] = [
  { title: 'CLUSTER', value: (v) => v.clusterId, key: true },
  { title: 'PHASE', value: (v) => v.drill?.phase ?? '-', wide: true },
  { title: 'RESULT', value: drillState },
  { title: 'RTO', value: (v) => duration(v.drill?.rtoSeconds ?? null) },
  { title: 'TARGET', value: (v) => duration(v.drill?.rtoTargetSeconds ?? null) },
  { title: 'BACKUP', value: (v) => v.drill?.backup ?? '-', wide: true },
  {
    title: 'SCRATCH LEFT',
    value: (v) => (v.drill?.scratchNamespacesLeft == null ? '-' : String(v.drill.scratchNamespacesLeft)),
    wide: true,
  },
  { title: 'NOTES', value: drillNotes, wrap: true },
];

export function renderDrillView(view: ClusterDrillView[], options: ViewOptions = {}): string {
  return renderTable(DRILL_COLUMNS, view, { wide: options.wide === true });
}
