/**
 * Preflight of one cluster before Fleetward asks its Velero for anything: the CRDs are
 * installed, the server Deployment is available, every BackupStorageLocation is Available
 * and its bucket lies inside the cluster's jurisdiction. A failed check is a finding and a
 * skipped cluster, never a crash.
 */
import type { Finding as BaseFinding, Cluster, RegionCloud } from '../model.ts';
import type { BucketLocator, BucketRef, KubeApi, KubeObject } from '../ports.ts';
import type { Residency } from '../residency/index.ts';
import { errorInfo, ResidencyError } from '../runtime/errors.ts';
import { type BackupStorageLocation, VELERO_API } from './resources.ts';

export type FindingKind =
  | 'unassigned'
  | 'kube-unreachable'
  | 'velero-missing'
  | 'velero-unavailable'
  | 'bsl-missing'
  | 'bsl-unavailable'
  | 'bsl-unlocatable'
  | 'bsl-outside-jurisdiction'
  | 'backup-failed'
  | 'no-completed-backup'
  | 'backup-untimed'
  | 'rpo-exceeded'
  | 'drill-refused'
  | 'drill-failed';

/**
 * One wording per condition, for every job that meets it (backup preflight, backup status,
 * restore drills): a person reading two commands' output sees the same words for one cause.
 */
export const CONDITION = {
  veleroMissing: 'Velero is not installed (its CRDs are missing)',
  noCompletedBackup: 'no Completed backup yet',
} as const;

/** A finding of the Velero jobs. */
export type Finding = BaseFinding & { kind: FindingKind; severity: 'medium' | 'high' | 'critical' };

/** A storage location that passed every check. */
export interface CheckedLocation {
  name: string;
  default: boolean;
  bucket: string;
  cloud: RegionCloud;
  region: string;
}

export interface PreflightResult {
  ok: boolean;
  findings: Finding[];
  locations: CheckedLocation[];
}

interface Deployment extends KubeObject {
  status?: { availableReplicas?: number; conditions?: { type: string; status: string }[] };
}

/** Bucket lookups are the same for every cluster sharing a bucket: one call per bucket per run. */
export type BucketCache = Map<string, Promise<{ cloud: RegionCloud; region: string }>>;

export async function preflight(
  api: KubeApi,
  cluster: Cluster,
  deps: {
    buckets: BucketLocator;
    residency: Residency;
    namespace: string;
    now: Date;
    cache: BucketCache;
    signal?: AbortSignal;
  },
): Promise<PreflightResult> {
  const finding = (kind: FindingKind, severity: Finding['severity'], message: string): Finding => ({
    clusterId: cluster.id,
    jurisdiction: cluster.jurisdiction,
    kind,
    severity,
    message,
    at: deps.now.toISOString(),
  });
  const crd = (name: string) =>
    api.read({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', name });
  // The first read also discovers the apiextensions group; the next two share that discovery.
  const backupsCrd = await crd('backups.velero.io');
  const [bslCrd, deployment] = await Promise.all([
    crd('backupstoragelocations.velero.io'),
    api.read<Deployment>({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: 'velero',
      namespace: deps.namespace,
    }),
  ]);
  if (!backupsCrd || !bslCrd) {
    return {
      ok: false,
      findings: [finding('velero-missing', 'high', CONDITION.veleroMissing)],
      locations: [],
    };
  }
  const available =
    (deployment?.status?.availableReplicas ?? 0) > 0 ||
    deployment?.status?.conditions?.some((c) => c.type === 'Available' && c.status === 'True');
  if (!available) {
    const why = deployment ? 'has no available replica' : `is not deployed in namespace ${deps.namespace}`;
    return {
      ok: false,
      findings: [finding('velero-unavailable', 'high', `the Velero server ${why}`)],
      locations: [],
    };
  }
  const bsls = await api.list<BackupStorageLocation>(VELERO_API, 'BackupStorageLocation', {
    namespace: deps.namespace,
  });
  if (bsls.length === 0) {
    return {
      ok: false,
      findings: [finding('bsl-missing', 'high', 'Velero has no BackupStorageLocation')],
      locations: [],
    };
  }
  const findings: Finding[] = [];
  const locations: CheckedLocation[] = [];
  await Promise.all(
    bsls.map(async (bsl) => {
      const name = bsl.metadata.name ?? '(unnamed)';
      if (bsl.status?.phase !== 'Available') {
        const detail = bsl.status?.message ? `: ${bsl.status.message}` : '';
        findings.push(
          finding(
            'bsl-unavailable',
            'high',
            `storage location ${name} is ${bsl.status?.phase ?? 'not validated'}${detail}`,
          ),
        );
        return;
      }
      const ref: BucketRef = {
        provider: bsl.spec.provider,
        bucket: bsl.spec.objectStorage.bucket,
        config: bsl.spec.config ?? {},
      };
      let where: { cloud: RegionCloud; region: string };
      try {
        const key = JSON.stringify([ref.provider, ref.bucket, ref.config]);
        let lookup = deps.cache.get(key);
        if (!lookup) {
          lookup = deps.buckets.locate(ref, cluster, deps.signal ? { signal: deps.signal } : {});
          deps.cache.set(key, lookup);
        }
        where = await lookup;
      } catch (error) {
        findings.push(
          finding(
            'bsl-unlocatable',
            'high',
            `cannot tell where bucket ${ref.bucket} of ${name} is: ${errorInfo(error).message}`,
          ),
        );
        return;
      }
      try {
        deps.residency.assertResidency(
          { jurisdiction: cluster.jurisdiction, clusterId: cluster.id },
          { cloud: where.cloud, region: where.region, what: `backup storage location ${name}` },
        );
      } catch (error) {
        if (!(error instanceof ResidencyError)) throw error;
        findings.push(finding('bsl-outside-jurisdiction', 'critical', error.message));
        return;
      }
      locations.push({ name, default: bsl.spec.default === true, bucket: ref.bucket, ...where });
    }),
  );
  return { ok: findings.length === 0, findings, locations };
}
