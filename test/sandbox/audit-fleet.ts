/**
 * Audit logs for the sandbox fleet: realistic audit.k8s.io/v1 events in each cloud's log
 * service (CloudWatch Logs in moto, the Cloud Logging fake, the Log Analytics fake behind
 * AKS diagnostic settings), and write-once evidence storage per jurisdiction on every
 * cloud (S3 Object Lock COMPLIANCE in moto, locked GCS retention, an immutable Azurite
 * container behind a proxy). Clusters with audit logging off get no events (a finding).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AksAuditCategory, ArmFake } from './arm-fake.ts';
import { managedClusterId } from './arm-fake.ts';
import { createLockedBucket, seedAuditLogs } from './aws-audit.ts';
import { AZURITE_ACCOUNT_KEY, type Azurite, blobClient } from './azurite.ts';
import { type BlobImmutabilityProxy, startBlobImmutabilityProxy } from './blob-immutability-proxy.ts';
import type { FaultInjector, RequestLog } from './faults.ts';
import { AZURE_SUBSCRIPTIONS, type SeedCluster } from './fleet.ts';
import type { GcsFake } from './gcs-fake.ts';
import { type LogAnalyticsFake, startLogAnalyticsFake } from './log-analytics-fake.ts';
import { type LoggingFake, startLoggingFake } from './logging-fake.ts';

/** Where each jurisdiction keeps its evidence, per cloud (in its own countries; Kenya in South Africa by exception). */
const EVIDENCE_REGIONS: Record<string, { aws: string; gcp: string; azure: string }> = {
  eu: { aws: 'eu-central-1', gcp: 'europe-west3', azure: 'germanywestcentral' },
  in: { aws: 'ap-south-1', gcp: 'asia-south1', azure: 'centralindia' },
  za: { aws: 'af-south-1', gcp: 'africa-south1', azure: 'southafricanorth' },
  ke: { aws: 'af-south-1', gcp: 'africa-south1', azure: 'southafricanorth' },
};
/** Retention of the sandbox's evidence buckets: above the default audit retention (400 days). */
const RETENTION_DAYS = 400;
/** The Log Analytics workspace the ARM fake's diagnostic settings point at. */
const WORKSPACE = 'law-fleet';
const EVENTS_PER_CLUSTER = 40;
const AUDIT_CATEGORIES: readonly AksAuditCategory[] = ['kube-audit', 'kube-audit-admin'];

/**
 * One line of an AKS resource log as Azure Monitor writes it to storage (the "Resource logs:
 * send to Azure Storage" schema: `time`, `resourceId`, `category`, `operationName`, and the
 * audit event as a JSON string in `properties.log`).
 */
export function aksDiagnosticLine(resourceId: string, category: string, at: Date, i: number): string {
  const auditID = `00000000-0000-4000-8000-${String(at.getTime() + i)
    .slice(-12)
    .padStart(12, '0')}`;
  const event = {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID,
    stage: 'ResponseComplete',
    requestURI: '/api/v1/namespaces/default/configmaps',
    verb: 'create',
    user: { username: 'system:serviceaccount:kube-system:deployer', groups: ['system:serviceaccounts'] },
    objectRef: { resource: 'configmaps', namespace: 'default', apiVersion: 'v1' },
    responseStatus: { metadata: {}, code: 201 },
    requestReceivedTimestamp: at.toISOString(),
    stageTimestamp: at.toISOString(),
  };
  return JSON.stringify({
    time: at.toISOString(),
    resourceId: resourceId.toUpperCase(),
    category,
    operationName: 'Microsoft.ContainerService/managedClusters/diagnosticLogs/Read',
    properties: { log: JSON.stringify(event), stream: 'stdout', pod: 'kube-apiserver-5b8c7d9f6-x2x7k' },
  });
}

export interface AuditFleet {
  logging: LoggingFake;
  logAnalytics: LogAnalyticsFake;
  blobProxy: BlobImmutabilityProxy;
  /** `jurisdictions.<id>.evidence` of the generated config. */
  evidence: Record<string, Record<string, unknown>>;
  /** Cloud settings to merge into the generated config. */
  clouds: { gcp: Record<string, unknown>; azure: Record<string, unknown> };
  /**
   * Azure Monitor's part (test hook, export mode): appends `count` kube-audit records of an AKS
   * cluster to the hourly append blob of every diagnostic setting of the cluster that sends an
   * audit category to a storage account, as the service does. Returns the blobs written.
   */
  deliverAksDiagnostics(
    cluster: { scope: string; resourceGroup?: string | undefined; name: string },
    count: number,
    options?: { start?: Date; spacingMs?: number },
  ): Promise<string[]>;
  stop(): Promise<void>;
}

