/**
 * AKS resource tags through Azure Resource Manager. `managedClusters.updateTags` (PATCH
 * with a TagsObject) replaces the cluster's whole tag set, so a write is: `managedClusters.get`,
 * merge the changes into the tags it returned, `beginUpdateTagsAndWait` with the merged set
 * and `If-Match` set to the `eTag` that get returned. The merge is atomic: when another
 * writer changed the cluster in between, ARM answers 412 and nothing is written; the write
 * then re-reads and merges once more (a second 412 is an error), so a concurrent writer's
 * tag is never lost. A cluster ARM answers without an `eTag` is not written at all. Tag
 * names are case-insensitive on ARM: a change to `jurisdiction` lands on an existing
 * `Jurisdiction` (its spelling kept), never beside it.
 * Every request passes discovery's request policy (same-origin check, per-attempt
 * deadline) and our retry (`withRetry` with discovery's `classify`).
 */
import { ContainerServiceClient } from '@azure/arm-containerservice';
import type { AzureConfig } from '../../config/schema.ts';
import type { Cluster } from '../../model.ts';
import { createLimiter } from '../../runtime/concurrency.ts';
import { CloudApiError } from '../../runtime/errors.ts';
import { unreachable } from '../../runtime/network.ts';
import { withRetry } from '../../runtime/retry.ts';
import type { ClusterTagger } from '../../tags/port.ts';
import type { AdapterContext } from '../context.ts';
import {
  classify,
  clientOptions,
  connectionOf,
  createCredential,
  requestPolicy,
  resourceGroupOf,
  SERVICE,
  type TokenCredential,
} from './arm.ts';

/** `tags` with `changes` merged in; keys compare case-insensitively and keep their existing spelling. */
export function mergeAzureTags(
  tags: Record<string, string>,
  changes: Record<string, string>,
): Record<string, string> {
  const merged = { ...tags };
  const spelling = new Map(Object.keys(tags).map((k) => [k.toLowerCase(), k]));
  for (const [key, value] of Object.entries(changes)) merged[spelling.get(key.toLowerCase()) ?? key] = value;
  return merged;
}

/**
 * Wraps an error once. A `RestError` of the pipeline to ARM at `endpoint` that says the endpoint
 * was not reached (refused, DNS, TLS, timeout) is `cannot reach arm at <endpoint>: <reason>`; a
 * credential's errors are about its token endpoint, not ARM.
 */
function toCloudApiError(
  operation: string,
  cluster: Cluster,
  error: unknown,
  endpoint: string,
): CloudApiError {
  if (error instanceof CloudApiError) return error;
  const e = error as { name?: unknown; statusCode?: unknown; code?: unknown; message?: unknown };
  const status = typeof e?.statusCode === 'number' ? e.statusCode : undefined;
  if (e?.name === 'RestError') {
    const down = unreachable(error, { cloud: 'azure', operation, service: SERVICE, endpoint, status });
    if (down) return down;
  }
  const what = [status, typeof e?.code === 'string' ? e.code : undefined]
    .filter((p) => p !== undefined)
    .join(' ');
  const detail = String(e?.message ?? error)
    .split('\n')[0]!
    .slice(0, 300);
  return new CloudApiError(
    `azure ${operation} of ${cluster.id} failed${what ? ` (${what})` : ''}: ${detail}`,
    { cloud: 'azure', operation, status, retryable: classify(error).retry },
    { cause: error },
  );
}

