import { readFileSync } from 'node:fs';
import type { FilterLogEventsCommand, FilterLogEventsCommandOutput } from '@aws-sdk/client-cloudwatch-logs';
import { describe, expect, it } from 'vitest';
import { headKey } from '../../shared/audit/manifest.ts';
import {
  type AuditQuota,
  awsScopeKey,
  CLOUDWATCH_FILTER_LOG_EVENTS,
  lagGrew,
  QUOTA_FINDING_KIND,
  type QuotaAwareSource,
  QuotaRegistry,
  quotaHistoryKey,
  quotaShareFromEnv,
  READ_QUOTAS,
  type ReadQuota,
  type ScopeHistory,
  startScopeReport,
  TokenBucket,
} from '../../shared/audit/quota.ts';
import { createAuditSource } from '../../shared/clouds/aws/audit.ts';
import { AwsConfig } from '../../shared/config/schema.ts';
import type { Cluster, Finding } from '../../shared/model.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { AUDIT_NS, NS } from '../../shared/state/records.ts';
import { SqliteStateStore } from '../../shared/state/sqlite.ts';
import { VirtualClock } from '../bench/virtual-clock.ts';
import { auditCluster } from './audit-builders.ts';

const T0 = Date.parse('2026-11-21T10:00:00Z');
const MIN = 60_000;

/** The most start times in any half-open window `[t, t + windowMs)`. */
function peak(times: number[], windowMs = 1000): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < sorted.length; hi++) {
    while ((sorted[hi] as number) - (sorted[lo] as number) >= windowMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

/** Takes `n` tokens one after another from `take`, recording the virtual time of each start. */
async function drain(clock: VirtualClock, n: number, take: () => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    await take();
    times.push(clock.ms);
  }
  return times;
}

const eks = (name: string, over: Partial<Cluster> = {}): Cluster => ({
  ...auditCluster,
  id: `aws/${over.scope ?? auditCluster.scope}/${over.region ?? auditCluster.region}/${name}`,
  name,
  ...over,
});

describe('quota data', () => {
  it('cites a source for every read quota and keeps the documented figures', () => {
    for (const q of Object.values(READ_QUOTAS)) {
      expect(q.source.length).toBeGreaterThan(0);
      for (const s of q.source) expect(s.url).toMatch(/^https:\/\//);
    }
    expect(READ_QUOTAS.aws).toMatchObject({ ratePerSecond: 5, hard: true, maxPageBytes: 1_048_576 });
    expect(READ_QUOTAS.gcp.ratePerSecond * 60).toBe(60);
    expect(READ_QUOTAS.azure.ratePerSecond * 30).toBeCloseTo(200);
  });
});

describe('token bucket', () => {
  it('starts no more than the rate in any second, however many wait at once', async () => {
    const clock = new VirtualClock(T0);
    const bucket = new TokenBucket(5, 1, clock.quota);
    const times: number[] = [];
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        await bucket.take();
        times.push(clock.ms);
      }),
    );

    expect(peak(times)).toBe(5);
    expect(Math.max(...times) - T0).toBeCloseTo(49 * 200, 0);
  });

  it('lets a burst through at once, then waits for the rate', async () => {
    const clock = new VirtualClock(T0);
    const bucket = new TokenBucket(5, 10, clock.quota);

    const waits = [];
    for (let i = 0; i < 12; i++) waits.push(await bucket.take());

    expect(waits.slice(0, 10)).toEqual(Array(10).fill(0));
    expect(waits[10]).toBeCloseTo(200);
    expect(clock.ms - T0).toBeCloseTo(400);
  });

  it('refills while idle, never beyond the burst', async () => {
    const clock = new VirtualClock(T0);
    const bucket = new TokenBucket(5, 2, clock.quota);
    await drain(clock, 2, () => bucket.take());
    await clock.sleep(60_000);

    const waits = [await bucket.take(), await bucket.take(), await bucket.take()];

    expect(waits[0]).toBe(0);
    expect(waits[1]).toBe(0);
    expect(waits[2]).toBeCloseTo(200);
  });

  it('rejects an aborted wait with the reason and does not hand its token to a later taker', async () => {
    const clock = new VirtualClock(T0);
    const bucket = new TokenBucket(1, 1, clock.quota);
    await bucket.take();
    const controller = new AbortController();
    const waiting = bucket.take(controller.signal);
    controller.abort(new Error('stop'));

    await expect(waiting).rejects.toThrow('stop');
    const waited = await bucket.take();
    expect(waited).toBeCloseTo(2000);
    await expect(bucket.take(AbortSignal.abort(new Error('already')))).rejects.toThrow('already');
  });

  it('refuses a rate or burst that meters nothing', () => {
    expect(() => new TokenBucket(0, 1)).toThrow(RangeError);
    expect(() => new TokenBucket(5, 0)).toThrow(RangeError);
  });
});

