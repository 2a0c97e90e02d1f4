/**
 * A local Cloud Logging: an HTTP server on 127.0.0.1 that answers `entries.list` of the
 * Cloud Logging API v2 (`POST /v2/entries:list`, JSON) with GKE control-plane audit entries
 * in the wire shape of the API reference (`LogEntry` with an `AuditLog` `protoPayload`).
 *
 * Request: `{resourceNames: ['projects/P', ...], filter, orderBy, pageSize, pageToken}`.
 * - `resourceNames`: only `projects/<id>` (anything else → 400 INVALID_ARGUMENT).
 * - `orderBy`: `timestamp asc` (the default) or `timestamp desc`; ties break on `insertId`.
 * - `pageSize`: 1..1000 (default 50, like the API); `pageToken` is opaque and bound to the
 *   query it came from (another query with it → 400).
 * - `filter`: the subset of the logging query language the audit source sends, parsed
 *   strictly; anything else is answered 400 INVALID_ARGUMENT, never silently ignored:
 *   comparisons joined by `AND`, each `FIELD OP "STRING"` with
 *   - `resource.type`, `resource.labels.project_id|location|cluster_name`, `logName`,
 *     `insertId`, `severity` with `=` / `!=` (exact) or `:` (has: substring, like the
 *     language's `:` on strings)
 *   - `timestamp` with `>=`, `>`, `<`, `<=`, `=` against an RFC 3339 time (compared as instants)
 *
 * Answer: `{entries: [LogEntry], nextPageToken}`; like the API, `entries` is left out when
 * there are none and `nextPageToken` when there are no more pages.
 * Errors use Google's JSON error body (`{"error":{"code","message","status","details"}}`);
 * the `throttle` fault answers 429 RESOURCE_EXHAUSTED (with `Retry-After` when the rule sets
 * `retryAfterSeconds`). Fault rules match `cloud: 'gcp'`, `operation: 'entries.list'`,
 * `scope: <first project>`. No authentication is checked; whether a request carried a bearer
 * token is recorded.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  type Fault,
  FaultInjector,
  holdResponse,
  type RequestInfo,
  RequestLog,
  sendTruncatedJson,
} from './faults.ts';
import { deniedMessage } from './request-log.ts';

/** A `google.cloud.audit.AuditLog` payload as GKE writes it for a Kubernetes API call. */
export interface AuditLogPayload {
  '@type': 'type.googleapis.com/google.cloud.audit.AuditLog';
  authenticationInfo: { principalEmail: string };
  authorizationInfo?: { granted: boolean; permission: string; resource: string }[];
  methodName: string;
  requestMetadata: { callerIp: string; callerSuppliedUserAgent: string };
  resourceName: string;
  serviceName: string;
  status: { code?: number; message?: string };
}

/** A `LogEntry` exactly as `entries.list` serialises it. */
export interface LogEntry {
  insertId: string;
  logName: string;
  resource: { type: string; labels: Record<string, string> };
  timestamp: string;
  receiveTimestamp: string;
  severity: string;
  protoPayload: AuditLogPayload;
  labels?: Record<string, string>;
  operation?: { id: string; producer: string; first?: boolean; last?: boolean };
}

export interface SeedOptions {
  /** Time of the first generated entry (default: one hour ago). */
  start?: Date | string;
  /** Milliseconds between generated entries (default 1000). */
  spacingMs?: number;
}

/** One request as the fake saw it. */
export interface LoggingRequestInfo extends RequestInfo {
  cloud: 'gcp';
  /** The request body as received (parsed), for assertions on filters and pages. */
  body: unknown;
  bearer: boolean;
}

export interface LoggingFakeOptions {
  faults?: FaultInjector;
  log?: RequestLog;
}

export interface LoggingFake {
  /** `http://127.0.0.1:<port>`: the `clouds.gcp.loggingEndpoint` to configure. */
  endpoint: string;
  log: RequestLog;
  /**
   * Stores audit entries of one GKE cluster: the given ones as they are, or `count`
   * generated ones (Admin Activity and Data Access entries alternating, `spacingMs` apart
   * from `start`). Returns what was stored.
   */
  seed(
    project: string,
    location: string,
    cluster: string,
    entries: LogEntry[] | number,
    options?: SeedOptions,
  ): LogEntry[];
  /** Every stored entry. */
  entries(): LogEntry[];
  /** Requests of this fake. */
  requests(): LoggingRequestInfo[];
  stop(): Promise<void>;
}

const OPERATION = 'entries.list';
const MAX_PAGE_SIZE = 1000;
const DEFAULT_PAGE_SIZE = 50;

// --- errors ---

const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  501: 'UNIMPLEMENTED',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

