/**
 * Which log source reads a cluster's audit log and which write-once store archives it: the
 * jurisdiction's evidence store (./evidence.ts, re-exported here). Cloud modules are imported
 * on first use, so a bundle loads only what it needs.
 */
import type { FleetConfig } from '../config/schema.ts';
import type { Cluster, RegionCloud } from '../model.ts';
import type { ArchiveStore, AuditLogSource } from '../ports.ts';
import { createEvidenceStores, type EvidenceContext } from './evidence.ts';

export {
  createEvidenceStores,
  type EvidenceContext,
  type EvidenceStores,
  LOCAL_EVIDENCE_DIR,
  NoEvidenceStoreError,
} from './evidence.ts';

export interface AuditWiring {
  sources: { for(cluster: Cluster): AuditLogSource | undefined };
  archives: { for(cluster: Cluster): Promise<ArchiveStore> };
}

export async function createAuditWiring(config: FleetConfig, ctx: EvidenceContext): Promise<AuditWiring> {
  // One source per configured cloud (cheap objects; clients connect on first read).
  const sources = new Map<RegionCloud, AuditLogSource>();
  const { aws, gcp, azure } = config.clouds;
  if (aws) sources.set('aws', (await import('../clouds/aws/audit.ts')).createAuditSource(aws, ctx));
  if (gcp) sources.set('gcp', (await import('../clouds/gcp/audit.ts')).createAuditSource(gcp, ctx));
  if (azure) sources.set('azure', (await import('../clouds/azure/audit.ts')).createAuditSource(azure, ctx));
  const evidence = createEvidenceStores(config, ctx);
  return {
    sources: {
      for(cluster) {
        return cluster.cloud === 'kubeconfig' ? undefined : sources.get(cluster.cloud);
      },
    },
    archives: {
      for(cluster) {
        return evidence.for(cluster.jurisdiction, cluster.cloud === 'kubeconfig' ? 'aws' : cluster.cloud);
      },
    },
  };
}
