/**
 * The one path every cloud event takes, whichever cloud sent it: rediscover just that
 * cluster (updating its inventory record and giving the field diff), re-evaluate its
 * compliance controls when it exists, and tell Slack what happened.
 *
 * The event functions only verify, parse and record events (`shared/events/intake.ts`) and
 * hand one `rediscover-clusters` work item per event to the dispatcher; {@link rediscoverWork}
 * runs the item here: in the `rediscover-clusters-worker` function when deployed (the
 * endpoints hold no cloud access), in-process locally.
 *
 * Clouds deliver at least once (EventBridge and Lambda async retries, Pub/Sub push, Event
 * Grid), so the work is made idempotent by event id with Powertools idempotency on the state
 * store: a redelivered event gets the first delivery's result back and does nothing again.
 * A delivery that fails (cloud outage) leaves no record, so the next redelivery retries it.
 */
import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import type { Context } from 'aws-lambda';
import type { ControlChange, ControlSeverity } from '../compliance/schema.ts';
import type { FleetConfig } from '../config/schema.ts';
import {
  CLUSTER_EVENTS_NS,
  EVENT_MEMORY_SECONDS,
  EVENTS_METRIC_JOB,
  REDISCOVER_JOB,
  type ReceivedEvent,
  watchesScope,
  workItemOf,
} from '../events/intake.ts';
import type { ClusterEvent, ClusterEventType, EventCloud } from '../events/model.ts';
import { type Finding, type InventoryDiff, UNASSIGNED } from '../model.ts';
import type { Notifier } from '../notify/notifier.ts';
import type { Log, ProjectDirectory } from '../ports.ts';
import { type ClusterWork, inProcess, type WorkItem } from '../runtime/dispatch.ts';
import { ConfigError, errorInfo } from '../runtime/errors.ts';
import { recordJobMetrics } from '../runtime/metrics.ts';
import { StateStorePersistenceLayer } from '../state/idempotency.ts';
import type { DiscoverDeps } from './discover.ts';
import {
  clusterIdOf,
  InvalidClusterRefError,
  type RediscoverOutcome,
  rediscoverCluster,
} from './rediscover.ts';
import { bulletinOf, recordBulletin } from './security-bulletin.ts';
import { reevaluateCluster } from './snapshot.ts';

/** The job name in reports, logs and the idempotency key prefix. */
export const CLUSTER_EVENT_JOB = 'cluster-event';

export { EVENT_MEMORY_SECONDS };

/** What the event path needs: rediscovery's deps plus the config (controls) and a notifier. */
export interface ClusterEventDeps extends DiscoverDeps {
  config: FleetConfig;
  notifier: Notifier;
}

/** A control whose status changed with this event, with its severity and jurisdiction. */
export type EventControlChange = ControlChange & { severity: ControlSeverity; jurisdiction: string };

/** What handling one event did. */
export interface ClusterEventResult {
  eventId: string;
  clusterId: string;
  outcome: RediscoverOutcome;
  /** Fields of the inventory record that changed (empty unless `outcome` is `changed`). */
  fields: InventoryDiff['changed'][number]['fields'];
  /** Controls whose status differs from the last snapshot; empty when the cluster is gone or re-evaluation failed. */
  changes: EventControlChange[];
  /** Slack messages delivered. */
  notified: number;
  /** True when this delivery was a duplicate: the result is the first delivery's, nothing was done again. */
  replayed: boolean;
  /** A security bulletin: the ids of the inventory's clusters it affects. */
  affected?: string[] | undefined;
}

/** Options of {@link handleClusterEvent}. */
export interface ClusterEventOptions {
  signal?: AbortSignal | undefined;
  /** The Lambda context: an in-progress record then expires with the invocation, not after 7 days. */
  lambdaContext?: Context | undefined;
}

