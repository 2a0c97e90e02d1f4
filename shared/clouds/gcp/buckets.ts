/**
 * Where a Cloud Storage bucket lives: the bucket's `location` and `locationType`, read with
 * `bucket.getMetadata()` of `@google-cloud/storage` (JSON API `buckets.get`).
 *
 * - GCS reports locations in upper case (`EUROPE-WEST1`); the region is its lower-case form.
 * - Multi-regions (`EU`, `US`, `ASIA`) and dual-regions (predefined such as `EUR4`, `NAM4`,
 *   or configurable ones) are not one region: Cloud Storage may keep the data in any region
 *   of the multi-region, or in both regions of the pair. A backup there cannot be shown to
 *   stay in one region, so the locator refuses such a bucket with a {@link FleetwardError}
 *   instead of answering a region it cannot prove. `locationType` decides; when a server
 *   leaves it out, a location that is not a region name (`europe-west1`) is refused too.
 *
 * Connection:
 * - `storageEndpoint` replaces `https://storage.googleapis.com` (a Private Service Connect
 *   endpoint, or a local emulator). Requests to it are authenticated (the client would
 *   otherwise send none to a custom endpoint) and it must be https unless it is on loopback.
 * - `insecure` sends no credentials at all: the client sends no `Authorization` header and the
 *   auth library is never asked for a token. It is allowed only with a loopback
 *   `storageEndpoint`, so a sandbox config never talks to the real API anonymously.
 * - `credentialsFile` (a service-account key or a Workload Identity Federation config), else
 *   application default credentials.
 *
 * Retries are ours (`withRetry`, `maxAttempts`, on 408/429/5xx and network errors): the
 * client's own retry is off. Each request has the `timeoutMs` deadline. Failures are wrapped
 * once as {@link CloudApiError} (`operation` `buckets.get`).
 */
import { type BucketMetadata, Storage, type StorageOptions } from '@google-cloud/storage';
import type { GcpConfig } from '../../config/schema.ts';
import type { Cluster } from '../../model.ts';
import type { BucketLocator, BucketRef } from '../../ports.ts';
import { createLimiter } from '../../runtime/concurrency.ts';
import { CloudApiError, ConfigError, errorInfo, FleetwardError } from '../../runtime/errors.ts';
import { unreachable } from '../../runtime/network.ts';
import { type RetryDecision, withRetry } from '../../runtime/retry.ts';
import type { AdapterContext } from '../context.ts';
import { isLoopback } from './auth.ts';
import { googleAuthOptions } from './federation.ts';

const CLOUD = 'gcp';
const OPERATION = 'buckets.get';
/** A GCS region (`europe-west1`, `us-central1`, `northamerica-northeast1`), lower case. */
const GCS_REGION = /^[a-z]+(-[a-z]+)+\d+$/;
const RETRYABLE_NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN']);

function storageEndpointIssue(message: string): ConfigError {
  return new ConfigError([{ path: 'clouds.gcp.storageEndpoint', message }]);
}

/** The `Storage` options for a config; refuses `insecure` without a loopback `storageEndpoint`. */
export function storageOptions(config: GcpConfig): StorageOptions {
  const options: StorageOptions = { retryOptions: { autoRetry: false }, timeout: config.timeoutMs };
  const endpoint = config.storageEndpoint === undefined ? undefined : new URL(config.storageEndpoint);
  const apiEndpoint = endpoint && `${endpoint.origin}${endpoint.pathname.replace(/\/+$/, '')}`;
  const loopback = endpoint !== undefined && isLoopback(endpoint.hostname.replace(/^\[|\]$/g, ''));
  if (config.insecure) {
    if (!endpoint || !loopback) {
      throw new ConfigError([
        {
          path: 'clouds.gcp.insecure',
          message:
            'insecure (no credentials) needs a loopback storageEndpoint: cloud storage is never called without credentials',
        },
      ]);
    }
    // A custom endpoint without `useAuthWithCustomEndpoint`: the client skips the auth library entirely.
    return { ...options, apiEndpoint, useAuthWithCustomEndpoint: false };
  }
  if (endpoint) {
    if (endpoint.protocol !== 'https:' && !loopback) {
      throw storageEndpointIssue('expected an https URL (requests to it carry a bearer token)');
    }
    options.apiEndpoint = apiEndpoint;
    // The client sends no credentials to a custom endpoint unless told to.
    options.useAuthWithCustomEndpoint = true;
  }
  Object.assign(options, googleAuthOptions(config));
  return options;
}

/**
 * The region of a bucket from its metadata: the lower-cased `location` of a single-region
 * bucket. Throws {@link FleetwardError} for a multi-region or dual-region bucket (see the
 * module comment) and {@link CloudApiError} for metadata without a location.
 */