export function createTagger(config: AzureConfig, ctx: AdapterContext): ClusterTagger {
  const connection = connectionOf(config);
  const limit = createLimiter(config.concurrency);
  let credential: Promise<TokenCredential> | undefined;

  /** A client for one call: the subscription is part of the client, the call's signal part of its policy. */
  async function clientFor(cluster: Cluster, operation: string, signal?: AbortSignal) {
    credential ??= createCredential(config.credential).catch((error) => {
      credential = undefined;
      throw error;
    });
    return new ContainerServiceClient(
      await credential,
      cluster.scope,
      clientOptions(connection, requestPolicy(connection, config.timeoutMs, signal, operation)),
    );
  }

  const resourceGroup = (cluster: Cluster) => cluster.resourceGroup ?? resourceGroupOf(cluster.id) ?? '';

  async function call<T>(
    operation: string,
    cluster: Cluster,
    fn: (client: ContainerServiceClient) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    try {
      const client = await clientFor(cluster, operation, signal);
      return await limit(() =>
        withRetry(() => fn(client), classify, {
          maxAttempts: config.maxAttempts,
          signal,
          onRetry: ({ attempt, delayMs }) =>
            ctx.logger.info('Call retried', { operation, cluster: cluster.id, attempt, delayMs }),
        }),
      );
    } catch (error) {
      if (signal?.aborted) throw error;
      throw toCloudApiError(operation, cluster, error, connection.endpoint);
    }
  }

  async function readWithETag(
    cluster: Cluster,
    signal?: AbortSignal,
  ): Promise<{ tags: Record<string, string>; eTag: string | undefined }> {
    const got = await call(
      'managedClusters.get',
      cluster,
      (client) => client.managedClusters.get(resourceGroup(cluster), cluster.name),
      signal,
    );
    const tags: Record<string, string> = {};
    for (const [k, v] of Object.entries(got.tags ?? {})) tags[k] = String(v);
    return { tags, eTag: got.eTag };
  }

  /** Merges `changes` into what the cluster holds now; `false` when ARM refused it as stale (412). */
  async function mergeOnce(
    cluster: Cluster,
    changes: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const { tags: current, eTag } = await readWithETag(cluster, signal);
    const merged = mergeAzureTags(current, changes);
    if (
      Object.keys(merged).length === Object.keys(current).length &&
      Object.entries(merged).every(([k, v]) => current[k] === v)
    )
      return true;
    if (!eTag) {
      throw new CloudApiError(
        `azure managedClusters.updateTags of ${cluster.id} not sent: the cluster has no eTag, so the write could drop another writer's tags`,
        { cloud: 'azure', operation: 'managedClusters.updateTags', retryable: false },
      );
    }
    try {
      await call(
        'managedClusters.updateTags',
        cluster,
        (client) =>
          client.managedClusters.beginUpdateTagsAndWait(
            resourceGroup(cluster),
            cluster.name,
            { tags: merged },
            // Atomic read-merge-write: ARM applies it only if nobody changed the cluster since our read.
            { ifMatch: eTag },
          ),
        signal,
      );
      return true;
    } catch (error) {
      if ((error as CloudApiError).status === 412) return false;
      throw error;
    }
  }

  return {
    cloud: 'azure',
    read: async (cluster, options = {}) => (await readWithETag(cluster, options.signal)).tags,
    async write(cluster, changes, options = {}) {
      const { signal } = options;
      if (Object.keys(changes).length === 0) return;
      // One re-read and merge after a 412; a second 412 is reported (the tags keep changing).
      if (!(await mergeOnce(cluster, changes, signal)) && !(await mergeOnce(cluster, changes, signal))) {
        throw new CloudApiError(
          `azure managedClusters.updateTags of ${cluster.id} failed (412 PreconditionFailed): the cluster changed between read and write twice; nothing was written`,
          { cloud: 'azure', operation: 'managedClusters.updateTags', status: 412, retryable: false },
        );
      }
      ctx.logger.info('Tags written', { cluster: cluster.id, keys: Object.keys(changes) });
    },
    async close() {},
  };
}

/**
 * Provider permissions of this module's calls (shared/clouds/permissions.ts).
 */
export const PERMISSIONS: readonly import('../permissions.ts').PermissionGrant[] = [
  {
    provider: 'azure',
    holder: 'member',
    capability: 'tags',
    permission: 'Microsoft.ContainerService/managedClusters/read',
    calls: ['arm:managedClusters.get'],
    why: "read a cluster's tags before writing",
  },
  {
    provider: 'azure',
    holder: 'member',
    capability: 'tags',
    permission: 'Microsoft.ContainerService/managedClusters/write',
    calls: ['arm:managedClusters.updateTags'],
    why: "write the cost tags the fleet policy asks for (the managed cluster's updateTags PATCH checks the resource's write action; Microsoft.Resources/tags/write alone covers only the Tags API)",
  },
];
