import { LogsQueryClient, LogsQueryResultStatus, type LogsTable } from '@azure/monitor-query-logs';
import {
  type AuditQuota,
  azureScopeKey,
  LOG_ANALYTICS_QUERY,
  processQuotas,
  type QuotaAwareSource,
  type QuotaRegistry,
} from '../../audit/quota.ts';
import type { AzureConfig } from '../../config/schema.ts';
import type { Cluster } from '../../model.ts';
import type { AuditEvent } from '../../ports.ts';
import { CloudApiError, ConfigError, errorInfo, FleetwardError } from '../../runtime/errors.ts';
import { unreachable } from '../../runtime/network.ts';
import { withRetry } from '../../runtime/retry.ts';
import type { AdapterContext } from '../context.ts';
import { clusterResourceId, connectionOf, createCredential, SERVICE, type TokenCredential } from './arm.ts';
import { armGetJson, classifyAny } from './arm-rest.ts';
import { abortReason, clip } from './evidence.ts';

// The archive store lived here first; it is apart so the snapshot's bundle has no log reader.
export { type BlobArchiveContext, type BlobEvidence, createBlobArchiveStore } from './evidence.ts';

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

// --- shared helpers ---

export { clusterResourceId } from './arm.ts';

// --- ARM diagnostic settings ---

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
  /** The buckets the queries take tokens from (default: the process's). */
  quotas?: QuotaRegistry;
}

/**
 * The AKS audit log source of an Azure config (see the module comment).
 *
 * Quota: every query attempt first takes a token of the identity-wide bucket
 * (`azure-identity:<client id>`: Microsoft meters 200 queries per 30 s per user across all
 * workspaces) and then one of its workspace's bucket `azure:<workspace id>`, which counts the
 * requests, bytes (the rows' JSON) and rows read (shared/audit/quota.ts).
 */
export function createAuditSource(config: AzureConfig, ctx: AuditSourceContext): QuotaAwareSource {
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
  const quotas = ctx.quotas ?? processQuotas;
  const identityKey = `azure-identity:${'clientId' in config.credential ? config.credential.clientId : config.credential.type}`;
  const quota: AuditQuota = {
    quota: LOG_ANALYTICS_QUERY,
    clock: quotas.clock,
    scopeOf(cluster) {
      if (cluster.cloud !== 'azure') return undefined;
      let id: string;
      try {
        id = clusterResourceId(cluster);
      } catch {
        return undefined;
      }
      const destination = destinations.get(id.toLowerCase());
      return destination ? azureScopeKey(destination.workspaceId) : undefined;
    },
    usage: (scope) => quotas.usage(scope),
  };

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
    quota,

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
      const identity = quotas.scope(identityKey, LOG_ANALYTICS_QUERY);
      const workspace = quotas.scope(azureScopeKey(destination.workspaceId), LOG_ANALYTICS_QUERY);
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
              // Every attempt is a query: the identity's rate first, then the workspace's.
              await identity.take(signal);
              await workspace.take(signal);
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
        workspace.record(
          events.reduce((n, e) => n + Buffer.byteLength(e.raw), 0),
          events.length,
        );
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
];
