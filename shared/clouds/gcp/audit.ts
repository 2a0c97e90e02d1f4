/**
 * GKE control-plane audit logs: the source that reads them from Cloud Logging, and the
 * Cloud Storage archive they are written to.
 *
 * Audit source (`createAuditSource`):
 * - GKE writes Admin Activity audit logs (every Kubernetes API write) to Cloud Audit Logs
 *   always; they cannot be switched off. Data Access audit logs (reads: get, list, watch)
 *   are written only when the project's IAM audit config enables DATA_READ / DATA_WRITE for
 *   the Kubernetes Engine API. A cluster's `loggingService` (even `none`) governs its system
 *   and workload logs, not Cloud Audit Logs, so `enabled` is true for every GKE cluster
 *   (whatever an older inventory record says). It makes no call.
 * - `read` calls `entries.list` (`POST /v2/entries:list`) with plain `fetch`:
 *   `resourceNames: ['projects/<cluster.scope>']`, `orderBy: 'timestamp asc'`,
 *   `pageSize: 1000`, following `nextPageToken`, and the filter
 *   `resource.type="k8s_cluster" AND resource.labels.cluster_name="<name>" AND
 *   resource.labels.location="<region>" AND logName:"cloudaudit.googleapis.com" AND
 *   timestamp>="<since>" AND timestamp<"<until>"` (every audit log kind: activity,
 *   data_access, system_event, policy). Each page is one yielded batch.
 *   Plain fetch rather than `@google-cloud/logging`: that client speaks gRPC (or its REST
 *   fallback through gax), which cannot be pointed at a plain-HTTP loopback fake without
 *   credentials as simply, and its paging hides the page boundaries we yield.
 * - An event is `{auditID: insertId, timestamp, raw}`: GKE uses the Kubernetes audit
 *   event's `auditID` as the entry's `insertId`; `timestamp` is the entry's `timestamp` as
 *   returned (the field the window filters on, so checkpoints line up with the filter);
 *   `raw` is the entry as JSON. An entry without a string `insertId` gets `auditID: null`.
 * - Connection: `loggingEndpoint` replaces `https://logging.googleapis.com` (https unless on
 *   loopback). Requests carry a Google access token (google-auth-library, `credentialsFile`
 *   else application default credentials, scope `logging.read`), except with `insecure`,
 *   which needs a loopback `loggingEndpoint` and sends no `Authorization` at all.
 * - Quota: every `entries.list` attempt first takes a token of the bucket of its scope
 *   `gcp:<project>` (60 requests per minute, shared by every cluster of the project in the
 *   process: shared/audit/quota.ts); the scope counts requests, bytes (the entries' JSON) and
 *   entries read. Google meters API requests against the project the caller's credentials bill
 *   to; with one service account for the fleet that is one project for every cluster, which
 *   `quotas` with a smaller `share` or a single key can model (see the README, "Quotas and lag").
 * - Retries: `withRetry` (`maxAttempts`) on 408/429/5xx, network errors and the per-attempt
 *   `timeoutMs` deadline, honouring `Retry-After`. Failures reject with {@link CloudApiError}
 *   (operation `entries.list`); a refused connection, failed DNS lookup, rejected certificate or
 *   an HTML page is `cannot reach cloud logging at <loggingEndpoint>: <reason>`.
 *
 * Archive (`createGcsArchiveStore`), with `@google-cloud/storage` (the client of
 * `storageOptions`, so `storageEndpoint` / `insecure` / `credentialsFile` apply as for the
 * bucket locator):
 * - `location`: the bucket's location, lower case; multi- and dual-regions are refused
 *   (`regionOfBucket`).
 * - `assertImmutable(days)`: the bucket's retention policy must be locked
 *   (`isLocked: true`) and at least `days × 86400` seconds, else {@link NotImmutableError}.
 * - `create`: a simple (non-resumable) upload with `ifGenerationMatch: 0` (only if no live
 *   object has the key), the MD5 and CRC32C of the bytes in the object metadata (Cloud
 *   Storage refuses the upload when they do not match what it received) and the client's
 *   check of the answer; 412 → {@link ObjectExistsError}. When an earlier attempt of the
 *   same call may have written the object (a retry after a lost answer), a 412 on a retry
 *   whose existing object carries our SHA-256 counts as our own write. The SHA-256 is kept
 *   in the object's custom metadata (`sha256`). `version` is the object's `generation`.
 * - `get`: the object's bytes (of `version` = generation when given), validated by the
 *   client; `undefined` on 404.
 * - `list`: `objects.list` with `versions: true` (non-current generations too), grouped per
 *   key in key order, generations newest first.
 * Retries as for the locator (408/429/5xx, network errors); failures become
 * {@link CloudApiError} (operation `buckets.get`, `objects.insert`, `objects.get`, `objects.list`).
 */
