/**
 * What the three event handlers share once the intake has produced `ClusterEvent`s: open
 * the deps of the event path (only then: a refused request never opens the state store or
 * a cloud client), hand each event to `handleClusterEvent`, and sort out events Fleetward
 * cannot act on (a scope it does not watch) from real failures.
 */
import type { Context } from 'aws-lambda';
import { createDiscoveries } from '../clouds/registry.ts';
import type { FleetConfig } from '../config/schema.ts';
import { type ClusterEventDeps, type ClusterEventResult, handleClusterEvent } from '../jobs/cluster-event.ts';
import { InvalidClusterRefError } from '../jobs/rediscover.ts';
import { createNotifier } from '../notify/notifier.ts';
import { type Log, systemClock } from '../ports.ts';
import { Residency } from '../residency/index.ts';
import { stateConfig } from '../runtime/deps.ts';
import { ConfigError } from '../runtime/errors.ts';
import { openStateStore } from '../state/index.ts';
import type { ClusterEvent, EventCloud } from './model.ts';

/** The event path's deps plus how to release them. */
export interface OpenedEventDeps extends ClusterEventDeps {
  close(): Promise<void>;
}

/** Opens the deps of the event path for the clouds of a batch (only their SDKs are loaded). */
export type OpenEventDeps = (
  config: FleetConfig,
  logger: Log,
  clouds: readonly EventCloud[],
) => Promise<OpenedEventDeps>;

/** The deployed wiring: the configured discoveries of `clouds`, the state store, a notifier. */
export const openEventDeps: OpenEventDeps = async (config, logger, clouds) => {
  const [discoveries, store, notifier] = await Promise.all([
    createDiscoveries(config, { logger }, clouds),
    openStateStore(stateConfig(config)),
    createNotifier(config, { logger }),
  ]);
  return {
    config,
    discoveries,
    store,
    notifier,
    residency: new Residency(config.jurisdictions),
    logger,
    clock: systemClock,
    async close() {
      await notifier.close();
      await store.close();
    },
  };
};

/** How a handler reaches its config and deps; tests inject theirs. */
export interface EventWiring {
  config(): Promise<FleetConfig>;
  open: OpenEventDeps;
}

/** What a batch of events came to. */
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
    for (const event of events) {
      try {
        result.handled.push(
          await handleClusterEvent(deps, event, { signal: ctx.signal, lambdaContext: ctx.lambdaContext }),
        );
      } catch (error) {
        if (!(error instanceof ConfigError || error instanceof InvalidClusterRefError)) throw error;
        result.ignored++;
        ctx.logger.warn('Event ignored', {
          eventId: event.id,
          source: event.source,
          providerType: event.providerType,
          cluster: event.cluster,
          reason: error instanceof ConfigError ? 'cluster scope not configured' : error.message,
          ignored: 1,
        });
      }
    }
  } finally {
    await deps.close();
  }
  return result;
}