const SEVERITY: Record<ClusterEventType, Finding['severity']> = {
  created: 'low',
  deleted: 'low',
  updated: 'low',
  'version-available': 'low',
  'support-ending': 'medium',
  'support-ended': 'high',
  'security-bulletin': 'high',
};

function short(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value ?? null);
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}

/** One line for Slack: what the cloud said, what rediscovery found, which fields changed. */
export function describeEvent(
  event: ClusterEvent,
  outcome: RediscoverOutcome,
  fields: ClusterEventResult['fields'],
): string {
  const head = `${event.source} ${event.providerType} (${event.type}): cluster ${outcome}`;
  if (fields.length === 0) return head;
  const diff = fields.map((f) => `${f.field} ${short(f.before)} → ${short(f.after)}`).join('; ');
  return `${head}; ${diff}`;
}

/**
 * A security bulletin changes no cluster: nothing is rediscovered. Its finding is recorded on
 * every affected cluster of the inventory, and the clusters newly affected are reported.
 */
async function actOnBulletin(
  deps: ClusterEventDeps,
  event: ClusterEvent,
): Promise<Omit<ClusterEventResult, 'replayed'>> {
  const bulletin = bulletinOf(event);
  const { affected, newFindings } = await recordBulletin(deps.store, bulletin, event.occurredAt);
  let notified = 0;
  if (newFindings.length > 0) {
    try {
      notified = (
        await deps.notifier.notify({
          job: CLUSTER_EVENT_JOB,
          runId: event.id,
          title: `Fleetward security bulletin ${bulletin.bulletinId}`,
          findings: newFindings,
        })
      ).sent;
    } catch (error) {
      deps.logger.error('Slack notification failed', { eventId: event.id, error: errorInfo(error) });
    }
  }
  deps.logger.info('Security bulletin handled', {
    eventId: event.id,
    bulletinId: bulletin.bulletinId,
    affected: affected.length,
    newFindings: newFindings.length,
    notified,
  });
  return {
    eventId: event.id,
    clusterId: clusterIdOf(event.cluster),
    outcome: 'unchanged',
    fields: [],
    changes: [],
    notified,
    affected: affected.map((c) => c.id),
  };
}

async function act(
  deps: ClusterEventDeps,
  event: ClusterEvent,
  signal: AbortSignal | undefined,
): Promise<Omit<ClusterEventResult, 'replayed'>> {
  if (event.type === 'security-bulletin') return actOnBulletin(deps, event);
  const found = await rediscoverCluster(deps, event.cluster, signal ? { signal } : {});
  const fields = found.diff.changed.find((c) => c.id === found.clusterId)?.fields ?? [];

  let changes: EventControlChange[] = [];
  if (found.cluster) {
    try {
      changes = (await reevaluateCluster({ ...deps, config: deps.config }, found.clusterId)).changes;
    } catch (error) {
      // The inventory is already up to date; a failed re-evaluation must not hide the event.
      deps.logger.error('Control re-evaluation failed', {
        clusterId: found.clusterId,
        error: errorInfo(error),
      });
    }
  }

  const jurisdiction = found.cluster?.jurisdiction ?? UNASSIGNED;
  const report = {
    job: CLUSTER_EVENT_JOB,
    runId: event.id,
    title: `Fleetward ${event.type} · ${found.clusterId}`,
    findings: [
      {
        clusterId: found.clusterId,
        jurisdiction,
        kind: `cluster-${event.type}`,
        severity: SEVERITY[event.type],
        message: describeEvent(event, found.outcome, fields),
        at: event.occurredAt,
      },
    ],
    changes: {
      newlyFailing: changes.filter((c) => c.after === 'fail'),
      newlyFixed: changes.filter((c) => c.before === 'fail' && c.after !== 'fail'),
    },
  };
  let notified = 0;
  try {
    notified = (await deps.notifier.notify(report)).sent;
  } catch (error) {
    // The notifier counts failed deliveries itself; this guards a bug, and the event stays handled.
    deps.logger.error('Slack notification failed', { eventId: event.id, error: errorInfo(error) });
  }
  deps.logger.info('Cluster event handled', {
    eventId: event.id,
    source: event.source,
    type: event.type,
    clusterId: found.clusterId,
    outcome: found.outcome,
    controlChanges: changes.length,
    notified,
  });
  return { eventId: event.id, clusterId: found.clusterId, outcome: found.outcome, fields, changes, notified };
}

