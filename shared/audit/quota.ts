/**
 * Provider read quotas of the audit log sources, as data with their sources cited, and the
 * token buckets that keep pull collection inside them.
 *
 * One bucket per quota scope, shared by every cluster of that scope in the process (a
 * {@link QuotaRegistry}): `aws:<account>:<region>` (CloudWatch Logs `FilterLogEvents`),
 * `gcp:<project>` (Cloud Logging `entries.list`), `azure:<workspace id>` (Log Analytics
 * queries). Each source takes a token before every read request and counts the requests,
 * bytes and events per scope; `collect` turns the counts into a {@link ScopeReport} per scope
 * per run, keeps a bounded lag history per scope in the state store (namespace `audit`, key
 * `quota/<scope>`), and records a finding for a scope whose lag grew run over run, advising
 * `audit.mode: export` for its clusters.
 *
 * What the bucket does not do (honestly): it is per process. A deployed regional service runs
 * the planner in one process and the `collect-audit-logs-worker` function in as many warm
 * instances as its SQS event source's `maximumConcurrency` (`auditWorkerConcurrency`, default
 * 2) allows; each instance has its own registry, so serverless.yml gives the worker
 * `FLEETWARD_AUDIT_QUOTA_SHARE` = that concurrency and each instance takes `1 / share` of every
 * scope's rate ({@link quotaShareFromEnv}): together they stay inside the quota, at the price of
 * an idle instance's share going unused. The code does not fan out one worker per scope key. The SDK's own retries of a throttled request (standard mode) are
 * not metered by the bucket: they only happen when something else spends the same quota.
 */
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { Cluster, Finding, RegionCloud } from '../model.ts';
import type { AuditLogSource, Clock, StateStore } from '../ports.ts';
import { AUDIT_NS, findingsKey, NS } from '../state/records.ts';
import { type ChainHead, headKey } from './manifest.ts';

/** Where a quota figure comes from: the page, and what it says (quoted or closely paraphrased). */
export interface QuotaSource {
  url: string;
  says: string;
}

/** A provider's limit on the read requests of one audit source, per quota scope. */
export interface ReadQuota {
  /** `<service>:<operation>`. */
  id: string;
  cloud: RegionCloud;
  /** What the provider meters together (the scope key's shape). */
  scope: string;
  /** Sustained requests per second the bucket allows. */
  ratePerSecond: number;
  /**
   * Tokens the bucket holds at most. 1 keeps every half-open second at or under the rate
   * (never a burst above the documented figure); larger values trade that for latency.
   */
  burst: number;
  /** Whether the provider refuses to raise the limit. */
  hard: boolean;
  /** Most bytes one page (one request) returns, when the provider says. */
  maxPageBytes?: number;
  /** Most events (rows, entries) one page returns, as the source asks for them. */
  maxPageEvents?: number;
  source: QuotaSource[];
}

/**
 * CloudWatch Logs `FilterLogEvents`: 5 requests/s per account and region, not raisable; pages
 * of at most 1 MB or 10,000 events.
 */
export const CLOUDWATCH_FILTER_LOG_EVENTS: ReadQuota = {
  id: 'cloudwatch-logs:FilterLogEvents',
  cloud: 'aws',
  scope: 'aws:<account>:<region>',
  ratePerSecond: 5,
  burst: 1,
  hard: true,
  maxPageBytes: 1_048_576,
  maxPageEvents: 10_000,
  source: [
    {
      // AWS re:Post knowledge center, "How do I determine throttling in my CloudWatch logs?"
      url: 'https://repost.aws/knowledge-center/cloudwatch-logs-throttling',
      says: 'FilterLogEvents and GetLogEvents have a hard limit and do not qualify for a limit increase: 5 transactions per second (TPS) per account and Region; they are designed for human interaction and not for automation',
    },
    {
      // FilterLogEvents API reference (as in the AWS SDK for .NET v4 reference of FilterLogEventsRequest).
      url: 'https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_FilterLogEvents.html',
      says: 'FilterLogEvents is a paginated operation. Each page returned can contain up to 1 MB of log events or up to 10,000 log events',
    },
  ],
};