export async function startAuditFleet(options: {
  fleet: SeedCluster[];
  dir: string;
  certDir: string;
  motoUrl: string;
  arm: ArmFake;
  gcs: GcsFake;
  azurite: Azurite;
  faults: FaultInjector;
  log: RequestLog;
}): Promise<AuditFleet> {
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
  };
  try {
    const logging = await startLoggingFake({ faults: options.faults, log: options.log });
    stops.push(() => logging.stop());
    const logAnalytics = await startLogAnalyticsFake({
      faults: options.faults,
      log: options.log,
      certDir: options.certDir,
    });
    stops.push(() => logAnalytics.stop());
    const blobProxy = await startBlobImmutabilityProxy({
      azurite: options.azurite,
      log: options.log,
      faults: options.faults,
    });
    stops.push(() => blobProxy.stop());

    const evidence: AuditFleet['evidence'] = {};
    const blobs = blobClient(options.azurite);
    // Azure Monitor's writes go through the proxy, which keeps the version record of every blob.
    const proxied = blobClient({ ...options.azurite, blobEndpoint: blobProxy.endpoint });
    const subscription = AZURE_SUBSCRIPTIONS[0];
    for (const [jurisdiction, where] of Object.entries(EVIDENCE_REGIONS)) {
      const bucket = `fleetward-evidence-${jurisdiction}`;
      await createLockedBucket(options.motoUrl, bucket, where.aws, RETENTION_DAYS);
      options.gcs.createBucket(`${bucket}-gcs`, where.gcp, { retentionDays: RETENTION_DAYS, locked: true });
      // Azurite has one account; each jurisdiction gets its own resource group and container.
      const container = `audit-${jurisdiction}`;
      const resourceGroup = `rg-evidence-${jurisdiction}`;
      await blobs.createContainer(container);
      blobProxy.lockContainer(container, RETENTION_DAYS);
      // Where Azure Monitor writes the audit categories in export mode: immutable, and open to
      // protected append writes (its hourly blobs grow). Azurite has one account for all.
      for (const category of AUDIT_CATEGORIES) {
        await blobs.createContainer(`insights-logs-${category}`);
        blobProxy.lockContainer(`insights-logs-${category}`, RETENTION_DAYS, { appendWrites: true });
      }
      options.arm.setStorageAccount(subscription, resourceGroup, options.azurite.accountName, {
        location: where.azure,
      });
      // What assertImmutable reads: the container's version-level immutability and policy, through ARM.
      options.arm.setBlobContainer(subscription, resourceGroup, options.azurite.accountName, container, {
        versionImmutability: true,
        policyDays: RETENTION_DAYS,
        locked: true,
      });
      for (const category of AUDIT_CATEGORIES) {
        options.arm.setBlobContainer(
          subscription,
          resourceGroup,
          options.azurite.accountName,
          `insights-logs-${category}`,
          {
            versionImmutability: true,
            policyDays: RETENTION_DAYS,
            locked: true,
            allowProtectedAppendWrites: true,
          },
        );
      }
      evidence[jurisdiction] = {
        aws: { bucket, region: where.aws },
        gcp: { bucket: `${bucket}-gcs`, location: where.gcp },
        azure: {
          storageAccount: options.azurite.accountName,
          container,
          region: where.azure,
          resourceGroup,
          subscriptionId: subscription,
        },
      };
    }

    const start = new Date(Date.now() - 2 * 3600_000);
    const spacingMs = 60_000;
    const audited = (cloud: SeedCluster['cloud']) =>
      options.fleet.filter((c) => c.cloud === cloud && c.auditLogging);
    await seedAuditLogs(
      options.motoUrl,
      audited('aws').map((c) => ({ account: c.scope, region: c.region, name: c.name })),
      { eventsPerCluster: EVENTS_PER_CLUSTER, start, spacingMs },
    );
    for (const c of audited('gcp'))
      logging.seed(c.scope, c.region, c.name, EVENTS_PER_CLUSTER, { start, spacingMs });
    // AKS sends audit logs through a diagnostic setting; the first AKS cluster has none (a finding).
    options.fleet
      .filter((c) => c.cloud === 'azure')
      .forEach((c, i) => {
        const id = managedClusterId(c.scope, c.resourceGroup ?? 'rg-sandbox', c.name);
        if (i === 0) return;
        options.arm.setDiagnosticSettings(id, [
          { name: 'audit-to-workspace', logs: [{ category: 'kube-audit', enabled: true }] },
        ]);
        logAnalytics.seed(WORKSPACE, id, EVENTS_PER_CLUSTER, { start, spacingMs });
      });

    const keyFile = join(options.dir, 'azure-storage-key');
    writeFileSync(keyFile, AZURITE_ACCOUNT_KEY, { mode: 0o600 });
    return {
      logging,
      logAnalytics,
      blobProxy,
      evidence,
      clouds: {
        gcp: { loggingEndpoint: logging.endpoint },
        azure: {
          logAnalyticsEndpoint: logAnalytics.endpoint,
          blobEndpoint: blobProxy.endpoint.replace(/\/[^/]+$/, '/{account}'),
          storageKeyFile: keyFile,
        },
      },
      async deliverAksDiagnostics(cluster, count, deliverOptions = {}) {
        const id = managedClusterId(cluster.scope, cluster.resourceGroup ?? 'rg-sandbox', cluster.name);
        const start = deliverOptions.start?.getTime() ?? Date.now();
        const spacingMs = deliverOptions.spacingMs ?? 1_000;
        const written: string[] = [];
        for (const setting of options.arm.diagnosticSettings(id)) {
          if (!setting.storageAccountId) continue;
          for (const log of setting.logs) {
            if (!log.enabled || !AUDIT_CATEGORIES.includes(log.category as AksAuditCategory)) continue;
            const byBlob = new Map<string, string[]>();
            for (let i = 0; i < count; i++) {
              const at = new Date(start + i * spacingMs);
              const p = (n: number) => String(n).padStart(2, '0');
              const blob = `resourceId=${id.toUpperCase()}/y=${at.getUTCFullYear()}/m=${p(at.getUTCMonth() + 1)}/d=${p(at.getUTCDate())}/h=${p(at.getUTCHours())}/m=00/PT1H.json`;
              byBlob.set(blob, [...(byBlob.get(blob) ?? []), aksDiagnosticLine(id, log.category, at, i)]);
            }
            for (const [blob, lines] of byBlob) {
              await proxied.appendBlob(
                `insights-logs-${log.category}`,
                blob,
                Buffer.from(`${lines.join('\n')}\n`),
              );
              written.push(`insights-logs-${log.category}/${blob}`);
            }
          }
        }
        return written;
      },
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
