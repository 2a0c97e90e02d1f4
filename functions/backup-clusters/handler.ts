/**
 * `backup-clusters`: hourly; requests the current window's Velero Backup on every cluster
 * whose jurisdiction's schedule (`rate(...)`) puts it in a new window. A window that
 * already has its Backup is found, not duplicated.
 */
import { parser } from '@aws-lambda-powertools/parser/middleware';
import { run } from '../../shared/jobs/backup.ts';
import { notifyAfterJob } from '../../shared/notify/notifier.ts';
import { clusterJobDeps } from '../../shared/runtime/deps/cluster-jobs.ts';
import { deployedConfig, heartbeat, lambdaHandler, logger } from '../../shared/runtime/lambda.ts';
import { deployedDispatcher } from '../../shared/runtime/queue-dispatch.ts';
import { regionalScope } from '../../shared/runtime/scope.ts';
import { Request } from './schema.ts';

export const handler = lambdaHandler()
  .use(heartbeat('backup-clusters'))
  .use(parser({ schema: Request }))
  .handler(async (event: Request, _context, { signal }) => {
    const deps = await clusterJobDeps(await deployedConfig(), logger);
    const scope = regionalScope(event);
    try {
      const dispatcher = await deployedDispatcher(deps.config.kubeAccess.concurrency * 4);
      const result = await run(deps, { ...scope, signal }, dispatcher);
      await notifyAfterJob(deps, 'backup', { runId: result.runId, jurisdiction: scope.jurisdiction });
      const count = (s: string) => result.outcomes.filter((o) => o.status === s).length;
      return {
        runId: result.runId,
        enqueued: result.enqueued ?? 0,
        created: count('created'),
        exists: count('exists'),
        skipped: count('skipped'),
        failed: count('failed'),
      };
    } finally {
      await deps.store.close();
    }
  });
