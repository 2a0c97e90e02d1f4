/** `reconcile-backups`: every 5 minutes; records terminal Backup phases and RPO per cluster, alerting on RPO breaches. */
import { parser } from '@aws-lambda-powertools/parser/middleware';
import { run } from '../../shared/jobs/reconcile-backups.ts';
import { notifyAfterJob } from '../../shared/notify/notifier.ts';
import { clusterJobDeps } from '../../shared/runtime/deps/cluster-jobs.ts';
import { deployedConfig, heartbeat, lambdaHandler, logger } from '../../shared/runtime/lambda.ts';
import { deployedDispatcher } from '../../shared/runtime/queue-dispatch.ts';
import { regionalScope } from '../../shared/runtime/scope.ts';
import { Request } from './schema.ts';

export const handler = lambdaHandler()
  .use(heartbeat('reconcile-backups'))
  .use(parser({ schema: Request }))
  .handler(async (event: Request, _context, { signal }) => {
    const deps = await clusterJobDeps(await deployedConfig(), logger);
    const scope = regionalScope(event);
    try {
      const dispatcher = await deployedDispatcher(deps.config.kubeAccess.concurrency * 4);
      const result = await run(deps, { ...scope, signal }, dispatcher);
      await notifyAfterJob(deps, 'reconcile-backups', { jurisdiction: scope.jurisdiction });
      return {
        enqueued: result.enqueued ?? 0,
        clusters: result.statuses.length,
        recorded: result.recorded,
        rpoExceeded: result.statuses.filter((s) => s.rpoOk === false).map((s) => s.clusterId),
      };
    } finally {
      await deps.store.close();
    }
  });
