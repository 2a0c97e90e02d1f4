/**
 * The wiring of the audit collection and verification jobs (`collect-audit-logs` and its
 * worker, `fleetward audit`): log sources and write-once archives per cluster.
 */
import type { FleetConfig } from '../../config/schema.ts';
import type { AuditJobDeps } from '../../jobs/audit.ts';
import type { Log } from '../../ports.ts';
import { baseDeps } from './base.ts';

/** Whether a run may write evidence to a local, non-compliant directory (CLI `--local-evidence` only). */
export interface EvidenceOptions {
  localEvidence?: boolean | undefined;
}

/**
 * What the audit collection and verification jobs need: log sources and write-once archives
 * per cluster. Local evidence is refused unless `options.localEvidence` (never in a deployment).
 */
export async function auditJobDeps(
  config: FleetConfig,
  logger: Log,
  options: EvidenceOptions = {},
): Promise<AuditJobDeps> {
  const [{ createAuditWiring }, base] = await Promise.all([
    import('../../audit/wiring.ts'),
    baseDeps(config, logger),
  ]);
  const localEvidence = options.localEvidence === true;
  const wiring = await createAuditWiring(config, { logger, localEvidence });
  return { ...base, allowLocalEvidence: localEvidence, ...wiring };
}
