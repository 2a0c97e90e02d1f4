/**
 * The wiring of the snapshot job (`publish-compliance-snapshot`, `fleetward snapshot`): the
 * jurisdictions' evidence stores, never the audit log sources.
 */
import type { FleetConfig } from '../../config/schema.ts';
import type { SnapshotDeps } from '../../jobs/snapshot.ts';
import type { Log } from '../../ports.ts';
import type { EvidenceOptions } from './audit.ts';
import { baseDeps } from './base.ts';

/** What the snapshot job needs: the state store (evidence) and the jurisdictions' evidence stores. */
export async function snapshotDeps(
  config: FleetConfig,
  logger: Log,
  options: EvidenceOptions = {},
): Promise<SnapshotDeps> {
  const [{ createEvidenceStores }, base] = await Promise.all([
    import('../../audit/evidence.ts'),
    baseDeps(config, logger),
  ]);
  const localEvidence = options.localEvidence === true;
  return {
    ...base,
    evidence: createEvidenceStores(config, { logger, localEvidence }),
    allowLocalEvidence: localEvidence,
  };
}
