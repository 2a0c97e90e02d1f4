/**
 * Discovery of GKE clusters: one `ListClusters` per project with the wildcard location
 * (`projects/<id>/locations/-`), which already returns every cluster in full, so there
 * are no per-cluster calls. Projects run in parallel under one limiter.
 *
 * Transport is gRPC through `@google-cloud/container`'s `ClusterManagerClient`. Retries
 * are ours (`withRetry`): gax's own retry is switched off per call so `maxAttempts`
 * means what it says, and each attempt carries the `timeoutMs` deadline.
 *
 * Credentials: `credentialsFile` (a service-account key or a Workload Identity Federation
 * config) or application default credentials. `insecure` (plain-text gRPC, for a loopback
 * emulator) passes insecure channel credentials: gax then attaches no auth at all and the
 * auth library is never asked for a token.
 *
 * `describe` (one cluster, for a cloud event) is one `GetCluster` of
 * `projects/<p>/locations/<l>/clusters/<n>` in a configured project, mapped with the same
 * {@link normaliseCluster} as the list path; `NOT_FOUND` is `null`.
 */
import { ClusterManagerClient, type protos } from '@google-cloud/container';
import { type CallOptions, type ClientOptions, grpc } from 'google-gax';
import type { GcpConfig } from '../../config/schema.ts';
import type { ClusterStatus, DiscoveredCluster, EndpointAccess } from '../../model.ts';
import type { ClusterDiscovery } from '../../ports.ts';
import { createLimiter, mapSettled } from '../../runtime/concurrency.ts';
import {
  CloudApiError,
  ConfigError,
  type EndpointUnreachableError,
  errorInfo,
  FleetwardError,
  UnparseableClusterError,
} from '../../runtime/errors.ts';
import { unreachable } from '../../runtime/network.ts';
import { type RetryDecision, withRetry } from '../../runtime/retry.ts';
import type { AdapterContext } from '../context.ts';
import { failedScope, mergeScopes, type ScopeResult } from '../outcome.ts';

const CLOUD = 'gcp';
const OPERATION = 'ListClusters';
const DEFAULT_PORT = 443;
/** The service named in `cannot reach gke at <endpoint>: …`. */
const SERVICE = 'gke';
/** Where the client goes without a configured endpoint. */
export const DEFAULT_ENDPOINT = 'container.googleapis.com:443';

/** A cluster as the GKE v1 API returns it. */
export type GkeCluster = protos.google.container.v1.ICluster;

// --- gRPC status codes (google/rpc/code.proto) ---

