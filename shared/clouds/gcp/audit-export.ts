/**
 * GKE audit logs in export mode: a Cloud Logging Log Router sink per cluster that writes the
 * cluster's Kubernetes audit entries into the jurisdiction's evidence Cloud Storage bucket.
 * Fleetward only manages the sink (desired state, `fleetward audit plan` / `apply`); Cloud
 * Logging delivers the entries itself, so no Fleetward code is in the data path.
 *
 * What Cloud Logging does, and the design that follows from it:
 * - A sink's Cloud Storage destination is a bucket and nothing else:
 *   `storage.googleapis.com/[GCS_BUCKET]` (LogSink `destination`, Cloud Logging API v2 reference,
 *   cloud.google.com/logging/docs/reference/v2/rest/v2/projects.sinks). The `LogSink` resource
 *   has no object prefix or path field, so a sink cannot be told where in the bucket to write.
 * - Entries are written "in hourly batches" (2 to 3 hours may pass before the first appear) as
 *   files named by log and hour: `<LOG_ID>/YYYY/MM/DD/HH:MM:SS_HH:MM:SS_S<n>.json`, sharded `Sn`
 *   or `An` (n = 0, 1, …), holding JSON `LogEntry` objects; "a single Cloud Storage bucket can
 *   contain logs from multiple resource types", and sinks with overlapping filters may write
 *   an entry more than once ("View logs routed to Cloud Storage",
 *   cloud.google.com/logging/docs/export/storage). For GKE audit logs the LOG_ID is
 *   `cloudaudit.googleapis.com/activity`, `…/data_access` (and `system_event`, `policy`).
 * - So nothing in an exported object's name says which sink, project or cluster it came from:
 *   several sinks into one bucket write into the same `<LOG_ID>/YYYY/MM/DD/` folders.
 *
 * Design: one sink per cluster (in the cluster's project, `cluster.scope`), named
 * `fleetward-audit-<cluster name>-<location>` (sink names: at most 100 of `[A-Za-z0-9_.-]`,
 * alphanumeric first; longer names are cut and end in a hash), whose filter is exactly the
 * cluster's Kubernetes audit log (`resource.type="k8s_cluster"`, its `cluster_name` and
 * `location`, `logName:"cloudaudit.googleapis.com"`), into the jurisdiction's evidence bucket.
 * One sink per cluster keeps desired state and drift per cluster (a disabled sink or a narrowed
 * filter is the finding of that cluster). Attribution, honestly: exported objects can be
 * attributed to the evidence bucket (the jurisdiction), not to one cluster. `exported()` answers
 * the bucket and the prefix `cloudaudit.googleapis.com/`, the audit logs every Fleetward sink
 * into the bucket writes; a GKE cluster's hourly digest therefore lists every Kubernetes audit
 * object the bucket received that hour (its own and those of the other GKE clusters exporting
 * into the same bucket): each digest covers a superset of the cluster's entries, and a digest
 * job may list such a shared (store, prefix) once per hour. The evidence bucket must not receive
 * other `cloudaudit.googleapis.com` logs (no other sinks into it).
 *
 * Calls (Cloud Logging API v2 REST with plain `fetch`, like the audit source in ./audit.ts, so the
 * `loggingEndpoint` / `insecure` / credentials rules are the same; scope `logging.admin`):
 * - `observe`: `GET /v2/projects/{project}/sinks/{name}` (`sinks.get`); 404 → `null`. `disabled`
 *   → `enabled: false`; `settings.writerIdentity` is the sink's writer identity. The v2
 *   `LogSink` carries no delivery errors (the v1beta3 resource had `errors[]`; v2 reports failed
 *   exports only through the `logging.googleapis.com/exports/error_count` metric and error
 *   notifications, "Troubleshoot routing and storage", cloud.google.com/logging/docs/export/troubleshoot),
 *   so `deliveryErrors` is always empty here.
 * - `apply`: get; absent → `POST /v2/projects/{project}/sinks?uniqueWriterIdentity=true`
 *   (`sinks.create`; a 409 from a racing or retried create → update); present and different →
 *   `PUT /v2/projects/{project}/sinks/{name}?uniqueWriterIdentity=true&updateMask=destination,filter,disabled,description`
 *   (`sinks.update`; the reference refuses an update that would turn a unique writer identity
 *   back into the shared one, so `uniqueWriterIdentity=true` is sent on update too). Only sinks
 *   whose name starts with `fleetward-audit-` are ever created or changed.
 * - Retries: `withRetry` (`maxAttempts`) on 408/429/5xx, network errors and the `timeoutMs`
 *   deadline, honouring `Retry-After`; failures are {@link CloudApiError}; an unreachable
 *   endpoint or an HTML page is `cannot reach cloud logging at <loggingEndpoint>: <reason>`.
 *
 * Destination (`checkDestination`), with the Cloud Storage archive of ./audit.ts on the bucket
 * named by `destination`: a locked retention policy of at least `retentionDays`
 * (`assertImmutable`, else {@link NotImmutableError}), then the bucket's location, lower case,
 * multi- and dual-regions refused (`location`): the caller runs the residency guard on it.
 * The sink's writer identity needs `roles/storage.objectCreator` on the bucket, or Cloud Logging
 * drops the entries. Fleetward does not read or grant bucket IAM (that needs
 * `storage.buckets.getIamPolicy` / `setIamPolicy`, and the sandbox's GCS fake has no bucket IAM):
 * granting it to the `writerIdentity` that `observe` reports is a manual / onboarding step.
 */

