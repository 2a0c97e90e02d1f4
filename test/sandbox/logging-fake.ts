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
 * Log Router sinks (`projects.sinks` of the v2 REST API, `LogSink` JSON as the reference
 * serialises it: proto3 JSON, so `disabled: false` and empty strings are left out):
 * - `POST /v2/projects/{p}/sinks?uniqueWriterIdentity=` (`sinks.create`): `name` (≤ 100 of
 *   `[A-Za-z0-9_.-]`, first alphanumeric), `destination` (`storage.googleapis.com/<bucket>`,
 *   `bigquery.googleapis.com/projects/…/datasets/…`, `pubsub.googleapis.com/projects/…/topics/…`,
 *   `logging.googleapis.com/projects/…`), `filter` (the subset above), `description`,
 *   `disabled`; 409 ALREADY_EXISTS for a taken name. `writerIdentity` is a per-sink service
 *   account with `uniqueWriterIdentity=true`, else the shared `cloud-logs@system.gserviceaccount.com`.
 * - `GET /v2/projects/{p}/sinks/{name}` (`sinks.get`), 404 NOT_FOUND when absent;
 *   `GET /v2/projects/{p}/sinks` (`sinks.list`, `pageSize`, `pageToken`).
 * - `PUT|PATCH /v2/projects/{p}/sinks/{name}?updateMask=&uniqueWriterIdentity=` (`sinks.update`,
 *   `sinks.patch`): the masked fields are copied from the body (a masked field the body leaves
 *   out is cleared); without a mask `destination,filter,includeChildren`, as the reference says.
 *   Turning a unique writer identity back into the shared one is refused (400), as documented.
 * Routing, as the service does it: an entry is routed when it is ingested (`seed`), to every
 * sink of its project that is enabled then and whose filter it matches; entries ingested before
 * a sink existed, or while it was disabled, are never exported by it. `deliverSinks()` (a test
 * hook standing in for the hourly batch) writes what each Cloud Storage sink has routed into the
 * GCS fake given as `storage` (or later with `routeSinksTo`), named as Cloud Logging names
 * exported files: `<LOG_ID>/YYYY/MM/DD/HH:00:00_HH:59:59_S<n>.json` (the entry's timestamp in
 * UTC, the first free shard number), one JSON `LogEntry` per line. A bucket that does not exist
 * fails the delivery; the entries stay pending and the failure is kept in `sinkErrors()` (the
 * service reports these only through the `exports/error_count` metric, not through the API).
 * Late-arriving `A<n>` shards and the writer identity's IAM on the bucket are not modelled.
 *
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

/** A `LogSink` exactly as the v2 API serialises it (fields at their default are left out). */
export interface LogSinkResource {
  name: string;
  resourceName: string;
  destination: string;
  filter?: string;
  description?: string;
  disabled?: boolean;
  includeChildren?: boolean;
  outputVersionFormat: 'V2';
  writerIdentity: string;
  createTime: string;
  updateTime: string;
}

/** Where the sinks deliver: the GCS fake satisfies it. */
export interface SinkStorage {
  /** The live objects of a bucket (empty when it does not exist). */
  objects(bucket: string): { name: string }[];
  /** Creates an object as a Google service does; throws when the bucket does not exist or the name is taken. */
  deliver(bucket: string, name: string, body: Uint8Array, contentType: string): unknown;
}

/** One file a sink wrote, or one it could not write. */
export interface SinkDelivery {
  project: string;
  sink: string;
  bucket: string;
  /** The object name written (absent on a failure). */
  object?: string;
  entries: number;
  /** Why the write failed (absent on success). */
  error?: string;
}