// One persistence layer per store: it only wraps the store, so reusing it is free.
const layers = new WeakMap<object, StateStorePersistenceLayer>();

/**
 * Handles one normalised cloud event (see the module comment), at most once per
 * `(source, id)` for {@link EVENT_MEMORY_SECONDS}. Rejects, leaving no idempotency record,
 * when the rediscovery does: `ConfigError` (the event names a scope Fleetward does not
 * watch; no cloud call made), `InvalidClusterRefError`, `CloudApiError`. Rejects with
 * Powertools' `IdempotencyAlreadyInProgressError` while another delivery of the same event
 * is being handled (the sender retries later and then gets the stored result).
 */
export async function handleClusterEvent(
  deps: ClusterEventDeps,
  event: ClusterEvent,
  options: ClusterEventOptions = {},
): Promise<ClusterEventResult> {
  let persistenceStore = layers.get(deps.store);
  if (!persistenceStore) {
    persistenceStore = new StateStorePersistenceLayer(deps.store);
    layers.set(deps.store, persistenceStore);
  }
  const config = new IdempotencyConfig({
    eventKeyJmesPath: '[source, id]',
    expiresAfterSeconds: EVENT_MEMORY_SECONDS,
    // A replay says so: the caller then knows nothing was done this time.
    responseHook: (response) => ({ ...(response as object), replayed: true }),
    ...(options.lambdaContext ? { lambdaContext: options.lambdaContext } : {}),
  });
  const once = makeIdempotent(
    async (e: ClusterEvent) => ({ ...(await act(deps, e, options.signal)), replayed: false }),
    { persistenceStore, config, keyPrefix: CLUSTER_EVENT_JOB },
  );
  return (await once(event)) as ClusterEventResult;
}

/** The worker's deps: the event path's plus how to release them. */
export interface OpenedEventDeps extends ClusterEventDeps {
  /** GCP only: maps the project numbers GKE notifications carry to configured project ids. */
  projects?: ProjectDirectory | undefined;
  close(): Promise<void>;
}

/**
 * Opens the worker's deps for the clouds of a batch (only their SDKs are loaded). The deployed
 * one is `openEventDeps` (shared/runtime/deps/events.ts): discoveries and the project directory come
 * from the cloud registry.
 */
export type OpenEventDeps = (
  config: FleetConfig,
  logger: Log,
  clouds: readonly EventCloud[],
) => Promise<OpenedEventDeps>;

/** GCP project numbers are digits only; project ids start with a letter. */
const PROJECT_NUMBER = /^[0-9]+$/;

/**
 * GKE cluster notifications name the project by its number: each GCP event whose scope is a
 * number gets the configured project's id as its scope (and the number in `detail`). Events
 * whose number belongs to no configured project come back in `unknown`. Other events pass as
 * they are. Rejects (`CloudApiError`) when a number had to be looked up and the lookup failed.
 */
export async function withProjectIds(
  events: readonly ClusterEvent[],
  directory: ProjectDirectory | undefined,
  signal?: AbortSignal,
): Promise<{ events: ClusterEvent[]; unknown: ClusterEvent[] }> {
  const out: { events: ClusterEvent[]; unknown: ClusterEvent[] } = { events: [], unknown: [] };
  for (const event of events) {
    const number = event.cluster.scope;
    if (event.cluster.cloud !== 'gcp' || !directory || !PROJECT_NUMBER.test(number)) {
      out.events.push(event);
      continue;
    }
    const id = await directory.projectIdOf(number, signal ? { signal } : {});
    if (id === undefined) out.unknown.push(event);
    else
      out.events.push({
        ...event,
        cluster: { ...event.cluster, scope: id },
        detail: { ...event.detail, projectNumber: number },
      });
  }
  return out;
}

