/**
 * Builds what jobs need from a validated config. The CLI and the Lambda handlers
 * both go through here, so a scheduled run and a local run see the same wiring.
 */
import { createDiscoveries } from '../clouds/registry.ts';
import type { FleetConfig } from '../config/schema.ts';
import type { DiscoverDeps } from '../jobs/discover.ts';
import type { CloudId } from '../model.ts';
import { type Log, systemClock } from '../ports.ts';
import { Residency } from '../residency/index.ts';
import { openStateStore } from '../state/index.ts';

/** The state store the config names; `FLEETWARD_STATE_TABLE` (set by the deployment) selects DynamoDB. */
export function stateConfig(config: FleetConfig, env: NodeJS.ProcessEnv = process.env): FleetConfig['state'] {
  const table = env.FLEETWARD_STATE_TABLE;
  if (table) return { type: 'dynamodb', table, region: env.AWS_REGION ?? 'us-east-1' };
  return config.state;
}

export async function discoverDeps(
  config: FleetConfig,
  logger: Log,
  clouds?: readonly CloudId[],
): Promise<DiscoverDeps> {
  const [discoveries, store] = await Promise.all([
    createDiscoveries(config, { logger }, clouds),
    openStateStore(stateConfig(config)),
  ]);
  return { discoveries, store, residency: new Residency(config.jurisdictions), logger, clock: systemClock };
}