const CODE = {
  CANCELLED: 1,
  DEADLINE_EXCEEDED: 4,
  RESOURCE_EXHAUSTED: 8,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

/** gRPC code → the HTTP status the same error has on the REST surface (google/rpc/code.proto). */
export const HTTP_STATUS_OF_CODE: Record<number, number> = {
  0: 200, // OK
  1: 499, // CANCELLED
  2: 500, // UNKNOWN
  3: 400, // INVALID_ARGUMENT
  4: 504, // DEADLINE_EXCEEDED
  5: 404, // NOT_FOUND
  6: 409, // ALREADY_EXISTS
  7: 403, // PERMISSION_DENIED
  8: 429, // RESOURCE_EXHAUSTED
  9: 400, // FAILED_PRECONDITION
  10: 409, // ABORTED
  11: 400, // OUT_OF_RANGE
  12: 501, // UNIMPLEMENTED
  13: 500, // INTERNAL
  14: 503, // UNAVAILABLE
  15: 500, // DATA_LOSS
  16: 401, // UNAUTHENTICATED
};

const RETRYABLE_CODES: ReadonlySet<number> = new Set([
  CODE.RESOURCE_EXHAUSTED,
  CODE.UNAVAILABLE,
  CODE.DEADLINE_EXCEEDED,
  CODE.INTERNAL,
]);

/** The gRPC status code of an error from gax / grpc-js, if it has one. */
export function grpcCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** A server-requested wait from a `google.rpc.RetryInfo` status detail, in milliseconds. */
function retryInfoDelayMs(error: unknown): number | undefined {
  const details = (error as { statusDetails?: unknown } | null)?.statusDetails;
  if (!Array.isArray(details)) return undefined;
  for (const detail of details) {
    const delay = (detail as { retryDelay?: { seconds?: unknown; nanos?: unknown } | null } | null)
      ?.retryDelay;
    if (!delay) continue;
    const seconds = Number(String(delay.seconds ?? 0));
    const nanos = Number(delay.nanos ?? 0);
    if (Number.isFinite(seconds) && Number.isFinite(nanos)) return Math.max(0, seconds * 1000 + nanos / 1e6);
  }
  return undefined;
}

/** Whether a gax / grpc-js error is worth another attempt, and the wait its RetryInfo asks for. */
export function classify(error: unknown): RetryDecision {
  const code = grpcCode(error);
  return { retry: code !== undefined && RETRYABLE_CODES.has(code), afterMs: retryInfoDelayMs(error) };
}

/**
 * Response metadata key under which {@link keepAnswerContentType} leaves the content type of an
 * answer that was not gRPC on the call's status.
 */
const ANSWER_CONTENT_TYPE = 'x-fleetward-answer-content-type';

/**
 * A grpc-js interceptor that keeps the content type of an answer that is not gRPC (a web
 * server's or a proxy's HTML page): grpc-js reports such an answer only as "Received HTTP status
 * code 404" and drops its headers, so the content type is copied onto the failed call's status
 * metadata, where {@link toCloudApiError} reads it.
 */
export const keepAnswerContentType: grpc.Interceptor = (options, nextCall) => {
  let contentType: string | undefined;
  return new grpc.InterceptingCall(nextCall(options), {
    start(metadata, _listener, next) {
      next(metadata, {
        onReceiveMetadata(received, next) {
          const value = received.get('content-type')[0];
          if (typeof value === 'string') contentType = value;
          next(received);
        },
        onReceiveStatus(status, next) {
          if (status.code !== grpc.status.OK && contentType && !/^application\/grpc/i.test(contentType)) {
            status.metadata.set(ANSWER_CONTENT_TYPE, contentType);
          }
          next(status);
        },
      });
    },
  });
};

/** Per-call options: no gax retries (ours count the attempts), one deadline per attempt, the interceptor above. */
export function callOptionsOf(timeoutMs: number, signal?: AbortSignal): CallOptions {
  // A fresh `options` object per call: gax writes the attempt's deadline into it.
  const callOptions: CallOptions = {
    retry: null,
    timeout: timeoutMs,
    otherArgs: { options: { interceptors: [keepAnswerContentType] } },
  };
  if (signal) callOptions.signal = signal;
  return callOptions;
}

/** The HTTP status and content type of an answer that was not gRPC, as {@link keepAnswerContentType} kept them. */
function nonGrpcAnswer(error: unknown): { status: number | undefined; contentType: string } | undefined {
  const metadata = (error as { metadata?: { get?: (key: string) => unknown[] } } | null)?.metadata;
  const contentType = typeof metadata?.get === 'function' ? metadata.get(ANSWER_CONTENT_TYPE)[0] : undefined;
  if (typeof contentType !== 'string') return undefined;
  const details = (error as { details?: unknown }).details;
  const status = /Received HTTP status code (\d{3})/.exec(typeof details === 'string' ? details : '')?.[1];
  return { status: status === undefined ? undefined : Number(status), contentType };
}

/**
 * Failures of the auth library's call credentials (fetching a token) reach us as gRPC statuses
 * too; their network errors are about the token endpoint, not the GKE endpoint.
 */
const CALL_CREDENTIALS_FAILURE = /Getting metadata from plugin failed/i;

/**
 * An {@link EndpointUnreachableError} when a gax / grpc-js error says `where.endpoint` was not
 * reached (refused, DNS, TLS, timeout, an HTML page instead of gRPC), else `undefined`. A failure
 * of the call credentials (fetching a token) is about the token endpoint and never classified.
 */
export function grpcUnreachable(
  error: unknown,
  where: { operation: string; service: string; endpoint: string },
): EndpointUnreachableError | undefined {
  const detail = error instanceof Error ? error.message : String(error);
  if (CALL_CREDENTIALS_FAILURE.test(detail)) return undefined;
  const answer = nonGrpcAnswer(error);
  return unreachable(error, {
    cloud: CLOUD,
    ...where,
    status: answer?.status,
    contentType: answer?.contentType,
  });
}

/**
 * Wraps a gax / grpc-js / auth error once, where it enters; `what` names the call (default: the
 * project's list). A refused connection, failed DNS lookup, rejected certificate, timeout or an
 * HTML page instead of gRPC becomes `cannot reach gke at <endpoint>: <reason>` (see
 * `shared/runtime/network.ts`), `endpoint` being the configured `host:port`.
 */
export function toCloudApiError(
  project: string,
  error: unknown,
  operation: string = OPERATION,
  what = `listing gke clusters of project ${project}`,
  endpoint: string = DEFAULT_ENDPOINT,
): CloudApiError {
  if (error instanceof CloudApiError) return error;
  const code = grpcCode(error);
  const detail = error instanceof Error ? error.message : String(error);
  const down = grpcUnreachable(error, { operation, service: SERVICE, endpoint });
  if (down) return down;
  return new CloudApiError(
    `${what} failed: ${detail}`,
    {
      cloud: CLOUD,
      operation,
      status: code === undefined ? undefined : HTTP_STATUS_OF_CODE[code],
      retryable: code !== undefined && RETRYABLE_CODES.has(code),
    },
    { cause: error },
  );
}

// --- client options ---

interface ParsedEndpoint {
  /** Host as gRPC wants it in an address (IPv6 keeps its brackets). */
  servicePath: string;
  /** Bare host name or address, for the loopback check. */
  hostname: string;
  port: number;
}

function endpointIssue(message: string): ConfigError {
  return new ConfigError([{ path: 'clouds.gcp.endpoint', message }]);
}

/** Splits `host:port` (`[::1]:port` for IPv6; the port defaults to 443). */
export function parseEndpoint(endpoint: string): ParsedEndpoint {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(endpoint.trim());
  if (!m) throw endpointIssue(`expected "host:port" like "container.googleapis.com:443", got "${endpoint}"`);
  const servicePath = m[1]!;
  const port = m[2] === undefined ? DEFAULT_PORT : Number(m[2]);
  if (port < 1 || port > 65_535) throw endpointIssue(`port ${port} is out of range`);
  return { servicePath, hostname: servicePath.replace(/^\[|\]$/g, ''), port };
}

/** The GKE endpoint a config talks to, as `host:port`, for messages. */
export function endpointOfConfig(config: Pick<GcpConfig, 'endpoint'>): string {
  return config.endpoint?.trim() || DEFAULT_ENDPOINT;
}

/** Whether a host name or address is the local machine (`localhost`, `127.0.0.0/8`, `::1`). */
export function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '::1' || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/** The `ClusterManagerClient` options for a config; refuses `insecure` off loopback. */
export function clientOptions(config: GcpConfig): ClientOptions {
  const endpoint = config.endpoint === undefined ? undefined : parseEndpoint(config.endpoint);
  if (config.insecure) {
    if (!endpoint || !isLoopback(endpoint.hostname)) {
      throw new ConfigError([
        {
          path: 'clouds.gcp.insecure',
          message: 'insecure (plain-text gRPC without credentials) is allowed only with a loopback endpoint',
        },
      ]);
    }
    return {
      apiEndpoint: endpoint.servicePath,
      port: endpoint.port,
      // Insecure channel credentials: gax uses them as they are and adds no call credentials.
      sslCreds: grpc.credentials.createInsecure(),
      // Said explicitly so the auth library never looks for credentials to learn the universe domain.
      universeDomain: 'googleapis.com',
    };
  }
  const options: ClientOptions = {};
  if (endpoint) {
    options.apiEndpoint = endpoint.servicePath;
    options.port = endpoint.port;
  }
  if (config.credentialsFile) options.keyFilename = config.credentialsFile;
  return options;
}

// --- normalisation ---

/** `Cluster.Status` by number, for a payload that carries enums as numbers. */
const STATUS_NAMES = [
  'STATUS_UNSPECIFIED',
  'PROVISIONING',
  'RUNNING',
  'RECONCILING',
  'STOPPING',
  'ERROR',
  'DEGRADED',
];

const STATUS: Record<string, ClusterStatus> = {
  RUNNING: 'running',
  PROVISIONING: 'provisioning',
  RECONCILING: 'updating',
  STOPPING: 'deleting',
  ERROR: 'failed',
  DEGRADED: 'degraded',
};

/** `DatabaseEncryption.State` by number. */
const ENCRYPTION_STATE_NAMES = ['UNKNOWN', 'ENCRYPTED', 'DECRYPTED', 'ALL_OBJECTS_ENCRYPTION_ENABLED'];
/** States in which application-layer secrets encryption uses the customer's Cloud KMS key. */
const KEY_IN_USE = new Set(['ENCRYPTED', 'ALL_OBJECTS_ENCRYPTION_ENABLED']);

function enumName(value: unknown, names: readonly string[]): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return names[value] ?? String(value);
  return null;
}

