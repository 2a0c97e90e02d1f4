/**
 * `collect-audit-logs-worker`: consumes the `collect-audit-logs` queue of a regional
 * deployment; each item archives one cluster's new audit events inside its jurisdiction.
 * Like the planner, it never writes evidence to a local directory.
 */
import { AUDIT_JOB, auditWork } from '../../shared/jobs/audit.ts';
import { auditJobDeps } from '../../shared/runtime/deps.ts';
import { deployedConfig, logger } from '../../shared/runtime/lambda.ts';
import { workerHandler } from '../../shared/runtime/worker.ts';

export const handler = workerHandler(auditWork(), {
  open: async () => auditJobDeps(await deployedConfig(), logger, { localEvidence: false }),
  notifyJob: AUDIT_JOB,
});
