import { ContainerServiceClient, type ManagedCluster } from '@azure/arm-containerservice';
import type { AzureConfig } from '../../config/schema.ts';
import type { ClusterStatus, DiscoveredCluster, EndpointAccess } from '../../model.ts';
import type { ClusterDiscovery } from '../../ports.ts';
import { createLimiter, type Limiter } from '../../runtime/concurrency.ts';
import {
  CloudApiError,
  ConfigError,
  EndpointUnreachableError,
  errorInfo,
  FleetwardError,
  UnparseableClusterError,
} from '../../runtime/errors.ts';
import { withRetry } from '../../runtime/retry.ts';
import type { AdapterContext } from '../context.ts';
import { failedScope, mergeScopes, type ScopeResult } from '../outcome.ts';
import {
  armErrors,
  type Connection,
  classify,
  clientOptions,
  connectionOf,
  createCredential,
  isRestError,
  OPERATION,
  regionOf,
  requestPolicy,
  resourceGroupOf,
  type TokenCredential,
  toCloudApiError,
} from './arm.ts';

// The shared ARM helpers lived here first; adapters import them from ./arm.ts.
export {
  type AccessTokenSource,
  accessTokenCredential,
  type Connection,
  classify,
  clientOptions,
  connectionOf,
  createCredential,
  regionOf,
  requestPolicy,
  resourceGroupOf,
  SERVICE,
  type TokenCredential,
} from './arm.ts';

const CLOUD = 'azure';

// --- normalisation ---

const PROVISIONING_STATUS: Record<string, ClusterStatus> = {
  creating: 'provisioning',
  updating: 'updating',
  upgrading: 'updating',
  scaling: 'updating',
  migrating: 'updating',
  starting: 'updating',
  stopping: 'updating',
  rotatingclustercertificates: 'updating',
  deleting: 'deleting',
  failed: 'failed',
  canceled: 'degraded',
};

/**
 * Normalised status: `Succeeded` is `running`, unless the power state says `Stopped`
 * (a stopped cluster serves nothing: `degraded`); the other provisioning states map to
 * what they are doing; `Canceled` (an operation was cancelled half-way) is `degraded`.
 */
function statusOf(provisioningState: string | undefined, powerState: string | undefined): ClusterStatus {
  if (!provisioningState) return 'unknown';
  const state = provisioningState.toLowerCase();
  if (state === 'succeeded') return powerState?.toLowerCase() === 'stopped' ? 'degraded' : 'running';
  return PROVISIONING_STATUS[state] ?? 'unknown';
}

/**
 * Where the API server is reachable. A private cluster has no public API server, even when
 * it publishes a public FQDN (`enablePrivateClusterPublicFQDN`): that name resolves to the
 * private address. A public cluster with API server VNet integration answers both on its
 * public address and inside the VNet.
 */
function endpointAccessOf(cluster: ManagedCluster): EndpointAccess {
  const profile = cluster.apiServerAccessProfile;
  if (profile?.enablePrivateCluster) return 'private';
  if (profile?.enableVnetIntegration) return 'public-and-private';
  return 'public';
}

function text(value: string | null | undefined): string | null {
  return value ? value : null;
}