describe('quota registry', () => {
  const q: ReadQuota = { ...CLOUDWATCH_FILTER_LOG_EVENTS };

  it('gives every cluster of one scope the same bucket: together they get the scope rate', async () => {
    const clock = new VirtualClock(T0);
    const quotas = new QuotaRegistry({ clock: clock.quota });
    const a = quotas.scope(awsScopeKey(eks('a')), q);
    const b = quotas.scope(awsScopeKey(eks('b')), q);

    const [ta, tb] = await Promise.all([drain(clock, 10, () => a.take()), drain(clock, 10, () => b.take())]);

    expect(a).toBe(b);
    expect(peak([...ta, ...tb])).toBe(5);
    expect(clock.ms - T0).toBeCloseTo(19 * 200, 0);
    expect(quotas.usage(a.key).requests).toBe(20);
  });

  it('keeps scopes apart: another account or region is not slowed', async () => {
    const clock = new VirtualClock(T0);
    const quotas = new QuotaRegistry({ clock: clock.quota });
    const a = quotas.scope(awsScopeKey(eks('a')), q);
    const b = quotas.scope(awsScopeKey(eks('b', { region: 'eu-west-1' })), q);

    const [ta, tb] = await Promise.all([drain(clock, 10, () => a.take()), drain(clock, 10, () => b.take())]);

    expect(a).not.toBe(b);
    expect(Math.max(...ta) - T0).toBeCloseTo(9 * 200, 0);
    expect(Math.max(...tb) - T0).toBeCloseTo(9 * 200, 0);
    expect(peak([...ta, ...tb])).toBe(10);
  });

  it('divides the rate by the processes that share a scope', async () => {
    const clock = new VirtualClock(T0);
    const quotas = new QuotaRegistry({ clock: clock.quota, share: 2 });
    const a = quotas.scope('aws:1:eu-west-1', q);

    const times = await drain(clock, 11, () => a.take());

    expect(Math.max(...times) - T0).toBeCloseTo(10 * 400, 0);
  });
});

describe('lag trend', () => {
  const runs = (...lags: (number | null)[]) => lags.map((m) => ({ lagMs: m === null ? null : m * MIN }));

  it('is behind when the lag grew in each of the last 3 runs', () => {
    expect(lagGrew(runs(5, 10, 20, 40))).toBe(true);
    expect(lagGrew(runs(50, 5, 10, 20, 40))).toBe(true);
  });

  it('is not behind when the lag is stable, jitters, fell once, or there are too few runs', () => {
    expect(lagGrew(runs(10, 10, 10, 10))).toBe(false);
    expect(lagGrew(runs(10, 10.2, 10.4, 10.6))).toBe(false);
    expect(lagGrew(runs(5, 10, 8, 40))).toBe(false);
    expect(lagGrew(runs(5, 10, 20))).toBe(false);
    expect(lagGrew(runs(5, null, 20, 40))).toBe(false);
  });
});

