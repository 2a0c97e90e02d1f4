/**
 * AKS control-plane audit logs: where they are read (a Log Analytics workspace) and where
 * they are archived (a blob container with version-level immutability).
 *
 * Source ({@link createAuditSource}):
 * - `enabled`: ARM `GET {cluster}/providers/Microsoft.Insights/diagnosticSettings`
 *   (api-version 2021-05-01-preview) must hold a setting with an enabled `kube-audit` or
 *   `kube-audit-admin` log and a `workspaceId`. Workspace convention (no config needed): the
 *   id used for queries is the setting's `workspaceCustomerId` property when present, else the
 *   last path segment of the `workspaceId` resource id (`.../workspaces/<name>`). The real
 *   query API wants the workspace's customer id (a GUID); a deployment where the segment is
 *   not it must expose `workspaceCustomerId`.
 *   The table follows `logAnalyticsDestinationType`: `Dedicated` → `AKSAudit` (or
 *   `AKSAuditAdmin` when only the admin category is on), otherwise `AzureDiagnostics` filtered
 *   by `Category` (`kube-audit` preferred: it is a superset of `kube-audit-admin`).
 * - `read`: `LogsQueryClient.queryWorkspace` of `@azure/monitor-query-logs` against
 *   `<logAnalyticsEndpoint>/v1` (the client uses its `endpoint` option as the base URL as is),
 *   token scope `<origin>/.default`, `caFile` through `tlsOptions.ca` as for ARM. Pages of at
 *   most {@link AUDIT_PAGE_ROWS} rows (`order by TimeGenerated asc | take N`); the next page
 *   starts AT the last row's TimeGenerated (truncated to ms, as the client parses datetimes
 *   into `Date`) and rows already returned for that millisecond are dropped, so rows sharing
 *   the boundary timestamp are neither lost nor doubled. A page of only such rows doubles `take`
 *   (up to 500,000, the service's limit) before giving up. Retries (ours, `maxAttempts`) on
 *   408/429/5xx and network errors, honouring `Retry-After`.
 *   `AuditEvent.raw` is the row as a `{ column: value }` object in JSON (datetimes as ISO with
 *   ms, dynamic columns as objects); `auditID` is `AuditId` (AKSAudit) or the `auditID` of the
 *   JSON in `log_s` (AzureDiagnostics), `null` when empty or unparseable.
 *
 * Archive ({@link createBlobArchiveStore}): see its doc comment.
 */
import { createHash } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { type BlobContainer, StorageManagementClient } from '@azure/arm-storage';
import { LogsQueryClient, LogsQueryResultStatus, type LogsTable } from '@azure/monitor-query-logs';
import { ContainerClient, type StorageSharedKeyCredential } from '@azure/storage-blob';
import type { AzureConfig } from '../../config/schema.ts';
import type { Cluster } from '../../model.ts';
import type { ArchivedObject, ArchiveStore, AuditEvent, AuditLogSource } from '../../ports.ts';
import {
  CloudApiError,
  ConfigError,
  errorInfo,
  FleetwardError,
  NotImmutableError,
  ObjectExistsError,
} from '../../runtime/errors.ts';
import { isHtmlContentType, unreachable } from '../../runtime/network.ts';
import { parseRetryAfter, type RetryDecision, withRetry } from '../../runtime/retry.ts';
import type { AdapterContext } from '../context.ts';
import { createBucketLocator } from './buckets.ts';
import {
  type Connection,
  classify,
  connectionOf,
  createCredential,
  requestPolicy,
  SERVICE,
  type TokenCredential,
} from './discovery.ts';

const CLOUD = 'azure';
type PipelinePolicy = NonNullable<
  NonNullable<ConstructorParameters<typeof LogsQueryClient>[1]>['additionalPolicies']
