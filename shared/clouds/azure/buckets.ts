/**
 * Where an Azure blob container lives: its storage account's `location`, read from Azure
 * Resource Manager (`StorageManagementClient.storageAccounts.getProperties`, `@azure/arm-storage`).
 *
 * The BSL config names the account with the keys of Velero's azure plugin: `storageAccount`
 * and `resourceGroup` (required) and `subscriptionId` (default: the cluster's subscription
 * when the cluster runs on Azure; required otherwise). The bucket (the container) lives
 * wherever its account lives.
 *
 * Geo-redundant accounts (`*_GRS`, `*_RAGRS`, `*_GZRS`, `*_RAGZRS`) keep a copy of every blob
 * in a second region (`secondaryLocation`), which may be in another country (Brazil South
 * pairs with South Central US). The port answers one region, so an account whose secondary
 * region differs from its primary is refused with a {@link FleetwardError}: its residency
 * cannot be proven with one region. Locally and zone-redundant accounts (`*_LRS`, `*_ZRS`)
 * answer their `location`.
 *
 * Connection, credential and retries are those of AKS discovery: the configured ARM
 * endpoint (https, optional `caFile`), token scope `<endpoint>/.default`, the configured
 * credential (made on first use and kept), our retry (`withRetry`, `maxAttempts`; the
 * pipeline's own retry is off), a `timeoutMs` deadline per attempt, and no request sent to
 * another origin. Failures are wrapped once as {@link CloudApiError} (`operation`
 * `storageAccounts.getProperties`).
 */
import { type StorageAccount, StorageManagementClient } from '@azure/arm-storage';
import type { AzureConfig } from '../../config/schema.ts';
import type { Cluster } from '../../model.ts';
import type { BucketLocator, BucketRef } from '../../ports.ts';
import { createLimiter } from '../../runtime/concurrency.ts';
import { CloudApiError, errorInfo, FleetwardError } from '../../runtime/errors.ts';
import { unreachable } from '../../runtime/network.ts';
import { withRetry } from '../../runtime/retry.ts';
import type { AdapterContext } from '../context.ts';
import {
  type Connection,
  classify,
  connectionOf,
  createCredential,
  regionOf,
  requestPolicy,
  SERVICE,
  type TokenCredential,
} from './arm.ts';

const CLOUD = 'azure';
const OPERATION = 'storageAccounts.getProperties';
/** SKUs that replicate to the paired region. */
const GEO_REDUNDANT = /(^|_)(RA)?G(Z)?RS$/i;

/** The storage account a BSL names (Velero azure plugin keys). */
export interface StorageAccountRef {
  subscriptionId: string;
  resourceGroup: string;
  storageAccount: string;
}

/** Reads `storageAccount`, `resourceGroup` and `subscriptionId` of a BSL; throws {@link FleetwardError} naming what is missing. */
export function storageAccountOf(bucket: BucketRef, cluster: Cluster): StorageAccountRef {
  const { storageAccount, resourceGroup } = bucket.config;
  const subscriptionId =
    bucket.config.subscriptionId || (cluster.cloud === 'azure' ? cluster.scope : undefined);
  const missing = [
    !storageAccount && 'storageAccount',
    !resourceGroup && 'resourceGroup',
    !subscriptionId && 'subscriptionId (required when the cluster is not on azure)',
  ].filter(Boolean);
  if (missing.length > 0 || !storageAccount || !resourceGroup || !subscriptionId) {
    throw new FleetwardError(
      `azure container ${bucket.bucket}: the backup storage location config lacks ${missing.join(', ')}`,
    );
  }
  return { subscriptionId, resourceGroup, storageAccount };
}

/**
 * The region of a storage account: its `location` as a region name. Throws
 * {@link FleetwardError} for a geo-redundant account whose secondary region differs (or is
 * not reported), {@link CloudApiError} for an answer without a location.
 */
export function regionOfStorageAccount(ref: StorageAccountRef, account: StorageAccount): string {
  if (!account.location) {
    throw new CloudApiError(`azure storage account ${ref.storageAccount}: arm answered no location`, {
      cloud: CLOUD,
      operation: OPERATION,
      retryable: false,
    });
  }
  const region = regionOf(account.location);
  const secondary = account.secondaryLocation ? regionOf(account.secondaryLocation) : undefined;
  const sku = account.sku?.name;
  const geo = sku !== undefined && GEO_REDUNDANT.test(sku);
  if ((secondary !== undefined && secondary !== region) || (geo && secondary === undefined)) {
    throw new FleetwardError(
      `azure storage account ${ref.storageAccount} (${sku ?? 'geo-redundant'}) replicates from ${region} to ${secondary ?? 'a secondary region arm does not name'}: the residency of a geo-redundant account cannot be proven with one region; use a locally or zone-redundant account (LRS, ZRS)`,
    );
  }
  return region;
}

function clip(text: string, max = 300): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

interface RestErrorLike {
  name?: string;
  code?: string;
  statusCode?: number;
  message?: string;
}

