/**
 * AKS resource tags through Azure Resource Manager. `managedClusters.updateTags` (PATCH
 * with a TagsObject) replaces the cluster's whole tag set, so a write is: `managedClusters.get`,
 * merge the changes into the tags it returned, `beginUpdateTagsAndWait` with the merged
 * set; existing tags are never dropped. Tag names are case-insensitive on ARM: a change
 * to `jurisdiction` lands on an existing `Jurisdiction` (its spelling kept), never beside it.
 * Every request passes discovery's request policy (same-origin check, per-attempt
 * deadline) and our retry (`withRetry` with discovery's `classify`).
 */
import { ContainerServiceClient } from '@azure/arm-containerservice';
import type { AzureConfig } from '../../config/schema.ts';
import type { Cluster } from '../../model.ts';
import { createLimiter } from '../../runtime/concurrency.ts';
import { CloudApiError } from '../../runtime/errors.ts';
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
  type TokenCredential,
} from './discovery.ts';

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

function toCloudApiError(operation: string, cluster: Cluster, error: unknown): CloudApiError {
  if (error instanceof CloudApiError) return error;
  const e = error as { statusCode?: unknown; code?: unknown; message?: unknown };
  const status = typeof e?.statusCode === 'number' ? e.statusCode : undefined;
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
      throw toCloudApiError(operation, cluster, error);
    }
  }

  async function read(cluster: Cluster, signal?: AbortSignal): Promise<Record<string, string>> {
    const got = await call(
      'managedClusters.get',
      cluster,
      (client) => client.managedClusters.get(resourceGroup(cluster), cluster.name),
      signal,
    );
    const tags: Record<string, string> = {};
    for (const [k, v] of Object.entries(got.tags ?? {})) tags[k] = String(v);
    return tags;
  }

  return {
    cloud: 'azure',
    read: (cluster, options = {}) => read(cluster, options.signal),
    async write(cluster, changes, options = {}) {
      const { signal } = options;
      if (Object.keys(changes).length === 0) return;
      const current = await read(cluster, signal);
      const merged = mergeAzureTags(current, changes);
      if (
        Object.keys(merged).length === Object.keys(current).length &&
        Object.entries(merged).every(([k, v]) => current[k] === v)
      )
        return;
      await call(
        'managedClusters.updateTags',
        cluster,
        (client) =>
          client.managedClusters.beginUpdateTagsAndWait(resourceGroup(cluster), cluster.name, {
            tags: merged,
          }),
        signal,
      );
      ctx.logger.info('Tags written', { cluster: cluster.id, keys: Object.keys(changes) });
    },
    async close() {},
  };
}