>[number]['policy'];
/** The service named in `cannot reach log analytics at <endpoint>: …`. */
const LOG_ANALYTICS_SERVICE = 'log analytics';
/** Rows per query page. */
export const AUDIT_PAGE_ROWS = 5000;
const MAX_TAKE = 500_000;
const DIAGNOSTICS_API_VERSION = '2021-05-01-preview';
/** The operation name of the container read of `assertImmutable`. */
const CONTAINER_OPERATION = 'blobContainers.get';

// --- shared helpers ---

function clip(text: string, max = 300): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function abortReason(signal: AbortSignal | undefined): unknown {
  return signal?.reason ?? new Error('aborted');
}

/** The ARM id of an AKS cluster. */
export function clusterResourceId(cluster: Cluster): string {
  const rg = cluster.resourceGroup ?? cluster.id.split('/')[2];
  if (cluster.cloud !== 'azure' || !rg) {
    throw new FleetwardError(`cluster ${cluster.id} is not an aks cluster (no resource group)`);
  }
  return `/subscriptions/${cluster.scope}/resourceGroups/${rg}/providers/Microsoft.ContainerService/managedClusters/${cluster.name}`;
}

// --- ARM diagnostic settings ---

/** An HTTP failure of our own ARM GET, shaped for {@link classify}-like decisions. */
class HttpStatusError extends Error {
  readonly status: number;
  readonly retryAfter: string | undefined;
  /** The answer's content type, when it was a web page (not ARM's JSON). */
  readonly contentType: string | undefined;
  constructor(status: number, body: string, retryAfter: string | undefined, contentType?: string) {
    super(`http ${status}: ${clip(body)}`);
    this.name = 'HttpStatusError';
    this.status = status;
    this.contentType = contentType;
    this.retryAfter = retryAfter;
  }
}

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN']);

function classifyAny(error: unknown): RetryDecision {
  if (error instanceof HttpStatusError) {
    const s = error.status;
    return {
      retry: s === 408 || s === 429 || (s >= 500 && s !== 501 && s !== 505),
      afterMs: parseRetryAfter(error.retryAfter),
    };
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return { retry: true };
  return classify(error);
}

function armGetJson(
  connection: Connection,
  token: string,
  path: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<unknown> {
  const url = new URL(`${connection.endpoint}${path}`);
  if (url.origin !== connection.origin)
    throw new FleetwardError('refusing a request outside the arm endpoint');
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: 'GET',
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
        ...(connection.ca ? { ca: connection.ca } : {}),
        signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(signal ? [signal] : [])]),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          const ra = res.headers['retry-after'];
          const contentType = res.headers['content-type'];
          // A web server's or proxy's page is not ARM's answer, whatever its status.
          if (isHtmlContentType(contentType)) {
            reject(new HttpStatusError(status, '', Array.isArray(ra) ? ra[0] : ra, contentType));
            return;
          }
          if (status >= 300) {
            reject(new HttpStatusError(status, text, Array.isArray(ra) ? ra[0] : ra));
            return;
          }
          try {
            resolve(JSON.parse(text) as unknown);
          } catch (error) {
            reject(new FleetwardError('arm answered a body that is not json', { cause: error }));
          }
        });
      },
    );
    req.on('error', (error: Error) => {
      if (error.name === 'TimeoutError' || (error.name === 'AbortError' && !signal?.aborted)) {
        const e = new HttpStatusError(408, `request timed out after ${timeoutMs} ms`, undefined);
        reject(e);
        return;
      }
      reject(error);
    });
    req.end();
  });
}

/** Where a cluster's audit log lands, per its diagnostic settings. */
export interface AuditDestination {
  /** The workspace id used in query URLs. */
  workspaceId: string;
  table: 'AKSAudit' | 'AKSAuditAdmin' | 'AzureDiagnostics';
  /** The `Category` filter of `AzureDiagnostics`. */
  category?: 'kube-audit' | 'kube-audit-admin';
}

