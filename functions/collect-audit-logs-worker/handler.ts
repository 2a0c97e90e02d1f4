/**
 * `collect-audit-logs-worker`: consumes the `collect-audit-logs` queue of a regional
 * deployment; each item archives one cluster's new audit events inside its jurisdiction.
 * Like the planner, it runs only in the regional role, never acts on a cluster of another
 * jurisdiction (the worker refuses such items) and never writes evidence to a local directory.
 */
import { AUDIT_JOB, auditWork } from '../../shared/jobs/audit.ts';
import { auditJobDeps } from '../../shared/runtime/deps/audit.ts';
import { FleetwardError } from '../../shared/runtime/errors.ts';
import { deployedConfig, logger } from '../../shared/runtime/lambda.ts';
import { workerHandler } from '../../shared/runtime/worker.ts';

export const handler = workerHandler(auditWork(), {
  open: async () => {
    if (process.env.FLEETWARD_ROLE !== 'regional' || !process.env.FLEETWARD_JURISDICTION) {
      throw new FleetwardError(
        'collect-audit-logs-worker runs only in a regional deployment with FLEETWARD_JURISDICTION set',
      );
    }
    return auditJobDeps(await deployedConfig(), logger, { localEvidence: false });
  },
  notifyJob: AUDIT_JOB,
});
