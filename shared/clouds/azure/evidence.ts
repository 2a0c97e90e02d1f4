/**
 * The Azure evidence container: audit archives and compliance snapshots in a blob container
 * with version-level immutability ({@link createBlobArchiveStore}). Apart from the audit log
 * source (./audit.ts), so a function that only writes or reads evidence bundles no log reader.
 */
import { createHash } from 'node:crypto';
import { type BlobContainer, StorageManagementClient } from '@azure/arm-storage';
import { ContainerClient, type StorageSharedKeyCredential } from '@azure/storage-blob';
import type { AzureConfig } from '../../config/schema.ts';
import type { Cluster } from '../../model.ts';
import type { ArchivedObject, ArchiveStore } from '../../ports.ts';
import {
  CloudApiError,
  errorInfo,
  FleetwardError,
  NotImmutableError,
  ObjectExistsError,
} from '../../runtime/errors.ts';
import { withRetry } from '../../runtime/retry.ts';
import type { AdapterContext } from '../context.ts';
import { classify, connectionOf, createCredential, requestPolicy, type TokenCredential } from './arm.ts';
import { createBucketLocator } from './buckets.ts';

const CLOUD = 'azure';
/** The operation name of the container read of `assertImmutable`. */
const CONTAINER_OPERATION = 'blobContainers.get';

export function clip(text: string, max = 300): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

export function abortReason(signal: AbortSignal | undefined): unknown {
  return signal?.reason ?? new Error('aborted');
}

// --- archive ---

/** The evidence container of a jurisdiction (`jurisdictions.<id>.evidence.azure`). */
export interface BlobEvidence {
  storageAccount: string;
  container: string;
  region: string;
  /**
   * The container receives append blobs that grow after creation (Azure Monitor's diagnostic
   * logs, export mode): `assertImmutable` then also requires the policy to allow protected
   * append writes, without which the service cannot append and delivery stops.
   */
  appendWrites?: boolean | undefined;
}

export interface BlobArchiveContext extends AdapterContext {
  /** Replaces the configured credential: a shared key (the emulator) or a token credential. */
  credential?: StorageSharedKeyCredential | TokenCredential;
  /**
   * Where the storage account lives in ARM, for `location()` and `assertImmutable()`: the
   * evidence config names only the account. Without it both reject.
   */
  account?: { subscriptionId: string; resourceGroup: string };
}

interface RestErrorLike {
  name?: string;
  statusCode?: number;
  code?: string;
  message?: string;
  details?: { errorCode?: string };
}

function storageErrorCode(error: unknown): string | undefined {
  const e = error as RestErrorLike | null;
  return e?.details?.errorCode ?? e?.code;
}

/**
 * An {@link ArchiveStore} on one blob container (`azure:<account>/<container>`), through
 * `@azure/storage-blob` at `config.blobEndpoint` (`{account}` replaced) with the configured
 * credential, or `ctx.credential` (a `StorageSharedKeyCredential` for the emulator).
 *
 * - `location`: the storage account's ARM location (the bucket locator of `buckets.ts`, so
 *   geo-redundant accounts are refused); needs `ctx.account`.
 * - `assertImmutable(days)`: the container as ARM exposes it (`StorageManagementClient`
 *   `blobContainers.get(resourceGroup, account, container)` of `@azure/arm-storage`, needs
 *   `ctx.account`; client built as in `buckets.ts`: configured ARM endpoint, `caFile`, token
 *   scope, the configured credential, or `ctx.credential` when it is a token credential, our
 *   retry and per-attempt deadline) must have version-level immutability
 *   (`immutableStorageWithVersioning.enabled`) and a default version-level policy
 *   (`immutabilityPolicy`) that is `Locked` with `immutabilityPeriodSinceCreationInDays >= days`.
 *   Anything else, a missing container or an unknown resource group included, is a
 *   {@link NotImmutableError} naming the reason; other ARM failures are {@link CloudApiError}
 *   (operation `blobContainers.get`). Blob data GetProperties headers are not used: the service
 *   does not report a container's policy there.
 * - `create`: one Put Blob with `If-None-Match: *` and the body's MD5 (`x-ms-blob-content-md5`,
 *   which Put Blob verifies; locked containers need a checksum); 409/412 (`BlobAlreadyExists`, `ConditionNotMet`, `BlobImmutableDueToPolicy`)
 *   become {@link ObjectExistsError}. The version is the answer's `x-ms-version-id`.
 * - `get` by `versionid`; `list` with `include=versions`.
 * The TLS CA of `caFile` is not applied to the blob endpoint (the storage pipeline has no TLS option).
 */
