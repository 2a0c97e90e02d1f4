/**
 * A local Log Analytics query API (`api.loganalytics.io`): an HTTPS server on 127.0.0.1
 * answering `POST /v1/workspaces/{workspaceId}/query` with `{ query, timespan }`, in the wire
 * shape of the REST reference (`{ tables: [{ name: 'PrimaryResult', columns: [{ name, type }],
 * rows }] }`, datetimes as ISO strings with 7 fractional digits, `dynamic` cells as JSON text),
 * which is what `LogsQueryClient.queryWorkspace` of `@azure/monitor-query-logs` sends and parses
 * (its base URL is the `endpoint` option as given, so clients pass `<endpoint>/v1`).
 *
 * It is no KQL engine: it accepts exactly the queries the AKS audit source sends and answers
 * 400 `BadArgumentError` to anything else:
 *
 *     AKSAudit | where _ResourceId =~ "<id>" | where TimeGenerated >= datetime(<iso>) and TimeGenerated < datetime(<iso>) | order by TimeGenerated asc | take <n>
 *     AzureDiagnostics | where _ResourceId =~ "<id>" | where Category == "kube-audit" | where TimeGenerated >= ... | order by TimeGenerated asc | take <n>
 *
 * (`AKSAuditAdmin` and `Category == "kube-audit-admin"` are accepted too and serve the same
 * events: the fake does not model which events the admin category leaves out.) The body's
 * `timespan` (`<start>/<end>`), when given, filters too (both ends inclusive).
 *
 * Every request needs `Authorization: Bearer <token>`. Faults come from a {@link FaultInjector}
 * (cloud `azure`, operation `logAnalytics.query`, scope = the workspace id).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { FaultInjector, holdResponse, RequestLog, sendTruncatedJson } from './faults.ts';
import { deniedMessage } from './request-log.ts';
import { localCert } from './tls.ts';

export interface LogAnalyticsFakeOptions {
  faults?: FaultInjector;
  log?: RequestLog;
  /** Where the CA and server certificate live (default `.fleetward/sandbox/tls`). */
  certDir?: string;
}

/** One seeded audit event, kept in the fake's own terms. */
export interface SeededAuditEvent {
  /** ISO 8601 with 7 fractional digits, as Log Analytics serialises datetimes. */
  timeGenerated: string;
  /** Empty for a malformed row. */
  auditId: string;
  clusterResourceId: string;
}

export interface LogAnalyticsFake {
  /** `https://127.0.0.1:<port>` (the API lives under `/v1`). */
  endpoint: string;
  caFile: string;
  log: RequestLog;
  /**
   * Adds `count` audit events of a cluster to a workspace: the first at `start`, each next one
   * `spacingMs` later (0: all share one timestamp). Every 25th event (indexes 7, 32, 57, ...) has an
   * empty `AuditId` and an unparseable `log_s`, as malformed lines do. Returns what was added.
   */
  seed(
    workspaceId: string,
    clusterResourceId: string,
    count: number,
    options: { start: Date; spacingMs: number },
  ): SeededAuditEvent[];
  stop(): Promise<void>;
}

/** Columns of the resource-specific `AKSAudit` table (Azure Monitor table reference). */
export const AKS_AUDIT_COLUMNS = [
  { name: 'TenantId', type: 'string' },
  { name: 'TimeGenerated', type: 'datetime' },
  { name: 'Level', type: 'string' },
  { name: 'AuditId', type: 'string' },
  { name: 'Stage', type: 'string' },
  { name: 'RequestUri', type: 'string' },
  { name: 'Verb', type: 'string' },
  { name: 'User', type: 'dynamic' },
  { name: 'SourceIps', type: 'dynamic' },
  { name: 'UserAgent', type: 'string' },
  { name: 'ObjectRef', type: 'dynamic' },
  { name: 'ResponseStatus', type: 'dynamic' },
  { name: 'RequestReceivedTime', type: 'datetime' },
  { name: 'StageReceivedTime', type: 'datetime' },
  { name: 'Annotations', type: 'dynamic' },
  { name: 'SourceSystem', type: 'string' },
  { name: 'PodName', type: 'string' },
  { name: 'Type', type: 'string' },
  { name: '_ResourceId', type: 'string' },
] as const;

