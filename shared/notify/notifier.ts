/**
 * The Notifier every job uses: routes a job's report to the configured Slack webhooks and
 * delivers one Block Kit digest per route.
 *
 * Routing: each route of `slack.routes` keeps the findings and control changes of its
 * `jurisdiction` (all when absent) whose severity is at least its `minSeverity`
 * (info < low < medium < high < critical). A control change's severity is its own
 * `severity`, else `controlSeverity[control]` of the report, else `info` (so it reaches
 * only routes that take everything). A route left with nothing to say sends nothing.
 * Several routes to one webhook send separate messages, in route order (delivery is FIFO
 * per webhook), never merged: each keeps its own jurisdiction and threshold.
 *
 * {@link notifyJobFindings} sends only what is new since the last notice and records the
 * notified set only once every route delivered: a failed delivery is retried by the next
 * run (routes that did deliver may then repeat their message: at least once, never lost).
 */
import { createHash } from 'node:crypto';
import type { ControlChange, ControlSeverity, StatusCounts } from '../compliance/schema.ts';
import type { FleetConfig } from '../config/schema.ts';
import {
  type Cluster,
  type DiscoveryFailure,
  type Finding,
  type InventoryDiff,
  UNASSIGNED,
} from '../model.ts';
import { type Clock, type Log, type StateStore, systemClock } from '../ports.ts';
import { type ErrorInfo, errorInfo } from '../runtime/errors.ts';
import { NS } from '../state/records.ts';
import { buildDigest } from './digest.ts';
import { createSlackDelivery, redact, type SlackDeliveryOptions } from './slack.ts';
import { createWebhookResolver, type WebhookResolver } from './webhooks.ts';

/** The state-store namespace of what was last notified: key `<job>` or `<job>/<jurisdiction>`. */
export const NOTIFY_NS = 'notify';

/** Severity levels of routes, lowest first. */
export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

type Route = NonNullable<FleetConfig['slack']>['routes'][number];

/** A control change as a report carries it: the snapshot's change plus where and how bad. */
export type ReportedChange = ControlChange & { jurisdiction?: string; severity?: ControlSeverity };

/** A finding closed since the last notice (what the notified set remembers of it). */
export type ResolvedFinding = Pick<Finding, 'clusterId' | 'jurisdiction' | 'kind' | 'severity'>;

/** What a job tells people. */
export interface JobReport {
  job: string;
  runId?: string | undefined;
  /** Default: "Fleetward <job>" plus the route's jurisdiction. */
  title?: string | undefined;
  /** The findings to report (new ones, for {@link notifyJobFindings}). */
  findings: Finding[];
  resolved?: ResolvedFinding[] | undefined;
  changes?: { newlyFailing: ReportedChange[]; newlyFixed: ReportedChange[] } | undefined;
  /** Severity per control id, for changes that carry none. */
  controlSeverity?: Record<string, ControlSeverity> | undefined;
  /** Status counts per jurisdiction; shown with a route's message, never a reason to send one. */
  counts?: { jurisdiction: string; counts: StatusCounts }[] | undefined;
}

/** What happened to one route of a report. */
export interface RouteOutcome {
  /** Index in `slack.routes`. */
  route: number;
  webhook: string;
  status: 'sent' | 'failed' | 'nothing';
  findings: number;
  error?: ErrorInfo;
}

/** Messages sent and failed; `routes` is absent when Slack is not configured. */
export interface NotifyResult {
  sent: number;
  failed?: number;
  routes?: RouteOutcome[];
}

/** Sends reports to Slack. */
export interface Notifier {
  /** Sends one digest per route that has something to say; resolves once each was delivered or failed (failures are counted and logged, not thrown). */
  notify(report: JobReport): Promise<NotifyResult>;
  /** Waits for every queued message. */
  close(): Promise<void>;
}

export interface NotifierContext {
  logger: Log;
  /** Default: a resolver over `slack.webhooks`. */
  resolver?: WebhookResolver;
  /** Delivery tuning (tests shorten intervals and retries). */
  delivery?: Omit<SlackDeliveryOptions, 'logger'>;
}

const rank = (s: Severity): number => SEVERITIES.indexOf(s);

/** Whether `severity` reaches a route of `minSeverity`. */
export function meetsSeverity(severity: Severity, minSeverity: Severity): boolean {
  return rank(severity) >= rank(minSeverity);
}