import { createHash } from 'node:crypto';
import { GCS_EXPORT_PREFIX } from '../../audit/export-layout.ts';
import type { FleetConfig, GcpConfig } from '../../config/schema.ts';
import type { Cluster } from '../../model.ts';
import type {
  ArchiveStore,
  AuditExporter,
  ExportedObjects,
  ExportObserved,
  ExportSpec,
} from '../../ports.ts';
import { CloudApiError, ConfigError, errorInfo, FleetwardError } from '../../runtime/errors.ts';
import { isHtmlContentType, unreachable } from '../../runtime/network.ts';
import { parseRetryAfter, withRetry } from '../../runtime/retry.ts';
import type { AdapterContext } from '../context.ts';
import { clusterAuditFilter, createGcsArchiveStore } from './audit.ts';
import { bearerAuthorization, restBaseUrl } from './auth.ts';
import { classifyFetch, googleErrorMessage, HttpStatusError } from './rest.ts';

const CLOUD = 'gcp';
const DEFAULT_LOGGING_ENDPOINT = 'https://logging.googleapis.com';
const LOGGING_SERVICE = 'cloud logging';
/** `sinks.create` / `sinks.update` need more than the read scope of the audit source. */
const LOGGING_ADMIN_SCOPE = 'https://www.googleapis.com/auth/logging.admin';
/** Every sink Fleetward manages has a name that starts so; no other sink is ever changed. */
export const SINK_NAME_PREFIX = 'fleetward-audit-';
/** The longest sink name the API accepts. */
const MAX_SINK_NAME = 100;
/** Where a Log Router sink writes GKE audit logs inside a bucket: the folders of their LOG_IDs. */
export const EXPORT_PREFIX = GCS_EXPORT_PREFIX;
const DESTINATION_PREFIX = 'storage.googleapis.com/';
const UPDATE_MASK = 'destination,filter,disabled,description';
// --- the desired sink (pure) ---

/**
 * The sink name of a cluster: `fleetward-audit-<name>-<location>`, characters outside
 * `[A-Za-z0-9_.-]` replaced by `-`; a name over 100 characters is cut and ends in a hash of
 * the whole, so two clusters never share a sink.
 */
export function sinkName(cluster: Pick<Cluster, 'name' | 'region'>): string {
  const name = `${SINK_NAME_PREFIX}${cluster.name}-${cluster.region}`.replace(/[^A-Za-z0-9_.-]/g, '-');
  if (name.length <= MAX_SINK_NAME) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 10);
  return `${name.slice(0, MAX_SINK_NAME - hash.length - 1)}-${hash}`;
}

/** The sink filter: exactly the cluster's Kubernetes audit entries (every audit log kind). */
export function sinkFilter(cluster: Pick<Cluster, 'name' | 'region'>): string {
  return clusterAuditFilter(cluster);
}

/** The `destination` of a sink into a Cloud Storage bucket. */
export function sinkDestination(bucket: string): string {
  return `${DESTINATION_PREFIX}${bucket}`;
}

/** The bucket of a Cloud Storage sink destination, or `undefined` for any other destination. */
export function bucketOfDestination(destination: string): string | undefined {
  if (!destination.startsWith(DESTINATION_PREFIX)) return undefined;
  const bucket = destination.slice(DESTINATION_PREFIX.length);
  return /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/.test(bucket) ? bucket : undefined;
}

/** The bucket of a GCS evidence store (`gcs:<bucket>`); throws for any other store. */
function bucketOfStore(store: Pick<ArchiveStore, 'id'>): string {
  const bucket = store.id.startsWith('gcs:') ? store.id.slice('gcs:'.length) : '';
  if (bucket === '') {
    throw new FleetwardError(
      `gke audit export writes into a cloud storage bucket, and the evidence store ${store.id} is not one`,
    );
  }
  return bucket;
}

function description(cluster: Pick<Cluster, 'id'>): string {
  return `Fleetward: the Kubernetes audit log of ${cluster.id} into the evidence bucket (managed by fleetward audit apply)`;
}

