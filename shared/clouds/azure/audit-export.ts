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
 * - `observe` compares the storage account id without regard to case, as ARM does: ARM ids
 *   are case-insensitive and come back in whatever case the service keeps (a lower-cased
 *   `resourcegroups`, say), which would otherwise read as a changed destination on every plan.
 * - `apply`: `PUT` of that one setting (create or replace). Other diagnostic settings of the
 *   cluster (its Log Analytics setting, say) are never changed or touched; Azure allows five
 *   per resource. When the `PUT` of a new setting is refused, the settings are listed once
 *   (`diagnosticSettings.list`): five others already there is an error that names them.
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

/** Diagnostic settings Azure Monitor allows on one resource. */
export const MAX_DIAGNOSTIC_SETTINGS = 5;

/**
 * The observed destination in the desired id's spelling when the two name the same resource
 * (ARM ids are case-insensitive), else as observed.
 */
export function sameResourceId(observed: string, desired: string): string {
  return observed.toLowerCase() === desired.toLowerCase() ? desired : observed;
}

/** The names of a `diagnosticSettings.list` answer (`{ value: [{ name }] }`). */
export function settingNamesOf(body: unknown): string[] {
  const value = (body as { value?: unknown } | null)?.value;
  if (!Array.isArray(value)) return [];
  return value
    .map((s) => (s as { name?: unknown } | null)?.name)
    .filter((n): n is string => typeof n === 'string');
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

  /**
   * `error` of a refused `PUT`, or, when the cluster already has the most diagnostic settings
   * Azure Monitor allows and none is ours, an error naming them (ARM's own answer does not
   * always say so). Only a client error (4xx) is looked into, with one list call.
   */
  const limitReached = async (
    cluster: Cluster,
    spec: ExportSpec,
    error: unknown,
    signal: AbortSignal | undefined,
  ): Promise<unknown> => {
    const status = error instanceof CloudApiError ? error.status : undefined;
    if (status === undefined || status < 400 || status >= 500 || signal?.aborted) return error;
    let names: string[];
    try {
      names = settingNamesOf(
        await call(
          'diagnosticSettings.list',
          `${clusterResourceId(cluster)}/providers/Microsoft.Insights/diagnosticSettings?api-version=${API_VERSION}`,
          { method: 'GET' },
          signal,
        ),
      );
    } catch {
      return error;
    }
    const ours = names.some((n) => n.toLowerCase() === spec.name.toLowerCase());
    if (ours || names.length < MAX_DIAGNOSTIC_SETTINGS) return error;
    return new CloudApiError(
      `cluster ${cluster.id} has ${names.length} diagnostic settings already (${names.join(', ')}), the most azure monitor allows on one resource: remove one so that ${spec.name} can be added`,
      { cloud: CLOUD, operation: 'diagnosticSettings.createOrUpdate', status, retryable: false },
      { cause: error },
    );
  };

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
      const read = toObserved(body as DiagnosticSettingResource, spec.name);
      const observed = { ...read, destination: sameResourceId(read.destination, spec.destination) };
      // What the plan compares: the container follows from the category Azure writes.
      const settings: Record<string, string> = observed.filter
        ? { container: azureExportContainer(observed.filter) }
        : {};
      return { ...observed, settings };
    },

    async apply(cluster, spec, options = {}) {
      if (spec.name !== EXPORT_SETTING_NAME) {
        throw new FleetwardError(
          `refusing to write diagnostic setting ${spec.name}: only ${EXPORT_SETTING_NAME} is fleetward's`,
        );
      }
      try {
        await call(
          'diagnosticSettings.createOrUpdate',
          settingPath(cluster, spec.name),
          {
            method: 'PUT',
            body: {
              properties: {
                storageAccountId: spec.destination,
                logs: [
                  { category: spec.filter, enabled: true, retentionPolicy: { enabled: false, days: 0 } },
                ],
              },
            },
          },
          options.signal,
        );
      } catch (error) {
        throw await limitReached(cluster, spec, error, options.signal);
      }
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
    calls: ['arm:diagnosticSettings.get', 'arm:diagnosticSettings.list'],
    why: "read Fleetward's diagnostic setting of a cluster (export mode drift), and the others when Azure refuses one more",
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