import { createHash } from 'node:crypto';
import { CRC32C, type File, Storage } from '@google-cloud/storage';
import { cloudLoggingRecordId } from '../../audit/chunks.ts';
import {
  type AuditQuota,
  CLOUD_LOGGING_ENTRIES_LIST,
  gcpScopeKey,
  processQuotas,
  type QuotaAwareSource,
  type QuotaRegistry,
} from '../../audit/quota.ts';
import type { GcpConfig } from '../../config/schema.ts';
import type { Cluster } from '../../model.ts';
import type { ArchivedObject, ArchiveStore, AuditEvent } from '../../ports.ts';
import {
  CloudApiError,
  ConfigError,
  errorInfo,
  NotImmutableError,
  ObjectExistsError,
} from '../../runtime/errors.ts';
import { isHtmlContentType, unreachable } from '../../runtime/network.ts';
import { parseRetryAfter, type RetryDecision, withRetry } from '../../runtime/retry.ts';
import type { AdapterContext } from '../context.ts';
import { bearerAuthorization, restBaseUrl } from './auth.ts';
import { regionOfBucket, storageOptions } from './buckets.ts';
import { classifyFetch, googleErrorMessage, HttpStatusError, RETRYABLE_NETWORK_CODES } from './rest.ts';

const CLOUD = 'gcp';
const LIST_OPERATION = 'entries.list';
const DEFAULT_LOGGING_ENDPOINT = 'https://logging.googleapis.com';
/** The service named in `cannot reach cloud logging at <endpoint>: …`. */
const LOGGING_SERVICE = 'cloud logging';
const LOGGING_READ_SCOPE = 'https://www.googleapis.com/auth/logging.read';
/** The most entries one `entries.list` page may hold. */
export const AUDIT_PAGE_SIZE = 1000;
// --- audit source ---

/** A string literal of the logging query language. */
function quote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The Logging filter of exactly one cluster's Kubernetes audit entries (every audit log kind). */
export function clusterAuditFilter(cluster: Pick<Cluster, 'name' | 'region'>): string {
  return [
    'resource.type="k8s_cluster"',
    `resource.labels.cluster_name=${quote(cluster.name)}`,
    `resource.labels.location=${quote(cluster.region)}`,
    'logName:"cloudaudit.googleapis.com"',
  ].join(' AND ');
}

/** The `entries.list` filter for one cluster's audit entries in `[since, until)`. */
export function auditFilter(cluster: Pick<Cluster, 'name' | 'region'>, since: Date, until: Date): string {
  return [
    clusterAuditFilter(cluster),
    `timestamp>=${quote(since.toISOString())}`,
    `timestamp<${quote(until.toISOString())}`,
  ].join(' AND ');
}

/** The `entries:list` URL for a config; refuses `insecure` without a loopback `loggingEndpoint`. */
export function loggingListUrl(config: GcpConfig): string {
  const endpoint = restBaseUrl(config, 'loggingEndpoint', DEFAULT_LOGGING_ENDPOINT, 'cloud logging');
  return `${endpoint.origin}${endpoint.pathname.replace(/\/+$/, '')}/v2/entries:list`;
}

interface ListPage {
  entries?: unknown;
  nextPageToken?: unknown;
}

function toEvent(entry: unknown): AuditEvent {
  const raw = JSON.stringify(entry);
  const { insertId, timestamp, logName } = (entry ?? {}) as {
    insertId?: unknown;
    timestamp?: unknown;
    logName?: unknown;
  };
  if (typeof timestamp !== 'string') {
    throw new CloudApiError('entries.list returned an entry without a timestamp', {
      cloud: CLOUD,
      operation: LIST_OPERATION,
      retryable: false,
    });
  }
  const id = typeof insertId === 'string' && insertId !== '' ? insertId : null;
  // Logging's own identity of an entry: log name, timestamp and insertId together.
  const recordId =
    id !== null && typeof logName === 'string' ? cloudLoggingRecordId(logName, timestamp, id) : null;
  return { auditID: id, recordId, timestamp, raw };
}

