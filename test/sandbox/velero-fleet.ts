/**
 * Velero for the sandbox fleet: one fake Kubernetes API per cloud cluster (all on one
 * HTTPS server), Velero installed on most of them with a storage location in the
 * cluster's own region, workloads to back up, object storage behind every location
 * (moto S3, the GCS fake, Azurite), and the kube access settings Fleetward needs to
 * reach them — the way each cloud really hands out credentials:
 *  - EKS: presigned STS tokens, checked by the fake (format, cluster id header, expiry);
 *  - GKE: a bearer token from a token file;
 *  - AKS: the cluster user credentials ARM returns (listClusterUserCredential).
 * Deliberate gaps, so every finding has a case: every seventh cloud cluster has no Velero,
 * and one EU cluster's storage location sits in a US bucket (outside its jurisdiction).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { ArmFake } from './arm-fake.ts';
import { managedClusterId } from './arm-fake.ts';
import { type Azurite, startAzurite } from './azurite.ts';
import { type BucketSeed, type BucketWriter, createBucketWriter } from './bucket-writers.ts';
import { verifyEksToken } from './eks-token.ts';
import type { FaultInjector, RequestLog } from './faults.ts';
import type { SeedCluster } from './fleet.ts';
import { type GcsFake, startGcsFake } from './gcs-fake.ts';
import { type KubeFleetFake, startKubeFleetFake } from './kube-fake.ts';
import type { VeleroInstall } from './velero-sim.ts';

const GKE_TOKEN = 'sandbox-gke-token';
const AKS_TOKEN = 'sandbox-aks-token';
/** The region of the deliberately misplaced storage location. */
const OUTSIDE_REGION = 'us-east-1';

export interface VeleroFleet {
  kube: KubeFleetFake;
  gcs: GcsFake;
  azurite: Azurite;
  writer: BucketWriter;
  /** Cluster id -> fleet-fake key. */
  keys: Map<string, string>;
  /** Cluster id -> the bucket its Velero writes to. */
  buckets: Map<string, BucketSeed>;
  /** The `kubeAccess` section of the generated config. */
  kubeAccess: Record<string, unknown>;
  stop(): Promise<void>;
}

/** The id discovery gives a seeded cluster. */
export function seedClusterId(c: SeedCluster): string {
  if (c.cloud === 'azure')
    return `azure/${c.scope}/${(c.resourceGroup ?? 'rg-sandbox').toLowerCase()}/${c.name}`;
  return `${c.cloud}/${c.scope}/${c.region}/${c.name}`;
}

function bucketFor(c: SeedCluster, region: string): BucketSeed {
  const gcpRegion = region.replace(/-[a-z]$/, '');
  switch (c.cloud) {
    case 'aws':
      return {
        provider: 'aws',
        bucket: `fw-velero-${c.scope}-${region}`,
        config: { region },
        location: region,
      };
    case 'gcp':
      return {
        provider: 'gcp',
        bucket: `fw-velero-${c.scope}-${gcpRegion}`,
        config: {},
        location: gcpRegion,
      };
    default: {
      const account = `fwvelero${region.replace(/[^a-z0-9]/g, '')}`.slice(0, 24);
      return {
        provider: 'azure',
        bucket: 'velero',
        config: { storageAccount: account, resourceGroup: 'rg-velero', subscriptionId: c.scope },
        location: region,
        subscriptionId: c.scope,
      };
    }
  }
}

function aksKubeconfig(server: string, ca: string, token: string, name: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name, cluster: { server, 'certificate-authority-data': Buffer.from(ca).toString('base64') } },
    ],
    users: [{ name: `clusterUser_${name}`, user: { token } }],
    contexts: [{ name, context: { cluster: name, user: `clusterUser_${name}` } }],
    'current-context': name,
  });
}