/** The part of a report one route receives, or `undefined` when it has nothing to say. */
export function reportForRoute(route: Route, report: JobReport): JobReport | undefined {
  const inScope = (jurisdiction: string | undefined) =>
    route.jurisdiction === undefined || jurisdiction === route.jurisdiction;
  const keep = (item: { jurisdiction?: string | undefined; severity: Severity }) =>
    inScope(item.jurisdiction) && meetsSeverity(item.severity, route.minSeverity);
  const changeSeverity = (c: ReportedChange): Severity =>
    c.severity ?? report.controlSeverity?.[c.control] ?? 'info';
  const keepChange = (c: ReportedChange) =>
    keep({ jurisdiction: c.jurisdiction, severity: changeSeverity(c) });

  const findings = report.findings.filter(keep);
  const resolved = (report.resolved ?? []).filter(keep);
  const newlyFailing = (report.changes?.newlyFailing ?? []).filter(keepChange);
  const newlyFixed = (report.changes?.newlyFixed ?? []).filter(keepChange);
  if (findings.length + resolved.length + newlyFailing.length + newlyFixed.length === 0) return undefined;
  const counts = report.counts?.filter((c) => inScope(c.jurisdiction));
  return {
    ...report,
    findings,
    resolved,
    changes: { newlyFailing, newlyFixed },
    counts,
  };
}

const noop: Notifier = { notify: async () => ({ sent: 0 }), close: async () => undefined };

/**
 * Builds the Notifier for a config: a no-op without `slack` (or without routes), else
 * routing (see the module comment) over {@link createSlackDelivery}.
 */
export async function createNotifier(config: FleetConfig, ctx: NotifierContext): Promise<Notifier> {
  const slack = config.slack;
  if (!slack || slack.routes.length === 0) return noop;
  const log = ctx.logger;
  const resolver = ctx.resolver ?? createWebhookResolver(slack.webhooks, { logger: log });
  const delivery = createSlackDelivery({ ...ctx.delivery, logger: log });

  return {
    async notify(report) {
      const parts = slack.routes.map((route) => reportForRoute(route, report));
      // Resolve every URL first, then queue in route order: per-webhook FIFO keeps that order.
      const urls = await Promise.all(
        slack.routes.map((route, i) =>
          parts[i]
            ? resolver.resolve(route.webhook).then(
                (url) => ({ url }),
                (error: unknown) => ({ error }),
              )
            : undefined,
        ),
      );
      const pending = slack.routes.map(async (route, i): Promise<RouteOutcome> => {
        const part = parts[i];
        const base = { route: i, webhook: route.webhook, findings: part?.findings.length ?? 0 };
        const target = urls[i];
        if (!part || !target) return { ...base, status: 'nothing' };
        try {
          if ('error' in target) throw target.error;
          const title =
            part.title ?? `Fleetward ${part.job}${route.jurisdiction ? ` · ${route.jurisdiction}` : ''}`;
          const message = buildDigest({
            title,
            stage: config.stage,
            runId: part.runId,
            counts: part.counts,
            changes: part.changes,
            findings: part.findings,
            resolved: part.resolved?.length ?? 0,
            maxFindings: slack.maxFindings,
          });
          await delivery.send(target.url, message);
          return { ...base, status: 'sent' };
        } catch (error) {
          const info = errorInfo(error);
          const safe = { ...info, message: redact(info.message) };
          log.error('Slack notification failed', {
            job: report.job,
            route: i,
            webhook: route.webhook,
            error: safe,
          });
          return { ...base, status: 'failed', error: safe };
        }
      });
      const routes = await Promise.all(pending);
      return {
        sent: routes.filter((r) => r.status === 'sent').length,
        failed: routes.filter((r) => r.status === 'failed').length,
        routes,
      };
    },
    close: () => delivery.drain(),
  };
}

/** One remembered finding: its identity and what routing needs, never its message. */
interface NotifiedEntry extends ResolvedFinding {
  /** `clusterId|kind|<sha256 of the message, 16 hex>`. */
  id: string;
}

/** What `notify/<job>[/<jurisdiction>]` holds: the open findings last notified. */
export interface NotifiedState {
  at: string;
  findings: NotifiedEntry[];
}

