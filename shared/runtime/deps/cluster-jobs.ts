/**
 * The wiring of the jobs inside clusters (backup, reconcile-backups, restore drill): kube
 * access and the backup storage locations' bucket lookups. Its own module, so those bundles
 * reach the kube and bucket adapters only, never discovery, budgets or audit.
 */
import type { FleetConfig } from '../../config/schema.ts';
import type { ClusterJobDeps } from '../../jobs/fleet.ts';
import type { Log } from '../../ports.ts';
import { baseDeps } from './base.ts';

/** What the backup, reconcile and drill jobs need: kube access and bucket lookups on top of the state store. */
export async function clusterJobDeps(config: FleetConfig, logger: Log): Promise<ClusterJobDeps> {
  const [{ createKubeAccess }, { createBucketLocator }, base] = await Promise.all([
    import('../../kube/access.ts'),
    import('../../clouds/buckets.ts'),
    baseDeps(config, logger),
  ]);
  return {
    ...base,
    kube: createKubeAccess(config, { logger }),
    buckets: createBucketLocator(config, { logger }),
  };
}