/** Google's JSON error body (google.rpc.Status over HTTP). */
export function loggingErrorBody(status: number, message: string, project = 'fleetward-test'): unknown {
  const error: Record<string, unknown> = {
    code: status,
    message,
    status: STATUS_NAMES[status] ?? 'UNKNOWN',
  };
  if (status === 429) {
    error.details = [
      {
        '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
        reason: 'RATE_LIMIT_EXCEEDED',
        domain: 'googleapis.com',
        metadata: {
          quota_limit: 'ReadRequestsPerMinutePerProject',
          quota_metric: 'logging.googleapis.com/read_requests',
          service: 'logging.googleapis.com',
          consumer: `projects/${project}`,
        },
      },
    ];
  }
  return { error };
}

const THROTTLED =
  "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' of service 'logging.googleapis.com'.";

class InvalidArgument extends Error {}

// --- the filter subset ---

type Op = '=' | '!=' | ':' | '>=' | '>' | '<' | '<=';
interface Comparison {
  field: string;
  op: Op;
  value: string;
}

const STRING_FIELDS: Record<string, (e: LogEntry) => string | undefined> = {
  'resource.type': (e) => e.resource.type,
  'resource.labels.project_id': (e) => e.resource.labels.project_id,
  'resource.labels.location': (e) => e.resource.labels.location,
  'resource.labels.cluster_name': (e) => e.resource.labels.cluster_name,
  logName: (e) => e.logName,
  insertId: (e) => e.insertId,
  severity: (e) => e.severity,
};
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** Parses `a="x" AND b>="y" ...`; throws {@link InvalidArgument} for anything outside the subset. */
export function parseFilter(filter: string): Comparison[] {
  const comparisons: Comparison[] = [];
  let pos = 0;
  const skip = () => {
    while (pos < filter.length && /\s/.test(filter[pos]!)) pos++;
  };
  const fail = (what: string): never => {
    throw new InvalidArgument(`Unparseable filter: ${what} at position ${pos}`);
  };
  skip();
  if (pos === filter.length) return comparisons;
  for (;;) {
    skip();
    const field = /^[A-Za-z_][\w.]*/.exec(filter.slice(pos))?.[0] ?? fail('expected a field');
    pos += field.length;
    skip();
    const op = (/^(>=|<=|!=|=|:|>|<)/.exec(filter.slice(pos))?.[0] ?? fail('expected an operator')) as Op;
    pos += op.length;
    skip();
    if (filter[pos] !== '"') fail('expected a double-quoted string');
    pos++;
    let value = '';
    for (;;) {
      if (pos >= filter.length) fail('unterminated string');
      const ch = filter[pos++]!;
      if (ch === '"') break;
      if (ch === '\\') {
        if (pos >= filter.length) fail('unterminated escape');
        value += filter[pos++]!;
      } else value += ch;
    }
    if (field === 'timestamp') {
      if (op === '!=' || op === ':') fail(`operator ${op} is not supported on timestamp`);
      if (!RFC3339.test(value) || Number.isNaN(Date.parse(value))) {
        throw new InvalidArgument(`Invalid timestamp value "${value}": expected an RFC 3339 time`);
      }
    } else if (field in STRING_FIELDS) {
      if (op !== '=' && op !== '!=' && op !== ':') fail(`operator ${op} is not supported on ${field}`);
    } else {
      throw new InvalidArgument(`Unsupported field in filter: ${field}`);
    }
    comparisons.push({ field, op, value });
    skip();
    if (pos === filter.length) return comparisons;
    if (!filter.startsWith('AND', pos) || !/\s/.test(filter[pos + 3] ?? '')) fail('expected AND');
    pos += 3;
  }
}

/** RFC 3339 time → comparable [epoch ms, nanoseconds within the ms]. */
function instant(value: string): [number, number] {
  const frac = /\.(\d+)/.exec(value)?.[1] ?? '';
  return [Date.parse(value), Number(frac.padEnd(9, '0').slice(3, 9))];
}

function compareInstants(a: string, b: string): number {
  const [am, an] = instant(a);
  const [bm, bn] = instant(b);
  return am - bm || an - bn;
}

function matches(entry: LogEntry, c: Comparison): boolean {
  if (c.field === 'timestamp') {
    const d = compareInstants(entry.timestamp, c.value);
    switch (c.op) {
      case '>=':
        return d >= 0;
      case '>':
        return d > 0;
      case '<':
        return d < 0;
      case '<=':
        return d <= 0;
      default:
        return d === 0;
    }
  }
  const actual = STRING_FIELDS[c.field]!(entry);
  if (c.op === '=') return actual === c.value;
  if (c.op === '!=') return actual !== c.value;
  return actual?.includes(c.value) === true;
}

// --- generated entries ---

