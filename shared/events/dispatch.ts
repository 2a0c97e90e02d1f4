/**
 * What the three event handlers share once the intake has produced `ClusterEvent`s: open
 * the deps of the event path (only then: a refused request never opens the state store or
 * a cloud client), hand each event to `handleClusterEvent`, and sort out events Fleetward
 * cannot act on (a scope it does not watch) from real failures.
 */
import type { Context } from 'aws-lambda';
import type { FleetConfig } from '../config/schema.ts';
import { type ClusterEventDeps, type ClusterEventResult, handleClusterEvent } from '../jobs/cluster-event.ts';
import { InvalidClusterRefError } from '../jobs/rediscover.ts';
import type { Log, ProjectDirectory } from '../ports.ts';
import { ConfigError } from '../runtime/errors.ts';
import { recordJobMetrics } from '../runtime/metrics.ts';
import type { ClusterEvent, EventCloud } from './model.ts';

/** The event path's deps plus how to release them. */
export interface OpenedEventDeps extends ClusterEventDeps {
  /** GCP only: maps the project numbers GKE notifications carry to configured project ids. */
  projects?: ProjectDirectory | undefined;
  close(): Promise<void>;
}

/**
 * Opens the deps of the event path for the clouds of a batch (only their SDKs are loaded). The
 * deployed one is `openEventDeps` of the wiring (shared/runtime/deps.ts): the discoveries and
 * the project directory come from the cloud registry, so event intake sees only ports.
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

/** How a handler reaches its config and deps; tests inject theirs. */
export interface EventWiring {
  config(): Promise<FleetConfig>;
  open: OpenEventDeps;
}

/** What a batch of events came to. */
/** The `job` dimension of event-intake metrics. */
export const EVENTS_METRIC_JOB = 'cluster-events';

export interface DispatchResult {
  handled: ClusterEventResult[];
  /** Events about clusters Fleetward does not watch (unconfigured cloud or scope, incomplete reference). */
  ignored: number;
}

/**
 * Handles each event in turn through the one event path. Events naming a scope that is not
 * configured are logged and counted as ignored (no cloud call was made); any other failure
 * rejects, so the sender redelivers the batch (events already handled are then replayed,
 * not redone).
 */
export async function dispatchEvents(
  events: readonly ClusterEvent[],
  ctx: {
    config: FleetConfig;
    logger: Log;
    open: OpenEventDeps;
    signal?: AbortSignal | undefined;
    lambdaContext?: Context | undefined;
  },
): Promise<DispatchResult> {
  const result: DispatchResult = { handled: [], ignored: 0 };
  if (events.length === 0) return result;
  const clouds = [...new Set(events.map((e) => e.cluster.cloud))];
  const deps = await ctx.open(ctx.config, ctx.logger, clouds);
  try {
    const ignore = (event: ClusterEvent, reason: string) => {
      result.ignored++;
      recordJobMetrics(EVENTS_METRIC_JOB, { EventsIgnored: 1 });
      ctx.logger.warn('Event ignored', {
        eventId: event.id,
        source: event.source,
        providerType: event.providerType,
        cluster: event.cluster,
        reason,
        ignored: 1,
      });
    };
    const mapped = await withProjectIds(events, deps.projects, ctx.signal);
    for (const event of mapped.unknown) ignore(event, 'gcp project number of no configured project');
    for (const event of mapped.events) {
      try {
        result.handled.push(
          await handleClusterEvent(deps, event, { signal: ctx.signal, lambdaContext: ctx.lambdaContext }),
        );
      } catch (error) {
        if (!(error instanceof ConfigError || error instanceof InvalidClusterRefError)) throw error;
        ignore(event, error instanceof ConfigError ? 'cluster scope not configured' : error.message);
      }
    }
  } finally {
    await deps.close();
  }
  return result;
}
