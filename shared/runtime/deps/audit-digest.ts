/**
 * The wiring of the audit digest job (`audit-digest`, `fleetward audit digest`): the
 * jurisdiction's evidence store and its signer — the KMS key `jurisdictions.<j>.audit.digestKey`,
 * else (only with `--local-evidence`) a local key file, not compliant. The KMS adapter is
 * imported on first use.
 */
import { clusterPrefix } from '../../audit/chunks.ts';
import {
  awsExportPrefix,
  azureExportContainer,
  azureExportPrefix,
  GCS_EXPORT_PREFIX,
} from '../../audit/export-layout.ts';
import { createLocalDigestSigner } from '../../audit/local-signer.ts';
import { auditModeOf } from '../../audit/mode.ts';
import type { FleetConfig } from '../../config/schema.ts';
import type { DigestJobDeps } from '../../jobs/audit-digest.ts';
import type { Cluster } from '../../model.ts';
import type { ArchiveStore, DigestSigner, ExportedObjects, Log } from '../../ports.ts';
import { ConfigError } from '../../runtime/errors.ts';
import type { EvidenceOptions } from './audit.ts';
import { baseDeps } from './base.ts';

/** The digest signer of each jurisdiction, built once per run. */
export function createDigestSigners(
  config: FleetConfig,
  logger: Log,
  options: EvidenceOptions & { keysDir?: string | undefined } = {},
): { for(cluster: Cluster): Promise<DigestSigner>; close(): void } {
  const signers = new Map<string, Promise<DigestSigner>>();
  const closers: (() => void)[] = [];
  const make = async (jurisdiction: string): Promise<DigestSigner> => {
    const key = config.jurisdictions[jurisdiction]?.audit.digestKey;
    if (key) {
      const aws = config.clouds.aws;
      if (!aws) {
        throw new ConfigError([
          { path: `jurisdictions.${jurisdiction}.audit.digestKey`, message: 'a KMS key needs clouds.aws' },
        ]);
      }
      const { createKmsDigestSigner } = await import('../../clouds/aws/kms.ts');
      const signer = createKmsDigestSigner(aws, key, { logger });
      closers.push(() => signer.close());
      return signer;
    }
    if (options.localEvidence === true)
      return createLocalDigestSigner(jurisdiction, { dir: options.keysDir });
    throw new ConfigError([
      {
        path: `jurisdictions.${jurisdiction}.audit.digestKey`,
        message: 'no KMS key signs the audit digests (a local key file needs --local-evidence)',
      },
    ]);
  };
  return {
    for(cluster) {
      let signer = signers.get(cluster.jurisdiction);
      if (!signer) {
        signer = make(cluster.jurisdiction);
        signers.set(cluster.jurisdiction, signer);
        // A failure is not kept: the next cluster (or run) asks again.
        signer.catch(() => signers.delete(cluster.jurisdiction));
      }
      return signer;
    },
    close() {
      for (const close of closers.splice(0)) close();
    },
  };
}

/**
 * What the digest job needs; the caller closes `store` and calls `close()`. The evidence stores
 * come without the audit log sources (a digest reads archived objects, never a log service).
 */
export async function digestJobDeps(
  config: FleetConfig,
  logger: Log,
  options: EvidenceOptions = {},
): Promise<DigestJobDeps & { config: FleetConfig; close(): void }> {
  const [{ createEvidenceStores }, base] = await Promise.all([
    import('../../audit/evidence.ts'),
    baseDeps(config, logger),
  ]);
  const localEvidence = options.localEvidence === true;
  const evidence = createEvidenceStores(config, { logger, localEvidence });
  const signers = createDigestSigners(config, logger, options);
  const archiveOf = (cluster: Cluster): Promise<ArchiveStore> =>
    evidence.for(cluster.jurisdiction, cluster.cloud === 'kubeconfig' ? 'aws' : cluster.cloud);
  return {
    ...base,
    archives: { for: archiveOf },
    objects: {
      // Pull chunks (also those of a cluster since switched to export), plus, in export mode,
      // what the cloud's own export writes (shared/audit/export-layout.ts: no exporter, so no
      // export SDK, is loaded here).
      async for(cluster): Promise<ExportedObjects[]> {
        const store = await archiveOf(cluster);
        const sources: ExportedObjects[] = [{ store, prefix: clusterPrefix(cluster.id) }];
        if (auditModeOf(config, cluster) !== 'export') return sources;
        if (cluster.cloud === 'aws') sources.push({ store, prefix: awsExportPrefix(cluster.id) });
        if (cluster.cloud === 'gcp') sources.push({ store, prefix: GCS_EXPORT_PREFIX });
        if (cluster.cloud === 'azure') {
          const { clusterResourceId } = await import('../../clouds/azure/arm.ts');
          const category =
            config.jurisdictions[cluster.jurisdiction]?.audit.azureCategory ?? 'kube-audit-admin';
          sources.push({
            store: await evidence.azureContainer(cluster.jurisdiction, azureExportContainer(category)),
            prefix: azureExportPrefix(clusterResourceId(cluster)),
          });
        }
        return sources;
      },
    },
    signers,
    allowLocalEvidence: localEvidence,
    close: () => signers.close(),
  };
}
