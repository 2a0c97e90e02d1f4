/**
 * AKS export mode: a diagnostic setting that sends the cluster's Kubernetes audit log category
 * into the jurisdiction's evidence storage account, where Azure Monitor appends it to hourly
 * blobs itself (no Fleetward code in the data path).
 *
 * - Desired: one diagnostic setting `fleetward-audit` on the cluster resource with only the log
 *   category `jurisdictions.<j>.audit.azureCategory` (default `kube-audit-admin`, writes only;
 *   `kube-audit` has reads too) enabled, destination `storageAccountId` = the jurisdiction's
 *   evidence storage account (`jurisdictions.<j>.evidence.azure`).
 * - Azure Monitor writes into the container `insights-logs-<category>` of that account, one
 *   append blob per cluster and hour,
 *   `resourceId=/SUBSCRIPTIONS/<SUB>/RESOURCEGROUPS/<RG>/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/<NAME>/y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json`
 *   (Azure Monitor's "Resource logs: send to Azure Storage" page), appending JSON lines through
 *   the hour. That container must therefore be immutable with a policy that allows *protected
 *   append writes* (`allowProtectedAppendWrites`, or `...All`): without it the service cannot
 *   append and delivery stops; with it, nothing written can be changed or deleted.
 * - `checkDestination`: that container's policy (locked, at least `retentionDays`, append writes
 *   allowed, version-level immutability) through ARM, and the account's region for the
 *   residency guard (the evidence store's checks, pointed at the `insights-logs-` container).
 * - `observe`: `GET {cluster}/providers/Microsoft.Insights/diagnosticSettings/fleetward-audit`;
 *   `enabled` is false when the category is off. Azure reports no delivery errors on the
 *   setting itself (they show only in the storage account's metrics): `deliveryErrors` is empty.
 * - `apply`: `PUT` of that one setting (create or replace). Other diagnostic settings of the
 *   cluster (its Log Analytics setting, say) are never read for change or touched; Azure allows
 *   five per resource, and a sixth is refused with ARM's own error.
 * Requests go through the raw ARM helper of `./arm-rest.ts` (the same the audit log source
 * uses), with the configured ARM endpoint, CA, credential, timeout and retries.
 */
import { azureExportContainer, azureExportPrefix } from '../../audit/export-layout.ts';
import type { FleetConfig } from '../../config/schema.ts';
import type { Cluster } from '../../model.ts';
import type { ArchiveStore, AuditExporter, ExportObserved, ExportSpec } from '../../ports.ts';
import { CloudApiError, ConfigError, errorInfo, FleetwardError } from '../../runtime/errors.ts';
import { withRetry } from '../../runtime/retry.ts';
import type { AdapterContext } from '../context.ts';
import type { PermissionGrant } from '../permissions.ts';
import { clusterResourceId, connectionOf, createCredential, type TokenCredential } from './arm.ts';
import { armJson, classifyAny, HttpStatusError } from './arm-rest.ts';
import { clip } from './evidence.ts';

const CLOUD = 'azure';
/** The one diagnostic setting Fleetward owns on a cluster. */
export const EXPORT_SETTING_NAME = 'fleetward-audit';
const API_VERSION = '2021-05-01-preview';

/** The evidence storage account's ARM id (`jurisdictions.<j>.evidence.azure`). */
export function storageAccountIdOf(fleet: FleetConfig, jurisdiction: string): string {
  const e = fleet.jurisdictions[jurisdiction]?.evidence?.azure;
  const subscription = e?.subscriptionId ?? fleet.clouds.azure?.subscriptions[0]?.id;
  if (!e?.resourceGroup || !subscription) {
    throw new ConfigError([
      {
        path: `jurisdictions.${jurisdiction}.evidence.azure`,
        message: 'export mode on AKS needs the storage account with its resourceGroup (and subscriptionId)',
      },
    ]);
  }
  return `/subscriptions/${subscription}/resourceGroups/${e.resourceGroup}/providers/Microsoft.Storage/storageAccounts/${e.storageAccount}`;
}

interface DiagnosticSettingResource {
  name?: string;
  properties?: {
    storageAccountId?: string | null;
    logs?: { category?: string | null; enabled?: boolean }[];
  };
}

/** A diagnostic setting as an {@link ExportObserved}: the audit categories it enables, its storage account. */
export function toObserved(resource: DiagnosticSettingResource, name: string): ExportObserved {
  const enabled = (resource.properties?.logs ?? [])
    .filter((l) => l?.enabled === true && typeof l.category === 'string')
    .map((l) => l.category as string)
    .sort();
  return {
    name: resource.name ?? name,
    enabled: enabled.length > 0,
    destination: resource.properties?.storageAccountId ?? '',
    filter: enabled.join(','),
    settings: {},
    deliveryErrors: [],
  };
}