/** Cloud Logging `entries.list`: 60 requests per minute per project, not raisable; 1,000 entries per page. */
export const CLOUD_LOGGING_ENTRIES_LIST: ReadQuota = {
  id: 'cloud-logging:entries.list',
  cloud: 'gcp',
  scope: 'gcp:<project>',
  ratePerSecond: 1,
  burst: 1,
  hard: true,
  maxPageEvents: 1000,
  source: [
    {
      // Cloud Logging "Quotas and limits" (read through a dated quotation of that page, 2026-09-12).
      url: 'https://cloud.google.com/logging/quotas',
      says: 'Logging API: number of entries.list requests, 60 per minute per Google Cloud project; cannot be increased; also applies to billing accounts, folders and organizations and is not hierarchical',
    },
    {
      url: 'https://cloud.google.com/logging/docs/reference/v2/rest/v2/entries/list',
      says: 'pageSize: the maximum number of results to return from this request; non-positive values are ignored (the source asks for 1,000)',
    },
  ],
};

/**
 * Log Analytics query API: 200 queries per 30 seconds per user (across all workspaces), 5
 * concurrent. Keyed by workspace as asked; the rate is the per-user figure, so one identity that
 * reads several workspaces shares it: the Azure source also takes a token from an
 * identity-wide bucket (`azure-identity:<client id>`).
 */
export const LOG_ANALYTICS_QUERY: ReadQuota = {
  id: 'log-analytics:query',
  cloud: 'azure',
  scope: 'azure:<workspace id>',
  ratePerSecond: 200 / 30,
  burst: 1,
  hard: true,
  maxPageEvents: 5000,
  source: [
    {
      // Azure Monitor service limits, "User query throttling" (include azure-monitor-limits-log-queries.md).
      url: 'https://learn.microsoft.com/azure/azure-monitor/service-limits#log-queries-and-language',
      says: 'Query rate: 200 queries per 30 seconds, the overall rate of queries a single user can submit to all workspaces; concurrent queries: 5 per user, others queue (429 after 3 minutes in the queue)',
    },
  ],
};

/** The read quota of each cloud's audit source. */
export const READ_QUOTAS: Readonly<Record<RegionCloud, ReadQuota>> = {
  aws: CLOUDWATCH_FILTER_LOG_EVENTS,
  gcp: CLOUD_LOGGING_ENTRIES_LIST,
  azure: LOG_ANALYTICS_QUERY,
};

/** Scope key of a CloudWatch Logs read: `aws:<account>:<region>`. */
export const awsScopeKey = (cluster: Pick<Cluster, 'scope' | 'region'>): string =>
  `aws:${cluster.scope}:${cluster.region}`;
/** Scope key of a Cloud Logging read: `gcp:<project>`. */
export const gcpScopeKey = (cluster: Pick<Cluster, 'scope'>): string => `gcp:${cluster.scope}`;
/** Scope key of a Log Analytics query: `azure:<workspace id>` (lower case). */
export const azureScopeKey = (workspaceId: string): string => `azure:${workspaceId.toLowerCase()}`;

// --- the bucket ---

/** Time for the buckets: milliseconds, and an abortable sleep (injected so tests need not wait). */
export interface QuotaClock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemQuotaClock: QuotaClock = {
  now: () => Date.now(),
  sleep: (ms, signal) => sleepFor(ms, undefined, signal ? { signal } : {}),
};

/**
 * A token bucket with reservations: a taker that finds no token reserves the next one (the
 * count goes below zero) and sleeps until it is due, so waiters are served in arrival order
 * and never more than `burst + rate × t` requests start in any span `t`.
 */
export class TokenBucket {
  readonly ratePerSecond: number;
  readonly burst: number;
  readonly #clock: QuotaClock;
  #tokens: number;
  #at: number;

  constructor(ratePerSecond: number, burst: number, clock: QuotaClock = systemQuotaClock) {
    if (!(ratePerSecond > 0) || !Number.isFinite(ratePerSecond))
      throw new RangeError(`rate must be a positive number, got ${ratePerSecond}`);
    if (!(burst >= 1) || !Number.isFinite(burst))
      throw new RangeError(`burst must be at least 1, got ${burst}`);
    this.ratePerSecond = ratePerSecond;
    this.burst = burst;
    this.#clock = clock;
    this.#tokens = burst;
    this.#at = clock.now();
  }