describe('scope report', () => {
  /** A quota-aware source whose reads are counted by hand (the report's inputs). */
  function fakeSource(quotas: QuotaRegistry): QuotaAwareSource {
    const quota: AuditQuota = {
      quota: CLOUDWATCH_FILTER_LOG_EVENTS,
      clock: quotas.clock,
      scopeOf: (c) => awsScopeKey(c),
      usage: (s) => quotas.usage(s),
    };
    return {
      quota,
      enabled: async () => ({ enabled: true }),
      read: () => ({ async *[Symbol.asyncIterator]() {} }),
    };
  }

  async function runs(lagsMinutes: number[]) {
    const clock = new VirtualClock(T0);
    const store = new SqliteStateStore({ path: ':memory:' });
    const quotas = new QuotaRegistry({ clock: clock.quota });
    const source = fakeSource(quotas);
    const clusters = [eks('a'), eks('b'), eks('c', { region: 'eu-west-1' })];
    const deps = { store, clock: clock.clock, sources: { for: () => source } };
    const reports = [];
    for (const lag of lagsMinutes) {
      const report = startScopeReport(deps, clusters, 'audit');
      const scope = quotas.scope(awsScopeKey(clusters[0] as Cluster), CLOUDWATCH_FILTER_LOG_EVENTS);
      for (let i = 0; i < 10; i++) {
        await scope.take();
        scope.record(1000, 4);
      }
      await clock.sleep(10 * MIN - 1800);
      // Cluster a lags by `lag` minutes, b by one minute; c (another scope) never read anything.
      const now = clock.ms;
      await store.putMany(AUDIT_NS, [
        { key: headKey('aws/111111111111/eu-central-1/a'), value: head(now - lag * MIN) },
        { key: headKey('aws/111111111111/eu-central-1/b'), value: head(now - MIN) },
      ]);
      reports.push(await report.finish());
    }
    return { store, reports };
  }

  const head = (ms: number) => ({
    seq: 1,
    sha256: null,
    key: null,
    version: null,
    checkpoint: { lastTimestamp: new Date(ms).toISOString() },
    pending: null,
  });
  const findingsOf = (store: SqliteStateStore, scope: string) =>
    store.get<Finding[]>(NS.findings, `audit/quota/${scope}`);

  it('reports per scope what was read, what the quota allowed and each cluster lag', async () => {
    const { reports } = await runs([5, 5]);
    const [eu, west] = reports[1] ?? [];

    expect(eu).toMatchObject({
      scope: 'aws:111111111111:eu-central-1',
      quota: 'cloudwatch-logs:FilterLogEvents',
      requests: 10,
      bytes: 10_000,
      events: 40,
      intervalMs: 10 * MIN,
      capacity: { requests: 3000, bytes: 3000 * 1_048_576 },
      lagMs: 5 * MIN,
      behind: false,
    });
    expect(eu?.waitedMs).toBeCloseTo(9 * 200, 0);
    expect(eu?.clusters).toEqual([
      { clusterId: 'aws/111111111111/eu-central-1/a', lagMs: 5 * MIN },
      { clusterId: 'aws/111111111111/eu-central-1/b', lagMs: MIN },
    ]);
    expect(west).toMatchObject({ scope: 'aws:111111111111:eu-west-1', requests: 0, lagMs: null });
  });

  it('records a finding naming the scope clusters when the lag grew 3 runs running, and closes it after', async () => {
    const { store, reports } = await runs([5, 10, 20, 40]);
    const scope = 'aws:111111111111:eu-central-1';

    expect(reports.map((r) => r[0]?.behind)).toEqual([false, false, false, true]);
    const open = await findingsOf(store, scope);
    expect(open?.[0]?.kind).toBe(QUOTA_FINDING_KIND);
    expect(open?.[0]?.message).toContain('audit.mode: export');
    expect(open?.[0]?.message).toContain('aws/111111111111/eu-central-1/a');
    expect(open?.[0]?.message).toContain('aws/111111111111/eu-central-1/b');
    expect(open?.[0]?.message).not.toContain('eu-west-1/c');
    const history = await store.get<ScopeHistory>(AUDIT_NS, quotaHistoryKey(scope));
    expect(history?.runs.map((r) => r.lagMs)).toEqual([5, 10, 20, 40].map((m) => m * MIN));
  });

  it('records no finding while the lag is stable, and keeps a bounded history', async () => {
    const { store, reports } = await runs(Array(30).fill(5));
    const scope = 'aws:111111111111:eu-central-1';

    expect(reports.every((r) => r.every((s) => !s.behind))).toBe(true);
    expect(await findingsOf(store, scope)).toBeUndefined();
    const history = await store.get<ScopeHistory>(AUDIT_NS, quotaHistoryKey(scope));
    expect(history?.runs).toHaveLength(24);
  });
});