interface DiagnosticSetting {
  properties?: {
    workspaceId?: string | null;
    workspaceCustomerId?: string | null;
    logAnalyticsDestinationType?: string | null;
    logs?: { category?: string | null; enabled?: boolean }[];
  };
}

/** The destination of the first diagnostic setting that sends an audit category to a workspace. */
export function auditDestinationOf(settings: unknown): AuditDestination | undefined {
  const value = (settings as { value?: unknown } | null)?.value;
  if (!Array.isArray(value)) return undefined;
  for (const s of value as DiagnosticSetting[]) {
    const p = s?.properties;
    const workspace = p?.workspaceCustomerId || p?.workspaceId?.split('/').filter(Boolean).pop();
    if (!workspace) continue;
    const on = new Set((p?.logs ?? []).filter((l) => l?.enabled === true).map((l) => l.category));
    const category = on.has('kube-audit')
      ? 'kube-audit'
      : on.has('kube-audit-admin')
        ? 'kube-audit-admin'
        : undefined;
    if (!category) continue;
    if (p?.logAnalyticsDestinationType?.toLowerCase() === 'dedicated') {
      return { workspaceId: workspace, table: category === 'kube-audit' ? 'AKSAudit' : 'AKSAuditAdmin' };
    }
    return { workspaceId: workspace, table: 'AzureDiagnostics', category };
  }
  return undefined;
}

