/**
 * `npm run bench -- audit-quota`: 200 EKS clusters in one account and region, pulled through
 * CloudWatch Logs `FilterLogEvents` at its real quota (5 requests/s per account and region,
 * pages of at most 1 MiB), on the deployed schedule (a collect run every 10 minutes, 10 minutes
 * of overlap re-read each run).
 *
 * What runs is the product: the real token bucket (shared/audit/quota.ts), the real AWS audit
 * source (its FilterLogEvents paging loop, with an in-process CloudWatch Logs client instead
 * of the SDK's) and the real `collect` job (dedup, chunks, chain, state store in memory) into
 * an in-memory write-once archive. Time is virtual (test/bench/virtual-clock.ts): an hour of
 * rate-limited reading runs in seconds.
 *
 * Byte scale: a simulated page holds 1 KiB of real bytes and stands for 1 MiB (events of 256
 * bytes standing for 256 KiB). The quota meters requests and caps bytes per request, so scaling
 * every byte by the same factor leaves the request count, the waits and the lag unchanged; the
 * volumes printed are nominal (real bytes × 1024).
 *
 * Prints: the analytic bound (5 req/s × 1 MiB × 3600 / 200 = 90 MiB/h per cluster), the bound
 * once each run re-reads its overlap (× interval / (interval + overlap)), the highest volume per
 * cluster measured to keep the schedule (binary search: every run ends before the next is due),
 * the peak requests in any second, and the lag after one hour at twice the measured volume
 * (then how long until the scope's falling-behind finding is raised). Exits 1 when a target is
 * missed.
 */
import { parseArgs } from 'node:util';
import type { ChainHead } from '../../shared/audit/manifest.ts';
import { type QuotaClock, QuotaRegistry, type ScopeReport } from '../../shared/audit/quota.ts';
import { createAuditSource } from '../../shared/clouds/aws/audit.ts';
import { AwsConfig, Jurisdiction } from '../../shared/config/schema.ts';
import { type AuditJobDeps, collect } from '../../shared/jobs/audit.ts';
import type { Cluster, Finding } from '../../shared/model.ts';
import type { ArchivedObject, ArchiveStore, StateStore } from '../../shared/ports.ts';
import { Residency } from '../../shared/residency/index.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { AUDIT_NS, INVENTORY, NS } from '../../shared/state/records.ts';
import { SqliteStateStore } from '../../shared/state/sqlite.ts';
import { VirtualClock } from './virtual-clock.ts';

const ACCOUNT = '111111111111';
const REGION = 'eu-central-1';
const RATE = 5;
const MIB = 1024 * 1024;
/** Nominal bytes per real byte. */
const SCALE = 1024;
/** Real bytes of one simulated page (1 MiB nominal) and of one event. */
const PAGE_BYTES = MIB / SCALE;
const EVENT_BYTES = 256;
const T0 = Date.parse('2026-11-21T00:00:00Z');
const MIN = 60_000;
const HOUR = 60 * MIN;
/** Targets. */
const MIN_OF_SCHEDULE_BOUND = 0.9;
const MAX_WALL_S_PER_SIM_HOUR = 30;

interface Options {
  clusters: number;
  intervalMin: number;
  overlapMin: number;
  concurrency: number;
}

/** The audit event line `k` of cluster `c`, exactly {@link EVENT_BYTES} bytes. */
function line(c: number, k: number, ts: number): string {
  const head = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"c${c}-${k}","stage":"ResponseComplete","stageTimestamp":"${new Date(ts).toISOString()}","pad":"`;
  return `${head}${'x'.repeat(Math.max(0, EVENT_BYTES - head.length - 2))}"}`;
}

/**
 * CloudWatch Logs of the scope: cluster `c`'s group holds events at `(k + 0.5) × spacing`
 * from T0, each visible once the virtual clock passes it. Pages hold at most 1 MiB (nominal)
 * and `limit` events; `nextToken` is the index of the next event. Records each call's time.
 */
