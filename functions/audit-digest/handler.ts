/**
 * `audit-digest`: hourly, in the `regional` role only. Writes each cluster's signed hourly
 * audit digests (shared/jobs/audit-digest.ts) into its jurisdiction's evidence store, signed
 * with the jurisdiction's KMS key; the residency guard judges the key's region first. A
 * deployed run never signs with a key file nor writes to a local directory.
 */
import { parser } from '@aws-lambda-powertools/parser/middleware';
import { DIGEST_JOB, digest } from '../../shared/jobs/audit-digest.ts';
import { notifyAfterJob } from '../../shared/notify/notifier.ts';
import { digestJobDeps } from '../../shared/runtime/deps/audit-digest.ts';
import { FleetwardError } from '../../shared/runtime/errors.ts';
import { deployedConfig, heartbeat, lambdaHandler, logger } from '../../shared/runtime/lambda.ts';
import { regionalScope } from '../../shared/runtime/scope.ts';
import { Request } from './schema.ts';

export const handler = lambdaHandler()
  .use(heartbeat('audit-digest'))
  .use(parser({ schema: Request }))
  .handler(async (event: Request, _context, { signal }) => {
    const scope = regionalScope(event);
    if (process.env.FLEETWARD_ROLE !== 'regional' || !scope.jurisdiction) {
      throw new FleetwardError(
        'audit-digest runs only in a regional deployment with FLEETWARD_JURISDICTION set',
      );
    }
    const config = await deployedConfig();
    const deps = await digestJobDeps(config, logger, { localEvidence: false });
    try {
      const result = await digest(deps, { ...scope, signal });
      await notifyAfterJob({ config, store: deps.store, logger }, DIGEST_JOB, {
        runId: result.runId,
        jurisdiction: scope.jurisdiction,
      });
      const count = (s: string) => result.outcomes.filter((o) => o.status === s).length;
      return {
        runId: result.runId,
        written: count('written'),
        upToDate: count('up-to-date'),
        skipped: count('skipped'),
        failed: count('failed'),
      };
    } finally {
      deps.close();
      await deps.store.close();
    }
  });