function isoTime(value: Date | string | undefined): string | null {
  if (value === undefined || value === null) return null;
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/**
 * One ManagedCluster (as the client returns it: `properties` flattened, FQDN names in
 * camel case, `systemData` times as `Date`) as a {@link DiscoveredCluster}; throws
 * {@link UnparseableClusterError} when it has no id, name or location, or its id names no
 * resource group.
 *
 * - `endpoint` is `https://<fqdn>`, else `https://<privateFQDN>` (private clusters without a
 *   public name); see {@link endpointAccessOf} for `endpointAccess`.
 * - `secretsEncryptionKey` is the Key Vault key id of KMS etcd encryption when KMS is
 *   enabled; otherwise AKS encrypts etcd at rest with platform-managed keys: `null`.
 * - `auditLogging` is `null`: AKS sends control-plane audit logs (`kube-audit`,
 *   `kube-audit-admin`) only through a diagnostic setting on the cluster, a separate
 *   Microsoft.Insights resource that the ManagedCluster payload does not mention. Reading it
 *   costs one more ARM call per cluster, which discovery does not make (listing stays one
 *   call per page); the audit-logging control reads the diagnostic settings itself.
 * - `providerStatus` is `<provisioningState>/<powerState>` (either part alone when the other is absent).
 */
export function normaliseManagedCluster(subscriptionId: string, cluster: ManagedCluster): DiscoveredCluster {
  const { id, name, location } = cluster;
  if (!id || !name || !location) {
    const missing = [!id && 'id', !name && 'name', !location && 'location'].filter(Boolean).join(', ');
    throw new UnparseableClusterError(
      `aks managed cluster ${labelOf(cluster)} in subscription ${subscriptionId} has no ${missing}`,
    );
  }
  const resourceGroup = resourceGroupOf(id);
  if (!resourceGroup) {
    throw new UnparseableClusterError(
      `aks managed cluster "${name}" has an id without a resource group: ${id}`,
    );
  }
  const region = regionOf(location);
  const host = text(cluster.fqdn) ?? text(cluster.privateFqdn);
  const kms = cluster.securityProfile?.azureKeyVaultKms;
  const provisioningState = text(cluster.provisioningState) ?? undefined;
  const powerState = text(cluster.powerState?.code) ?? undefined;
  const providerStatus = [provisioningState, powerState].filter(Boolean).join('/');
  const tags: Record<string, string> = {};
  for (const [key, value] of Object.entries(cluster.tags ?? {})) tags[key] = String(value);
  return {
    // AKS names are unique per resource group, not per region: the id follows the ARM identity.
    id: `${CLOUD}/${subscriptionId}/${resourceGroup.toLowerCase()}/${name}`,
    cloud: CLOUD,
    scope: subscriptionId,
    region,
    name,
    kubernetesVersion: text(cluster.currentKubernetesVersion) ?? text(cluster.kubernetesVersion),
    endpoint: host ? `https://${host}` : null,
    endpointAccess: endpointAccessOf(cluster),
    secretsEncryptionKey: kms?.enabled ? text(kms.keyId) : null,
    auditLogging: null,
    tags,
    status: statusOf(provisioningState, powerState),
    providerStatus: providerStatus || null,
    createdAt: isoTime(cluster.systemData?.createdAt),
    resourceGroup,
  };
}

function labelOf(cluster: ManagedCluster): string {
  return `"${cluster.name || cluster.id || '(unnamed)'}"`;
}

// --- the adapter ---

interface Page {
  items: ManagedCluster[];
  next: string | undefined;
}

/**
 * The Azure adapter. Throws {@link ConfigError} at once for a non-https endpoint or an
 * unreadable `caFile`; the credential is made on the first run (and kept).
 */
export function createDiscovery(config: AzureConfig, ctx: AdapterContext): ClusterDiscovery {
  const connection = connectionOf(config);
  const limiter = createLimiter(config.concurrency);
  let credential: Promise<TokenCredential> | undefined;
  /** The credential, made on first use and kept; a failure is not kept, so the next call tries again. */
  const credentialOf = async (): Promise<TokenCredential> => {
    credential ??= createCredential(config.credential);
    const pending = credential;
    try {
      return await pending;
    } catch (error) {
      if (credential === pending) credential = undefined;
      throw error;
    }
  };
  return {
    cloud: CLOUD,
    async discover(options = {}) {
      const { signal } = options;
      signal?.throwIfAborted();
      let setupError: unknown;
      let cred: TokenCredential | undefined;
      try {
        cred = await credentialOf();
      } catch (error) {
        setupError = error;
      }
      const subscriptions = config.subscriptions.map((s) => s.id);
      const results = await Promise.all(
        subscriptions.map((subscription) =>
          cred === undefined
            ? scopeFailure(subscription, toCloudApiError(subscription, setupError))
            : listSubscription(subscription, cred, { config, connection, limiter, ctx, signal }).catch(
                (error) => {
                  if (signal?.aborted) throw error;
                  return scopeFailure(
                    subscription,
                    toCloudApiError(subscription, error, OPERATION, undefined, connection.endpoint),
                  );
                },
              ),
        ),
      );
      signal?.throwIfAborted();
      return mergeScopes(CLOUD, subscriptions, results, ctx.logger);
    },
    describe(ref, options = {}) {
      return describeCluster(ref, credentialOf, { config, connection, limiter, ctx, signal: options.signal });
    },
  };
}

const GET_OPERATION = 'managedClusters.get';
/**
 * ARM error codes of a 404 that mean the cluster is not there. A missing subscription is a
 * failure, as when listing, and so is a 404 without an ARM code (a wrong endpoint or path).
 */
const ABSENT_CODES = new Set(['resourcenotfound', 'resourcegroupnotfound']);

/** Whether ARM said the managed cluster (or its resource group) does not exist. */
function isAbsent(error: unknown): boolean {
  if (!isRestError(error) || error.statusCode !== 404) return false;
  const code = (error.request ? armErrors.get(error.request)?.code : undefined) ?? error.code;
  return code !== undefined && ABSENT_CODES.has(code.toLowerCase());
}

/**
 * One managed cluster by resource group and name (`managedClusters.get`), in a configured
 * subscription, mapped by {@link normaliseManagedCluster} like the list. The region of the
 * ref is not used: AKS ids do not contain it, and Event Grid events do not carry it.
 */
async function describeCluster(
  ref: { scope: string; region: string; name: string; resourceGroup?: string },
  credentialOf: () => Promise<TokenCredential>,
  run: RunContext,
): Promise<DiscoveredCluster | null> {
  const { config, connection, limiter, ctx, signal } = run;
  // An event for a subscription we were not given makes no call at all. Ids compare in any case, as in ARM.
  const subscription = config.subscriptions.find((s) => s.id.toLowerCase() === ref.scope.toLowerCase())?.id;
  if (subscription === undefined) {
    throw new ConfigError([
      { path: 'clouds.azure.subscriptions', message: `subscription ${ref.scope} is not configured` },
    ]);
  }
  const { resourceGroup, name } = ref;
  if (!resourceGroup) {
    throw new FleetwardError(`aks cluster "${ref.name}" cannot be described without its resource group`);
  }
  if (!name) throw new FleetwardError('an aks cluster reference needs a name');
  signal?.throwIfAborted();
  const what = `getting aks cluster ${name} of resource group ${resourceGroup} in subscription ${subscription}`;
  let cluster: ManagedCluster;
  try {
    const credential = await credentialOf();
    const client = new ContainerServiceClient(
      credential,
      subscription,
      clientOptions(connection, requestPolicy(connection, config.timeoutMs, signal, GET_OPERATION)),
    );
    cluster = await withRetry(
      () => limiter(() => client.managedClusters.get(resourceGroup, name)),
      classify,
      {
        maxAttempts: config.maxAttempts,
        signal,
        onRetry: ({ attempt, delayMs, error }) =>
          ctx.logger.info('Call retried', {
            operation: GET_OPERATION,
            subscription,
            attempt,
            delayMs,
            error: errorInfo(error),
          }),
      },
    );
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    if (isAbsent(error)) {
      ctx.logger.info('Cluster not found', { subscription, resourceGroup, cluster: name });
      return null;
    }
    const failure = toCloudApiError(subscription, error, GET_OPERATION, what, connection.endpoint);
    if (
      isRestError(error) &&
      error.code === 'PARSE_ERROR' &&
      !(failure instanceof EndpointUnreachableError)
    ) {
      throw new UnparseableClusterError(`${what}: the answer is not valid JSON`, { cause: failure });
    }
    throw failure;
  }
  return normaliseManagedCluster(subscription, cluster);
}

function scopeFailure(subscription: string, error: CloudApiError): ScopeResult {
  return failedScope(CLOUD, subscription, error);
}

interface RunContext {
  config: AzureConfig;
  connection: Connection;
  limiter: Limiter;
  ctx: AdapterContext;
  signal: AbortSignal | undefined;
}

/**
 * Lists one subscription page by page. It is complete only when every page arrived and
 * every cluster parsed: a page that failed (after retries) or could not be read, or a
 * cluster we could not parse, may hide clusters seen before, which must not be taken for
 * deleted. The clusters of the pages that did arrive are still returned.
 */
async function listSubscription(
  subscription: string,
  credential: TokenCredential,
  run: RunContext,
): Promise<ScopeResult> {
  const { config, connection, limiter, ctx, signal } = run;
  const result: ScopeResult = { clusters: [], failures: [], complete: true };
  // One client per subscription and run: the subscription is part of the client, the run's signal part of its policy.
  const client = new ContainerServiceClient(
    credential,
    subscription,
    clientOptions(connection, requestPolicy(connection, config.timeoutMs, signal)),
  );
  const fetchPage = async (continuationToken: string | undefined): Promise<Page> => {
    const pages = client.managedClusters
      .list()
      .byPage(continuationToken === undefined ? undefined : { continuationToken });
    const first = await pages.next();
    if (first.done) return { items: [], next: undefined };
    return { items: first.value, next: first.value.continuationToken };
  };
  let token: string | undefined;
  let pageNumber = 0;
  const seen = new Set<string>();
  do {
    pageNumber++;
    let page: Page;
    try {
      const from = token;
      page = await withRetry(() => limiter(() => fetchPage(from)), classify, {
        maxAttempts: config.maxAttempts,
        signal,
        onRetry: ({ attempt, delayMs, error }) =>
          ctx.logger.info('Call retried', {
            operation: OPERATION,
            subscription,
            page: pageNumber,
            attempt,
            delayMs,
            error: errorInfo(error),
          }),
      });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      const failed = scopeFailure(
        subscription,
        toCloudApiError(subscription, error, OPERATION, undefined, connection.endpoint),
      );
      return { ...failed, clusters: result.clusters, failures: [...result.failures, ...failed.failures] };
    }
    for (const item of page.items) {
      try {
        result.clusters.push(normaliseManagedCluster(subscription, item));
      } catch (error) {
        result.complete = false;
        result.failures.push({
          cloud: CLOUD,
          scope: subscription,
          kind: 'unparseable',
          cluster: item?.name || item?.id || '(unnamed)',
          error: errorInfo(error),
        });
      }
    }
    token = page.next;
    if (token !== undefined && seen.has(token)) {
      const error = new CloudApiError(
        `arm returned a nextLink it had already returned (page ${pageNumber})`,
        {
          cloud: CLOUD,
          operation: OPERATION,
          retryable: false,
        },
      );
      const failed = scopeFailure(subscription, toCloudApiError(subscription, error));
      return { ...failed, clusters: result.clusters, failures: [...result.failures, ...failed.failures] };
    }
    if (token !== undefined) seen.add(token);
  } while (token);
  return result;
}

/**
 * Provider permissions of this module's calls (shared/clouds/permissions.ts).
 */
export const PERMISSIONS: readonly import('../permissions.ts').PermissionGrant[] = [
  {
    provider: 'azure',
    holder: 'member',
    capability: 'discovery',
    permission: 'Microsoft.ContainerService/managedClusters/read',
    calls: ['arm:managedClusters.list', 'arm:managedClusters.get'],
    why: 'list the AKS clusters of each configured subscription, and read one a cluster event names',
  },
];
