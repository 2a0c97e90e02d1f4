/**
 * `restore-drill`: every 10 minutes; moves each active drill one phase forward and starts
 * a drill where the jurisdiction's interval is due. Never waits for Velero: the next
 * invocation observes the Restore's phase.
 */
import { parser } from '@aws-lambda-powertools/parser/middleware';
import { step } from '../../shared/jobs/drill.ts';
import { notifyAfterJob } from '../../shared/notify/notifier.ts';
import { clusterJobDeps } from '../../shared/runtime/deps/cluster-jobs.ts';
import { deployedConfig, heartbeat, lambdaHandler, logger } from '../../shared/runtime/lambda.ts';
import { deployedDispatcher } from '../../shared/runtime/queue-dispatch.ts';
import { regionalScope } from '../../shared/runtime/scope.ts';
import { Request } from './schema.ts';

export const handler = lambdaHandler()
  .use(heartbeat('restore-drill'))
  .use(parser({ schema: Request }))
  .handler(async (event: Request) => {
    const deps = await clusterJobDeps(await deployedConfig(), logger);
    const scope = regionalScope(event);
    try {
      const dispatcher = await deployedDispatcher(deps.config.kubeAccess.concurrency * 4);
      const results = await step(deps, { ...scope, start: 'due' }, dispatcher);
      await notifyAfterJob(deps, 'restore-drill', { jurisdiction: scope.jurisdiction });
      return {
        started: results.filter((r) => r.started).length,
        active: results.filter((r) => r.drill && r.drill.phase !== 'done').length,
        failed: results.filter((r) => r.drill?.result === 'fail').map((r) => r.clusterId),
      };
    } finally {
      await deps.store.close();
    }
  });
