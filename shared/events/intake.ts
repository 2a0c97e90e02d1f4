/**
 * The intake half of the event path, the only part an event endpoint runs: once a request is
 * verified and parsed into `ClusterEvent`s, each event about a watched scope is recorded once
 * in the state store (its redeliveries are recognised there) and handed on as one
 * `rediscover-clusters` work item carrying ids only. The rediscovery itself (cloud calls,
 * inventory, Slack) runs in the worker (`shared/jobs/cluster-event.ts`), so an
 * internet-facing function holds no cloud credentials and loads no cloud SDK.
 */
import { createHash } from 'node:crypto';
import type { FleetConfig } from '../config/schema.ts';
import type { Log, StateStore } from '../ports.ts';
import type { WorkItem } from '../runtime/dispatch.ts';
import { recordJobMetrics } from '../runtime/metrics.ts';
import type { ClusterEvent, EventClusterRef } from './model.ts';

/** The job (and queue) that rediscovers the clusters events name. */
export const REDISCOVER_JOB = 'rediscover-clusters';

/** State namespace of received events: the worker reads an event here by its key. */
export const CLUSTER_EVENTS_NS = 'cluster-events';

/** The `job` dimension of event-intake metrics. */
export const EVENTS_METRIC_JOB = 'cluster-events';

/**
 * How long an event is remembered (7 days): Pub/Sub keeps retrying an unacknowledged message
 * for up to 7 days, Event Grid and EventBridge for 24 hours.
 */
export const EVENT_MEMORY_SECONDS = 7 * 24 * 3600;

/** One received event as the state store keeps it for the worker. */
export interface ReceivedEvent {
  event: ClusterEvent;
  receivedAt: string;
  /** Set once the work item is on its way: a redelivery then only reports a replay. */
  enqueuedAt?: string | undefined;
}

/**
 * The state key of an event, also the work item's `runId`: a digest of `(source, id)`, so a
 * redelivery maps to the same key and a long provider id never overflows the item.
 */
export function eventKeyOf(event: Pick<ClusterEvent, 'source' | 'id'>): string {
  return `ev-${createHash('sha256').update(`${event.source}\n${event.id}`).digest('hex').slice(0, 40)}`;
}

/**
 * The work item of an event: ids only. `clusterId` is `<cloud>/<scope>/<region or resource
 * group>/<name>` as the event names it (for logs and the queue's dead letters); `runId` is
 * the key of the event's record, which the worker reads.
 */
export function workItemOf(event: ClusterEvent): WorkItem {
  const ref: EventClusterRef = event.cluster;
  const place = ref.cloud === 'azure' ? (ref.resourceGroup ?? '').toLowerCase() : ref.region;
  return {
    job: REDISCOVER_JOB,
    clusterId: `${ref.cloud}/${ref.scope}/${place}/${ref.name}`,
    runId: eventKeyOf(event),
  };
}

/**
 * Whether the config watches the scope an event names, judged from the config alone (no
 * cloud call): the cloud is configured and lists the AWS account, GCP project (a project
 * number, as GKE notifications give it, passes: the worker resolves it) or Azure subscription.
 */
export function watchesScope(config: FleetConfig, ref: EventClusterRef): boolean {
  switch (ref.cloud) {
    case 'aws':
      return config.clouds.aws?.accounts.some((a) => a.id === ref.scope) ?? false;
    case 'gcp': {
      const gcp = config.clouds.gcp;
      if (!gcp) return false;
      return /^[0-9]+$/.test(ref.scope) || gcp.projects.some((p) => p.id === ref.scope);
    }
    case 'azure':
      return config.clouds.azure?.subscriptions.some((s) => s.id === ref.scope) ?? false;
  }
}