export function regionOfBucket(name: string, metadata: BucketMetadata): string {
  const location = metadata.location;
  if (typeof location !== 'string' || location === '') {
    throw new CloudApiError(`gcs bucket ${name}: the bucket resource has no location`, {
      cloud: CLOUD,
      operation: OPERATION,
      retryable: false,
    });
  }
  const region = location.toLowerCase();
  const type = typeof metadata.locationType === 'string' ? metadata.locationType.toLowerCase() : undefined;
  const single = type === undefined ? GCS_REGION.test(region) : type === 'region';
  if (!single) {
    const kind = type ?? (/\d$/.test(location) ? 'dual-region' : 'multi-region');
    const dataLocations = metadata.customPlacementConfig?.dataLocations;
    const where = dataLocations?.length ? ` (data locations ${dataLocations.join(', ')})` : '';
    throw new FleetwardError(
      `gcs bucket ${name} is in the ${kind} ${location}${where}: the residency of a multi-region or dual-region bucket cannot be proven, since cloud storage may keep its data in any of its regions; use a single-region bucket`,
    );
  }
  return region;
}

interface ApiErrorLike {
  code?: unknown;
  type?: unknown;
  message?: unknown;
  /** gaxios' response, when there was one (headers as a `Headers` or a plain object). */
  response?: { headers?: { get?: (name: string) => string | null } & Record<string, unknown> };
}

/** Where the client goes without a configured storage endpoint. */
const DEFAULT_STORAGE_ENDPOINT = 'https://storage.googleapis.com';

/** The content type of the answer an error carries, if any. */
function contentTypeOf(error: ApiErrorLike): string | undefined {
  const headers = error.response?.headers;
  const value = typeof headers?.get === 'function' ? headers.get('content-type') : headers?.['content-type'];
  return typeof value === 'string' ? value : undefined;
}

function classify(error: unknown): RetryDecision {
  const { code, type } = (error ?? {}) as ApiErrorLike;
  if (typeof code === 'number') return { retry: code === 408 || code === 429 || code >= 500 };
  if (typeof code === 'string' && RETRYABLE_NETWORK_CODES.has(code)) return { retry: true };
  return { retry: type === 'request-timeout' };
}

/**
 * Wraps a client error once; a refused connection, failed DNS lookup, rejected certificate,
 * timeout or HTML page at `endpoint` is `cannot reach cloud storage at <endpoint>: <reason>`.
 */
function toCloudApiError(name: string, error: unknown, endpoint: string): CloudApiError {
  if (error instanceof CloudApiError) return error;
  const { code, message } = (error ?? {}) as ApiErrorLike;
  const status = typeof code === 'number' ? code : undefined;
  const down = unreachable(error, {
    cloud: CLOUD,
    operation: OPERATION,
    service: 'cloud storage',
    endpoint,
    status,
    contentType: contentTypeOf((error ?? {}) as ApiErrorLike),
  });
  if (down) return down;
  const detail = typeof message === 'string' ? message.split('\n')[0] : String(error);
  return new CloudApiError(
    `gcs bucket ${name}: buckets.get failed${status === undefined ? '' : ` (${status})`}: ${detail}`,
    { cloud: CLOUD, operation: OPERATION, status, retryable: classify(error).retry },
    { cause: error },
  );
}

/** Settles with `promise`, or rejects with the signal's reason as soon as it aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** The Cloud Storage bucket locator of a GCP config; throws {@link ConfigError} for bad connection settings. */
export function createBucketLocator(config: GcpConfig, ctx: AdapterContext): BucketLocator {
  const options = storageOptions(config);
  const limiter = createLimiter(config.concurrency);
  let storage: Storage | undefined;
  return {
    async locate(bucket: BucketRef, cluster: Cluster, locateOptions = {}) {
      const { signal } = locateOptions;
      signal?.throwIfAborted();
      const name = bucket.bucket;
      storage ??= new Storage(options);
      const client = storage;
      let metadata: BucketMetadata;
      try {
        [metadata] = await withRetry(
          () => limiter(() => abortable(client.bucket(name).getMetadata(), signal)),
          classify,
          {
            maxAttempts: config.maxAttempts,
            signal,
            onRetry: ({ attempt, delayMs, error }) =>
              ctx.logger.info('Call retried', {
                operation: OPERATION,
                bucket: name,
                attempt,
                delayMs,
                error: errorInfo(error),
              }),
          },
        );
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        const wrapped = toCloudApiError(name, error, config.storageEndpoint ?? DEFAULT_STORAGE_ENDPOINT);
        ctx.logger.debug('Bucket location failed', { cloud: CLOUD, bucket: name, error: errorInfo(wrapped) });
        throw wrapped;
      }
      const region = regionOfBucket(name, metadata);
      ctx.logger.debug('Bucket located', { cloud: CLOUD, bucket: name, region, cluster: cluster.id });
      return { cloud: CLOUD, region };
    },
  };
}

/**
 * Provider permissions of this module's calls (shared/clouds/permissions.ts).
 */
export const PERMISSIONS: readonly import('../permissions.ts').PermissionGrant[] = [
  {
    provider: 'gcp',
    holder: 'member',
    capability: 'velero',
    permission: 'storage.buckets.get',
    calls: ['storage:buckets.get'],
    why: "check that a Velero backup bucket lies in the cluster's jurisdiction",
  },
];