/**
 * Wraps an SDK, network or credential error once. A `RestError` of the pipeline to ARM at
 * `endpoint` that says the endpoint was not reached (refused, DNS, TLS, timeout, an HTML page)
 * is `cannot reach arm at <endpoint>: <reason>`; a credential's errors are not about ARM.
 */
function toCloudApiError(ref: StorageAccountRef, error: unknown, endpoint?: string): CloudApiError {
  if (error instanceof CloudApiError) return error;
  const e = (error ?? {}) as RestErrorLike;
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  if (endpoint !== undefined && e.name === 'RestError') {
    const down = unreachable(error, {
      cloud: CLOUD,
      operation: OPERATION,
      service: SERVICE,
      endpoint,
      status,
    });
    if (down) return down;
  }
  const what = [status, e.code].filter((p) => p !== undefined).join(' ');
  const detail = typeof e.message === 'string' ? e.message : String(error);
  return new CloudApiError(
    `azure storage account ${ref.storageAccount} (resource group ${ref.resourceGroup}, subscription ${ref.subscriptionId}): ${OPERATION} failed${what ? ` (${what})` : ''}: ${clip(detail)}`,
    { cloud: CLOUD, operation: OPERATION, status, retryable: classify(error).retry },
    { cause: error },
  );
}

function storageClient(
  credential: TokenCredential,
  subscriptionId: string,
  connection: Connection,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): StorageManagementClient {
  return new StorageManagementClient(credential, subscriptionId, {
    // `$host` builds the request URLs; `endpoint` is the client's base URL.
    $host: connection.endpoint,
    endpoint: connection.endpoint,
    credentialScopes: [connection.scope],
    retryOptions: { maxRetries: 0 },
    additionalPolicies: [
      { policy: requestPolicy(connection, timeoutMs, signal, OPERATION), position: 'perCall' },
    ],
    ...(connection.ca ? { tlsOptions: { ca: connection.ca } } : {}),
    userAgentOptions: { userAgentPrefix: 'fleetward' },
  });
}

/**
 * The storage account locator of an Azure config. Throws {@link ConfigError} at once for a
 * non-https endpoint or an unreadable `caFile`; the credential is made on first use.
 */
export function createBucketLocator(config: AzureConfig, ctx: AdapterContext): BucketLocator {
  const connection = connectionOf(config);
  const limiter = createLimiter(config.concurrency);
  let credential: Promise<TokenCredential> | undefined;
  return {
    async locate(bucket: BucketRef, cluster: Cluster, options = {}) {
      const { signal } = options;
      signal?.throwIfAborted();
      const ref = storageAccountOf(bucket, cluster);
      credential ??= createCredential(config.credential);
      let cred: TokenCredential;
      try {
        cred = await credential;
      } catch (error) {
        // Not kept: the next call tries again.
        credential = undefined;
        throw toCloudApiError(ref, error);
      }
      const client = storageClient(cred, ref.subscriptionId, connection, config.timeoutMs, signal);
      let account: StorageAccount;
      try {
        account = await withRetry(
          () =>
            limiter(() =>
              client.storageAccounts.getProperties(ref.resourceGroup, ref.storageAccount, {
                ...(signal ? { abortSignal: signal } : {}),
              }),
            ),
          classify,
          {
            maxAttempts: config.maxAttempts,
            signal,
            onRetry: ({ attempt, delayMs, error }) =>
              ctx.logger.info('Call retried', {
                operation: OPERATION,
                storageAccount: ref.storageAccount,
                attempt,
                delayMs,
                error: errorInfo(error),
              }),
          },
        );
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        const wrapped = toCloudApiError(ref, error, connection.endpoint);
        ctx.logger.debug('Bucket location failed', {
          cloud: CLOUD,
          bucket: bucket.bucket,
          storageAccount: ref.storageAccount,
          error: errorInfo(wrapped),
        });
        throw wrapped;
      }
      const region = regionOfStorageAccount(ref, account);
      ctx.logger.debug('Bucket located', {
        cloud: CLOUD,
        bucket: bucket.bucket,
        storageAccount: ref.storageAccount,
        region,
        cluster: cluster.id,
      });
      return { cloud: CLOUD, region };
    },
  };
}

/**
 * Provider permissions of this module's calls (shared/clouds/permissions.ts).
 */
export const PERMISSIONS: readonly import('../permissions.ts').PermissionGrant[] = [
  {
    provider: 'azure',
    holder: 'member',
    capability: 'velero',
    permission: 'Microsoft.Storage/storageAccounts/read',
    calls: ['arm:storageAccounts.getProperties'],
    why: "read a storage account's location to check it lies in the jurisdiction",
  },
  {
    provider: 'azure',
    holder: 'member',
    capability: 'evidence-write',
    permission: 'Microsoft.Storage/storageAccounts/read',
    calls: ['arm:storageAccounts.getProperties'],
    why: "read a storage account's location to check it lies in the jurisdiction",
  },
  {
    provider: 'azure',
    holder: 'member',
    capability: 'evidence-read',
    permission: 'Microsoft.Storage/storageAccounts/read',
    calls: ['arm:storageAccounts.getProperties'],
    why: "read a storage account's location to check it lies in the jurisdiction",
  },
];