  /**
   * Takes one token, sleeping until it is due; resolves with the milliseconds waited. An
   * aborted wait rejects with the signal's reason and gives its token up: takers that came
   * later were scheduled behind it, so handing it back could start two requests in one slot.
   */
  async take(signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    const now = this.#clock.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) * this.ratePerSecond) / 1000);
    this.#at = now;
    this.#tokens -= 1;
    if (this.#tokens >= 0) return 0;
    const wait = (-this.#tokens * 1000) / this.ratePerSecond;
    await this.#clock.sleep(wait, signal);
    return wait;
  }
}

// --- the registry ---

/** What the reads of one scope spent, cumulative over the life of the process. */
export interface ScopeUsage {
  requests: number;
  bytes: number;
  events: number;
  /** Milliseconds readers waited for tokens (summed over concurrent readers). */
  waitedMs: number;
}

const ZERO: ScopeUsage = { requests: 0, bytes: 0, events: 0, waitedMs: 0 };

/** One quota scope: its bucket and what was spent in it. */
export class QuotaScope {
  readonly key: string;
  readonly quota: ReadQuota;
  readonly bucket: TokenBucket;
  readonly #usage: ScopeUsage = { ...ZERO };

  constructor(key: string, quota: ReadQuota, bucket: TokenBucket) {
    this.key = key;
    this.quota = quota;
    this.bucket = bucket;
  }

  /** Waits for the token of one request, and counts it. */
  async take(signal?: AbortSignal): Promise<void> {
    const waited = await this.bucket.take(signal);
    this.#usage.waitedMs += waited;
    this.#usage.requests++;
  }

  /** Counts what one answered request returned. */
  record(bytes: number, events: number): void {
    this.#usage.bytes += bytes;
    this.#usage.events += events;
  }

  usage(): ScopeUsage {
    return { ...this.#usage };
  }
}

export interface QuotaRegistryOptions {
  clock?: QuotaClock | undefined;
  /**
   * How many processes share each scope (default 1): each bucket gets `rate / share`. Set it
   * to the worker's `maximumConcurrency` when several instances read the same scope.
   */
  share?: number | undefined;
}

/** The buckets of a process: one {@link QuotaScope} per scope key, created on first use. */
export class QuotaRegistry {
  readonly clock: QuotaClock;
  readonly share: number;
  readonly #scopes = new Map<string, QuotaScope>();

  constructor(options: QuotaRegistryOptions = {}) {
    this.clock = options.clock ?? systemQuotaClock;
    this.share = options.share ?? 1;
    if (!(this.share >= 1)) throw new RangeError(`share must be at least 1, got ${this.share}`);
  }

  /** The scope `key`, metered by `quota` (the quota of its first use wins). */
  scope(key: string, quota: ReadQuota): QuotaScope {
    let scope = this.#scopes.get(key);
    if (!scope) {
      scope = new QuotaScope(
        key,
        quota,
        new TokenBucket(quota.ratePerSecond / this.share, quota.burst, this.clock),
      );
      this.#scopes.set(key, scope);
    }
    return scope;
  }

  /** What scope `key` spent so far (zeros when it was never read). */
  usage(key: string): ScopeUsage {
    return this.#scopes.get(key)?.usage() ?? { ...ZERO };
  }
}

/**
 * How many processes spend each scope's quota at once: `FLEETWARD_AUDIT_QUOTA_SHARE`, which
 * serverless.yml sets on the audit worker to its SQS `maximumConcurrency`; 1 when unset.
 * @throws RangeError when it is set but not a whole number of at least 1
 */
export function quotaShareFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.FLEETWARD_AUDIT_QUOTA_SHARE;
  if (raw === undefined || raw === '') return 1;
  const share = Number(raw);
  if (!Number.isInteger(share) || share < 1)
    throw new RangeError(`FLEETWARD_AUDIT_QUOTA_SHARE must be a whole number of at least 1, got "${raw}"`);
  return share;
}

/**
 * The registry of this process: every source built without one shares it. In the deployed
 * worker each of its concurrent instances takes `1 / share` of every scope's rate, so together
 * they stay inside the quota.
 */
export const processQuotas = new QuotaRegistry({ share: quotaShareFromEnv() });

// --- what a source tells the job ---

/** The quota side of an audit source. */
export interface AuditQuota {
  /** The quota the source's reads spend. */
  readonly quota: ReadQuota;
  /**
   * The scope key a cluster's reads spend; `undefined` while the source cannot tell (an AKS
   * cluster whose diagnostic setting was not read yet).
   */
  scopeOf(cluster: Cluster): string | undefined;
  /** What the scope spent so far in this process. */
  usage(scope: string): ScopeUsage;
  /** The clock of the source's buckets. */
  readonly clock: QuotaClock;
}

/** An audit source that meters its reads. */
export interface QuotaAwareSource extends AuditLogSource {
  readonly quota: AuditQuota;
}

/** The quota side of `source`, when it has one. */
export function quotaOf(source: AuditLogSource | undefined): AuditQuota | undefined {
  const quota = (source as Partial<QuotaAwareSource> | undefined)?.quota;
  return quota && typeof quota.scopeOf === 'function' ? quota : undefined;
}

// --- per-run report, lag history, finding ---

/** What one collect run read in one quota scope, against what the quota allows. */
export interface ScopeReport {
  scope: string;
  quota: string;
  requests: number;
  bytes: number;
  events: number;
  /** From the previous run's start in this scope (or this run's duration, for a first run). */
  intervalMs: number;
  /** What the quota would have allowed over `intervalMs`. */
  capacity: { requests: number; bytes?: number; events?: number };
  /** Milliseconds readers waited for tokens (summed over concurrent readers). */
  waitedMs: number;
  /** Per cluster: now minus its checkpoint's last timestamp (`null`: nothing archived yet). */
  clusters: { clusterId: string; lagMs: number | null }[];
  /** The largest cluster lag. */
  lagMs: number | null;
  /** The scope's lag grew in each of the last {@link LAG_RUNS} runs: a finding advises export. */
  behind: boolean;
}

/** One run in a scope's lag history. */
export interface ScopeRun {
  at: string;
  lagMs: number | null;
  requests: number;
  bytes: number;
  waitedMs: number;
}

/** State-store record (namespace `audit`, key `quota/<scope>`): the scope's last runs, oldest first. */
export interface ScopeHistory {
  scope: string;
  runs: ScopeRun[];
}

/** Runs kept per scope. */
export const HISTORY_RUNS = 24;
/** A scope is behind when its lag grew in each of this many consecutive runs. */
export const LAG_RUNS = 3;
/** Growth smaller than this (ms) is noise, not falling behind. */
export const MIN_LAG_GROWTH_MS = 60_000;
/** The finding of a scope whose lag keeps growing. */
export const QUOTA_FINDING_KIND = 'audit-quota-behind';

export const quotaHistoryKey = (scope: string): string => `quota/${scope}`;
/** The `clusterId` a scope's finding is recorded under (it names the scope's clusters in its message). */
export const quotaFindingId = (scope: string): string => `quota/${scope}`;

/**
 * Whether the lag grew by at least `minGrowthMs` in each of the last `n` runs (so `n + 1`
 * runs with a lag are needed). A run without a lag (nothing archived) breaks the streak.
 */
export function lagGrew(
  runs: readonly Pick<ScopeRun, 'lagMs'>[],
  n = LAG_RUNS,
  minGrowthMs = MIN_LAG_GROWTH_MS,
): boolean {
  if (runs.length < n + 1) return false;
  const tail = runs.slice(-(n + 1));
  for (let i = 1; i < tail.length; i++) {
    const before = tail[i - 1]?.lagMs;
    const after = tail[i]?.lagMs;
    if (before === null || before === undefined || after === null || after === undefined) return false;
    if (after - before < minGrowthMs) return false;
  }
  return true;
}

const minutes = (ms: number): string => `${Math.round(ms / 60_000)} min`;

/** The finding of a scope that falls behind, naming its clusters. */
export function behindFinding(report: ScopeReport, clusters: readonly Cluster[], at: Date): Finding {
  const jurisdictions = [...new Set(clusters.map((c) => c.jurisdiction))];
  const names = clusters.map((c) => c.id).join(', ');
  return {
    clusterId: quotaFindingId(report.scope),
    jurisdiction: jurisdictions.length === 1 ? (jurisdictions[0] as string) : 'fleet',
    kind: QUOTA_FINDING_KIND,
    severity: 'high',
    message: `audit pull in ${report.scope} falls behind its ${report.quota} quota: lag grew in each of the last ${LAG_RUNS} runs, now ${minutes(report.lagMs ?? 0)}; set audit.mode: export for ${names}`,
    at: at.toISOString(),
  };
}

export interface ScopeReportDeps {
  store: StateStore;
  clock: Clock;
  sources: { for(cluster: Cluster): AuditLogSource | undefined };
}

/**
 * Starts the per-scope report of a collect run over `clusters`: call before dispatching, then
 * `finish` after. Findings are recorded under `job`. `finish` reads each cluster's checkpoint, appends the run to each scope's
 * history, records (or closes) the scope's finding, and returns one report per scope.
 */
export function startScopeReport(
  deps: ScopeReportDeps,
  clusters: readonly Cluster[],
  job: string,
): { finish(): Promise<ScopeReport[]> } {
  const started = deps.clock.now();
  const quotas = new Set<AuditQuota>();
  for (const c of clusters) {
    const q = quotaOf(deps.sources.for(c));
    if (q) quotas.add(q);
  }
  // Usage before the run, per source: every scope the run may touch is not known yet (AKS).
  const before = new Map<AuditQuota, Map<string, ScopeUsage>>();
  const usageBefore = (q: AuditQuota, scope: string): ScopeUsage => {
    const seen = before.get(q)?.get(scope);
    return seen ?? ZERO;
  };
  for (const q of quotas) {
    const snapshot = new Map<string, ScopeUsage>();
    for (const c of clusters) {
      const scope = q.scopeOf(c);
      if (scope !== undefined && !snapshot.has(scope)) snapshot.set(scope, q.usage(scope));
    }
    before.set(q, snapshot);
  }
  return {
    async finish() {
      const now = deps.clock.now();
      const groups = new Map<string, { quota: AuditQuota; clusters: Cluster[] }>();
      for (const c of clusters) {
        const q = quotaOf(deps.sources.for(c));
        const scope = q?.scopeOf(c);
        if (!q || scope === undefined) continue;
        const group = groups.get(scope) ?? { quota: q, clusters: [] };
        group.clusters.push(c);
        groups.set(scope, group);
      }
      const reports: ScopeReport[] = [];
      for (const [scope, { quota: q, clusters: members }] of [...groups].sort(([a], [b]) =>
        a < b ? -1 : 1,
      )) {
        const after = q.usage(scope);
        const was = usageBefore(q, scope);
        const lags = await Promise.all(
          members.map(async (c) => ({ clusterId: c.id, lagMs: await lagOf(deps.store, c.id, now) })),
        );
        const known = lags.map((l) => l.lagMs).filter((l): l is number => l !== null);
        const history = (await deps.store.get<ScopeHistory>(AUDIT_NS, quotaHistoryKey(scope))) ?? {
          scope,
          runs: [],
        };
        const previous = history.runs.at(-1);
        const previousAt = previous ? Date.parse(previous.at) : Number.NaN;
        const intervalMs =
          Number.isFinite(previousAt) && previousAt < started.getTime()
            ? started.getTime() - previousAt
            : Math.max(0, now.getTime() - started.getTime());
        const capacityRequests = Math.floor((q.quota.ratePerSecond * intervalMs) / 1000);
        const report: ScopeReport = {
          scope,
          quota: q.quota.id,
          requests: after.requests - was.requests,
          bytes: after.bytes - was.bytes,
          events: after.events - was.events,
          intervalMs,
          capacity: {
            requests: capacityRequests,
            ...(q.quota.maxPageBytes ? { bytes: capacityRequests * q.quota.maxPageBytes } : {}),
            ...(q.quota.maxPageEvents ? { events: capacityRequests * q.quota.maxPageEvents } : {}),
          },
          waitedMs: Math.round(after.waitedMs - was.waitedMs),
          clusters: lags,
          lagMs: known.length > 0 ? Math.max(...known) : null,
          behind: false,
        };
        const runs = [
          ...history.runs,
          {
            at: started.toISOString(),
            lagMs: report.lagMs,
            requests: report.requests,
            bytes: report.bytes,
            waitedMs: report.waitedMs,
          },
        ].slice(-HISTORY_RUNS);
        report.behind = lagGrew(runs);
        await deps.store.putMany(AUDIT_NS, [{ key: quotaHistoryKey(scope), value: { scope, runs } }]);
        const key = findingsKey(job, quotaFindingId(scope));
        if (report.behind) {
          await deps.store.putMany(NS.findings, [{ key, value: [behindFinding(report, members, now)] }]);
        } else {
          await deps.store.deleteMany(NS.findings, [key]);
        }
        reports.push(report);
      }
      return reports;
    },
  };
}

/** Now minus the last timestamp of the cluster's checkpoint; `null` when it has none. */
async function lagOf(store: StateStore, clusterId: string, now: Date): Promise<number | null> {
  const head = await store.get<ChainHead>(AUDIT_NS, headKey(clusterId));
  const last = Date.parse(head?.checkpoint?.lastTimestamp ?? '');
  return Number.isNaN(last) ? null : Math.max(0, now.getTime() - last);
}