const CALLS = [
  { method: 'io.k8s.core.v1.pods.get', resource: 'core/v1/namespaces/default/pods/web-0', write: false },
  {
    method: 'io.k8s.apps.v1.deployments.update',
    resource: 'apps/v1/namespaces/default/deployments/web',
    write: true,
  },
  { method: 'io.k8s.core.v1.secrets.list', resource: 'core/v1/namespaces/payments/secrets', write: false },
  {
    method: 'io.k8s.core.v1.configmaps.create',
    resource: 'core/v1/namespaces/default/configmaps/settings',
    write: true,
  },
];
const PRINCIPALS = [
  'deployer@example-project.iam.gserviceaccount.com',
  'alice@example.com',
  'system:serviceaccount:kube-system:replicaset-controller',
];

/** A UUID-shaped, deterministic id (GKE's audit entries carry the Kubernetes auditID as `insertId`). */
function auditId(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** One GKE audit entry, as Cloud Logging returns it. */
export function auditEntry(
  project: string,
  location: string,
  cluster: string,
  index: number,
  at: Date,
): LogEntry {
  const call = CALLS[index % CALLS.length]!;
  const kind = call.write ? 'activity' : 'data_access';
  const principal = PRINCIPALS[index % PRINCIPALS.length]!;
  return {
    protoPayload: {
      '@type': 'type.googleapis.com/google.cloud.audit.AuditLog',
      authenticationInfo: { principalEmail: principal },
      authorizationInfo: [{ granted: true, permission: call.method, resource: call.resource }],
      methodName: call.method,
      requestMetadata: {
        callerIp: `10.0.0.${(index % 250) + 2}`,
        callerSuppliedUserAgent: 'kubectl/v1.31.2',
      },
      resourceName: call.resource,
      serviceName: 'k8s.io',
      status: {},
    },
    insertId: auditId(`${project}/${location}/${cluster}/${index}/${at.toISOString()}`),
    resource: {
      type: 'k8s_cluster',
      labels: { project_id: project, location, cluster_name: cluster },
    },
    timestamp: at.toISOString(),
    severity: call.write ? 'NOTICE' : 'INFO',
    labels: {
      'authorization.k8s.io/decision': 'allow',
      'authorization.k8s.io/reason': 'access granted by IAM permissions.',
    },
    logName: `projects/${project}/logs/cloudaudit.googleapis.com%2F${kind}`,
    receiveTimestamp: new Date(at.getTime() + 350).toISOString(),
  };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

interface ListRequest {
  projects: string[];
  filter: Comparison[];
  desc: boolean;
  pageSize: number;
  offset: number;
  /** Digest of the query, which binds page tokens to it. */
  query: string;
}

function parseRequest(raw: unknown): ListRequest {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new InvalidArgument('Invalid JSON payload received. Expected an object.');
  }
  const body = raw as Record<string, unknown>;
  for (const key of Object.keys(body)) {
    if (!['resourceNames', 'filter', 'orderBy', 'pageSize', 'pageToken', 'projectIds'].includes(key)) {
      throw new InvalidArgument(`Invalid JSON payload received. Unknown name "${key}": Cannot find field.`);
    }
  }
  const names = body.resourceNames;
  if (!Array.isArray(names) || names.length === 0) {
    throw new InvalidArgument('resourceNames: at least one resource name is required');
  }
  const projects = names.map((n) => {
    const m = typeof n === 'string' ? /^projects\/([a-z][a-z0-9-]{4,28}[a-z0-9])$/.exec(n) : null;
    if (!m) throw new InvalidArgument(`Invalid resource name: ${String(n)}`);
    return m[1]!;
  });
  const filterText = body.filter ?? '';
  if (typeof filterText !== 'string') throw new InvalidArgument('filter: expected a string');
  const orderBy = body.orderBy ?? 'timestamp asc';
  if (orderBy !== 'timestamp asc' && orderBy !== 'timestamp desc') {
    throw new InvalidArgument(`Invalid orderBy: ${String(orderBy)}`);
  }
  const pageSize = body.pageSize ?? DEFAULT_PAGE_SIZE;
  if (typeof pageSize !== 'number' || !Number.isInteger(pageSize) || pageSize < 0) {
    throw new InvalidArgument('pageSize: expected a non-negative integer');
  }
  if (pageSize > MAX_PAGE_SIZE) throw new InvalidArgument(`pageSize must not exceed ${MAX_PAGE_SIZE}`);
  const query = createHash('sha256')
    .update(JSON.stringify([projects, filterText, orderBy]))
    .digest('base64url')
    .slice(0, 16);
  let offset = 0;
  if (body.pageToken !== undefined && body.pageToken !== '') {
    const token = typeof body.pageToken === 'string' ? body.pageToken : '';
    const [q, o] = Buffer.from(token, 'base64url').toString('utf8').split(':');
    if (q !== query || !/^\d+$/.test(o ?? '')) throw new InvalidArgument('Invalid page token.');
    offset = Number(o);
  }
  return {
    projects,
    filter: parseFilter(filterText),
    desc: orderBy === 'timestamp desc',
    pageSize: pageSize === 0 ? DEFAULT_PAGE_SIZE : pageSize,
    offset,
    query,
  };
}

/** Starts the fake on a free loopback port. */
export async function startLoggingFake(options: LoggingFakeOptions = {}): Promise<LoggingFake> {
  const faults = options.faults ?? new FaultInjector();
  const log = options.log ?? new RequestLog();
  const stored: LogEntry[] = [];
  const seen: LoggingRequestInfo[] = [];
  const held = new Set<ServerResponse>();
  const stopping = new AbortController();
  let seeded = 0;

  const sendJson = (
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; charset=UTF-8',
      'content-length': Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  };

  const applyFault = (res: ServerResponse, fault: Fault, project: string, body: () => unknown) => {
    switch (fault.kind) {
      case 'throttle':
        sendJson(
          res,
          429,
          loggingErrorBody(429, THROTTLED, project),
          fault.retryAfterSeconds === undefined ? {} : { 'retry-after': String(fault.retryAfterSeconds) },
        );
        return;
      case 'error':
        sendJson(res, fault.status, loggingErrorBody(fault.status, 'The service is currently unavailable.'));
        return;
      case 'deny':
        sendJson(
          res,
          403,
          loggingErrorBody(403, deniedMessage({ cloud: 'gcp', operation: OPERATION, scope: project })),
        );
        return;
      case 'timeout':
        holdResponse(res, held);
        return;
      case 'malformed':
        sendTruncatedJson(res, body(), 'application/json; charset=UTF-8');
        return;
    }
  };

  const list = (request: ListRequest) => {
    const selected = stored
      .filter(
        (e) =>
          request.projects.includes(e.resource.labels.project_id ?? '') &&
          request.filter.every((c) => matches(e, c)),
      )
      .sort((a, b) => compareInstants(a.timestamp, b.timestamp) || (a.insertId < b.insertId ? -1 : 1));
    if (request.desc) selected.reverse();
    const page = selected.slice(request.offset, request.offset + request.pageSize);
    const next = request.offset + page.length;
    return {
      ...(page.length > 0 ? { entries: page } : {}),
      ...(next < selected.length
        ? { nextPageToken: Buffer.from(`${request.query}:${next}`, 'utf8').toString('base64url') }
        : {}),
    };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, info: LoggingRequestInfo) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const raw = await readBody(req);
    if (req.method !== 'POST' || url.pathname !== '/v2/entries:list') {
      sendJson(res, 404, loggingErrorBody(404, `The fake does not serve ${req.method} ${url.pathname}.`));
      return;
    }
    info.operation = OPERATION;
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      sendJson(res, 400, loggingErrorBody(400, 'Invalid JSON payload received.'));
      return;
    }
    info.body = body;
    let request: ListRequest;
    try {
      request = parseRequest(body);
    } catch (error) {
      if (!(error instanceof InvalidArgument)) throw error;
      sendJson(res, 400, loggingErrorBody(400, error.message));
      return;
    }
    const project = request.projects[0]!;
    info.scope = project;
    await faults.delay(stopping.signal);
    const fault = faults.take({ cloud: 'gcp', operation: OPERATION, scope: project });
    if (fault) {
      info.fault = fault.kind;
      applyFault(res, fault, project, () => list(request));
      return;
    }
    sendJson(res, 200, list(request));
  };

  const server = createServer((req, res) => {
    const at = Date.now();
    const t0 = performance.now();
    const info: LoggingRequestInfo = {
      cloud: 'gcp',
      operation: 'unknown',
      body: undefined,
      bearer: /^Bearer\s+\S+$/i.test(req.headers.authorization ?? ''),
      at,
    };
    res.once('close', () => {
      info.durationMs = performance.now() - t0;
      if (res.headersSent) info.status = res.statusCode;
      seen.push(info);
      log.record(info);
    });
    handle(req, res, info).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, loggingErrorBody(500, String(error)));
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('the logging fake did not get a port');

  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    log,
    seed(project, location, cluster, entries, seedOptions = {}) {
      let added: LogEntry[];
      if (typeof entries === 'number') {
        const start = new Date(seedOptions.start ?? Date.now() - 3_600_000).getTime();
        const spacing = seedOptions.spacingMs ?? 1000;
        added = Array.from({ length: entries }, (_, i) =>
          auditEntry(project, location, cluster, seeded + i, new Date(start + i * spacing)),
        );
        seeded += entries;
      } else {
        added = entries;
      }
      stored.push(...added);
      return added;
    },
    entries: () => [...stored],
    requests: () => [...seen],
    async stop() {
      stopping.abort();
      for (const res of held) res.destroy();
      held.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