function fakeCloudWatch(clock: VirtualClock, mibPerHourPerCluster: number) {
  const eventsPerHour = (mibPerHourPerCluster * MIB) / SCALE / EVENT_BYTES;
  const spacing = HOUR / eventsPerHour;
  const calls: number[] = [];
  const perPage = Math.floor(PAGE_BYTES / EVENT_BYTES);
  const client = {
    async send(command: { input: Record<string, unknown> }) {
      calls.push(clock.ms);
      const input = command.input as {
        logGroupName: string;
        startTime: number;
        endTime: number;
        limit?: number;
        nextToken?: string;
      };
      const c = Number(/bench-(\d+)/.exec(input.logGroupName)?.[1]);
      const tsOf = (k: number) => T0 + (k + 0.5) * spacing;
      const until = Math.min(input.endTime, clock.ms);
      let k = input.nextToken
        ? Number(input.nextToken)
        : Math.max(0, Math.ceil((input.startTime - T0) / spacing - 0.5));
      const events = [];
      const max = Math.min(perPage, input.limit ?? perPage);
      while (events.length < max && tsOf(k) <= until) {
        const ts = Math.round(tsOf(k));
        events.push({ eventId: `${c}-${k}`, timestamp: ts, message: line(c, k, ts) });
        k++;
      }
      return { $metadata: {}, events, ...(tsOf(k) <= until ? { nextToken: String(k) } : {}) };
    },
    destroy() {},
  };
  return { calls, client };
}

/** A write-once archive in memory, in the cluster's region, per cluster id. */
class MemoryArchive implements ArchiveStore {
  readonly id = `aws:bench-evidence-${REGION}`;
  readonly #byCluster = new Map<string, Map<string, Uint8Array>>();
  #bucket(key: string): Map<string, Uint8Array> {
    const id = key.split('/').slice(1, 5).join('/');
    let m = this.#byCluster.get(id);
    if (!m) {
      m = new Map();
      this.#byCluster.set(id, m);
    }
    return m;
  }
  async location() {
    return { cloud: 'aws' as const, region: REGION };
  }
  async assertImmutable() {}
  async create(key: string, body: Uint8Array): Promise<ArchivedObject> {
    const m = this.#bucket(key);
    if (m.has(key)) throw new Error(`object ${key} exists`);
    m.set(key, body);
    return { key, version: '1' };
  }
  async get(key: string) {
    return this.#bucket(key).get(key);
  }
  async list(prefix: string) {
    return [...this.#bucket(prefix).keys()]
      .filter((k) => k.startsWith(prefix))
      .sort()
      .map((key) => ({ key, versions: ['1'] }));
  }
}

interface Run {
  start: number;
  end: number;
  scope: ScopeReport | undefined;
}

interface Sim {
  runs: Run[];
  calls: number[];
  /** Largest cluster lag (ms) after the first `hours`, from the checkpoints held then. */
  lagMs: number;
  /** When the scope's falling-behind finding was first raised (virtual ms from T0). */
  behindAt: number | null;
  finding: Finding | undefined;
  wallMs: number;
  simulatedMs: number;
}

/**
 * Runs the collect job on schedule for `hours` of virtual time at `volume` MiB/h per cluster;
 * with `untilBehind`, goes on (up to `maxHours`) until the falling-behind finding is raised.
 */