/**
 * The Cloud Logging audit source of a GCP config (see the module comment); throws
 * {@link ConfigError} for bad connection settings. `options.quotas`: the buckets its reads take
 * tokens from (default: the process's).
 */
export function createAuditSource(
  config: GcpConfig,
  ctx: AdapterContext,
  options: { quotas?: QuotaRegistry } = {},
): QuotaAwareSource {
  const quotas = options.quotas ?? processQuotas;
  const quota: AuditQuota = {
    quota: CLOUD_LOGGING_ENTRIES_LIST,
    clock: quotas.clock,
    scopeOf: (cluster) => (cluster.cloud === 'gcp' ? gcpScopeKey(cluster) : undefined),
    usage: (scope) => quotas.usage(scope),
  };
  const url = loggingListUrl(config);
  const endpoint = config.loggingEndpoint ?? DEFAULT_LOGGING_ENDPOINT;
  const authorization = bearerAuthorization(config, LOGGING_READ_SCOPE);

  const fetchPage = async (body: unknown, signal: AbortSignal | undefined): Promise<ListPage> => {
    const deadline = AbortSignal.timeout(config.timeoutMs);
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...(await authorization()) },
      body: JSON.stringify(body),
      signal: signal ? AbortSignal.any([signal, deadline]) : deadline,
    });
    const text = await response.text();
    // A web server's or proxy's page is not an answer of the api, whatever its status.
    const contentType = response.headers.get('content-type');
    if (isHtmlContentType(contentType)) {
      const page = unreachable(undefined, {
        cloud: CLOUD,
        operation: LIST_OPERATION,
        service: LOGGING_SERVICE,
        endpoint,
        status: response.status,
        contentType,
      });
      if (page) throw page;
    }
    if (!response.ok) {
      throw new HttpStatusError(
        response.status,
        googleErrorMessage(text, response.statusText),
        parseRetryAfter(response.headers.get('retry-after')),
      );
    }
    const page = JSON.parse(text) as ListPage;
    if (
      page === null ||
      typeof page !== 'object' ||
      (page.entries !== undefined && !Array.isArray(page.entries))
    ) {
      throw new SyntaxError('entries.list answered something that is not a list response');
    }
    return page;
  };

  return {
    quota,

    async enabled() {
      return { enabled: true };
    },

    async *read(cluster, window, readOptions = {}) {
      const { signal } = readOptions;
      const scope = quotas.scope(gcpScopeKey(cluster), CLOUD_LOGGING_ENTRIES_LIST);
      const base = {
        resourceNames: [`projects/${cluster.scope}`],
        filter: auditFilter(cluster, window.since, window.until),
        orderBy: 'timestamp asc',
        pageSize: AUDIT_PAGE_SIZE,
      };
      let pageToken: string | undefined;
      let pages = 0;
      do {
        signal?.throwIfAborted();
        const body = pageToken === undefined ? base : { ...base, pageToken };
        let page: ListPage;
        try {
          // Every attempt is a request against the project's quota: each takes a token.
          page = await withRetry(
            async () => {
              await scope.take(signal);
              return fetchPage(body, signal);
            },
            classifyFetch,
            {
              maxAttempts: config.maxAttempts,
              signal,
              onRetry: ({ attempt, delayMs, error }) =>
                ctx.logger.info('Call retried', {
                  operation: LIST_OPERATION,
                  cluster: cluster.id,
                  attempt,
                  delayMs,
                  error: errorInfo(error),
                }),
            },
          );
        } catch (error) {
          if (signal?.aborted) throw signal.reason;
          if (error instanceof CloudApiError) throw error;
          const status = error instanceof HttpStatusError ? error.status : undefined;
          const down = unreachable(error, {
            cloud: CLOUD,
            operation: LIST_OPERATION,
            service: LOGGING_SERVICE,
            endpoint,
            status,
          });
          if (down) throw down;
          const detail = error instanceof Error ? error.message.split('\n')[0] : String(error);
          throw new CloudApiError(
            `reading the audit log of gke cluster ${cluster.id} failed${status === undefined ? '' : ` (${status})`}: ${detail}`,
            { cloud: CLOUD, operation: LIST_OPERATION, status, retryable: classifyFetch(error).retry },
            { cause: error },
          );
        }
        pages++;
        const events = ((page.entries as unknown[] | undefined) ?? []).map(toEvent);
        scope.record(
          events.reduce((n, e) => n + Buffer.byteLength(e.raw), 0),
          events.length,
        );
        if (events.length > 0) yield events;
        pageToken =
          typeof page.nextPageToken === 'string' && page.nextPageToken !== ''
            ? page.nextPageToken
            : undefined;
      } while (pageToken !== undefined);
      ctx.logger.debug('Audit log read', { cloud: CLOUD, cluster: cluster.id, pages });
    },
  };
}