function text(value: string | null | undefined): string | null {
  return value ? value : null;
}

/** Where the API server is reachable, from the current and the legacy (private cluster) settings. */
function endpointOf(cluster: GkeCluster): { endpoint: string | null; access: EndpointAccess } {
  const ip = cluster.controlPlaneEndpointsConfig?.ipEndpointsConfig;
  const legacy = cluster.privateClusterConfig;
  const dns = cluster.controlPlaneEndpointsConfig?.dnsEndpointConfig;
  // IP endpoints switched off: only the DNS endpoint answers (public only when external traffic is allowed).
  if (ip?.enabled === false && dns?.endpoint) {
    return { endpoint: `https://${dns.endpoint}`, access: dns.allowExternalTraffic ? 'public' : 'private' };
  }
  const privateEndpoint = text(ip?.privateEndpoint) ?? text(legacy?.privateEndpoint);
  const publicOff = legacy?.enablePrivateEndpoint === true || ip?.enablePublicEndpoint === false;
  if (publicOff) {
    const address = privateEndpoint ?? text(cluster.endpoint);
    return { endpoint: address ? `https://${address}` : null, access: 'private' };
  }
  const address = text(cluster.endpoint) ?? text(ip?.publicEndpoint) ?? text(legacy?.publicEndpoint);
  return {
    endpoint: address ? `https://${address}` : null,
    access: privateEndpoint ? 'public-and-private' : 'public',
  };
}

