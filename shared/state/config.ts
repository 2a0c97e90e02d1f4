/**
 * Which state store a process uses. Its own module, free of the cloud registry, so every
 * function (the event endpoints included) can open the state store without its bundle
 * reaching a cloud adapter; `shared/runtime/deps.ts` re-exports it.
 */
import type { FleetConfig } from '../config/schema.ts';
import { FleetwardError } from '../runtime/errors.ts';

/**
 * The state store the config names; `FLEETWARD_STATE_TABLE` (set by the deployment) selects
 * DynamoDB in the function's own region (`AWS_REGION`, which Lambda always sets), so a regional
 * deployment keeps its state in its jurisdiction's region. Without a region it refuses rather
 * than guess one: a guessed region could lie outside the jurisdiction.
 */
export function stateConfig(config: FleetConfig, env: NodeJS.ProcessEnv = process.env): FleetConfig['state'] {
  const table = env.FLEETWARD_STATE_TABLE;
  if (!table) return config.state;
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (!region) {
    throw new FleetwardError(
      'FLEETWARD_STATE_TABLE is set but AWS_REGION is not: the state table region is unknown',
    );
  }
  return { type: 'dynamodb', table, region };
}