export async function simulate(
  o: Options,
  volume: number,
  hours: number,
  more: { untilBehind?: boolean; maxHours?: number } = {},
): Promise<Sim> {
  const wall = performance.now();
  const clock = new VirtualClock(T0);
  const quotaClock: QuotaClock = clock.quota;
  const quotas = new QuotaRegistry({ clock: quotaClock });
  const cw = fakeCloudWatch(clock, volume);
  const config = AwsConfig.parse({
    accounts: [{ id: ACCOUNT, roleArn: `arn:aws:iam::${ACCOUNT}:role/reader`, regions: [REGION] }],
    concurrency: 16,
  });
  // The real source's reads; `enabled` (an EKS DescribeCluster) answers yes without a call.
  const real = createAuditSource(
    config,
    { logger: silentLogger },
    {
      quotas,
      logsClient: () => cw.client as never,
      credentials: async () => ({ accessKeyId: 'bench', secretAccessKey: 'bench' }),
    },
  );
  const source = { ...real, enabled: async () => ({ enabled: true }) };
  const sqlite = new SqliteStateStore({ path: ':memory:', clock: clock.clock });
  // Each cluster's checkpoint as it moves, with the virtual time it moved at (for the lag at 1 h).
  const moves = new Map<string, { at: number; last: number }[]>();
  const store: StateStore = {
    get: (ns, key) => sqlite.get(ns, key),
    list: (ns, opts) => sqlite.list(ns, opts),
    putIfAbsent: (ns, item) => sqlite.putIfAbsent(ns, item),
    deleteMany: (ns, keys) => sqlite.deleteMany(ns, keys),
    close: () => sqlite.close(),
    async putMany(ns, items) {
      for (const { key, value } of items) {
        const last = Date.parse((value as ChainHead | null)?.checkpoint?.lastTimestamp ?? '');
        if (ns !== AUDIT_NS || !key.startsWith('head/') || Number.isNaN(last)) continue;
        const list = moves.get(key.slice(5)) ?? [];
        list.push({ at: clock.ms, last });
        moves.set(key.slice(5), list);
      }
      return sqlite.putMany(ns, items);
    },
  };
  const clusters: Cluster[] = Array.from({ length: o.clusters }, (_, i) => ({
    id: `aws/${ACCOUNT}/${REGION}/bench-${i}`,
    cloud: 'aws',
    scope: ACCOUNT,
    region: REGION,
    name: `bench-${i}`,
    kubernetesVersion: '1.32',
    endpoint: null,
    endpointAccess: 'private',
    secretsEncryptionKey: null,
    auditLogging: true,
    tags: {},
    status: 'running',
    providerStatus: 'ACTIVE',
    createdAt: null,
    country: 'DE',
    jurisdiction: 'eu',
  }));
  await store.putMany(
    INVENTORY,
    clusters.map((c) => ({ key: c.id, value: c })),
  );
  const archive = new MemoryArchive();
  const deps: AuditJobDeps = {
    config: { jurisdictions: { eu: Jurisdiction.parse({ preset: 'eu-gdpr' }) } },
    store,
    residency: new Residency({ eu: { preset: 'eu-gdpr' } }),
    logger: silentLogger,
    clock: clock.clock,
    sources: { for: () => source },
    archives: { for: async () => archive },
  };
  const stopAt = T0 + (more.untilBehind ? (more.maxHours ?? hours) : hours) * HOUR;
  const lagAt = T0 + hours * HOUR;
  const controller = new AbortController();
  const findingKey = `audit/quota/aws:${ACCOUNT}:${REGION}`;
  const runs: Run[] = [];
  let behindAt: number | null = null;
  let finding: Finding | undefined;
  let due = T0 + o.intervalMin * MIN;
  const stopper = clock
    .sleep(stopAt - T0, undefined, { background: true })
    .then(() => controller.abort(new Error('simulation over')));
  while (due < stopAt && !controller.signal.aborted) {
    if (due > clock.ms) await clock.sleep(due - clock.ms);
    if (controller.signal.aborted) break;
    const start = clock.ms;
    let scope: ScopeReport | undefined;
    try {
      const result = await clock.busy(() =>
        collect(deps, {
          concurrency: o.concurrency,
          overlapMs: o.overlapMin * MIN,
          signal: controller.signal,
        }),
      );
      scope = result.scopes[0];
    } catch (error) {
      if (!controller.signal.aborted) throw error;
      // Cut by the end of the simulation: it had not finished in time.
      runs.push({ start, end: Number.POSITIVE_INFINITY, scope: undefined });
      break;
    }
    runs.push({ start, end: clock.ms, scope });
    if (scope?.behind && behindAt === null) {
      behindAt = clock.ms - T0;
      finding = (await store.get<Finding[]>(NS.findings, findingKey))?.[0];
      if (more.untilBehind && clock.ms >= lagAt) break;
    }
    // Runs never overlap: one due while the last was still reading starts when it ends.
    due = Math.max(due + o.intervalMin * MIN, clock.ms);
  }
  controller.abort(new Error('simulation over'));
  void stopper;
  // The lag after `hours`: from each cluster's checkpoint as it stood at that virtual instant.
  const lags = clusters.map((c) => {
    const before = (moves.get(c.id) ?? []).filter((m) => m.at <= lagAt);
    const last = before.length > 0 ? Math.max(...before.map((m) => m.last)) : T0;
    return lagAt - last;
  });
  const lagMs = Math.max(...lags);
  await store.close();
  return {
    runs,
    calls: cw.calls,
    lagMs,
    behindAt,
    finding,
    wallMs: performance.now() - wall,
    simulatedMs: Math.max(clock.ms, lagAt) - T0,
  };
}