/** The AKS audit exporter of a fleet config (see the module comment). */
export function createAuditExporter(fleet: FleetConfig, ctx: AdapterContext): AuditExporter {
  const config = fleet.clouds.azure;
  if (!config)
    throw new ConfigError([{ path: 'clouds.azure', message: 'export mode on AKS needs clouds.azure' }]);
  const arm = connectionOf(config);
  let credential: Promise<TokenCredential> | undefined;
  const stores = new Map<string, Promise<ArchiveStore>>();
  let evidence: Promise<import('../../audit/evidence.ts').EvidenceStores> | undefined;

  /** The jurisdiction's `insights-logs-<category>` container as a store (appended to by Azure Monitor). */
  const exportStore = (cluster: Cluster, spec: ExportSpec): Promise<ArchiveStore> => {
    const container = spec.settings.container ?? azureExportContainer(spec.filter);
    const key = `${cluster.jurisdiction}/${container}`;
    let made = stores.get(key);
    if (!made) {
      evidence ??= import('../../audit/evidence.ts').then((m) =>
        m.createEvidenceStores(fleet, { logger: ctx.logger, localEvidence: false }),
      );
      made = evidence.then((e) => e.azureContainer(cluster.jurisdiction, container));
      made.catch(() => stores.delete(key));
      stores.set(key, made);
    }
    return made;
  };

  /** One ARM call with retries; `null` for a 404 when `missingOk`. */
  const call = async (
    operation: string,
    path: string,
    request: { method: 'GET' | 'PUT'; body?: unknown },
    signal: AbortSignal | undefined,
    missingOk = false,
  ): Promise<unknown | null> => {
    credential ??= createCredential(config.credential);
    let cred: TokenCredential;
    try {
      cred = await credential;
    } catch (error) {
      credential = undefined;
      throw new CloudApiError(
        `azure credential failed: ${clip(String((error as Error)?.message ?? error))}`,
        { cloud: CLOUD, operation, retryable: false },
        { cause: error },
      );
    }
    try {
      return await withRetry(
        async () => {
          const token = await cred.getToken(arm.scope, signal ? { abortSignal: signal } : {});
          if (!token) throw new FleetwardError('the azure credential returned no token');
          try {
            return await armJson(arm, token.token, path, config.timeoutMs, signal, request);
          } catch (error) {
            if (missingOk && error instanceof HttpStatusError && error.status === 404) return null;
            throw error;
          }
        },
        classifyAny,
        {
          maxAttempts: config.maxAttempts,
          signal,
          onRetry: ({ attempt, delayMs, error }) =>
            ctx.logger.info('Call retried', { operation, attempt, delayMs, error: errorInfo(error) }),
        },
      );
    } catch (error) {
      if (signal?.aborted) throw signal.reason ?? error;
      if (error instanceof CloudApiError) throw error;
      const status = error instanceof HttpStatusError ? error.status : undefined;
      throw new CloudApiError(
        `${operation} of ${path.split('?')[0]} failed${status === undefined ? '' : ` (${status})`}: ${clip(String((error as Error)?.message ?? error))}`,
        { cloud: CLOUD, operation, status, retryable: classifyAny(error).retry },
        { cause: error },
      );
    }
  };

  const settingPath = (cluster: Cluster, name: string) =>
    `${clusterResourceId(cluster)}/providers/Microsoft.Insights/diagnosticSettings/${name}?api-version=${API_VERSION}`;

  return {
    cloud: CLOUD,

    desired(cluster, _store) {
      const category = fleet.jurisdictions[cluster.jurisdiction]?.audit.azureCategory ?? 'kube-audit-admin';
      return {
        name: EXPORT_SETTING_NAME,
        destination: storageAccountIdOf(fleet, cluster.jurisdiction),
        filter: category,
        settings: { container: azureExportContainer(category) },
      };
    },

    async checkDestination(cluster, spec, retentionDays, options = {}) {
      const store = await exportStore(cluster, spec);
      await store.assertImmutable(retentionDays, options);
      const location = await store.location(options);
      if (!location) throw new FleetwardError(`${store.id}: the storage account has no region`);
      return location;
    },

    async observe(cluster, spec, options = {}) {
      const body = await call(
        'diagnosticSettings.get',
        settingPath(cluster, spec.name),
        { method: 'GET' },
        options.signal,
        true,
      );
      if (body === null) return null;
      const observed = toObserved(body as DiagnosticSettingResource, spec.name);
      // What the plan compares: the container follows from the category Azure writes.
      const settings: Record<string, string> = observed.filter
        ? { container: azureExportContainer(observed.filter) }
        : {};
      return { ...observed, settings };
    },

    async apply(cluster, spec, options = {}) {
      if (spec.name !== EXPORT_SETTING_NAME) {
        throw new FleetwardError(
          `refusing to write diagnostic setting ${spec.name}: only ${EXPORT_SETTING_NAME} is Fleetward's`,
        );
      }
      await call(
        'diagnosticSettings.createOrUpdate',
        settingPath(cluster, spec.name),
        {
          method: 'PUT',
          body: {
            properties: {
              storageAccountId: spec.destination,
              logs: [{ category: spec.filter, enabled: true, retentionPolicy: { enabled: false, days: 0 } }],
            },
          },
        },
        options.signal,
      );
      ctx.logger.info('Export diagnostic setting put', { cluster: cluster.id, category: spec.filter });
    },

    async exported(cluster, spec) {
      return {
        store: await exportStore(cluster, spec),
        prefix: azureExportPrefix(clusterResourceId(cluster)),
      };
    },
  };
}

/** Provider permissions of this module's calls (shared/clouds/permissions.ts). */
export const PERMISSIONS: readonly PermissionGrant[] = [
  {
    provider: 'azure',
    holder: 'member',
    capability: 'audit-export',
    permission: 'Microsoft.Insights/diagnosticSettings/read',
    calls: ['arm:diagnosticSettings.get'],
    why: "read Fleetward's diagnostic setting of a cluster (export mode drift)",
  },
  {
    provider: 'azure',
    holder: 'member',
    capability: 'audit-export',
    permission: 'Microsoft.Insights/diagnosticSettings/write',
    calls: ['arm:diagnosticSettings.createOrUpdate'],
    why: "create or correct Fleetward's diagnostic setting that exports the audit log to the evidence account",
  },
  {
    provider: 'azure',
    holder: 'member',
    capability: 'audit-export',
    permission: 'Microsoft.Storage/storageAccounts/blobServices/containers/read',
    calls: ['arm:blobContainers.get'],
    why: 'check that the insights-logs container is immutable and allows protected append writes',
  },
];
