import { z } from 'zod';
import { UsageError } from './errors.ts';

/** The input every cluster job function accepts: the schedule's trigger, optionally one cluster. */
export const ClusterJobRequest = z.strictObject({
  trigger: z.enum(['schedule', 'manual']).default('manual'),
  clusterId: z.string().min(1).optional(),
});

/**
 * A regional deployment (role `regional`) serves one jurisdiction, named by
 * `FLEETWARD_JURISDICTION`; it refuses to act on clusters of any other.
 */
export function regionalScope(
  request: { clusterId?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
) {
  return { clusterId: request.clusterId, jurisdiction: env.FLEETWARD_JURISDICTION || undefined };
}

/**
 * Refuses a `--jurisdiction` the config does not define, listing the ones it does (`unassigned`
 * names the clusters in regions no jurisdiction covers).
 */
export function assertJurisdiction(jurisdictions: Record<string, unknown>, id: string | undefined): void {
  if (id === undefined || id === 'unassigned' || Object.hasOwn(jurisdictions, id)) return;
  throw new UsageError(
    `unknown jurisdiction "${id}" (one of: ${[...Object.keys(jurisdictions), 'unassigned'].join(', ')})`,
  );
}