// --- archive store ---

interface ApiErrorLike {
  code?: unknown;
  type?: unknown;
  message?: unknown;
}

function statusOf(error: unknown): number | undefined {
  const code = (error as ApiErrorLike | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function classifyStorage(error: unknown): RetryDecision {
  const { code, type } = (error ?? {}) as ApiErrorLike;
  if (typeof code === 'number') return { retry: code === 408 || code === 429 || code >= 500 };
  if (typeof code === 'string' && RETRYABLE_NETWORK_CODES.has(code)) return { retry: true };
  return { retry: type === 'request-timeout' };
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

const compareGenerations = (a: string, b: string): number => {
  const x = BigInt(a);
  const y = BigInt(b);
  return x > y ? -1 : x < y ? 1 : 0;
};

/**
 * The write-once Cloud Storage archive of one evidence bucket (see the module comment);
 * throws {@link ConfigError} for bad connection settings.
 */
export function createGcsArchiveStore(
  config: GcpConfig,
  evidence: { bucket: string; location: string },
  ctx: AdapterContext,
): ArchiveStore {
  const options = storageOptions(config);
  const id = `gcs:${evidence.bucket}`;
  let storage: Storage | undefined;
  const bucket = () => {
    storage ??= new Storage(options);
    return storage.bucket(evidence.bucket);
  };

  /** Runs one call with our retries; wraps what it finally throws (and passes `passThrough` statuses as they are). */
  const call = async <T>(
    operation: string,
    target: string,
    fn: (attempt: number) => Promise<T>,
    signal: AbortSignal | undefined,
  ): Promise<T> => {
    signal?.throwIfAborted();
    try {
      return await withRetry((attempt) => abortable(fn(attempt), signal), classifyStorage, {
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
      });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (error instanceof CloudApiError || error instanceof ObjectExistsError) throw error;
      const status = statusOf(error);
      const { message } = (error ?? {}) as ApiErrorLike;
      const detail = typeof message === 'string' ? message.split('\n')[0] : String(error);
      throw new CloudApiError(
        `${id}: ${operation} of ${target} failed${status === undefined ? '' : ` (${status})`}: ${detail}`,
        { cloud: CLOUD, operation, status, retryable: classifyStorage(error).retry },
        { cause: error },
      );
    }
  };

  const metadata = (signal: AbortSignal | undefined) =>
    call('buckets.get', evidence.bucket, async () => (await bucket().getMetadata())[0], signal);

  return {
    id,

    async location(locationOptions = {}) {
      const region = regionOfBucket(evidence.bucket, await metadata(locationOptions.signal));
      return { cloud: CLOUD, region };
    },

    async assertImmutable(retentionDays, assertOptions = {}) {
      const policy = (await metadata(assertOptions.signal)).retentionPolicy;
      const seconds = Number(policy?.retentionPeriod ?? Number.NaN);
      const needed = retentionDays * 86_400;
      if (!policy || !Number.isFinite(seconds)) {
        throw new NotImmutableError(
          `gcs bucket ${evidence.bucket} has no retention policy: objects could be deleted or overwritten`,
          id,
        );
      }
      if (seconds < needed) {
        throw new NotImmutableError(
          `gcs bucket ${evidence.bucket} keeps objects ${seconds} s, less than the ${retentionDays} days (${needed} s) required`,
          id,
        );
      }
      if (policy.isLocked !== true) {
        throw new NotImmutableError(
          `gcs bucket ${evidence.bucket} has a retention policy that is not locked: it could be shortened or removed`,
          id,
        );
      }
    },

    async create(key, body, meta, createOptions = {}): Promise<ArchivedObject> {
      const { signal } = createOptions;
      const data = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
      const crc = new CRC32C();
      crc.update(data);
      const md5Hash = createHash('md5').update(data).digest('base64');
      const file = bucket().file(key);
      return call(
        'objects.insert',
        key,
        async (attempt) => {
          try {
            await file.save(data, {
              resumable: false,
              validation: 'md5',
              contentType: meta.contentType,
              preconditionOpts: { ifGenerationMatch: 0 },
              metadata: { md5Hash, crc32c: crc.toString(), metadata: { sha256: meta.sha256 } },
            });
          } catch (error) {
            if (statusOf(error) !== 412) throw error;
            if (attempt > 1) {
              // An earlier attempt may have written it and lost the answer: ours if the digest matches.
              const [existing] = await bucket().file(key).getMetadata();
              if (existing.metadata?.sha256 === meta.sha256 && existing.generation !== undefined) {
                return { key, version: String(existing.generation) };
              }
            }
            throw new ObjectExistsError(key, { cause: error });
          }
          const generation = file.metadata.generation;
          if (generation === undefined) {
            throw new CloudApiError(`${id}: objects.insert of ${key} answered no generation`, {
              cloud: CLOUD,
              operation: 'objects.insert',
              retryable: false,
            });
          }
          return { key, version: String(generation) };
        },
        signal,
      );
    },

    async get(key, getOptions = {}) {
      const { version, signal } = getOptions;
      let file: File;
      if (version === undefined) file = bucket().file(key);
      else {
        if (!/^\d+$/.test(version)) return undefined;
        file = bucket().file(key, { generation: version });
      }
      return call(
        'objects.get',
        key,
        async () => {
          try {
            const [bytes] = await file.download();
            return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
          } catch (error) {
            if (statusOf(error) === 404) return undefined;
            throw error;
          }
        },
        signal,
      );
    },

    async list(prefix, listOptions = {}) {
      const [files] = await call(
        'objects.list',
        prefix,
        () => bucket().getFiles({ prefix, versions: true, autoPaginate: true }),
        listOptions.signal,
      );
      const byKey = new Map<string, string[]>();
      // The creation time (`timeCreated`) of each generation: the latest one's is the object's.
      const createdOf = new Map<string, string>();
      for (const file of files) {
        const generation = file.metadata.generation ?? file.generation;
        if (generation === undefined) continue;
        const versions = byKey.get(file.name) ?? [];
        versions.push(String(generation));
        byKey.set(file.name, versions);
        const created = file.metadata.timeCreated;
        if (typeof created === 'string') createdOf.set(`${file.name}\u0000${generation}`, created);
      }
      return [...byKey.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([key, versions]) => {
          versions.sort(compareGenerations);
          const created = createdOf.get(`${key}\u0000${versions[0]}`);
          return {
            key,
            versions,
            created: created === undefined ? undefined : new Date(created).toISOString(),
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
    provider: 'gcp',
    holder: 'member',
    capability: 'audit-read',
    permission: 'logging.logEntries.list',
    calls: ['logging:entries.list'],
    why: "read the cluster's Kubernetes audit entries (cloudaudit.googleapis.com logs) from Cloud Logging",
  },
  {
    provider: 'gcp',
    holder: 'member',
    capability: 'audit-read',
    permission: 'logging.privateLogEntries.list',
    calls: ['logging:entries.list'],
    why: 'read Data Access audit entries (data_access log), which the plain list permission does not cover',
  },
  {
    provider: 'gcp',
    holder: 'member',
    capability: 'evidence-write',
    permission: 'storage.buckets.get',
    calls: ['storage:buckets.get'],
    why: 'check that the evidence bucket is write-once (retention policy locked) and lies in its jurisdiction',
  },
  {
    provider: 'gcp',
    holder: 'member',
    capability: 'evidence-read',
    permission: 'storage.buckets.get',
    calls: ['storage:buckets.get'],
    why: 'check that the evidence bucket is write-once (retention policy locked) and lies in its jurisdiction',
  },
  {
    provider: 'gcp',
    holder: 'member',
    capability: 'evidence-write',
    permission: 'storage.objects.create',
    calls: ['storage:objects.insert'],
    why: 'write audit chunks, manifests and snapshots once (ifGenerationMatch: 0)',
  },
  {
    provider: 'gcp',
    holder: 'member',
    capability: 'evidence-write',
    permission: 'storage.objects.get',
    calls: ['storage:objects.get'],
    why: 'read back an object an interrupted attempt may already have written',
  },
  {
    provider: 'gcp',
    holder: 'member',
    capability: 'evidence-read',
    permission: 'storage.objects.get',
    calls: ['storage:objects.get'],
    why: 'read archived evidence (by generation) to verify it',
  },
  {
    provider: 'gcp',
    holder: 'member',
    capability: 'evidence-read',
    permission: 'storage.objects.list',
    calls: ['storage:objects.list'],
    why: 'list object generations, so an overwrite or a deletion shows',
  },
];
