/**
 * The one path every cloud event takes, whichever cloud sent it: rediscover just that
 * cluster (updating its inventory record and giving the field diff), re-evaluate its
 * compliance controls when it exists, and tell Slack what happened.
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
import type { ClusterEvent, ClusterEventType } from '../events/model.ts';
import { type Finding, type InventoryDiff, UNASSIGNED } from '../model.ts';
import type { Notifier } from '../notify/notifier.ts';
import { errorInfo } from '../runtime/errors.ts';
import { StateStorePersistenceLayer } from '../state/idempotency.ts';
import type { DiscoverDeps } from './discover.ts';
import { clusterIdOf, type RediscoverOutcome, rediscoverCluster } from './rediscover.ts';
import { bulletinOf, recordBulletin } from './security-bulletin.ts';
import { reevaluateCluster } from './snapshot.ts';

/** The job name in reports, logs and the idempotency key prefix. */
export const CLUSTER_EVENT_JOB = 'cluster-event';

/**
 * How long an event id is remembered (7 days): Pub/Sub keeps retrying an unacknowledged
 * message for up to 7 days, Event Grid and EventBridge for 24 hours.
 */
export const EVENT_MEMORY_SECONDS = 7 * 24 * 3600;

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
