/** `reconcile-backups-worker`: consumes the `reconcile-backups` queue; each item records one cluster's Backup phases and RPO. */
import { reconcileWork } from '../../shared/jobs/reconcile-backups.ts';
import { clusterJobDeps } from '../../shared/runtime/deps/cluster-jobs.ts';
import { deployedConfig, logger } from '../../shared/runtime/lambda.ts';
import { workerHandler } from '../../shared/runtime/worker.ts';

export const handler = workerHandler(reconcileWork, {
  open: async () => clusterJobDeps(await deployedConfig(), logger),
  notifyJob: 'reconcile-backups',
});