function isoTime(value: string | null | undefined): string | null {
  if (!value) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}

function labelsOf(labels: GkeCluster['resourceLabels']): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels ?? {})) tags[k] = String(v);
  return tags;
}

/**
 * One GKE cluster as a {@link DiscoveredCluster}; throws {@link UnparseableClusterError}
 * when it has no name or no location.
 *
 * - `region` is the cluster's `location`: a region for regional clusters, the zone for
 *   zonal ones (`europe-west1-b`).
 * - `secretsEncryptionKey` is the Cloud KMS key of application-layer secrets encryption
 *   when it is in use; otherwise GKE still encrypts etcd at rest, with Google-managed keys,
 *   which is reported as `null` (no customer key).
 * - `auditLogging` is always `true`: GKE writes the Kubernetes API server's Admin Activity
 *   audit logs (writes of Kubernetes objects and cluster configuration changes) to Cloud Audit
 *   Logs, and they cannot be disabled (cloud.google.com/kubernetes-engine/docs/how-to/audit-logging).
 *   `loggingService` / `loggingConfig` govern the cluster's system, workload and component logs,
 *   not Cloud Audit Logs, so `loggingService: none` leaves the audit trail in place. Data Access
 *   audit logs (reads) depend on the project's IAM audit config, which this adapter does not read;
 *   the compliance evidence says so (shared/compliance/evaluate.ts, `AUDIT_COVERAGE`).
 */