/** What one `rediscover-clusters` item came to. */
export type RediscoverItemResult =
  | { status: 'handled'; result: ClusterEventResult }
  /** Nothing to act on, and another delivery cannot change that (unwatched scope, expired record). */
  | { status: 'ignored'; eventId?: string | undefined; reason: string };

/**
 * The rediscovery of one received event as the dispatcher runs it: the item names the event
 * record (`runId`, see `eventKeyOf`) the intake saved; the worker reads it, resolves a GKE
 * project number, and runs {@link handleClusterEvent}. A cloud failure rejects (the item is
 * retried, then dead-lettered); an event about a scope or project the config does not
 * watch is logged and ignored.
 */
export const rediscoverWork: ClusterWork<OpenedEventDeps, readonly ClusterEvent[], RediscoverItemResult> = {
  job: REDISCOVER_JOB,
  async plan(deps, events) {
    return events.filter((e) => watchesScope(deps.config, e.cluster)).map(workItemOf);
  },
  run: (deps, item, signal) => runRediscoverItem(deps, item, { signal }),
};

/**
 * Runs one `rediscover-clusters` item (see {@link rediscoverWork}). A worker passes its Lambda
 * context: an in-progress idempotency record then expires with the invocation, so an event
 * whose worker died mid-way is retried by the next delivery instead of waiting 7 days.
 */
export async function runRediscoverItem(
  deps: OpenedEventDeps,
  item: WorkItem,
  options: ClusterEventOptions = {},
): Promise<RediscoverItemResult> {
  const ignore = (reason: string, event?: ClusterEvent): RediscoverItemResult => {
    recordJobMetrics(EVENTS_METRIC_JOB, { EventsIgnored: 1 });
    deps.logger.warn('Event ignored', {
      eventId: event?.id,
      source: event?.source,
      providerType: event?.providerType,
      cluster: event?.cluster ?? item.clusterId,
      reason,
      ignored: 1,
    });
    return { status: 'ignored', eventId: event?.id, reason };
  };
  const held = await deps.store.get<ReceivedEvent>(CLUSTER_EVENTS_NS, item.runId);
  if (!held) return ignore('event record not found (expired or never recorded)');
  const mapped = await withProjectIds([held.event], deps.projects, options.signal);
  const event = mapped.events[0];
  if (!event) return ignore('gcp project number of no configured project', held.event);
  try {
    return { status: 'handled', result: await handleClusterEvent(deps, event, options) };
  } catch (error) {
    if (!(error instanceof ConfigError || error instanceof InvalidClusterRefError)) throw error;
    return ignore(error instanceof ConfigError ? 'cluster scope not configured' : error.message, event);
  }
}

/**
 * The intake's `send` when events run where they arrive (the CLI, local runs, the sandbox
 * tests): opens the worker's deps for the items' clouds and runs each item here, as the
 * worker would. `open` is `openEventDeps` unless a test wraps it.
 */
export function inProcessSend(
  config: FleetConfig,
  logger: Log,
  open: OpenEventDeps,
  concurrency = 4,
): (items: readonly WorkItem[], signal?: AbortSignal) => Promise<RediscoverItemResult[]> {
  return async (items, signal) => {
    if (items.length === 0) return [];
    const clouds = [...new Set(items.map((i) => i.clusterId.split('/')[0] as EventCloud))];
    const deps = await open(config, logger, clouds);
    try {
      const done = await inProcess(concurrency).dispatch(rediscoverWork, deps, items, signal);
      return done.mode === 'in-process' ? done.results : [];
    } finally {
      await deps.close();
    }
  };
}
