/**
 * `backup-clusters-worker`: consumes the `backup-clusters` queue; each item requests one
 * cluster's Backup for the window the planner computed (a redelivery finds its own Backup).
 */
import { backupWork } from '../../shared/jobs/backup.ts';
import { clusterJobDeps } from '../../shared/runtime/deps/cluster-jobs.ts';
import { deployedConfig, logger } from '../../shared/runtime/lambda.ts';
import { workerHandler } from '../../shared/runtime/worker.ts';

export const handler = workerHandler(backupWork, {
  open: async () => clusterJobDeps(await deployedConfig(), logger),
  notifyJob: 'backup',
});