/** The KQL of one page. */
export function auditQuery(
  destination: AuditDestination,
  resourceId: string,
  since: Date,
  until: Date,
  take: number,
): string {
  if (/["\\\n]/.test(resourceId))
    throw new FleetwardError(`unexpected characters in resource id ${resourceId}`);
  return [
    destination.table,
    `where _ResourceId =~ "${resourceId}"`,
    ...(destination.table === 'AzureDiagnostics' ? [`where Category == "${destination.category}"`] : []),
    `where TimeGenerated >= datetime(${since.toISOString()}) and TimeGenerated < datetime(${until.toISOString()})`,
    'order by TimeGenerated asc',
    `take ${take}`,
  ].join(' | ');
}

function auditIdOf(destination: AuditDestination, row: Record<string, unknown>): string | null {
  if (destination.table !== 'AzureDiagnostics') {
    return typeof row.AuditId === 'string' && row.AuditId !== '' ? row.AuditId : null;
  }
  if (typeof row.log_s !== 'string') return null;
  try {
    const id = (JSON.parse(row.log_s) as { auditID?: unknown } | null)?.auditID;
    return typeof id === 'string' && id !== '' ? id : null;
  } catch {
    return null;
  }
}

/** The Event's stage: AKSAudit's `Stage` column, or the `stage` of AzureDiagnostics' `log_s`. */
function stageOf(destination: AuditDestination, row: Record<string, unknown>): string | null {
  let stage: unknown;
  if (destination.table !== 'AzureDiagnostics') stage = row.Stage;
  else if (typeof row.log_s === 'string') {
    try {
      stage = (JSON.parse(row.log_s) as { stage?: unknown } | null)?.stage;
    } catch {
      stage = undefined;
    }
  }
  return typeof stage === 'string' && stage !== '' ? stage : null;
}

function rowsOf(table: LogsTable): { object: Record<string, unknown>; time: number }[] {
  const names = table.columnDescriptors.map((c) => c.name ?? '');
  const timeIndex = names.indexOf('TimeGenerated');
  if (timeIndex < 0) {
    throw new CloudApiError('log analytics answered a table without TimeGenerated', {
      cloud: CLOUD,
      operation: 'logAnalytics.query',
      retryable: false,
    });
  }
  return table.rows.map((row) => {
    const object: Record<string, unknown> = {};
    names.forEach((n, i) => {
      object[n] = row[i];
    });
    const t = row[timeIndex];
    const time = t instanceof Date ? t.getTime() : Date.parse(String(t));
    if (Number.isNaN(time)) {
      throw new CloudApiError('log analytics answered a row without a valid TimeGenerated', {
        cloud: CLOUD,
        operation: 'logAnalytics.query',
        retryable: false,
      });
    }
    return { object, time };
  });
}

export interface AuditSourceContext extends AdapterContext {
  /** Replaces the configured credential (tests). */
  credential?: TokenCredential;
  /** Rows per query (default {@link AUDIT_PAGE_ROWS}). */
  pageRows?: number;
}

/** The AKS audit log source of an Azure config (see the module comment). */
export function createAuditSource(config: AzureConfig, ctx: AuditSourceContext): AuditLogSource {
  const arm = connectionOf(config);
  const laUrl = new URL(config.logAnalyticsEndpoint ?? 'https://api.loganalytics.io');
  if (laUrl.protocol !== 'https:') {
    throw new ConfigError([{ path: 'clouds.azure.logAnalyticsEndpoint', message: 'expected an https URL' }]);
  }
  const laBase = `${laUrl.origin}${laUrl.pathname.replace(/\/+$/, '')}`;
  const pageRows = ctx.pageRows ?? AUDIT_PAGE_ROWS;
  let credential: Promise<TokenCredential> | undefined = ctx.credential
    ? Promise.resolve(ctx.credential)
    : undefined;
  let client: LogsQueryClient | undefined;
  const destinations = new Map<string, AuditDestination | undefined>();

  const getCredential = async (operation: string): Promise<TokenCredential> => {
    credential ??= createCredential(config.credential);
    try {
      return await credential;
    } catch (error) {
      credential = undefined;
      throw new CloudApiError(
        `azure credential failed: ${clip(String((error as Error)?.message ?? error))}`,
        { cloud: CLOUD, operation, retryable: false },
        { cause: error },
      );
    }
  };

  const retrying = <T>(operation: string, fn: () => Promise<T>, signal: AbortSignal | undefined) =>
    withRetry(fn, classifyAny, {
      maxAttempts: config.maxAttempts,
      signal,
      onRetry: ({ attempt, delayMs, error }) =>
        ctx.logger.info('Call retried', { operation, attempt, delayMs, error: errorInfo(error) }),
    });

  /**
   * Errors of the requests to ARM (diagnostic settings) and of the Log Analytics pipeline; a
   * credential's errors are about its token endpoint, not these, and are never classified.
   */
  const requestErrors = new WeakSet<object>();
  const fromRequest = <T>(promise: Promise<T>): Promise<T> =>
    promise.catch((error: unknown) => {
      if (error && typeof error === 'object') requestErrors.add(error);
      throw error;
    });

  /**
   * Wraps an error once, where it enters. A refused connection, failed DNS lookup, rejected
   * certificate, timeout or HTML page of a request to `at.endpoint` is `cannot reach
   * <at.service> at <endpoint>: <reason>`.
   */
  const wrap = (
    operation: string,
    what: string,
    error: unknown,
    at: { service: string; endpoint: string },
  ): CloudApiError => {
    if (error instanceof CloudApiError) return error;
    const e = error as {
      name?: unknown;
      statusCode?: unknown;
      status?: unknown;
      code?: unknown;
      message?: unknown;
      contentType?: unknown;
      response?: { headers?: { get?: (name: string) => string | undefined } };
    };
    const status =
      typeof e?.statusCode === 'number' ? e.statusCode : typeof e?.status === 'number' ? e.status : undefined;
    if (e && typeof e === 'object' && (requestErrors.has(e) || e.name === 'RestError')) {
      const contentType =
        typeof e.contentType === 'string' ? e.contentType : e.response?.headers?.get?.('content-type');
      const down = unreachable(error, { cloud: CLOUD, operation, ...at, status, contentType });
      if (down) return down;
    }
    return new CloudApiError(
      `${what} failed${status === undefined ? '' : ` (${status})`}: ${clip(String(e?.message ?? error))}`,
      { cloud: CLOUD, operation, status, retryable: classifyAny(error).retry },
      { cause: error },
    );
  };

  const destinationOf = async (
    cluster: Cluster,
    signal: AbortSignal | undefined,
  ): Promise<AuditDestination | undefined> => {
    const id = clusterResourceId(cluster);
    const operation = 'diagnosticSettings.list';
    const cred = await getCredential(operation);
    try {
      const body = await retrying(
        operation,
        async () => {
          const token = await cred.getToken(arm.scope, signal ? { abortSignal: signal } : {});
          if (!token) throw new FleetwardError('the azure credential returned no token');
          return fromRequest(
            armGetJson(
              arm,
              token.token,
              `${id}/providers/Microsoft.Insights/diagnosticSettings?api-version=${DIAGNOSTICS_API_VERSION}`,
              config.timeoutMs,
              signal,
            ),
          );
        },
        signal,
      );
      const destination = auditDestinationOf(body);
      destinations.set(id.toLowerCase(), destination);
      return destination;
    } catch (error) {
      if (signal?.aborted) throw abortReason(signal);
      throw wrap(operation, `reading the diagnostic settings of ${cluster.id}`, error, {
        service: SERVICE,
        endpoint: arm.endpoint,
      });
    }
  };

  /**
   * A web server's or proxy's page is not Log Analytics' answer, whatever its status: the client
   * would take its text for a query result (and fail reading tables out of it).
   */
  const rejectHtmlAnswers: PipelinePolicy = {
    name: 'fleetwardRejectHtmlAnswers',
    async sendRequest(request, next) {
      const response = await next(request);
      const page = unreachable(undefined, {
        cloud: CLOUD,
        operation: 'logAnalytics.query',
        service: LOG_ANALYTICS_SERVICE,
        endpoint: laBase,
        status: response.status,
        contentType: response.headers.get('content-type'),
      });
      if (page) throw page;
      return response;
    },
  };

  const queryClient = async (): Promise<LogsQueryClient> => {
    if (client) return client;
    const cred = await getCredential('logAnalytics.query');
    client = new LogsQueryClient(cred, {
      endpoint: `${laBase}/v1`,
      credentials: { scopes: [`${laUrl.origin}/.default`] },
      retryOptions: { maxRetries: 0 },
      additionalPolicies: [{ policy: rejectHtmlAnswers, position: 'perRetry' }],
      ...(arm.ca ? { tlsOptions: { ca: arm.ca } } : {}),
      userAgentOptions: { userAgentPrefix: 'fleetward' },
    });
    return client;
  };

  return {
    async enabled(cluster, options = {}) {
      options.signal?.throwIfAborted();
      const destination = await destinationOf(cluster, options.signal);
      if (destination) return { enabled: true };
      return {
        enabled: false,
        reason:
          'no diagnostic setting sends the kube-audit or kube-audit-admin log of the cluster to a log analytics workspace',
      };
    },

    async *read(cluster, window, options = {}) {
      const { signal } = options;
      signal?.throwIfAborted();
      const resourceId = clusterResourceId(cluster);
      const destination =
        destinations.get(resourceId.toLowerCase()) ?? (await destinationOf(cluster, signal));
      if (!destination) {
        throw new FleetwardError(
          `cluster ${cluster.id} sends no audit log to a log analytics workspace (diagnostic settings)`,
        );
      }
      const logs = await queryClient();
      const operation = 'logAnalytics.query';
      let since = new Date(window.since.getTime());
      const until = window.until;
      /** Rows already returned whose TimeGenerated (ms) equals `since`. */
      let boundary = new Set<string>();
      let take = pageRows;
      while (since.getTime() < until.getTime()) {
        const query = auditQuery(destination, resourceId, since, until, take);
        let table: LogsTable;
        try {
          table = await retrying(
            operation,
            async () => {
              const result = await logs.queryWorkspace(
                destination.workspaceId,
                query,
                { startTime: since, endTime: until },
                {
                  requestOptions: {
                    timeout: config.timeoutMs,
                  },
                  ...(signal ? { abortSignal: signal } : {}),
                },
              );
              if (result.status !== LogsQueryResultStatus.Success) {
                throw new CloudApiError(
                  `log analytics answered a partial result: ${clip(String(result.partialError?.message))}`,
                  { cloud: CLOUD, operation, retryable: false },
                );
              }
              const first = result.tables[0];
              if (!first)
                throw new CloudApiError('log analytics answered no table', {
                  cloud: CLOUD,
                  operation,
                  retryable: false,
                });
              return first;
            },
            signal,
          );
        } catch (error) {
          if (signal?.aborted) throw abortReason(signal);
          throw wrap(operation, `querying the audit log of ${cluster.id}`, error, {
            service: LOG_ANALYTICS_SERVICE,
            endpoint: laBase,
          });
        }
        const rows = rowsOf(table);
        const events: AuditEvent[] = [];
        const nextBoundary = new Set<string>();
        const last = rows.length > 0 ? rows[rows.length - 1]!.time : undefined;
        for (const { object, time } of rows) {
          const raw = JSON.stringify(object);
          if (time === since.getTime() && boundary.has(raw)) continue;
          if (time === last) nextBoundary.add(raw);
          const auditID = auditIdOf(destination, object);
          events.push({
            auditID,
            stage: auditID === null ? null : stageOf(destination, object),
            recordId: typeof object._ItemId === 'string' && object._ItemId !== '' ? object._ItemId : null,
            timestamp: new Date(time).toISOString(),
            raw,
          });
        }
        if (events.length > 0) yield events;
        if (rows.length < take) return;
        // A full page: more rows may follow, from the last timestamp on.
        if (last === since.getTime()) {
          // Every row was at `since`: ask for more at once.
          for (const raw of nextBoundary) boundary.add(raw);
          if (take >= MAX_TAKE) {
            throw new CloudApiError(
              `more than ${MAX_TAKE} audit rows of ${cluster.id} share the timestamp ${since.toISOString()}`,
              { cloud: CLOUD, operation, retryable: false },
            );
          }
          take = Math.min(MAX_TAKE, take * 2);
          continue;
        }
        since = new Date(last!);
        boundary = nextBoundary;
        take = pageRows;
      }
    },
  };
}

// --- archive ---

/** The evidence container of a jurisdiction (`jurisdictions.<id>.evidence.azure`). */
export interface BlobEvidence {
  storageAccount: string;
  container: string;
  region: string;
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
      const byKey = new Map<string, { version: string; current: boolean }[]>();
      try {
        for await (const item of client.listBlobsFlat({
          prefix,
          includeVersions: true,
          ...abortOpts(options.signal),
        })) {
          if (!item.versionId) continue;
          const list = byKey.get(item.name) ?? [];
          list.push({ version: item.versionId, current: item.isCurrentVersion === true });
          byKey.set(item.name, list);
        }
      } catch (error) {
        if (options.signal?.aborted) throw abortReason(options.signal);
        throw fail('container.listBlobs', `listing ${prefix}`, error);
      }
      return [...byKey.keys()].sort().map((key) => ({
        key,
        // Version ids are timestamps: newest first is descending order.
        versions: byKey
          .get(key)!
          .map((v) => v.version)
          .sort()
          .reverse(),
      }));
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
    capability: 'audit-read',
    permission: 'Microsoft.Insights/diagnosticSettings/read',
    calls: ['arm:diagnosticSettings.list'],
    why: 'check that a cluster sends kube-audit logs to a Log Analytics workspace, and find it',
  },
  {
    provider: 'azure',
    holder: 'member',
    capability: 'audit-read',
    permission: 'Microsoft.OperationalInsights/workspaces/query/read',
    calls: ['loganalytics:query'],
    why: 'query the AKSAudit / AzureDiagnostics rows of the workspace',
  },
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