/** Columns of the `AzureDiagnostics` rows of AKS control-plane logs (the audit event is the JSON text in `log_s`). */
export const AZURE_DIAGNOSTICS_COLUMNS = [
  { name: 'TenantId', type: 'string' },
  { name: 'TimeGenerated', type: 'datetime' },
  { name: 'ResourceId', type: 'string' },
  { name: 'Category', type: 'string' },
  { name: 'ResourceGroup', type: 'string' },
  { name: 'SubscriptionId', type: 'string' },
  { name: 'ResourceProvider', type: 'string' },
  { name: 'Resource', type: 'string' },
  { name: 'ResourceType', type: 'string' },
  { name: 'OperationName', type: 'string' },
  { name: 'log_s', type: 'string' },
  { name: 'pod_s', type: 'string' },
  { name: 'stream_s', type: 'string' },
  { name: 'SourceSystem', type: 'string' },
  { name: 'Type', type: 'string' },
  { name: '_ResourceId', type: 'string' },
] as const;

const TENANT = '00000000-0000-0000-0000-000000000000';
const DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?Z$/;
const QUERY =
  /^\s*(AKSAudit|AKSAuditAdmin|AzureDiagnostics)\s*\|\s*where\s+_ResourceId\s+=~\s+"([^"\\]+)"\s*(?:\|\s*where\s+Category\s+==\s+"(kube-audit|kube-audit-admin)"\s*)?\|\s*where\s+TimeGenerated\s+>=\s+datetime\(([^)]+)\)\s+and\s+TimeGenerated\s+<\s+datetime\(([^)]+)\)\s*\|\s*order\s+by\s+TimeGenerated\s+asc\s*\|\s*take\s+(\d+)\s*$/;
const QUERY_PATH = /^\/v1\/workspaces\/([^/]+)\/query\/?$/;

/** Query parameters the fake understood. */
export interface ParsedAuditQuery {
  table: 'AKSAudit' | 'AKSAuditAdmin' | 'AzureDiagnostics';
  resourceId: string;
  category?: string;
  since: string;
  until: string;
  take: number;
}

/** Parses a query of the supported shapes, or returns why it is refused. */
export function parseAuditQuery(query: string): ParsedAuditQuery | string {
  const m = QUERY.exec(query);
  if (!m) return 'the fake accepts only the AKS audit query shapes (see log-analytics-fake.ts)';
  const [, table, resourceId, category, since, until, take] = m as unknown as string[];
  if ((table === 'AzureDiagnostics') !== (category !== undefined))
    return 'a Category filter goes with AzureDiagnostics, and only with it';
  if (!DATETIME.test(since!) || !DATETIME.test(until!)) return 'datetime() expects an ISO 8601 UTC literal';
  const n = Number(take);
  if (!Number.isSafeInteger(n) || n < 1 || n > 500_000) return 'take expects 1..500000';
  return {
    table: table as ParsedAuditQuery['table'],
    resourceId: resourceId!,
    ...(category ? { category } : {}),
    since: since!,
    until: until!,
    take: n,
  };
}

/** `2025-01-01T00:00:00.123Z` → `2025-01-01T00:00:00.1230000Z`. */
function laTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$10000Z');
}

interface StoredEvent extends SeededAuditEvent {
  ms: number;
  index: number;
}

function auditEventOf(e: StoredEvent) {
  const n = e.index;
  const verbs = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];
  const verb = verbs[n % verbs.length]!;
  const namespace = ['kube-system', 'default', 'velero'][n % 3]!;
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: e.auditId,
    stage: 'ResponseComplete',
    requestURI: `/api/v1/namespaces/${namespace}/configmaps?limit=500&n=${n}`,
    verb,
    user: {
      username: 'system:serviceaccount:kube-system:generic-garbage-collector',
      groups: ['system:serviceaccounts', 'system:authenticated'],
    },
    sourceIPs: ['10.224.0.4'],
    userAgent: 'kube-controller-manager/v1.30.3 (linux/amd64) kubernetes/0000000',
    objectRef: { resource: 'configmaps', namespace, apiVersion: 'v1' },
    responseStatus: { metadata: {}, code: verb === 'create' ? 201 : 200 },
    requestReceivedTimestamp: e.timeGenerated,
    stageTimestamp: e.timeGenerated,
    annotations: { 'authorization.k8s.io/decision': 'allow', 'authorization.k8s.io/reason': '' },
  };
}