export interface LoggingFakeOptions {
  faults?: FaultInjector;
  log?: RequestLog;
  /** Where Cloud Storage sinks deliver (see `routeSinksTo`). */
  storage?: SinkStorage;
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
  /** The sinks of a project (all projects when omitted), by name. */
  sinks(project?: string): LogSinkResource[];
  /** Sets where Cloud Storage sinks deliver. */
  routeSinksTo(storage: SinkStorage): void;
  /**
   * Test hook, the hourly batch: writes every entry each enabled-at-ingestion Cloud Storage sink
   * has routed and not yet written, one object per log id and hour. Returns each write.
   */
  deliverSinks(): SinkDelivery[];
  /** Every failed delivery so far, oldest first. */
  sinkErrors(): SinkDelivery[];
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
  409: 'ALREADY_EXISTS',
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

// --- Log Router sinks ---

const PROJECT_ID = /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/;
const SINK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
const DESTINATIONS = [
  /^storage\.googleapis\.com\/[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/,
  /^bigquery\.googleapis\.com\/projects\/[^/]+\/datasets\/\w+$/,
  /^pubsub\.googleapis\.com\/projects\/[^/]+\/topics\/[^/]+$/,
  /^logging\.googleapis\.com\/projects\/[^/]+(\/locations\/[^/]+\/buckets\/[^/]+)?$/,
];
/** Every field of the `LogSink` resource (output-only ones are accepted in a body and ignored). */
const SINK_FIELDS = new Set([
  'name',
  'resourceName',
  'destination',
  'filter',
  'description',
  'disabled',
  'exclusions',
  'outputVersionFormat',
  'writerIdentity',
  'includeChildren',
  'interceptChildren',
  'createTime',
  'updateTime',
  'bigqueryOptions',
]);
/** The fields `updateMask` may name, as the reference lists them. */
const MASKABLE = new Set([
  'destination',
  'filter',
  'description',
  'disabled',
  'includeChildren',
  'exclusions',
]);
const DEFAULT_MASK = ['destination', 'filter', 'includeChildren'];
const SHARED_WRITER = 'serviceAccount:cloud-logs@system.gserviceaccount.com';

interface StoredSink {
  project: string;
  resource: LogSinkResource;
  filter: Comparison[];
  /** Entries routed to the sink and not yet written to its destination, in ingestion order. */
  pending: LogEntry[];
}

/** A project's number (12 digits), derived from its id so it is stable across runs. */
function projectNumberOf(project: string): string {
  const n = BigInt(`0x${createHash('sha256').update(project).digest('hex').slice(0, 15)}`);
  return String(100_000_000_000n + (n % 900_000_000_000n));
}

/** A per-sink writer identity in the form the API gives (`p<project number>-<n>@gcp-sa-logging…`). */
function uniqueWriterOf(project: string, sink: string): string {
  const n = Number.parseInt(createHash('sha256').update(`${project}/${sink}`).digest('hex').slice(0, 8), 16);
  return `serviceAccount:p${projectNumberOf(project)}-${100_000 + (n % 900_000)}@gcp-sa-logging.iam.gserviceaccount.com`;
}

/** RFC 3339 with nanoseconds, as the API writes `createTime` / `updateTime`. */
function nanoTime(date: Date): string {
  return date
    .toISOString()
    .replace(/\.(\d{3})Z$/, (_, ms: string) => `.${ms}${String(date.getTime() % 997).padStart(6, '0')}Z`);
}

/** The project an entry belongs to: its log name's, else its resource's. */
function projectOfEntry(entry: LogEntry): string | undefined {
  return /^projects\/([^/]+)\/logs\//.exec(entry.logName)?.[1] ?? entry.resource.labels.project_id;
}

/** The LOG_ID of an entry's log name, URL-decoded (`cloudaudit.googleapis.com/activity`). */
function logIdOf(entry: LogEntry): string {
  return decodeURIComponent(entry.logName.replace(/^.*?\/logs\//, ''));
}

/** Checks the sink fields `fields` present in `input`; throws {@link InvalidArgument}. */
function checkSinkFields(input: Record<string, unknown>, fields: Iterable<string>): void {
  for (const field of fields) {
    const value = input[field];
    if (value === undefined) continue;
    switch (field) {
      case 'destination':
        if (typeof value !== 'string' || !DESTINATIONS.some((d) => d.test(value))) {
          throw new InvalidArgument(`Invalid destination: ${String(value)}`);
        }
        break;
      case 'filter':
        if (typeof value !== 'string') throw new InvalidArgument('filter: expected a string');
        parseFilter(value);
        break;
      case 'description':
        if (typeof value !== 'string' || value.length > 8000) {
          throw new InvalidArgument('description: expected a string of at most 8000 characters');
        }
        break;
      case 'disabled':
      case 'includeChildren':
        if (typeof value !== 'boolean') throw new InvalidArgument(`${field}: expected a boolean`);
        break;
      case 'exclusions':
        if (!Array.isArray(value)) throw new InvalidArgument('exclusions: expected a list');
        break;
    }
  }
}

/** A request body as a sink: an object of `LogSink` fields only. */
function sinkBody(raw: unknown): Record<string, unknown> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new InvalidArgument('Invalid JSON payload received. Expected an object.');
  }
  for (const key of Object.keys(raw)) {
    if (!SINK_FIELDS.has(key)) {
      throw new InvalidArgument(`Invalid JSON payload received. Unknown name "${key}": Cannot find field.`);
    }
  }
  return raw as Record<string, unknown>;
}

/** Copies `fields` of `input` onto `resource`, clearing a field `input` leaves out (proto3: default = absent). */
function applySinkFields(
  resource: LogSinkResource,
  input: Record<string, unknown>,
  fields: Iterable<string>,
): void {
  const target = resource as unknown as Record<string, unknown>;
  for (const field of fields) {
    const value = input[field];
    const empty =
      value === undefined || value === '' || value === false || (Array.isArray(value) && value.length === 0);
    if (empty) delete target[field];
    else target[field] = value;
  }
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
  /** Sinks by `<project>/<name>`. */
  const sinks = new Map<string, StoredSink>();
  const deliveryErrors: SinkDelivery[] = [];
  let storage = options.storage;

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

  const applyFault = (
    res: ServerResponse,
    fault: Fault,
    project: string,
    body: () => unknown,
    operation = OPERATION,
  ) => {
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
          loggingErrorBody(
            403,
            deniedMessage({ cloud: 'gcp', service: 'logging', operation, scope: project }),
          ),
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

  const sinksOf = (project?: string) =>
    [...sinks.values()]
      .filter((sink) => project === undefined || sink.project === project)
      .sort((a, b) =>
        a.project === b.project
          ? a.resource.name < b.resource.name
            ? -1
            : 1
          : a.project < b.project
            ? -1
            : 1,
      );

  /** Routes newly ingested entries to every sink of their project that is enabled and matches now. */
  const route = (entries: LogEntry[]) => {
    for (const entry of entries) {
      const project = projectOfEntry(entry);
      for (const sink of sinks.values()) {
        if (sink.project !== project || sink.resource.disabled === true) continue;
        if (sink.filter.every((c) => matches(entry, c))) sink.pending.push(entry);
      }
    }
  };

  const handleSinks = async (
    req: IncomingMessage,
    res: ServerResponse,
    info: LoggingRequestInfo,
    url: URL,
    raw: Buffer,
    project: string,
    name: string | undefined,
  ) => {
    const method = req.method ?? 'GET';
    const operation =
      name === undefined
        ? { POST: 'sinks.create', GET: 'sinks.list' }[method]
        : { GET: 'sinks.get', PUT: 'sinks.update', PATCH: 'sinks.patch' }[method];
    if (operation === undefined) {
      sendJson(res, 404, loggingErrorBody(404, `The fake does not serve ${method} ${url.pathname}.`));
      return;
    }
    Object.assign(info, { operation, service: 'logging', scope: project });
    let body: Record<string, unknown> = {};
    try {
      if (!PROJECT_ID.test(project)) throw new InvalidArgument(`Invalid resource name: projects/${project}`);
      if (method !== 'GET') {
        let parsed: unknown;
        try {
          parsed = JSON.parse(raw.toString('utf8'));
        } catch {
          throw new InvalidArgument('Invalid JSON payload received.');
        }
        info.body = parsed;
        body = sinkBody(parsed);
      }
    } catch (error) {
      if (!(error instanceof InvalidArgument)) throw error;
      sendJson(res, 400, loggingErrorBody(400, error.message));
      return;
    }
    await faults.delay(stopping.signal);
    const fault = faults.take({ cloud: 'gcp', service: 'logging', operation, scope: project });
    if (fault) {
      info.fault = fault.kind;
      applyFault(res, fault, project, () => ({}), operation);
      return;
    }
    const key = `${project}/${name ?? ''}`;
    const unique = url.searchParams.get('uniqueWriterIdentity') === 'true';
    const now = nanoTime(new Date());
    try {
      switch (operation) {
        case 'sinks.list': {
          const all = sinksOf(project).map((sink) => sink.resource);
          const pageSize = Number(url.searchParams.get('pageSize') ?? 0) || all.length || 1;
          const offset = Number(url.searchParams.get('pageToken') || 0);
          const page = all.slice(offset, offset + pageSize);
          const next = offset + page.length;
          sendJson(res, 200, {
            ...(page.length > 0 ? { sinks: page } : {}),
            ...(next < all.length ? { nextPageToken: String(next) } : {}),
          });
          return;
        }
        case 'sinks.get': {
          const found = sinks.get(key);
          if (!found) sendJson(res, 404, loggingErrorBody(404, `Sink ${name} does not exist`));
          else sendJson(res, 200, found.resource);
          return;
        }
        case 'sinks.create': {
          const sinkName = body.name;
          if (typeof sinkName !== 'string' || !SINK_NAME.test(sinkName)) {
            throw new InvalidArgument(`Invalid sink name: ${String(sinkName)}`);
          }
          if (typeof body.destination !== 'string') throw new InvalidArgument('destination: required');
          checkSinkFields(body, SINK_FIELDS);
          const created = `${project}/${sinkName}`;
          if (sinks.has(created)) {
            sendJson(res, 409, loggingErrorBody(409, 'Requested entity already exists'));
            return;
          }
          const resource: LogSinkResource = {
            name: sinkName,
            resourceName: `projects/${project}/sinks/${sinkName}`,
            destination: body.destination,
            outputVersionFormat: 'V2',
            writerIdentity: unique ? uniqueWriterOf(project, sinkName) : SHARED_WRITER,
            createTime: now,
            updateTime: now,
          };
          applySinkFields(resource, body, ['filter', 'description', 'disabled', 'includeChildren']);
          const filter = parseFilter(resource.filter ?? '');
          sinks.set(created, { project, resource, filter, pending: [] });
          sendJson(res, 200, resource);
          return;
        }
        default: {
          const found = sinks.get(key);
          if (!found) {
            sendJson(res, 404, loggingErrorBody(404, `Sink ${name} does not exist`));
            return;
          }
          const mask = url.searchParams.get('updateMask');
          const fields = mask ? mask.split(',').map((f) => f.trim()) : DEFAULT_MASK;
          for (const field of fields) {
            if (!MASKABLE.has(field)) throw new InvalidArgument(`Invalid updateMask: unknown field ${field}`);
          }
          if (body.name !== undefined && body.name !== name) {
            throw new InvalidArgument(`name: ${String(body.name)} does not match the sink ${name}`);
          }
          if (fields.includes('destination') && typeof body.destination !== 'string') {
            throw new InvalidArgument('destination: required');
          }
          checkSinkFields(body, fields);
          if (found.resource.writerIdentity !== SHARED_WRITER && !unique) {
            throw new InvalidArgument(
              'uniqueWriterIdentity: the sink has a unique writer identity, which cannot be changed back to the shared one',
            );
          }
          const resource = { ...found.resource, updateTime: now };
          applySinkFields(resource, body, fields);
          if (unique && resource.writerIdentity === SHARED_WRITER) {
            resource.writerIdentity = uniqueWriterOf(project, resource.name);
          }
          found.filter = parseFilter(resource.filter ?? '');
          found.resource = resource;
          sendJson(res, 200, resource);
          return;
        }
      }
    } catch (error) {
      if (!(error instanceof InvalidArgument)) throw error;
      sendJson(res, 400, loggingErrorBody(400, error.message));
    }
  };

  const deliverSinks = (): SinkDelivery[] => {
    const out: SinkDelivery[] = [];
    for (const sink of sinksOf()) {
      const bucket = /^storage\.googleapis\.com\/(.+)$/.exec(sink.resource.destination)?.[1];
      if (sink.pending.length === 0 || bucket === undefined) continue;
      if (!storage) throw new Error('logging fake: no storage to deliver sinks into (routeSinksTo)');
      const files = new Map<string, LogEntry[]>();
      for (const entry of sink.pending) {
        const at = new Date(entry.timestamp).toISOString();
        const hour = at.slice(11, 13);
        const name = `${logIdOf(entry)}/${at.slice(0, 4)}/${at.slice(5, 7)}/${at.slice(8, 10)}/${hour}:00:00_${hour}:59:59_S`;
        const list = files.get(name) ?? [];
        list.push(entry);
        files.set(name, list);
      }
      const left: LogEntry[] = [];
      for (const [base, entries] of files) {
        entries.sort(
          (a, b) => compareInstants(a.timestamp, b.timestamp) || (a.insertId < b.insertId ? -1 : 1),
        );
        const taken = new Set(storage.objects(bucket).map((o) => o.name));
        let shard = 0;
        while (taken.has(`${base}${shard}.json`)) shard++;
        const object = `${base}${shard}.json`;
        const body = Buffer.from(`${entries.map((e) => JSON.stringify(e)).join('\n')}\n`, 'utf8');
        const delivery: SinkDelivery = {
          project: sink.project,
          sink: sink.resource.name,
          bucket,
          entries: entries.length,
        };
        try {
          storage.deliver(bucket, object, body, 'application/json');
          out.push({ ...delivery, object });
        } catch (error) {
          const failed = { ...delivery, error: error instanceof Error ? error.message : String(error) };
          out.push(failed);
          deliveryErrors.push(failed);
          left.push(...entries);
        }
      }
      sink.pending = left;
    }
    return out;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, info: LoggingRequestInfo) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const raw = await readBody(req);
    const sinkPath = /^\/v2\/projects\/([^/]+)\/sinks(?:\/([^/]+))?$/.exec(url.pathname);
    if (sinkPath) {
      const name = sinkPath[2] === undefined ? undefined : decodeURIComponent(sinkPath[2]);
      await handleSinks(req, res, info, url, raw, decodeURIComponent(sinkPath[1]!), name);
      return;
    }
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
      route(added);
      return added;
    },
    entries: () => [...stored],
    sinks: (project) => sinksOf(project).map((sink) => ({ ...sink.resource })),
    routeSinksTo(target) {
      storage = target;
    },
    deliverSinks,
    sinkErrors: () => [...deliveryErrors],
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
