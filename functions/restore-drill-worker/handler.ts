/** `restore-drill-worker`: consumes the `restore-drill` queue; each item moves one cluster's drill one phase forward. */
import { drillWork } from '../../shared/jobs/drill.ts';
import { clusterJobDeps } from '../../shared/runtime/deps/cluster-jobs.ts';
import { deployedConfig, logger } from '../../shared/runtime/lambda.ts';
import { workerHandler } from '../../shared/runtime/worker.ts';

export const handler = workerHandler(drillWork, {
  open: async () => clusterJobDeps(await deployedConfig(), logger),
  notifyJob: 'restore-drill',
});