describe('aws audit source', () => {
  const config = AwsConfig.parse({
    accounts: [
      { id: '111111111111', roleArn: 'arn:aws:iam::111111111111:role/r', regions: ['eu-central-1'] },
    ],
    concurrency: 16,
  });
  const credentials = async () => ({ accessKeyId: 'AKIA', secretAccessKey: 'secret', sessionToken: 't' });

  /** A CloudWatch Logs client serving `pages` one-event pages per log group, recording when each call came. */
  function fakeLogs(clock: VirtualClock, pages: number) {
    const calls: { at: number; region: string }[] = [];
    const logsClient = (region: string) => ({
      async send(command: FilterLogEventsCommand): Promise<FilterLogEventsCommandOutput> {
        calls.push({ at: clock.ms, region });
        const n = Number(command.input.nextToken ?? '0');
        return {
          $metadata: {},
          events: [
            { eventId: `${command.input.logGroupName}-${n}`, timestamp: T0, message: '{"auditID":"x"}' },
          ],
          ...(n + 1 < pages ? { nextToken: String(n + 1) } : {}),
        };
      },
      destroy() {},
    });
    return { calls, logsClient: logsClient as never };
  }

  async function readAll(source: ReturnType<typeof createAuditSource>, cluster: Cluster) {
    let events = 0;
    for await (const page of source.read(cluster, { since: new Date(T0), until: new Date(T0 + MIN) }))
      events += page.length;
    return events;
  }

  it('waits for a token before every FilterLogEvents page: the clusters of an account and region share 5/s', async () => {
    const clock = new VirtualClock(T0);
    const { calls, logsClient } = fakeLogs(clock, 10);
    const quotas = new QuotaRegistry({ clock: clock.quota });
    const source = createAuditSource(config, { logger: silentLogger }, { quotas, logsClient, credentials });
    const clusters = [eks('a'), eks('b'), eks('c')];

    const events = await Promise.all(clusters.map((c) => readAll(source, c)));

    expect(events).toEqual([10, 10, 10]);
    expect(calls).toHaveLength(30);
    expect(peak(calls.map((c) => c.at))).toBe(5);
    expect(clock.ms - T0).toBeGreaterThanOrEqual(29 * 200 - 1);
    expect(source.quota.scopeOf(clusters[0] as Cluster)).toBe('aws:111111111111:eu-central-1');
    expect(source.quota.usage('aws:111111111111:eu-central-1')).toMatchObject({ requests: 30, events: 30 });
  });

  it('does not slow a cluster of another region for the first region reads', async () => {
    const clock = new VirtualClock(T0);
    const { calls, logsClient } = fakeLogs(clock, 10);
    const quotas = new QuotaRegistry({ clock: clock.quota });
    const source = createAuditSource(config, { logger: silentLogger }, { quotas, logsClient, credentials });

    await Promise.all([
      readAll(source, eks('a')),
      readAll(source, eks('b')),
      readAll(source, eks('w', { region: 'eu-west-1' })),
    ]);

    const west = calls.filter((c) => c.region === 'eu-west-1').map((c) => c.at);
    expect(Math.max(...west) - T0).toBeCloseTo(9 * 200, 0);
    expect(peak(calls.map((c) => c.at))).toBe(10);
  });
});

describe('audit collect output', () => {
  it('prints one line per scope after the cluster lines, marking a scope that falls behind', async () => {
    const { renderCollect } = await import('../../bin/audit.ts');
    const scope = {
      scope: 'aws:111111111111:eu-central-1',
      quota: 'cloudwatch-logs:FilterLogEvents',
      requests: 2998,
      bytes: 2998 * 1_048_576,
      events: 1_000_000,
      intervalMs: 10 * MIN,
      capacity: { requests: 3000, bytes: 3000 * 1_048_576 },
      waitedMs: 4 * MIN,
      clusters: [{ clusterId: 'aws/111111111111/eu-central-1/a', lagMs: 12 * MIN }],
      lagMs: 12 * MIN,
      behind: false,
    };

    const ok = renderCollect({ runId: 'r', outcomes: [], scopes: [scope] });
    const behind = renderCollect({ runId: 'r', outcomes: [], scopes: [{ ...scope, behind: true }] });

    expect(ok).toMatch(/^scope +aws:111111111111:eu-central-1: 2998 requests, 2\.9 GiB/);
    expect(ok).toContain('allows 3000 requests (2.9 GiB) per 10 min');
    expect(ok).toContain('lag up to 12 min (1 cluster(s))');
    expect(ok).not.toContain('export');
    expect(behind).toMatch(/^BEHIND +aws:/);
    expect(behind).toContain('set audit.mode: export');
    expect(behind.split('\n').every((l) => l.length <= 120)).toBe(true);
  });
});

describe('quota share of a deployed worker instance', () => {
  it('reads FLEETWARD_AUDIT_QUOTA_SHARE, 1 when unset', () => {
    expect(quotaShareFromEnv({})).toBe(1);
    expect(quotaShareFromEnv({ FLEETWARD_AUDIT_QUOTA_SHARE: '4' })).toBe(4);
  });

  it.each(['0', '1.5', 'two', '-2'])('refuses FLEETWARD_AUDIT_QUOTA_SHARE=%s', (raw) => {
    expect(() => quotaShareFromEnv({ FLEETWARD_AUDIT_QUOTA_SHARE: raw })).toThrow(
      /FLEETWARD_AUDIT_QUOTA_SHARE/,
    );
  });

  it('is set on the audit worker to its SQS maximumConcurrency', () => {
    const yml = readFileSync(new URL('../../serverless.yml', import.meta.url), 'utf8');
    const worker = yml.slice(yml.indexOf('collect-audit-logs-worker:'));
    const block = worker.slice(0, worker.indexOf('\n  reconcile-tags-worker:'));
    const param = '$' + '{param:auditWorkerConcurrency}';
    expect(block).toContain(`FLEETWARD_AUDIT_QUOTA_SHARE: ${param}`);
    expect(block).toContain(`maximumConcurrency: ${param}`);
  });
});
