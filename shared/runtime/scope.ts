import { z } from 'zod';

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
