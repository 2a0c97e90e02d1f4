/**
 * Per-job heartbeats: every successful scheduled run records when it ended; a job with no
 * successful run within twice its schedule interval is late. A late job is a finding
 * (`heartbeat/<job>`, sent to Slack with the other findings and listed in the fleet summary
 * of the snapshot) and, in the deployed template, an alarm on the `RunSucceeded` metric.
 */
import type { Finding } from '../model.ts';
import type { StateStore } from '../ports.ts';
import { findingsKey, NS } from '../state/records.ts';
import { recordJobMetrics } from './metrics.ts';

/** State-store namespace of the heartbeats: one item per job, `<job>`. */
export const HEARTBEATS_NS = 'heartbeats';
/** The findings job key heartbeat findings are recorded under (`findings/heartbeat/<job>`). */
export const HEARTBEAT_JOB = 'heartbeat';

const MINUTE = 60_000;
/**
 * Each scheduled function's interval, as `schedules/<job>.yml` sets it (a meta test keeps the
 * two equal). The snapshot's cron runs daily.
 */
export const JOB_INTERVALS_MS = {
  'discover-clusters': 15 * MINUTE,
  'backup-clusters': 60 * MINUTE,
  'reconcile-backups': 5 * MINUTE,
  'restore-drill': 10 * MINUTE,
  'collect-audit-logs': 10 * MINUTE,
  'audit-digest': 60 * MINUTE,
  'reconcile-tags': 24 * 60 * MINUTE,
  'reconcile-budgets': 24 * 60 * MINUTE,
  'publish-compliance-snapshot': 24 * 60 * MINUTE,
} as const;
export type ScheduledJob = keyof typeof JOB_INTERVALS_MS;

export interface Heartbeat {
  job: ScheduledJob;
  /** When the last successful run ended (ISO). */
  at: string;
}

/** Records a successful run of `job` at `now`, and emits its `RunSucceeded` metric. */
export async function recordHeartbeat(store: StateStore, job: ScheduledJob, now: Date): Promise<void> {
  await store.putMany(HEARTBEATS_NS, [
    { key: job, value: { job, at: now.toISOString() } satisfies Heartbeat },
  ]);
  recordJobMetrics(job, { RunSucceeded: 1 });
}

export interface JobHeartbeat {
  job: ScheduledJob;
  lastRunAt: string | null;
  intervalMinutes: number;
  /** No successful run within twice the interval. `false` for a job that never ran (nothing to compare). */
  late: boolean;
}

/** Every scheduled job with its last successful run and whether it is late at `now`. */
export async function jobHeartbeats(
  store: StateStore,
  now: Date,
  jobs?: readonly ScheduledJob[],
): Promise<JobHeartbeat[]> {
  const seen = new Map((await store.list<Heartbeat>(HEARTBEATS_NS)).map((i) => [i.key, i.value.at]));
  return (jobs ?? (Object.keys(JOB_INTERVALS_MS) as ScheduledJob[])).map((job) => {
    const interval = JOB_INTERVALS_MS[job];
    const at = seen.get(job) ?? null;
    return {
      job,
      lastRunAt: at,
      intervalMinutes: interval / MINUTE,
      late: at !== null && now.getTime() - Date.parse(at) > 2 * interval,
    };
  });
}

/**
 * Records one finding per late job (and closes those of jobs that ran again), so the Slack
 * digest of `heartbeat` findings says which schedules stopped. Returns the open findings.
 */
export async function recordLateJobs(
  store: StateStore,
  now: Date,
  jobs?: readonly ScheduledJob[],
): Promise<{ heartbeats: JobHeartbeat[]; findings: Finding[] }> {
  const heartbeats = await jobHeartbeats(store, now, jobs);
  const findings: Finding[] = [];
  for (const h of heartbeats) {
    const key = findingsKey(HEARTBEAT_JOB, h.job);
    if (!h.late) {
      await store.deleteMany(NS.findings, [key]);
      continue;
    }
    const finding: Finding = {
      clusterId: `job/${h.job}`,
      jurisdiction: 'fleet',
      kind: 'job-late',
      severity: 'high',
      message: `${h.job} has not run successfully since ${h.lastRunAt} (every ${h.intervalMinutes} min expected)`,
      at: now.toISOString(),
    };
    findings.push(finding);
    await store.putMany(NS.findings, [{ key, value: [finding] }]);
  }
  return { heartbeats, findings };
}