/** What the intake needs: the config (watched scopes), the state store (received events) and a logger. */
export interface IntakeDeps {
  config: FleetConfig;
  store: StateStore;
  logger: Log;
  /** Hands items to the `rediscover-clusters` worker: its queue when deployed, the job itself in-process. */
  send(items: readonly WorkItem[], signal?: AbortSignal): Promise<void>;
}

/** What an intake did with a batch of events. */
export interface IntakeResult {
  /** Events handed on (first delivery, or a delivery whose earlier hand-over did not finish). */
  accepted: number;
  /** Redeliveries of events already handed on: nothing was sent again. */
  replayed: number;
  /** Events about scopes the config does not watch: acknowledged, never sent. */
  ignored: number;
}

/**
 * Records each event of a watched scope once and sends one work item per event not sent
 * before. Rejects when the state store or the send fails (the sender redelivers: an event
 * recorded but not sent is sent again then, and the worker acts at most once per event).
 */
export async function acceptEvents(
  deps: IntakeDeps,
  events: readonly ClusterEvent[],
  signal?: AbortSignal,
): Promise<IntakeResult> {
  const result: IntakeResult = { accepted: 0, replayed: 0, ignored: 0 };
  const now = new Date();
  const expiresAt = now.getTime() + EVENT_MEMORY_SECONDS * 1000;
  const fresh: { key: string; record: ReceivedEvent; item: WorkItem }[] = [];
  for (const event of events) {
    if (!watchesScope(deps.config, event.cluster)) {
      result.ignored++;
      recordJobMetrics(EVENTS_METRIC_JOB, { EventsIgnored: 1 });
      deps.logger.warn('Event ignored', {
        eventId: event.id,
        source: event.source,
        providerType: event.providerType,
        cluster: event.cluster,
        reason: 'cluster scope not configured',
        ignored: 1,
      });
      continue;
    }
    const key = eventKeyOf(event);
    const record: ReceivedEvent = { event, receivedAt: now.toISOString() };
    if (!(await deps.store.putIfAbsent(CLUSTER_EVENTS_NS, { key, value: record, expiresAt }))) {
      const held = await deps.store.get<ReceivedEvent>(CLUSTER_EVENTS_NS, key);
      if (held?.enqueuedAt) {
        result.replayed++;
        continue;
      }
      // Recorded by a delivery that failed before its hand-over finished: hand it over now.
    }
    fresh.push({ key, record, item: workItemOf(event) });
  }
  if (fresh.length === 0) return result;
  await deps.send(
    fresh.map((f) => f.item),
    signal,
  );
  const enqueuedAt = new Date().toISOString();
  await deps.store.putMany(
    CLUSTER_EVENTS_NS,
    fresh.map((f) => ({ key: f.key, value: { ...f.record, enqueuedAt }, expiresAt })),
  );
  result.accepted = fresh.length;
  deps.logger.info('Events accepted', { accepted: result.accepted, replayed: result.replayed });
  return result;
}

/** An opened intake: its deps and how to release them. */
export interface OpenedIntake extends IntakeDeps {
  close(): Promise<void>;
}

/** Opens an intake for a batch of events (only when a request carried any). */
export type OpenIntake = (config: FleetConfig, logger: Log) => Promise<OpenedIntake>;

/** How an event handler reaches its config and its intake; tests inject theirs. */
export interface EventWiring {
  config(): Promise<FleetConfig>;
  intake: OpenIntake;
}

/**
 * Accepts a batch of parsed events through an intake opened for it: nothing is opened for an
 * empty batch, so a refused request touches no state and no queue.
 */
export async function receiveEvents(
  events: readonly ClusterEvent[],
  ctx: { config: FleetConfig; logger: Log; open: OpenIntake; signal?: AbortSignal | undefined },
): Promise<IntakeResult> {
  if (events.length === 0) return { accepted: 0, replayed: 0, ignored: 0 };
  const intake = await ctx.open(ctx.config, ctx.logger);
  try {
    return await acceptEvents(intake, events, ctx.signal);
  } finally {
    await intake.close();
  }
}
