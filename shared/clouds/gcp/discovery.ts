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
import type { GcpConfig } from '../../config/schema.ts';
import type { ClusterStatus, DiscoveredCluster, EndpointAccess } from '../../model.ts';
import type { ClusterDiscovery } from '../../ports.ts';
import { createLimiter, mapSettled } from '../../runtime/concurrency.ts';
import {
  CloudApiError,
  ConfigError,
  errorInfo,
  FleetwardError,
  UnparseableClusterError,
} from '../../runtime/errors.ts';
import { withRetry } from '../../runtime/retry.ts';
import type { AdapterContext } from '../context.ts';
import { failedScope, mergeScopes, type ScopeResult } from '../outcome.ts';
import {
  callOptionsOf,
  classify,
  clientOptions,
  endpointOfConfig,
  grpcCode,
  toCloudApiError,
} from './grpc.ts';

// The gRPC helpers lived here first; adapters import them from ./grpc.ts.
export { isLoopback } from './auth.ts';
export {
  callOptionsOf,
  classify,
  clientOptions,
  DEFAULT_ENDPOINT,
  endpointOfConfig,
  grpcCode,
  grpcUnreachable,
  HTTP_STATUS_OF_CODE,
  keepAnswerContentType,
  parseEndpoint,
  toCloudApiError,
} from './grpc.ts';

const CLOUD = 'gcp';
const OPERATION = 'ListClusters';

/** A cluster as the GKE v1 API returns it. */
export type GkeCluster = protos.google.container.v1.ICluster;

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
