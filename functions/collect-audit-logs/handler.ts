/**
 * `collect-audit-logs`: every 10 minutes, in the `regional` role only. Audit logs are
 * personal data, so they are read and archived inside their jurisdiction: a regional
 * deployment serves the one jurisdiction named by `FLEETWARD_JURISDICTION` and refuses
 * clusters of any other; the home role refuses to run at all. A jurisdiction without an
 * evidence bucket gets a finding: a deployed run never falls back to a local directory.
 */
import { parser } from '@aws-lambda-powertools/parser/middleware';
import { AUDIT_JOB, collect } from '../../shared/jobs/audit.ts';
import { notifyAfterJob } from '../../shared/notify/notifier.ts';
import { auditJobDeps } from '../../shared/runtime/deps/audit.ts';
import { FleetwardError } from '../../shared/runtime/errors.ts';
import { deployedConfig, heartbeat, lambdaHandler, logger } from '../../shared/runtime/lambda.ts';
import { deployedDispatcher } from '../../shared/runtime/queue-dispatch.ts';
import { regionalScope } from '../../shared/runtime/scope.ts';
import { Request } from './schema.ts';

export const handler = lambdaHandler()
  .use(heartbeat('collect-audit-logs'))
  .use(parser({ schema: Request }))
  .handler(async (event: Request, _context, { signal }) => {
    const scope = regionalScope(event);
    if (process.env.FLEETWARD_ROLE !== 'regional' || !scope.jurisdiction) {
      throw new FleetwardError(
        'collect-audit-logs runs only in a regional deployment with FLEETWARD_JURISDICTION set',
      );
    }
    const config = await deployedConfig();
    // A deployed run never writes evidence to a local directory: no residency guard can judge it.
    const deps = await auditJobDeps(config, logger, { localEvidence: false });
    try {
      const result = await collect(deps, { ...scope, signal }, await deployedDispatcher(4));
      await notifyAfterJob({ config, store: deps.store, logger }, AUDIT_JOB, {
        runId: result.runId,
        jurisdiction: scope.jurisdiction,
      });
      const count = (s: string) => result.outcomes.filter((o) => o.status === s).length;
      return {
        runId: result.runId,
        enqueued: result.enqueued ?? 0,
        archived: count('archived'),
        upToDate: count('up-to-date'),
        skipped: count('skipped'),
        failed: count('failed'),
      };
    } finally {
      await deps.store.close();
    }
  });