export function normaliseCluster(project: string, cluster: GkeCluster): DiscoveredCluster {
  const name = cluster.name;
  const location = cluster.location;
  if (!name || !location) {
    const missing = [!name && 'name', !location && 'location'].filter(Boolean).join(' and ');
    throw new UnparseableClusterError(
      `gke cluster ${describe(cluster)} in project ${project} has no ${missing}`,
    );
  }
  const statusName = enumName(cluster.status, STATUS_NAMES);
  const encryption = cluster.databaseEncryption;
  const encryptionState = enumName(encryption?.state, ENCRYPTION_STATE_NAMES);
  const { endpoint, access } = endpointOf(cluster);
  return {
    id: `${CLOUD}/${project}/${location}/${name}`,
    cloud: CLOUD,
    scope: project,
    region: location,
    name,
    kubernetesVersion: text(cluster.currentMasterVersion),
    endpoint,
    endpointAccess: access,
    secretsEncryptionKey:
      encryptionState && KEY_IN_USE.has(encryptionState) ? text(encryption?.keyName) : null,
    auditLogging: true,
    tags: labelsOf(cluster.resourceLabels),
    status: (statusName && STATUS[statusName]) || 'unknown',
    providerStatus: statusName && statusName !== 'STATUS_UNSPECIFIED' ? statusName : null,
    createdAt: isoTime(cluster.createTime),
  };
}

/** What names a cluster we could not parse: its name, else what its selfLink says, else its id. */
function identify(cluster: GkeCluster): { cluster: string; region?: string } {
  const link = /\/locations\/([^/]+)\/clusters\/([^/]+)$/.exec(cluster.selfLink ?? '');
  const region = cluster.location || link?.[1];
  const id = cluster.name || link?.[2] || cluster.id || '(unnamed)';
  return region ? { cluster: id, region } : { cluster: id };
}

function describe(cluster: GkeCluster): string {
  const { cluster: id, region } = identify(cluster);
  return region ? `"${id}" (${region})` : `"${id}"`;
}

// --- the adapter ---

const CODE_NOT_FOUND = 5;

/** Whether a ref's part can stand in a resource name (`projects/<p>/locations/<l>/clusters/<n>`). */
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function createDiscovery(config: GcpConfig, ctx: AdapterContext): ClusterDiscovery {
  // Validate the connection settings now, so a bad config fails at start-up, not per run.
  const options = clientOptions(config);
  return {
    cloud: CLOUD,
    async describe(ref, describeOptions = {}) {
      const { signal } = describeOptions;
      // An event for a project we were not given makes no call at all.
      const project = config.projects.find((p) => p.id === ref.scope)?.id;
      if (project === undefined) {
        throw new ConfigError([
          { path: 'clouds.gcp.projects', message: `project ${ref.scope} is not configured` },
        ]);
      }
      if (!SEGMENT.test(ref.region) || !SEGMENT.test(ref.name)) {
        throw new FleetwardError(
          `a gke cluster reference needs a location and a name, got "${ref.region}" and "${ref.name}"`,
        );
      }
      signal?.throwIfAborted();
      const name = `projects/${project}/locations/${ref.region}/clusters/${ref.name}`;
      const what = `getting gke cluster ${name}`;
      const callOptions = callOptionsOf(config.timeoutMs, signal);
      const client = new ClusterManagerClient(options);
      try {
        let cluster: GkeCluster;
        try {
          await client.initialize();
          [cluster] = await withRetry(() => client.getCluster({ name }, callOptions), classify, {
            maxAttempts: config.maxAttempts,
            signal,
            onRetry: ({ attempt, delayMs, error }) =>
              ctx.logger.info('Call retried', {
                operation: 'GetCluster',
                project,
                attempt,
                delayMs,
                code: grpcCode(error),
              }),
          });
        } catch (error) {
          if (signal?.aborted) throw signal.reason ?? error;
          if (grpcCode(error) === CODE_NOT_FOUND) {
            ctx.logger.info('Cluster not found', { project, location: ref.region, cluster: ref.name });
            return null;
          }
          throw toCloudApiError(project, error, 'GetCluster', what, endpointOfConfig(config));
        }
        return normaliseCluster(project, cluster);
      } finally {
        await client.close().catch(() => undefined);
      }
    },
    async discover(discoverOptions = {}) {
      const { signal } = discoverOptions;
      signal?.throwIfAborted();
      const projects = config.projects.map((p) => p.id);
      const endpoint = endpointOfConfig(config);
      const wrap = (project: string, error: unknown) =>
        toCloudApiError(project, error, OPERATION, undefined, endpoint);
      const client = new ClusterManagerClient(options);
      let results: ScopeResult[];
      try {
        let setupError: unknown;
        try {
          // Creates the channel (and, unless insecure, the credentials) once, up front: a failure here
          // fails every project instead of surfacing as an unhandled rejection inside the client.
          await client.initialize();
        } catch (error) {
          setupError = error;
        }
        const limiter = createLimiter(config.concurrency);
        const settled = await mapSettled(projects, limiter, (project) =>
          setupError === undefined
            ? listProject(client, project, config, ctx, signal)
            : Promise.resolve(scopeFailure(project, wrap(project, setupError))),
        );
        signal?.throwIfAborted();
        results = settled.map((result, i) =>
          result.status === 'fulfilled'
            ? result.value
            : scopeFailure(projects[i]!, wrap(projects[i]!, result.reason)),
        );
      } finally {
        await client.close().catch(() => undefined);
      }
      return mergeScopes(CLOUD, projects, results, ctx.logger);
    },
  };
}