/** The most calls in any half-open second. */
function peakPerSecond(times: number[]): number {
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < times.length; hi++) {
    while ((times[hi] as number) - (times[lo] as number) >= 1000) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

/**
 * Every run from the third on ends before the next is due. The first two are the start-up: the
 * first reads no overlap and is short, so in the second the clusters read late in the run read
 * a longer span than the interval.
 */
function keepsSchedule(sim: Sim, o: Options): boolean {
  const steady = sim.runs.slice(2);
  return steady.length >= 3 && steady.every((r) => r.end - r.start <= o.intervalMin * MIN);
}

const f = (n: number, d = 1) => n.toFixed(d);
const mins = (ms: number | null) => (ms === null ? 'n/a' : `${f(ms / MIN)} min`);

export async function benchAuditQuota(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      clusters: { type: 'string', default: '200' },
      'interval-min': { type: 'string', default: '10' },
      'overlap-min': { type: 'string', default: '10' },
      concurrency: { type: 'string', default: '4' },
    },
  });
  const o: Options = {
    clusters: Number(values.clusters),
    intervalMin: Number(values['interval-min']),
    overlapMin: Number(values['overlap-min']),
    concurrency: Number(values.concurrency),
  };
  if (!Object.values(o).every((n) => Number.isFinite(n) && n >= 0) || o.clusters < 1 || o.intervalMin <= 0) {
    console.log('--clusters, --interval-min, --overlap-min and --concurrency must be positive numbers');
    return 2;
  }
  const bound = (RATE * 3600) / o.clusters; // MiB/h per cluster: 5 req/s × 1 MiB × 3600 s / N
  const scheduleBound = (bound * o.intervalMin) / (o.intervalMin + o.overlapMin);
  const results: string[] = [];
  const failures: string[] = [];
  const verdict = (ok: boolean, what: string) => {
    if (!ok) failures.push(what);
    return ok ? 'holds' : 'MISSED';
  };
  console.log(
    `setup        ${o.clusters} EKS clusters in aws:${ACCOUNT}:${REGION}; FilterLogEvents ${RATE} req/s, burst 1, pages of 1 MiB; collect every ${o.intervalMin} min, ${o.overlapMin} min overlap, ${o.concurrency} clusters at once; virtual clock, byte scale 1:${SCALE}`,
  );
  console.log(
    `bound        ${f(bound)} MiB/h per cluster: ${RATE} req/s x 1 MiB x 3600 s / ${o.clusters}, nothing re-read`,
  );
  console.log(
    `bound        ${f(scheduleBound)} MiB/h per cluster with each run re-reading its ${o.overlapMin} min overlap: bound x ${o.intervalMin}/(${o.intervalMin}+${o.overlapMin})`,
  );

  // Highest volume that keeps the schedule: binary search to 0.5 MiB/h over [0, bound].
  let lo = 0;
  let hi = bound;
  let wallMax = 0;
  let simulated = 0;
  let wallTotal = 0;
  let peak = 0;
  while (hi - lo > 0.5) {
    const mid = (lo + hi) / 2;
    const sim = await simulate(o, mid, 1);
    wallMax = Math.max(wallMax, sim.wallMs / (sim.simulatedMs / HOUR));
    wallTotal += sim.wallMs;
    simulated += sim.simulatedMs;
    peak = Math.max(peak, peakPerSecond(sim.calls));
    if (keepsSchedule(sim, o)) lo = mid;
    else hi = mid;
  }
  const sustainable = lo;
  const at = await simulate(o, sustainable, 1);
  peak = Math.max(peak, peakPerSecond(at.calls));
  const held = keepsSchedule(at, o);
  const sustainedOk = held && sustainable >= MIN_OF_SCHEDULE_BOUND * scheduleBound && sustainable <= bound;
  const report = at.runs.at(-1)?.scope;
  results.push(
    `run report   at ${f(sustainable)} MiB/h, last run: ${report?.requests} requests of ${report?.capacity.requests} allowed per ${f((report?.intervalMs ?? 0) / MIN)} min, ${f(((report?.bytes ?? 0) * SCALE) / MIB)} MiB read, ${f((report?.waitedMs ?? 0) / 1000 / o.concurrency)} s waited per reader, lag ${mins(report?.lagMs ?? null)} (the gap to ${f(scheduleBound)} MiB/h: the last, partly filled page of each cluster read)`,
  );
  results.push(
    `sustainable  ${f(sustainable)} MiB/h per cluster keeps the ${o.intervalMin} min schedule (${f(sustainable / bound, 2)} of the bound, ${f(sustainable / scheduleBound, 2)} of the overlap bound); lag after 1 h ${mins(at.lagMs)}; target >= ${MIN_OF_SCHEDULE_BOUND} x overlap bound and <= bound: ${verdict(sustainedOk, 'sustainable volume')}`,
  );
  const double = await simulate(o, 2 * sustainable, 1, { untilBehind: true, maxHours: 6 });
  wallMax = Math.max(wallMax, double.wallMs / (double.simulatedMs / HOUR));
  wallTotal += at.wallMs + double.wallMs;
  simulated += at.simulatedMs + double.simulatedMs;
  peak = Math.max(peak, peakPerSecond(double.calls));
  const lastRun = double.runs.at(-1)?.scope;
  const named = double.finding ? (double.finding.message.match(/bench-\d+/g) ?? []).length : 0;
  results.push(
    `2x           ${f(2 * sustainable)} MiB/h per cluster: lag after 1 h ${mins(double.lagMs)} (at ${f(sustainable)}: ${mins(at.lagMs)}); target: larger than at the sustainable volume: ${verdict(
      double.lagMs > at.lagMs,
      'lag at 2x',
    )}`,
  );
  results.push(
    `finding      ${double.behindAt === null ? 'not raised' : `audit-quota-behind raised after ${f(double.behindAt / HOUR, 2)} h of simulated time (lag ${mins(lastRun?.lagMs ?? null)}), naming ${named} clusters, advising audit.mode: export`}; target raised naming all ${o.clusters}: ${verdict(double.behindAt !== null && named === o.clusters, 'falling-behind finding')}`,
  );
  results.push(
    `quota        peak ${peak} FilterLogEvents calls in any second across every simulation; target <= ${RATE}: ${verdict(peak <= RATE, 'quota respected')}`,
  );
  results.push(
    `wall         ${f(simulated / HOUR)} h simulated in ${f(wallTotal / 1000)} s; slowest ${f(wallMax / 1000)} s per simulated hour; target < ${MAX_WALL_S_PER_SIM_HOUR} s: ${verdict(wallMax / 1000 < MAX_WALL_S_PER_SIM_HOUR, 'wall time')}`,
  );
  for (const r of results) console.log(r);
  console.log(failures.length === 0 ? 'PASS' : `FAIL: ${failures.join('; ')}`);
  return failures.length === 0 ? 0 : 1;
}
