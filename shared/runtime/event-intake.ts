/**
 * The event functions' deployed intake: the deployment's state store (event records) and the
 * `rediscover-clusters` queue (`FLEETWARD_QUEUE_REDISCOVER_CLUSTERS`). An event function always
 * hands its events to the queue, whatever `FLEETWARD_DISPATCH` says: it holds no cloud access
 * to run them itself. This module reaches neither the cloud registry nor `deps.ts`, so an
 * endpoint's bundle carries no cloud adapter, not even as an unloaded chunk.
 */
import type { OpenIntake } from '../events/intake.ts';
import { REDISCOVER_JOB } from '../events/intake.ts';
import type { WorkQueue } from '../ports.ts';
import { stateConfig } from '../state/config.ts';
import { openStateStore } from '../state/index.ts';

// One SQS client per container, like every client at module scope.
let queue: Promise<WorkQueue> | undefined;

/** Opens the deployed intake for one batch of events (the queue client is kept for the container). */
export const openEventIntake: OpenIntake = async (config, logger) => {
  queue ??= import('../clouds/aws/queue.ts')
    .then((m) => m.createWorkQueue({ env: process.env }))
    .catch((error) => {
      queue = undefined;
      throw error;
    });
  const [store, sqs] = await Promise.all([openStateStore(stateConfig(config)), queue]);
  return {
    config,
    store,
    logger,
    send: (items, signal) => sqs.send(REDISCOVER_JOB, items, signal ? { signal } : {}),
    close: () => store.close(),
  };
};
