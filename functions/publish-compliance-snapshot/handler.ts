/**
 * `publish-compliance-snapshot`: daily, and after relevant cluster events. In a regional
 * deployment it evaluates its own jurisdiction (`FLEETWARD_JURISDICTION`) and publishes
 * the snapshot files into that jurisdiction's write-once evidence bucket. In the home role
 * it evaluates the fleet for the fleet summary (counts only) and publishes nothing: the
 * home region never holds a jurisdiction's snapshot files.
 */
import { parser } from '@aws-lambda-powertools/parser/middleware';
import { publish, snapshotReport } from '../../shared/jobs/snapshot.ts';
import { notifyAfterJob, notifyAfterReport } from '../../shared/notify/notifier.ts';
import { snapshotDeps } from '../../shared/runtime/deps/snapshot.ts';
import { HEARTBEAT_JOB, recordLateJobs } from '../../shared/runtime/heartbeat.ts';
import { deployedConfig, heartbeat, lambdaHandler, logger } from '../../shared/runtime/lambda.ts';
import { regionalScope } from '../../shared/runtime/scope.ts';
import { Request } from './schema.ts';

export const handler = lambdaHandler()
  .use(heartbeat('publish-compliance-snapshot'))
  .use(parser({ schema: Request }))
  .handler(async (event: Request, _context, { signal }) => {
    const { jurisdiction } = regionalScope({});
    const regional = process.env.FLEETWARD_ROLE === 'regional' && jurisdiction !== undefined;
    // A deployed run never publishes to a local directory (not compliant storage).
    const deps = await snapshotDeps(await deployedConfig(), logger, { localEvidence: false });
    try {
      const result = await publish(deps, {
        jurisdiction,
        publish: regional && event.publish,
        signal,
      });
      await notifyAfterReport(deps, snapshotReport(result));
      // A schedule that stopped is news too: one finding per late job, sent with the digest's findings.
      await recordLateJobs(deps.store, new Date());
      await notifyAfterJob(deps, HEARTBEAT_JOB);
      return {
        runId: result.runId,
        summary: result.summary,
        published: result.jurisdictions.map((o) => ({
          jurisdiction: o.jurisdiction,
          sha256: o.sha256.json,
          stores: o.published.map((p) => p.store),
          error: o.publishError?.message ?? null,
        })),
      };
    } finally {
      await deps.store.close();
    }
  });