/**
 * An `ExportObserved` from a `LogSink` as the API answers it; throws {@link CloudApiError} for
 * an answer without a name or destination.
 */
export function toObserved(sink: unknown): ExportObserved {
  const s = (sink ?? {}) as Record<string, unknown>;
  if (typeof s.name !== 'string' || typeof s.destination !== 'string') {
    throw new CloudApiError('sinks.get answered something that is not a log sink', {
      cloud: CLOUD,
      operation: 'sinks.get',
      retryable: false,
    });
  }
  return {
    name: s.name,
    // proto3 JSON leaves `disabled: false` out.
    enabled: s.disabled !== true,
    destination: s.destination,
    filter: typeof s.filter === 'string' ? s.filter : '',
    settings: typeof s.writerIdentity === 'string' ? { writerIdentity: s.writerIdentity } : {},
    deliveryErrors: [],
  };
}

// --- http ---

/**
 * The GKE audit exporter of a GCP config (see the module comment); throws
 * {@link import('../../runtime/errors.ts').ConfigError} for bad connection settings.
 */
export function createAuditExporter(fleet: FleetConfig, ctx: AdapterContext): AuditExporter {
  const gcp = fleet.clouds.gcp;
  if (!gcp) throw new ConfigError([{ path: 'clouds.gcp', message: 'export mode on GKE needs clouds.gcp' }]);
  return createGkeAuditExporter(gcp, ctx);
}

