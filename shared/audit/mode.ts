/** Which way a cluster's audit log reaches its jurisdiction's evidence store. */
import type { FleetConfig } from '../config/schema.ts';
import type { Cluster } from '../model.ts';

export type AuditMode = 'pull' | 'export';

/**
 * The cluster's audit mode: its entry in the jurisdiction's `audit.clusters`, else the
 * jurisdiction's `audit.mode`; `pull` for a cluster in no configured jurisdiction.
 */
export function auditModeOf(config: Pick<FleetConfig, 'jurisdictions'>, cluster: Cluster): AuditMode {
  const audit = config.jurisdictions[cluster.jurisdiction]?.audit;
  return audit?.clusters?.[cluster.id] ?? audit?.mode ?? 'pull';
}
