/**
 * The wiring of the audit export job (`fleetward audit plan|apply`): each cloud's exporter,
 * imported on first use, and the jurisdictions' evidence stores. Export mode never writes to a
 * local directory: a cloud can only deliver into a cloud bucket.
 */
import type { FleetConfig } from '../../config/schema.ts';
import type { AuditExportDeps } from '../../jobs/audit-export.ts';
import type { Log } from '../../ports.ts';
import { baseDeps } from './base.ts';

/** What the audit export job needs; the caller closes `store`. */
export async function auditExportDeps(config: FleetConfig, logger: Log): Promise<AuditExportDeps> {
  const [{ createAuditExporters }, { createEvidenceStores }, base] = await Promise.all([
    import('../../audit/exporters.ts'),
    import('../../audit/evidence.ts'),
    baseDeps(config, logger),
  ]);
  return {
    ...base,
    exporters: createAuditExporters(config, { logger }),
    evidence: createEvidenceStores(config, { logger, localEvidence: false }),
  };
}
