/**
 * `discover-clusters`: every 15 minutes, rediscover the fleet, save the inventory, log and return
 * the diff. In a regional deployment it keeps only its jurisdiction's clusters (the inventory its
 * backups, drills and audit collection plan from) and leaves the fleet's Slack digest to home.
 */
import { parser } from '@aws-lambda-powertools/parser/middleware';
import { run } from '../../shared/jobs/discover.ts';
import { notifyAfterDiscovery } from '../../shared/notify/notifier.ts';
import { discoverDeps } from '../../shared/runtime/deps/discover.ts';
import { deployedConfig, heartbeat, lambdaHandler, logger } from '../../shared/runtime/lambda.ts';
import { recordJobMetrics } from '../../shared/runtime/metrics.ts';
import { regionalScope } from '../../shared/runtime/scope.ts';
import { DiscoverRequest } from './schema.ts';

export const handler = lambdaHandler()
  .use(heartbeat('discover-clusters'))
  .use(parser({ schema: DiscoverRequest }))
  .handler(async (event: DiscoverRequest, _context, { signal }) => {
    const config = await deployedConfig();
    const deps = await discoverDeps(config, logger, event.clouds);
    const { jurisdiction } = regionalScope({});
    try {
      // A regional deployment keeps its own jurisdiction's inventory; the home one tells Slack.
      const result = await run(deps, { signal, jurisdiction });
      recordJobMetrics('discover-clusters', { ClustersDiscovered: result.clusters.length });
      if (jurisdiction === undefined)
        await notifyAfterDiscovery({ config, store: deps.store, logger }, result);
      // The full inventory lives in the state store; the response stays small for any fleet size.
      return {
        status: result.failures.length > 0 ? 'partial' : 'complete',
        clusters: result.clusters.length,
        diff: result.diff,
        failures: result.failures,
      };
    } finally {
      await deps.store.close();
    }
  });
