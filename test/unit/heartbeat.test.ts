import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import type { Finding } from '../../shared/model.ts';
import type { StateStore } from '../../shared/ports.ts';
import {
  HEARTBEAT_JOB,
  JOB_INTERVALS_MS,
  jobHeartbeats,
  recordHeartbeat,
  recordLateJobs,
  type ScheduledJob,
} from '../../shared/runtime/heartbeat.ts';
import { openStateStore } from '../../shared/state/index.ts';

const T0 = new Date('2026-12-07T10:00:00Z');
const minutes = (n: number) => new Date(T0.getTime() + n * 60_000);

describe('job heartbeats', () => {
  let store: StateStore;
  beforeEach(async () => {
    store = await openStateStore({ type: 'sqlite', path: ':memory:' });
  });
  afterEach(async () => {
    await store.close();
  });

  it('is on time up to twice the interval and late after it', async () => {
    await recordHeartbeat(store, 'reconcile-backups', T0); // every 5 minutes

    const at10 = await jobHeartbeats(store, minutes(10), ['reconcile-backups']);
    const at11 = await jobHeartbeats(store, minutes(11), ['reconcile-backups']);

    expect(at10).toEqual([
      { job: 'reconcile-backups', lastRunAt: T0.toISOString(), intervalMinutes: 5, late: false },
    ]);
    expect(at11[0]?.late).toBe(true);
  });

  it('does not call a job that never ran late (there is nothing to compare)', async () => {
    const all = await jobHeartbeats(store, minutes(10_000));

    expect(all.map((h) => h.late)).toEqual(Object.keys(JOB_INTERVALS_MS).map(() => false));
    expect(all.every((h) => h.lastRunAt === null)).toBe(true);
  });

  it('records a finding per late job and closes it when the job runs again', async () => {
    // Prepare
    await recordHeartbeat(store, 'backup-clusters', T0); // hourly
    await recordHeartbeat(store, 'discover-clusters', minutes(150));

    // Act
    const late = await recordLateJobs(store, minutes(160));
    const stored = await store.get<Finding[]>('findings', `${HEARTBEAT_JOB}/backup-clusters`);
    await recordHeartbeat(store, 'backup-clusters', minutes(161));
    const after = await recordLateJobs(store, minutes(162));

    // Assess
    expect(late.findings.map((f) => f.message)).toEqual([
      `backup-clusters has not run successfully since ${T0.toISOString()} (every 60 min expected)`,
    ]);
    expect(stored).toMatchObject([{ kind: 'job-late', severity: 'high', clusterId: 'job/backup-clusters' }]);
    expect(after.findings).toEqual([]);
    expect(await store.get('findings', `${HEARTBEAT_JOB}/backup-clusters`)).toBeUndefined();
  });

  it('has an interval for every scheduled function', () => {
    const scheduled = readdirSync('schedules').map((f) => f.replace(/\.yml$/, ''));

    expect(Object.keys(JOB_INTERVALS_MS).sort()).toEqual(scheduled.sort());
  });

  it.each(Object.keys(JOB_INTERVALS_MS) as ScheduledJob[])(
    'knows the interval schedules/%s.yml sets',
    (job) => {
      const [entry] = parse(readFileSync(`schedules/${job}.yml`, 'utf8')) as { schedule: { rate: string } }[];
      const rate = entry!.schedule.rate;
      const m = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(rate);
      const unit = { minute: 1, minutes: 1, hour: 60, hours: 60, day: 1440, days: 1440 };
      // A cron expression runs once a day here (the snapshot's `cron(30 5 * * ? *)`).
      const expected = m
        ? Number(m[1]) * unit[m[2] as keyof typeof unit]
        : /^cron\(\d+ \d+ \* \* \? \*\)$/.test(rate)
          ? 1440
          : NaN;

      expect(JOB_INTERVALS_MS[job] / 60_000).toBe(expected);
    },
  );
});

describe('heartbeat middleware', () => {
  it('records a heartbeat after each successful run, none after a failed one', async () => {
    // Prepare: a deployment config with a local state file, read as a deployed function reads it
    const dir = mkdtempSync(join(tmpdir(), 'fleetward-heartbeat-'));
    const statePath = join(dir, 'state.db');
    writeFileSync(
      join(dir, 'fleet.yaml'),
      JSON.stringify({
        version: 1,
        clouds: { kubeconfig: [] },
        jurisdictions: { eu: { preset: 'eu-gdpr' } },
        state: { type: 'sqlite', path: statePath },
      }),
    );
    vi.stubEnv('FLEETWARD_CONFIG', join(dir, 'fleet.yaml'));
    vi.resetModules();
    const { heartbeat, lambdaHandler } = await import('../../shared/runtime/lambda.ts');
    let fail = false;
    const handler = lambdaHandler()
      .use(heartbeat('reconcile-backups'))
      .handler(async () => {
        if (fail) throw new Error('job failed');
        return 'done';
      });
    const context = {
      functionName: 'reconcile-backups',
      awsRequestId: 'r',
      getRemainingTimeInMillis: () => 60_000,
    };
    const read = async () => {
      const store = await openStateStore({ type: 'sqlite', path: statePath });
      try {
        return (await jobHeartbeats(store, new Date(), ['reconcile-backups']))[0]?.lastRunAt ?? null;
      } finally {
        await store.close();
      }
    };
    try {
      // Act / Assess
      await handler({}, context as never);
      const first = await read();
      fail = true;
      await expect(handler({}, context as never)).rejects.toThrow('job failed');
      const afterFailure = await read();

      expect(first).not.toBeNull();
      expect(afterFailure).toBe(first);
    } finally {
      vi.unstubAllEnvs();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