function aksAuditRow(e: StoredEvent): unknown[] {
  const a = auditEventOf(e);
  return [
    TENANT,
    e.timeGenerated,
    a.level,
    e.auditId,
    a.stage,
    a.requestURI,
    a.verb,
    JSON.stringify(a.user),
    JSON.stringify(a.sourceIPs),
    a.userAgent,
    JSON.stringify(a.objectRef),
    JSON.stringify(a.responseStatus),
    e.timeGenerated,
    e.timeGenerated,
    JSON.stringify(a.annotations),
    'Azure',
    `kube-apiserver-${e.index % 2}`,
    'AKSAudit',
    e.clusterResourceId,
  ];
}

function azureDiagnosticsRow(e: StoredEvent, category: string): unknown[] {
  const id = e.clusterResourceId;
  const parts = id.split('/');
  const text = JSON.stringify(auditEventOf(e));
  return [
    TENANT,
    e.timeGenerated,
    id.toUpperCase(),
    category,
    (parts[4] ?? '').toUpperCase(),
    parts[2] ?? '',
    'MICROSOFT.CONTAINERSERVICE',
    (parts[8] ?? '').toUpperCase(),
    'MANAGEDCLUSTERS',
    'Microsoft.ContainerService/managedClusters/diagnosticLogs/Read',
    // A malformed line: cut in half, as a truncated log record would be.
    e.auditId ? text : text.slice(0, Math.floor(text.length / 2)),
    `kube-apiserver-${e.index % 2}`,
    'stdout',
    'Azure',
    'AzureDiagnostics',
    id,
  ];
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'x-ms-request-id': randomUUID(),
    ...headers,
  });
  res.end(text);
}

/** A Log Analytics error body (`{ error: { message, code, correlationId, innererror } }`). */
function sendError(res: ServerResponse, status: number, code: string, message: string, inner?: string): void {
  sendJson(res, status, {
    error: {
      message,
      code,
      correlationId: randomUUID(),
      ...(inner ? { innererror: { code: inner, message } } : {}),
    },
  });
}