export async function startVeleroFleet(options: {
  fleet: SeedCluster[];
  dir: string;
  certDir: string;
  motoUrl: string;
  arm: ArmFake;
  faults: FaultInjector;
  log: RequestLog;
  delays?: { backupMs?: number; restoreMs?: number; readyMs?: number };
  /** Leave the deliberate gaps out: every cloud cluster gets Velero in its own region (benchmarks). */
  noGaps?: boolean;
}): Promise<VeleroFleet> {
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
  };
  try {
    const gcs = await startGcsFake({ faults: options.faults, log: options.log });
    stops.push(() => gcs.stop());
    const azurite = await startAzurite({ dir: options.dir });
    stops.push(() => azurite.stop());
    const writer = createBucketWriter({
      s3Endpoint: options.motoUrl,
      gcsEndpoint: gcs.endpoint,
      azurite,
      arm: options.arm,
    });
    stops.push(async () => writer.close());
    const kube = await startKubeFleetFake({
      faults: options.faults,
      log: options.log,
      certDir: options.certDir,
      // Velero's files land in the location's real bucket; keys arrive as `[prefix/]backups/<name>/<file>`.
      writeBackupObjects: (location, backupName, files) =>
        writer.writeBackupObjects(
          {
            provider: location.provider,
            bucket: location.bucket,
            ...(location.prefix ? { prefix: location.prefix } : {}),
            config: location.config ?? {},
          },
          backupName,
          files.map((f) => ({
            key: f.key.slice(f.key.indexOf(`backups/${backupName}/`) + `backups/${backupName}/`.length),
            body: f.body,
          })),
        ),
    });
    stops.push(() => kube.stop());

    const cloud = options.fleet.filter((c) => c.cloud !== 'kubeconfig');
    const keys = new Map<string, string>();
    const buckets = new Map<string, BucketSeed>();
    const overrides: { cluster: string; endpoint: string; caFile: string }[] = [];
    const seeds = new Map<string, BucketSeed>();
    let misplaced = false;
    cloud.forEach((c, i) => {
      const id = seedClusterId(c);
      const key = `c${i}`;
      const withVelero = options.noGaps || i % 7 !== 3;
      // One EU cluster keeps its backups in a US bucket: preflight must refuse it.
      const outside =
        !options.noGaps &&
        withVelero &&
        !misplaced &&
        c.region.startsWith('eu-') &&
        c.cloud === 'aws' &&
        i > 0;
      if (outside) misplaced = true;
      const bucket = bucketFor(c, outside ? OUTSIDE_REGION : c.region);
      const install: VeleroInstall | false = withVelero
        ? {
            locations: [
              {
                name: 'default',
                provider: bucket.provider as 'aws',
                bucket: bucket.bucket,
                config: bucket.config,
              },
            ],
            backupDelayMs: options.delays?.backupMs ?? 200,
            restoreDelayMs: options.delays?.restoreMs ?? 200,
            readyDelayMs: options.delays?.readyMs ?? 300,
          }
        : false;
      const token =
        c.cloud === 'aws'
          ? (t: string) => verifyEksToken(t, { clusterName: c.name }).ok
          : c.cloud === 'gcp'
            ? GKE_TOKEN
            : AKS_TOKEN;
      const cluster = kube.addCluster({
        key,
        name: c.name,
        token,
        gitVersion: `v${c.version.replace(/^v/, '')}`,
        velero: install,
      });
      cluster.seedWorkloads('shop', { deployments: 2, statefulsets: 1 });
      cluster.seedWorkloads('payments', { deployments: 1, statefulsets: 1 });
      keys.set(id, key);
      if (withVelero) {
        buckets.set(id, bucket);
        seeds.set(
          `${bucket.provider}/${bucket.bucket}/${bucket.config.storageAccount ?? ''}/${bucket.subscriptionId ?? ''}`,
          bucket,
        );
      }
      if (c.cloud === 'azure') {
        const armId = managedClusterId(c.scope, c.resourceGroup ?? 'rg-sandbox', c.name);
        options.arm.setUserCredentials(armId, aksKubeconfig(cluster.server, kube.ca, AKS_TOKEN, c.name));
      } else {
        overrides.push({ cluster: id, endpoint: cluster.server, caFile: kube.caFile });
      }
    });
    await writer.ensureBuckets([...seeds.values()]);
    const tokenFile = join(options.dir, 'gke-token');
    writeFileSync(tokenFile, GKE_TOKEN, { mode: 0o600 });
    return {
      kube,
      gcs,
      azurite,
      writer,
      keys,
      buckets,
      kubeAccess: {
        gcp: { auth: 'token-file', file: tokenFile },
        azure: { auth: 'cluster-user-credentials' },
        overrides,
      },
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