export function createBlobArchiveStore(
  config: AzureConfig,
  evidence: BlobEvidence,
  ctx: BlobArchiveContext,
): ArchiveStore {
  const id = `azure:${evidence.storageAccount}/${evidence.container}`;
  const base = config.blobEndpoint.replaceAll('{account}', evidence.storageAccount).replace(/\/+$/, '');
  const url = `${base}/${encodeURIComponent(evidence.container)}`;
  let container: Promise<ContainerClient> | undefined;
  const containerClient = (): Promise<ContainerClient> => {
    container ??= (async () => {
      const cred = ctx.credential ?? (await createCredential(config.credential));
      return new ContainerClient(url, cred, {
        retryOptions: { maxTries: config.maxAttempts, tryTimeoutInMs: config.timeoutMs },
        userAgentOptions: { userAgentPrefix: 'fleetward' },
      });
    })().catch((error: unknown) => {
      container = undefined;
      throw error;
    });
    return container;
  };
  const fail = (operation: string, what: string, error: unknown): CloudApiError => {
    if (error instanceof CloudApiError) return error;
    const e = (error ?? {}) as RestErrorLike;
    const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
    const code = storageErrorCode(error);
    return new CloudApiError(
      `${id}: ${what} failed${status === undefined ? '' : ` (${[status, code].filter(Boolean).join(' ')})`}: ${clip(String(e.message ?? error))}`,
      {
        cloud: CLOUD,
        operation,
        status,
        retryable: status !== undefined && (status === 429 || status >= 500),
      },
      { cause: error },
    );
  };
  const abortOpts = (signal: AbortSignal | undefined) => (signal ? { abortSignal: signal } : {});

  let armCredential: Promise<TokenCredential> | undefined;
  /** The container's ARM resource; `undefined` when ARM answers 404 (no such container, account or group). */
  const readContainer = async (
    subscriptionId: string,
    resourceGroup: string,
    signal: AbortSignal | undefined,
  ): Promise<BlobContainer | undefined> => {
    const operation = CONTAINER_OPERATION;
    const connection = connectionOf(config);
    const given = ctx.credential as Partial<TokenCredential> | undefined;
    armCredential ??=
      typeof given?.getToken === 'function'
        ? Promise.resolve(given as TokenCredential)
        : createCredential(config.credential);
    let cred: TokenCredential;
    try {
      cred = await armCredential;
    } catch (error) {
      armCredential = undefined;
      throw new CloudApiError(
        `${id}: azure credential failed: ${clip(String((error as Error)?.message ?? error))}`,
        { cloud: CLOUD, operation, retryable: false },
        { cause: error },
      );
    }
    const client = new StorageManagementClient(cred, subscriptionId, {
      // `$host` builds the request URLs; `endpoint` is the client's base URL (as in buckets.ts).
      $host: connection.endpoint,
      endpoint: connection.endpoint,
      credentialScopes: [connection.scope],
      retryOptions: { maxRetries: 0 },
      additionalPolicies: [
        { policy: requestPolicy(connection, config.timeoutMs, signal, operation), position: 'perCall' },
      ],
      ...(connection.ca ? { tlsOptions: { ca: connection.ca } } : {}),
      userAgentOptions: { userAgentPrefix: 'fleetward' },
    });
    try {
      return await withRetry(
        () =>
          client.blobContainers.get(resourceGroup, evidence.storageAccount, evidence.container, {
            ...abortOpts(signal),
          }),
        classify,
        {
          maxAttempts: config.maxAttempts,
          signal,
          onRetry: ({ attempt, delayMs, error }) =>
            ctx.logger.info('Call retried', {
              operation,
              store: id,
              attempt,
              delayMs,
              error: errorInfo(error),
            }),
        },
      );
    } catch (error) {
      if (signal?.aborted) throw abortReason(signal);
      if ((error as RestErrorLike)?.statusCode === 404) return undefined;
      if (error instanceof CloudApiError) throw error;
      const e = (error ?? {}) as RestErrorLike;
      const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
      throw new CloudApiError(
        `${id}: reading the container through arm (resource group ${resourceGroup}, subscription ${subscriptionId}) failed${status === undefined ? '' : ` (${[status, e.code].filter(Boolean).join(' ')})`}: ${clip(String(e.message ?? error))}`,
        { cloud: CLOUD, operation, status, retryable: classify(error).retry },
        { cause: error },
      );
    }
  };

  return {
    id,

    async location(options = {}) {
      if (!ctx.account) {
        throw new FleetwardError(
          `${id}: the resource group of storage account ${evidence.storageAccount} is not known, so its location cannot be read`,
        );
      }
      const locator = createBucketLocator(config, ctx);
      const pseudo: Cluster = {
        id: `evidence/${id}`,
        cloud: 'azure',
        scope: ctx.account.subscriptionId,
        region: evidence.region,
        name: evidence.container,
        kubernetesVersion: null,
        endpoint: null,
        endpointAccess: 'unknown' as Cluster['endpointAccess'],
        secretsEncryptionKey: null,
        auditLogging: null,
        tags: {},
        status: 'unknown',
        providerStatus: null,
        createdAt: null,
        country: null,
        jurisdiction: 'unassigned',
      };
      return locator.locate(
        {
          provider: 'azure',
          bucket: evidence.container,
          config: {
            storageAccount: evidence.storageAccount,
            resourceGroup: ctx.account.resourceGroup,
            subscriptionId: ctx.account.subscriptionId,
          },
        },
        pseudo,
        options,
      );
    },

    async assertImmutable(retentionDays, options = {}) {
      const { signal } = options;
      signal?.throwIfAborted();
      if (!ctx.account) {
        throw new NotImmutableError(
          `${id}: the resource group of storage account ${evidence.storageAccount} is not configured (jurisdictions.<id>.evidence.azure.resourceGroup), so the container's immutability policy cannot be read through ARM`,
          id,
        );
      }
      const { subscriptionId, resourceGroup } = ctx.account;
      const resource = await readContainer(subscriptionId, resourceGroup, signal);
      if (!resource) {
        throw new NotImmutableError(
          `${id}: ARM knows no container ${evidence.container} in storage account ${evidence.storageAccount} (resource group ${resourceGroup}, subscription ${subscriptionId})`,
          id,
        );
      }
      if (resource.immutableStorageWithVersioning?.enabled !== true) {
        throw new NotImmutableError(`${id}: version-level immutability is not enabled on the container`, id);
      }
      const policy = resource.immutabilityPolicy;
      const days = policy?.immutabilityPeriodSinceCreationInDays;
      if (!policy || typeof days !== 'number') {
        throw new NotImmutableError(`${id}: the container has no default immutability policy`, id);
      }
      if (policy.state?.toLowerCase() !== 'locked') {
        throw new NotImmutableError(
          `${id}: the immutability policy is ${policy.state ? policy.state.toLowerCase() : 'of unknown state'}, not locked`,
          id,
        );
      }
      if (days < retentionDays) {
        throw new NotImmutableError(
          `${id}: the immutability policy keeps objects ${days} day(s), less than the ${retentionDays} required`,
          id,
        );
      }
      if (
        evidence.appendWrites &&
        !policy.allowProtectedAppendWrites &&
        !policy.allowProtectedAppendWritesAll
      ) {
        throw new NotImmutableError(
          `${id}: the immutability policy does not allow protected append writes, so Azure Monitor cannot append its diagnostic logs`,
          id,
        );
      }
    },

    async create(key, body, meta, options = {}) {
      const client = (await containerClient()).getBlockBlobClient(key);
      const md5 = createHash('md5').update(body).digest();
      try {
        const result = await client.upload(body, body.byteLength, {
          conditions: { ifNoneMatch: '*' },
          // Put Blob verifies `x-ms-blob-content-md5` against the body (the upload options have no `Content-MD5`).
          blobHTTPHeaders: { blobContentType: meta.contentType, blobContentMD5: md5 },
          metadata: { sha256: meta.sha256 },
          ...abortOpts(options.signal),
        });
        if (!result.versionId) {
          throw new CloudApiError(
            `${id}: the service assigned no version to ${key} (is blob versioning on?)`,
            {
              cloud: CLOUD,
              operation: 'blob.upload',
              retryable: false,
            },
          );
        }
        return { key, version: result.versionId } satisfies ArchivedObject;
      } catch (error) {
        if (options.signal?.aborted) throw abortReason(options.signal);
        const status = (error as RestErrorLike)?.statusCode;
        if (status === 409 || status === 412) throw new ObjectExistsError(key, { cause: error });
        throw fail('blob.upload', `creating ${key}`, error);
      }
    },

    async get(key, options = {}) {
      let client = (await containerClient()).getBlobClient(key);
      if (options.version) client = client.withVersion(options.version);
      try {
        // One GET of the whole blob (version): no separate properties call, no ranges.
        const response = await client.download(0, undefined, abortOpts(options.signal));
        const chunks: Buffer[] = [];
        for await (const chunk of response.readableStreamBody ?? []) {
          chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
        }
        return new Uint8Array(Buffer.concat(chunks));
      } catch (error) {
        if (options.signal?.aborted) throw abortReason(options.signal);
        if ((error as RestErrorLike)?.statusCode === 404) return undefined;
        throw fail('blob.download', `reading ${key}`, error);
      }
    },

    async list(prefix, options = {}) {
      const client = await containerClient();
      const byKey = new Map<string, { version: string; current: boolean; created: Date | undefined }[]>();
      try {
        for await (const item of client.listBlobsFlat({
          prefix,
          includeVersions: true,
          ...abortOpts(options.signal),
        })) {
          if (!item.versionId) continue;
          const list = byKey.get(item.name) ?? [];
          list.push({
            version: item.versionId,
            current: item.isCurrentVersion === true,
            created: item.properties.createdOn,
          });
          byKey.set(item.name, list);
        }
      } catch (error) {
        if (options.signal?.aborted) throw abortReason(options.signal);
        throw fail('container.listBlobs', `listing ${prefix}`, error);
      }
      return [...byKey.keys()].sort().map((key) => {
        // Version ids are timestamps: newest first is descending order.
        const versions = byKey
          .get(key)!
          .sort((a, b) => (a.version < b.version ? 1 : a.version > b.version ? -1 : 0));
        const latest = versions.find((v) => v.current) ?? versions[0];
        return {
          key,
          versions: versions.map((v) => v.version),
          // The blob's Creation-Time (an append blob keeps it while appends land).
          created: latest?.created ? latest.created.toISOString() : undefined,
        };
      });
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
    capability: 'evidence-write',
    permission: 'Microsoft.Storage/storageAccounts/blobServices/containers/read',
    calls: ['arm:blobContainers.get'],
    why: 'check that the evidence container has a locked version-level immutability policy',
  },
  {
    provider: 'azure',
    holder: 'member',
    capability: 'evidence-read',
    permission: 'Microsoft.Storage/storageAccounts/blobServices/containers/read',
    calls: ['arm:blobContainers.get'],
    why: 'check that the evidence container has a locked version-level immutability policy',
  },
  {
    provider: 'azure',
    holder: 'member',
    capability: 'evidence-write',
    permission: 'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write',
    calls: ['blob:PutBlob'],
    why: 'write audit chunks, manifests and snapshots once (If-None-Match: *)',
  },
  {
    provider: 'azure',
    holder: 'member',
    capability: 'evidence-write',
    permission: 'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read',
    calls: ['blob:GetBlob'],
    why: 'read back an object already archived',
  },
  {
    provider: 'azure',
    holder: 'member',
    capability: 'evidence-read',
    permission: 'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read',
    calls: ['blob:GetBlob', 'blob:ListBlobs'],
    why: 'read archived evidence by version and list versions, so an overwrite shows',
  },
];
