/**
 * The wiring of the discover job (`discover-clusters`, `fleetward inventory`): the configured
 * clouds' discoveries and the state store. Its own module, so a bundle that discovers reaches
 * the discovery adapters only (through the lazy registry), never another job's clouds.
 */
import { createDiscoveries } from '../../clouds/registry.ts';
import type { FleetConfig } from '../../config/schema.ts';
import type { DiscoverDeps } from '../../jobs/discover.ts';
import type { CloudId } from '../../model.ts';
import type { Log } from '../../ports.ts';
import { baseDeps } from './base.ts';

/** What the discover job needs: one discovery per configured cloud (optionally only `clouds`) and the state store. */
export async function discoverDeps(
  config: FleetConfig,
  logger: Log,
  clouds?: readonly CloudId[],
): Promise<DiscoverDeps> {
  const [discoveries, base] = await Promise.all([
    createDiscoveries(config, { logger }, clouds),
    baseDeps(config, logger),
  ]);
  return { ...base, discoveries };
}