function scopeFailure(project: string, error: CloudApiError): ScopeResult {
  return failedScope(CLOUD, project, error);
}

/**
 * Lists one project. A project is complete only when the list has no `missingZones` and
 * every cluster parsed: a zone GKE could not reach, or a cluster we could not read, may
 * hold clusters seen before, which must not be taken for deleted. Each missing zone is
 * one `scope` failure with `region` set to the zone; the clusters that did come back are
 * still returned.
 */
async function listProject(
  client: ClusterManagerClient,
  project: string,
  config: GcpConfig,
  ctx: AdapterContext,
  signal: AbortSignal | undefined,
): Promise<ScopeResult> {
  const request = { parent: `projects/${project}/locations/-` };
  const callOptions = callOptionsOf(config.timeoutMs, signal);
  let response: protos.google.container.v1.IListClustersResponse;
  try {
    [response] = await withRetry(() => client.listClusters(request, callOptions), classify, {
      maxAttempts: config.maxAttempts,
      signal,
      onRetry: ({ attempt, delayMs, error }) =>
        ctx.logger.info('Call retried', {
          operation: OPERATION,
          project,
          attempt,
          delayMs,
          code: grpcCode(error),
        }),
    });
  } catch (error) {
    if (signal?.aborted) throw error;
    return scopeFailure(
      project,
      toCloudApiError(project, error, OPERATION, undefined, endpointOfConfig(config)),
    );
  }

  const result: ScopeResult = { clusters: [], failures: [], complete: true };
  for (const cluster of response.clusters ?? []) {
    try {
      result.clusters.push(normaliseCluster(project, cluster));
    } catch (error) {
      result.complete = false;
      result.failures.push({
        cloud: CLOUD,
        scope: project,
        kind: 'unparseable',
        ...identify(cluster),
        error: errorInfo(error),
      });
    }
  }
  for (const zone of response.missingZones ?? []) {
    result.complete = false;
    const error = new CloudApiError(
      `gke could not list the clusters of zone ${zone} in project ${project} (missingZones)`,
      {
        cloud: CLOUD,
        operation: OPERATION,
        retryable: true,
      },
    );
    result.failures.push({
      cloud: CLOUD,
      scope: project,
      region: zone,
      kind: 'scope',
      error: errorInfo(error),
    });
  }
  return result;
}

/**
 * Provider permissions of this module's calls (shared/clouds/permissions.ts).
 */
export const PERMISSIONS: readonly import('../permissions.ts').PermissionGrant[] = [
  {
    provider: 'gcp',
    holder: 'member',
    capability: 'discovery',
    permission: 'container.clusters.list',
    calls: ['container:ListClusters'],
    why: 'list the GKE clusters of each configured project (all locations)',
  },
  {
    provider: 'gcp',
    holder: 'member',
    capability: 'discovery',
    permission: 'container.clusters.get',
    calls: ['container:GetCluster'],
    why: 'read one cluster when a cluster event names it',
  },
];
