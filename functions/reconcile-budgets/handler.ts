/**
 * `reconcile-budgets`: daily; makes every cloud's Fleetward-managed budgets match the
 * `budgets` of fleet.yaml. It applies only when `stage` is `prod`; other stages plan (drift
 * and coverage findings are recorded either way). `policies.maxChanges` refuses a large apply.
 */
import { parser } from '@aws-lambda-powertools/parser/middleware';
import { apply } from '../../shared/jobs/budgets.ts';
import { notifyAfterJob } from '../../shared/notify/notifier.ts';
import { budgetJobDeps, closeBudgetJobDeps } from '../../shared/runtime/deps/budgets.ts';
import { deployedConfig, heartbeat, lambdaHandler, logger } from '../../shared/runtime/lambda.ts';
import { Request } from './schema.ts';

export const handler = lambdaHandler()
  .use(heartbeat('reconcile-budgets'))
  .use(parser({ schema: Request }))
  .handler(async (event: Request, _context, { signal }) => {
    const config = await deployedConfig();
    const deps = await budgetJobDeps(config, logger);
    try {
      const dryRun = event.dryRun === true || config.stage !== 'prod';
      const result = await apply(deps, { dryRun, signal });
      await notifyAfterJob(deps, 'budgets', { runId: result.runId });
      const count = (s: string) => result.changes.filter((c) => c.status === s).length;
      return {
        runId: result.runId,
        dryRun,
        refused: result.refused !== undefined,
        planned: count('planned'),
        applied: count('applied'),
        failed: count('failed'),
        failedClouds: result.failedClouds,
        clustersWithoutBudget: result.findings.length,
      };
    } finally {
      await closeBudgetJobDeps(deps);
    }
  });