/** A finding's identity: `clusterId|kind|message-hash` (a changed message is a new finding). */
export function findingIdentity(f: Pick<Finding, 'clusterId' | 'kind' | 'message'>): string {
  const hash = createHash('sha256').update(f.message).digest('hex').slice(0, 16);
  return `${f.clusterId}|${f.kind}|${hash}`;
}

export interface NotifyJobDeps {
  config: FleetConfig;
  store: StateStore;
  notifier: Notifier;
  logger: Log;
  clock: Clock;
}

/**
 * Notifies the findings of `job` that are new since the last notice (plus how many were
 * resolved), reading the open findings from `findings/<job>/…` and the notified set from
 * `notify/<job>` (`notify/<job>/<jurisdiction>` when `jurisdiction` narrows it). The set
 * is written only when no route failed, so a failed delivery is retried next run.
 * Without Slack config: nothing, `{ sent: 0 }`.
 */
export async function notifyJobFindings(
  deps: NotifyJobDeps,
  job: string,
  options: { runId?: string | undefined; jurisdiction?: string | undefined } = {},
): Promise<NotifyResult> {
  if (!deps.config.slack || deps.config.slack.routes.length === 0) return { sent: 0 };
  const { jurisdiction } = options;
  const stored = await deps.store.list<Finding[]>(NS.findings, { prefix: `${job}/` });
  const open = stored
    .flatMap((item) => (Array.isArray(item.value) ? item.value : []))
    .filter((f) => !jurisdiction || f.jurisdiction === jurisdiction);
  const key = jurisdiction ? `${job}/${jurisdiction}` : job;
  return notifyNew(deps, key, { job, runId: options.runId, findings: open });
}

/**
 * Sends what is new in `report.findings` (the open findings) against the set remembered
 * under `notify/<key>`, plus `always` (news that is never remembered), and records the
 * open set once every route delivered.
 */
async function notifyNew(
  deps: NotifyJobDeps,
  key: string,
  report: JobReport,
  always: Finding[] = [],
): Promise<NotifyResult> {
  const open = new Map<string, Finding>();
  for (const f of report.findings) {
    const id = findingIdentity(f);
    if (!open.has(id)) open.set(id, f);
  }
  const previous = await deps.store.get<NotifiedState>(NOTIFY_NS, key);
  const known = new Map((previous?.findings ?? []).map((e) => [e.id, e]));
  const fresh = [...open].filter(([id]) => !known.has(id)).map(([, f]) => f);
  const resolved = [...known.values()].filter((e) => !open.has(e.id));
  if (fresh.length === 0 && resolved.length === 0 && always.length === 0) {
    return { sent: 0, failed: 0, routes: [] };
  }

  const result = await deps.notifier.notify({
    ...report,
    findings: [...always, ...fresh],
    resolved: resolved.map(({ clusterId, jurisdiction, kind, severity }) => ({
      clusterId,
      jurisdiction,
      kind,
      severity,
    })),
  });
  if ((result.failed ?? 0) > 0) {
    // Not recording keeps these findings "new": the next run sends them again.
    deps.logger.warn('Slack notification incomplete, retried next run', {
      job: report.job,
      failed: result.failed,
      newFindings: fresh.length,
    });
    return result;
  }
  const state: NotifiedState = {
    at: deps.clock.now().toISOString(),
    findings: [...open].map(([id, f]) => ({
      id,
      clusterId: f.clusterId,
      jurisdiction: f.jurisdiction,
      kind: f.kind,
      severity: f.severity,
    })),
  };
  await deps.store.putMany(NOTIFY_NS, [{ key, value: state }]);
  deps.logger.info('Slack notification sent', {
    job: report.job,
    sent: result.sent,
    newFindings: fresh.length,
    resolved: resolved.length,
  });
  return result;
}

/** The part of a discovery run worth telling: the inventory diff and the scopes that failed. */
export interface DiscoveryNews {
  clusters: readonly Cluster[];
  diff: Pick<InventoryDiff, 'added' | 'removed'>;
  failures: readonly DiscoveryFailure[];
}

/**
 * Notifies a discovery run: added clusters (`cluster-added`, low, in their jurisdiction)
 * and removed ones (`cluster-removed`, low, `unassigned`: only routes without a
 * jurisdiction see them) every time, being news of this run only; failed scopes
 * (`discovery-failed`, medium) only when they start failing, remembered under
 * `notify/discover` like job findings (a scope that keeps failing is not repeated).
 */
