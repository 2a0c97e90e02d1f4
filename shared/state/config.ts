/**
 * Which state store a process uses. Its own module, free of the cloud registry, so every
 * function (the event endpoints included) can open the state store without its bundle
 * reaching a cloud adapter; `shared/runtime/deps.ts` re-exports it.
 */
import type { FleetConfig } from '../config/schema.ts';

/** The state store the config names; `FLEETWARD_STATE_TABLE` (set by the deployment) selects DynamoDB. */
export function stateConfig(config: FleetConfig, env: NodeJS.ProcessEnv = process.env): FleetConfig['state'] {
  const table = env.FLEETWARD_STATE_TABLE;
  if (table) return { type: 'dynamodb', table, region: env.AWS_REGION ?? 'us-east-1' };
  return config.state;
}