export async function startLogAnalyticsFake(
  options: LogAnalyticsFakeOptions = {},
): Promise<LogAnalyticsFake> {
  const faults = options.faults ?? new FaultInjector();
  const log = options.log ?? new RequestLog();
  const cert = localCert(options.certDir ?? join('.fleetward', 'sandbox', 'tls'));
  /** Events by workspace id, in time order. */
  const workspaces = new Map<string, StoredEvent[]>();
  const held = new Set<ServerResponse>();
  const stopping = new AbortController();
  let counter = 0;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = Date.now();
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const path = QUERY_PATH.exec(url.pathname);
    const workspaceId = path ? decodeURIComponent(path[1]!) : undefined;
    const info = {
      cloud: 'azure' as const,
      operation: 'logAnalytics.query',
      ...(workspaceId ? { scope: workspaceId } : {}),
      at: started,
    };
    const body = await readBody(req);
    res.once('finish', () =>
      log.record({ ...info, status: res.statusCode, durationMs: Date.now() - started }),
    );
    if (!path || req.method !== 'POST') {
      sendError(
        res,
        404,
        'PathNotFoundError',
        `The requested path does not exist: ${req.method} ${url.pathname}`,
      );
      return;
    }
    if (!/^Bearer \S+/.test(req.headers.authorization ?? '')) {
      sendError(res, 401, 'AuthorizationRequiredError', 'Valid authentication was not provided');
      return;
    }
    await faults.delay(stopping.signal);
    const fault = faults.take(info);
    if (fault?.kind === 'throttle') {
      res.setHeader('retry-after', String(fault.retryAfterSeconds ?? 0));
      sendError(res, 429, 'TooManyRequests', 'Too many requests, retry later');
      return;
    }
    if (fault?.kind === 'error') {
      sendError(res, fault.status, 'ServiceError', 'The service failed to process the request');
      return;
    }
    if (fault?.kind === 'timeout') {
      holdResponse(res, held);
      return;
    }
    if (fault?.kind === 'deny') {
      sendError(res, 403, 'InsufficientAccessError', deniedMessage(info));
      return;
    }
    let parsedBody: { query?: unknown; timespan?: unknown };
    try {
      parsedBody = JSON.parse(body) as { query?: unknown; timespan?: unknown };
    } catch {
      sendError(res, 400, 'BadArgumentError', 'The request body is not valid JSON');
      return;
    }
    if (typeof parsedBody?.query !== 'string') {
      sendError(
        res,
        400,
        'BadArgumentError',
        'The request had some invalid properties',
        'QueryValidationError',
      );
      return;
    }
    const query = parseAuditQuery(parsedBody.query);
    if (typeof query === 'string') {
      sendError(
        res,
        400,
        'BadArgumentError',
        `The request had some invalid properties: ${query}`,
        'SyntaxError',
      );
      return;
    }
    let span: [number, number] | undefined;
    if (parsedBody.timespan !== undefined) {
      const [from, to] = typeof parsedBody.timespan === 'string' ? parsedBody.timespan.split('/') : [];
      const a = Date.parse(from ?? '');
      const b = Date.parse(to ?? '');
      if (!DATETIME.test(from ?? '') || !DATETIME.test(to ?? '') || Number.isNaN(a) || Number.isNaN(b)) {
        sendError(
          res,
          400,
          'BadArgumentError',
          'timespan expects <start>/<end> in ISO 8601',
          'InvalidTimespan',
        );
        return;
      }
      span = [a, b];
    }
    const events = workspaces.get(workspaceId!);
    if (!events) {
      sendError(res, 404, 'WorkspaceNotFoundError', `Workspace ${workspaceId} not found`);
      return;
    }
    const since = Date.parse(query.since);
    const until = Date.parse(query.until);
    const rows = events
      .filter(
        (e) =>
          e.clusterResourceId.toLowerCase() === query.resourceId.toLowerCase() &&
          e.ms >= since &&
          e.ms < until &&
          (!span || (e.ms >= span[0] && e.ms <= span[1])),
      )
      .slice(0, query.take)
      .map((e) =>
        query.table === 'AzureDiagnostics' ? azureDiagnosticsRow(e, query.category!) : aksAuditRow(e),
      );
    const columns = query.table === 'AzureDiagnostics' ? AZURE_DIAGNOSTICS_COLUMNS : AKS_AUDIT_COLUMNS;
    const answer = {
      tables: [
        {
          name: 'PrimaryResult',
          columns: columns.map((c) => ({ name: c.name, type: c.type })),
          rows:
            query.table === 'AKSAuditAdmin'
              ? rows.map((r) => r.map((v, i) => (i === 17 ? 'AKSAuditAdmin' : v)))
              : rows,
        },
      ],
    };
    if (fault?.kind === 'malformed') {
      sendTruncatedJson(res, answer);
      return;
    }
    sendJson(res, 200, answer);
  };

  const server = createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendError(res, 500, 'InternalServerError', String(error));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('log analytics fake has no port');

  return {
    endpoint: `https://127.0.0.1:${address.port}`,
    caFile: cert.caFile,
    log,
    seed(workspaceId, clusterResourceId, count, { start, spacingMs }) {
      const list = workspaces.get(workspaceId) ?? [];
      const added: StoredEvent[] = [];
      for (let i = 0; i < count; i++) {
        const ms = start.getTime() + i * spacingMs;
        const index = counter++;
        added.push({
          ms,
          index,
          timeGenerated: laTime(ms),
          auditId: i % 25 === 7 ? '' : randomUUID(),
          clusterResourceId,
        });
      }
      list.push(...added);
      // Stable: events of one timestamp keep their seeding order.
      list.sort((a, b) => a.ms - b.ms);
      workspaces.set(workspaceId, list);
      return added.map(({ timeGenerated, auditId, clusterResourceId: id }) => ({
        timeGenerated,
        auditId,
        clusterResourceId: id,
      }));
    },
    async stop() {
      stopping.abort();
      for (const res of held) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