export async function notifyDiscovery(
  deps: NotifyJobDeps,
  news: DiscoveryNews,
  options: { runId?: string | undefined } = {},
): Promise<NotifyResult> {
  if (!deps.config.slack || deps.config.slack.routes.length === 0) return { sent: 0 };
  const at = deps.clock.now().toISOString();
  const byId = new Map(news.clusters.map((c) => [c.id, c]));
  const changes: Finding[] = [
    ...news.diff.added.map((id): Finding => {
      const c = byId.get(id);
      return {
        clusterId: id,
        jurisdiction: c?.jurisdiction ?? UNASSIGNED,
        kind: 'cluster-added',
        severity: 'low',
        message: c ? `new ${c.cloud} cluster in ${c.region}` : 'new cluster',
        at,
      };
    }),
    ...news.diff.removed.map(
      (id): Finding => ({
        clusterId: id,
        jurisdiction: UNASSIGNED,
        kind: 'cluster-removed',
        severity: 'low',
        message: 'cluster no longer found',
        at,
      }),
    ),
  ];
  // Message without the error text: request ids would make every run's failure "new".
  const failures = news.failures.map(
    (f): Finding => ({
      clusterId: [f.cloud, f.scope, f.region, f.cluster].filter(Boolean).join('/'),
      jurisdiction: UNASSIGNED,
      kind: 'discovery-failed',
      severity: 'medium',
      message: `${f.kind === 'scope' ? 'scope' : 'cluster payload'} failed: ${f.error.name}${
        f.error.status ? ` (${f.error.status})` : ''
      }`,
      at,
    }),
  );
  return notifyNew(
    deps,
    'discover',
    { job: 'discover', runId: options.runId, title: 'Fleetward discovery', findings: failures },
    changes,
  );
}

/**
 * The handlers' two lines: notifies `job`'s new findings after the job ran. Never throws:
 * the job's work is done and recorded, so a notification failure is logged and the
 * result is `undefined`.
 */
export async function notifyAfterJob(
  deps: { config: FleetConfig; store: StateStore; logger: Log; clock?: Clock },
  job: string,
  options: { runId?: string | undefined; jurisdiction?: string | undefined } = {},
  ctx: Omit<NotifierContext, 'logger'> = {},
): Promise<NotifyResult | undefined> {
  return safely(deps, job, ctx, (d) => notifyJobFindings(d, job, options));
}

/** {@link notifyDiscovery} for the discover-clusters handler: never throws (see {@link notifyAfterJob}). */
export async function notifyAfterDiscovery(
  deps: { config: FleetConfig; store: StateStore; logger: Log; clock?: Clock },
  news: DiscoveryNews,
  ctx: Omit<NotifierContext, 'logger'> = {},
): Promise<NotifyResult | undefined> {
  return safely(deps, 'discover', ctx, (d) => notifyDiscovery(d, news));
}

/** Sends a report a job built itself (the compliance snapshot's digest): never throws (see {@link notifyAfterJob}). */
export async function notifyAfterReport(
  deps: { config: FleetConfig; store: StateStore; logger: Log; clock?: Clock },
  report: JobReport,
  ctx: Omit<NotifierContext, 'logger'> = {},
): Promise<NotifyResult | undefined> {
  return safely(deps, report.job, ctx, async (d) => {
    try {
      return await d.notifier.notify(report);
    } finally {
      await d.notifier.close();
    }
  });
}

async function safely(
  deps: { config: FleetConfig; store: StateStore; logger: Log; clock?: Clock },
  job: string,
  ctx: Omit<NotifierContext, 'logger'>,
  send: (deps: NotifyJobDeps) => Promise<NotifyResult>,
): Promise<NotifyResult | undefined> {
  if (!deps.config.slack) return { sent: 0 };
  let notifier: Notifier | undefined;
  try {
    notifier = await createNotifier(deps.config, { ...ctx, logger: deps.logger });
    return await send({
      config: deps.config,
      store: deps.store,
      logger: deps.logger,
      clock: deps.clock ?? systemClock,
      notifier,
    });
  } catch (error) {
    const info = errorInfo(error);
    deps.logger.error('Slack notification failed', {
      job,
      error: { ...info, message: redact(info.message) },
    });
    return undefined;
  } finally {
    await notifier?.close().catch(() => undefined);
  }
}
