/**
 * GKE resource labels. `SetLabels` replaces the whole label set and is guarded by the
 * `labelFingerprint` of the labels it replaces, so a write is: `GetCluster` (labels and
 * fingerprint), merge the changes in, `SetLabels` with that fingerprint. When another
 * writer changed the labels in between, GKE answers FAILED_PRECONDITION ("fingerprint
 * mismatch"): the labels are read again, merged again, and the write retried once; a second
 * conflict fails the write (nothing of ours was written, nothing of theirs was lost).
 * Transient errors (UNAVAILABLE, RESOURCE_EXHAUSTED, ...) are retried per call with
 * `withRetry`, as in discovery.
 */
import { ClusterManagerClient } from '@google-cloud/container';
import type { CallOptions } from 'google-gax';
import type { GcpConfig } from '../../config/schema.ts';
import type { Cluster } from '../../model.ts';
import { createLimiter } from '../../runtime/concurrency.ts';
import { CloudApiError, EndpointUnreachableError } from '../../runtime/errors.ts';
import { withRetry } from '../../runtime/retry.ts';
import type { ClusterTagger } from '../../tags/port.ts';
import type { AdapterContext } from '../context.ts';
import {
  callOptionsOf,
  classify,
  toCloudApiError as classifyGkeError,
  clientOptions,
  endpointOfConfig,
  grpcCode,
  HTTP_STATUS_OF_CODE,
} from './grpc.ts';

const FAILED_PRECONDITION = 9;

/** The resource name GKE knows a cluster by. */
export function clusterName(cluster: Pick<Cluster, 'scope' | 'region' | 'name'>): string {
  return `projects/${cluster.scope}/locations/${cluster.region}/clusters/${cluster.name}`;
}

/** Whether an error is GKE refusing a label write made against labels that changed meanwhile. */
export function isFingerprintConflict(error: unknown): boolean {
  if (grpcCode(error) !== FAILED_PRECONDITION) return false;
  const text = `${(error as { details?: unknown }).details ?? ''} ${(error as Error).message ?? ''}`;
  return /fingerprint/i.test(text);
}

/**
 * Wraps a gax / grpc-js error once; a refused, untrusted or HTML-answering endpoint (`host:port`)
 * is `cannot reach gke at <endpoint>: <reason>`.
 */
function toCloudApiError(
  operation: string,
  cluster: Cluster,
  error: unknown,
  endpoint: string,
): CloudApiError {
  if (error instanceof CloudApiError) return error;
  const down = classifyGkeError(
    cluster.scope,
    error,
    operation,
    `gke ${operation} of ${cluster.id}`,
    endpoint,
  );
  if (down instanceof EndpointUnreachableError) return down;
  const code = grpcCode(error);
  const detail = error instanceof Error ? error.message : String(error);
  return new CloudApiError(
    `gke ${operation} of ${cluster.id} failed: ${detail}`,
    {
      cloud: 'gcp',
      operation,
      status: code === undefined ? undefined : HTTP_STATUS_OF_CODE[code],
      retryable: classify(error).retry,
    },
    { cause: error },
  );
}

export function createTagger(config: GcpConfig, ctx: AdapterContext): ClusterTagger {
  const options = clientOptions(config);
  const limit = createLimiter(config.concurrency);
  let client: ClusterManagerClient | undefined;
  const clientOf = () => {
    client ??= new ClusterManagerClient(options);
    return client;
  };

  const call = <T>(operation: string, cluster: Cluster, fn: () => Promise<T>, signal?: AbortSignal) =>
    limit(() =>
      withRetry(fn, classify, {
        maxAttempts: config.maxAttempts,
        signal,
        onRetry: ({ attempt, delayMs, error }) =>
          ctx.logger.info('Call retried', {
            operation,
            cluster: cluster.id,
            attempt,
            delayMs,
            code: grpcCode(error),
          }),
      }),
    );

  const endpoint = endpointOfConfig(config);
  // No gax retries, one deadline per attempt, and the content type of an answer that is not gRPC kept.
  const callOptions = (signal?: AbortSignal): CallOptions => callOptionsOf(config.timeoutMs, signal);

  async function get(cluster: Cluster, signal?: AbortSignal) {
    try {
      const [got] = await call(
        'GetCluster',
        cluster,
        () => clientOf().getCluster({ name: clusterName(cluster) }, callOptions(signal)),
        signal,
      );
      const labels: Record<string, string> = {};
      for (const [k, v] of Object.entries(got.resourceLabels ?? {})) labels[k] = String(v);
      return { labels, fingerprint: got.labelFingerprint ?? '' };
    } catch (error) {
      if (signal?.aborted) throw error;
      throw toCloudApiError('GetCluster', cluster, error, endpoint);
    }
  }

  return {
    cloud: 'gcp',
    async read(cluster, opts = {}) {
      return (await get(cluster, opts.signal)).labels;
    },
    async write(cluster, changes, opts = {}) {
      const { signal } = opts;
      for (let attempt = 1; ; attempt++) {
        const { labels, fingerprint } = await get(cluster, signal);
        if (Object.entries(changes).every(([k, v]) => labels[k] === v)) return;
        const merged = { ...labels, ...changes };
        try {
          await call(
            'SetLabels',
            cluster,
            () =>
              clientOf().setLabels(
                { name: clusterName(cluster), resourceLabels: merged, labelFingerprint: fingerprint },
                callOptions(signal),
              ),
            signal,
          );
          ctx.logger.info('Labels written', { cluster: cluster.id, keys: Object.keys(changes), attempt });
          return;
        } catch (error) {
          if (signal?.aborted) throw error;
          if (attempt === 1 && isFingerprintConflict(error)) {
            ctx.logger.info('Labels changed meanwhile; reading them again', { cluster: cluster.id });
            continue;
          }
          throw toCloudApiError('SetLabels', cluster, error, endpoint);
        }
      }
    },
    async close() {
      await client?.close().catch(() => undefined);
      client = undefined;
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
    capability: 'tags',
    permission: 'container.clusters.get',
    calls: ['container:GetCluster'],
    why: "read a cluster's labels and label fingerprint before writing",
  },
  {
    provider: 'gcp',
    holder: 'member',
    capability: 'tags',
    permission: 'container.clusters.update',
    calls: ['container:SetLabels'],
    why: 'write the cost labels the fleet policy asks for on each GKE cluster',
  },
];
