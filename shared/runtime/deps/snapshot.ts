/**
 * The wiring of the snapshot job (`publish-compliance-snapshot`, `fleetward snapshot`): the
 * jurisdictions' evidence stores, never the audit log sources.
 */
import type { FleetConfig } from '../../config/schema.ts';
import type { SnapshotDeps } from '../../jobs/snapshot.ts';
import { type Log, systemClock } from '../../ports.ts';
import { Residency } from '../../residency/index.ts';
import { stateConfig } from '../../state/config.ts';
import { openStateStore } from '../../state/index.ts';
import type { EvidenceOptions } from './audit.ts';

/** What the snapshot job needs: the state store (evidence) and the jurisdictions' evidence stores. */
export async function snapshotDeps(
  config: FleetConfig,
  logger: Log,
  options: EvidenceOptions = {},
): Promise<SnapshotDeps> {
  const [{ createEvidenceStores }, store] = await Promise.all([
    import('../../audit/evidence.ts'),
    openStateStore(stateConfig(config)),
  ]);
  return {
    config,
    store,
    residency: new Residency(config.jurisdictions),
    logger,
    clock: systemClock,
    evidence: createEvidenceStores(config, { logger, localEvidence: options.localEvidence === true }),
    allowLocalEvidence: options.localEvidence === true,
  };
}
