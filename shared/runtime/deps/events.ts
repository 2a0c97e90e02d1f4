/**
 * The wiring of the `rediscover-clusters` worker: the discoveries of the clouds an event names,
 * the GCP project directory, a notifier. Its own module, so that bundle reaches the discovery
 * adapters only.
 */
import { createDiscoveries, createProjectDirectory } from '../../clouds/registry.ts';
import type { GcpConfig } from '../../config/schema.ts';
import type { OpenEventDeps } from '../../jobs/cluster-event.ts';
import type { Log, ProjectDirectory } from '../../ports.ts';
import { baseDeps } from './base.ts';

/** The deps of the `rediscover-clusters` worker: the configured discoveries of `clouds`, the state store, a notifier. */
export const openEventDeps: OpenEventDeps = async (config, logger, clouds) => {
  const gcp = clouds.includes('gcp') ? config.clouds.gcp : undefined;
  const [discoveries, base, notifier, projects] = await Promise.all([
    createDiscoveries(config, { logger }, clouds),
    baseDeps(config, logger),
    import('../../notify/notifier.ts').then((m) => m.createNotifier(config, { logger })),
    gcp ? directoryOf(gcp, logger) : undefined,
  ]);
  return {
    ...base,
    discoveries,
    notifier,
    projects,
    async close() {
      await notifier.close();
      await base.store.close();
    },
  };
};

// One directory per GCP config for the life of the process: resolved numbers stay cached across invocations.
const directories = new WeakMap<object, ProjectDirectory>();

async function directoryOf(gcp: GcpConfig, logger: Log): Promise<ProjectDirectory> {
  const held = directories.get(gcp);
  if (held) return held;
  const created = await createProjectDirectory(gcp, { logger });
  // Two batches opened at once may both have built one: the first stored is the one every batch shares.
  const stored = directories.get(gcp);
  if (stored) return stored;
  directories.set(gcp, created);
  return created;
}
