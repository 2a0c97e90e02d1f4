/**
 * `reconcile-tags`: daily; reads every cluster's tags, records the tag plan (drift) and
 * findings (missing `owner`, values the policy does not allow), and writes the derived and
 * defaulted tags only in the `prod` stage. Elsewhere it plans (dry run): applying by hand
 * is `fleetward tags apply`. More changes than `policies.maxChanges` refuses the whole
 * apply and writes nothing.
 */
import { parser } from '@aws-lambda-powertools/parser/middleware';
import { apply, TAGS_JOB } from '../../shared/jobs/tags.ts';
import { notifyAfterJob } from '../../shared/notify/notifier.ts';
import { systemClock } from '../../shared/ports.ts';
import { deployedConfig, heartbeat, lambdaHandler, logger } from '../../shared/runtime/lambda.ts';
import { deployedDispatcher } from '../../shared/runtime/queue-dispatch.ts';
import { regionalScope } from '../../shared/runtime/scope.ts';
import { stateConfig } from '../../shared/state/config.ts';
import { openStateStore } from '../../shared/state/index.ts';
import { createTaggers } from '../../shared/tags/taggers.ts';
import { Request } from './schema.ts';

export const handler = lambdaHandler()
  .use(heartbeat('reconcile-tags'))
  .use(parser({ schema: Request }))
  .handler(async (event: Request, _context, { signal }) => {
    const config = await deployedConfig();
    const store = await openStateStore(stateConfig(config));
    const taggers = createTaggers(config, { logger });
    const scope = regionalScope(event);
    try {
      const result = await apply(
        { config, store, taggers, logger, clock: systemClock },
        { ...scope, dryRun: config.stage !== 'prod', signal },
        await deployedDispatcher(32),
      );
      await notifyAfterJob({ config, store, logger }, TAGS_JOB, {
        runId: result.runId,
        jurisdiction: scope.jurisdiction,
      });
      return {
        runId: result.runId,
        dryRun: result.dryRun,
        enqueued: result.enqueued ?? 0,
        refused: result.refused?.message ?? null,
        ...result.summary,
        failedClusters: result.outcomes.filter((o) => o.status === 'failed').map((o) => o.clusterId),
      };
    } finally {
      await taggers.close();
      await store.close();
    }
  });