/** The GKE audit exporter of the `clouds.gcp` section (see {@link createAuditExporter}). */
export function createGkeAuditExporter(config: GcpConfig, ctx: AdapterContext): AuditExporter {
  const base = restBaseUrl(config, 'loggingEndpoint', DEFAULT_LOGGING_ENDPOINT, LOGGING_SERVICE);
  const root = `${base.origin}${base.pathname.replace(/\/+$/, '')}/v2`;
  const endpoint = config.loggingEndpoint ?? DEFAULT_LOGGING_ENDPOINT;
  const authorization = bearerAuthorization(config, LOGGING_ADMIN_SCOPE);
  const stores = new Map<string, ArchiveStore>();
  const storeOf = (bucket: string): ArchiveStore => {
    let store = stores.get(bucket);
    if (!store) {
      // The archive store reads only the bucket name; the location comes from the bucket itself.
      store = createGcsArchiveStore(config, { bucket, location: '' }, ctx);
      stores.set(bucket, store);
    }
    return store;
  };

  /** One call with our retries; resolves the parsed body, or `null` for a 404 / 409 when `accept` lists it. */
  const call = async (
    operation: string,
    cluster: Cluster,
    request: { method: string; path: string; query?: Record<string, string>; body?: unknown },
    accept: readonly number[],
    signal: AbortSignal | undefined,
  ): Promise<{ status: number; body: unknown }> => {
    const url = new URL(`${root}${request.path}`);
    for (const [k, v] of Object.entries(request.query ?? {})) url.searchParams.set(k, v);
    const once = async (): Promise<{ status: number; body: unknown }> => {
      const deadline = AbortSignal.timeout(config.timeoutMs);
      const response = await fetch(url, {
        method: request.method,
        headers: {
          accept: 'application/json',
          ...(request.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(await authorization()),
        },
        ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
        signal: signal ? AbortSignal.any([signal, deadline]) : deadline,
      });
      const text = await response.text();
      const contentType = response.headers.get('content-type');
      if (isHtmlContentType(contentType)) {
        const page = unreachable(undefined, {
          cloud: CLOUD,
          operation,
          service: LOGGING_SERVICE,
          endpoint,
          status: response.status,
          contentType,
        });
        if (page) throw page;
      }
      if (accept.includes(response.status)) return { status: response.status, body: undefined };
      if (!response.ok) {
        throw new HttpStatusError(
          response.status,
          googleErrorMessage(text, response.statusText),
          parseRetryAfter(response.headers.get('retry-after')),
        );
      }
      return { status: response.status, body: JSON.parse(text) as unknown };
    };
    signal?.throwIfAborted();
    try {
      return await withRetry(once, classifyFetch, {
        maxAttempts: config.maxAttempts,
        signal,
        onRetry: ({ attempt, delayMs, error }) =>
          ctx.logger.info('Call retried', {
            operation,
            cluster: cluster.id,
            attempt,
            delayMs,
            error: errorInfo(error),
          }),
      });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (error instanceof CloudApiError) throw error;
      const status = error instanceof HttpStatusError ? error.status : undefined;
      const down = unreachable(error, {
        cloud: CLOUD,
        operation,
        service: LOGGING_SERVICE,
        endpoint,
        status,
      });
      if (down) throw down;
      const detail = error instanceof Error ? error.message.split('\n')[0] : String(error);
      throw new CloudApiError(
        `${operation} of the audit sink of gke cluster ${cluster.id} failed${status === undefined ? '' : ` (${status})`}: ${detail}`,
        { cloud: CLOUD, operation, status, retryable: classifyFetch(error).retry },
        { cause: error },
      );
    }
  };

  const sinkPath = (cluster: Cluster, name: string) =>
    `/projects/${encodeURIComponent(cluster.scope)}/sinks/${encodeURIComponent(name)}`;

  const get = async (cluster: Cluster, name: string, signal: AbortSignal | undefined) => {
    const answer = await call(
      'sinks.get',
      cluster,
      { method: 'GET', path: sinkPath(cluster, name) },
      [404],
      signal,
    );
    return answer.status === 404 ? null : toObserved(answer.body);
  };

  const body = (cluster: Cluster, spec: ExportSpec) => ({
    name: spec.name,
    destination: spec.destination,
    filter: spec.filter,
    description: description(cluster),
    disabled: false,
  });

  const update = async (cluster: Cluster, spec: ExportSpec, signal: AbortSignal | undefined) => {
    await call(
      'sinks.update',
      cluster,
      {
        method: 'PUT',
        path: sinkPath(cluster, spec.name),
        query: { uniqueWriterIdentity: 'true', updateMask: UPDATE_MASK },
        body: body(cluster, spec),
      },
      [],
      signal,
    );
    ctx.logger.info('Audit sink updated', { cloud: CLOUD, cluster: cluster.id, sink: spec.name });
  };

  return {
    cloud: CLOUD,

    desired(cluster, store) {
      return {
        name: sinkName(cluster),
        destination: sinkDestination(bucketOfStore(store)),
        filter: sinkFilter(cluster),
        settings: {},
      };
    },

    async checkDestination(_cluster, spec, retentionDays, options = {}) {
      const bucket = bucketOfDestination(spec.destination);
      if (bucket === undefined) {
        throw new FleetwardError(
          `gke audit sink ${spec.name} does not write into a cloud storage bucket (destination ${spec.destination})`,
        );
      }
      const store = storeOf(bucket);
      await store.assertImmutable(retentionDays, options);
      const location = await store.location(options);
      if (!location) throw new FleetwardError(`gcs bucket ${bucket} has no location`);
      return location;
    },

    async observe(cluster, spec, options = {}) {
      return get(cluster, spec.name, options.signal);
    },

    async apply(cluster, spec, options = {}) {
      const { signal } = options;
      if (!spec.name.startsWith(SINK_NAME_PREFIX)) {
        throw new FleetwardError(
          `refusing to change the log sink ${spec.name}: fleetward only manages sinks named ${SINK_NAME_PREFIX}…`,
        );
      }
      const current = await get(cluster, spec.name, signal);
      if (current === null) {
        const created = await call(
          'sinks.create',
          cluster,
          {
            method: 'POST',
            path: `/projects/${encodeURIComponent(cluster.scope)}/sinks`,
            query: { uniqueWriterIdentity: 'true' },
            body: body(cluster, spec),
          },
          [409],
          signal,
        );
        // 409: created meanwhile (another run, or our own attempt whose answer was lost).
        if (created.status === 409) await update(cluster, spec, signal);
        else ctx.logger.info('Audit sink created', { cloud: CLOUD, cluster: cluster.id, sink: spec.name });
        return;
      }
      const same =
        current.enabled && current.destination === spec.destination && current.filter === spec.filter;
      if (!same) await update(cluster, spec, signal);
    },

    async exported(_cluster, spec): Promise<ExportedObjects> {
      const bucket = bucketOfDestination(spec.destination);
      if (bucket === undefined) {
        throw new FleetwardError(
          `gke audit sink ${spec.name} does not write into a cloud storage bucket (destination ${spec.destination})`,
        );
      }
      return { store: storeOf(bucket), prefix: EXPORT_PREFIX };
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
    capability: 'audit-export',
    permission: 'logging.sinks.get',
    calls: ['logging:sinks.get'],
    why: "read the cluster's audit log sink, to compare it with the desired one and report drift",
  },
  {
    provider: 'gcp',
    holder: 'member',
    capability: 'audit-export',
    permission: 'logging.sinks.create',
    calls: ['logging:sinks.create'],
    why: "create the sink that routes the cluster's Kubernetes audit log into the evidence bucket",
  },
  {
    provider: 'gcp',
    holder: 'member',
    capability: 'audit-export',
    permission: 'logging.sinks.update',
    calls: ['logging:sinks.update'],
    why: 'put a Fleetward audit sink back to its desired destination, filter and enabled state',
  },
  {
    provider: 'gcp',
    holder: 'member',
    capability: 'audit-export',
    permission: 'storage.buckets.get',
    calls: ['storage:buckets.get'],
    why: 'check that the sink destination bucket is write-once (retention policy locked) and lies in the jurisdiction',
  },
];
