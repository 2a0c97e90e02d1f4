/**
 * EKS cluster tags. Reads with `DescribeCluster` and writes with `TagResource` on
 * `arn:aws:eks:<region>:<account>:cluster/<name>`, which only sets the given keys and keeps
 * every other tag. Each account's role is assumed once per tagger (STS with the configured
 * base credentials), every call goes through one limiter, and the SDK's standard retry
 * runs inside the call's slot.
 */
import { DescribeClusterCommand, EKSClient, TagResourceCommand } from '@aws-sdk/client-eks';
import type { AwsConfig } from '../../config/schema.ts';
import type { Cluster } from '../../model.ts';
import { createLimiter } from '../../runtime/concurrency.ts';
import { CloudApiError } from '../../runtime/errors.ts';
import type { ClusterTagger } from '../../tags/port.ts';
import type { AdapterContext } from '../context.ts';
import { createRequestHandler, toCloudApiError } from './client.ts';
import { createRoleSessions } from './sessions.ts';

export const TAGS_ROLE_SESSION_NAME = 'fleetward-tags';

/** The ARN EKS tags a cluster by. */
export function clusterArn(cluster: Pick<Cluster, 'region' | 'scope' | 'name'>): string {
  return `arn:aws:eks:${cluster.region}:${cluster.scope}:cluster/${cluster.name}`;
}

export function createTagger(config: AwsConfig, ctx: AdapterContext): ClusterTagger {
  const limit = createLimiter(config.concurrency);
  const requestHandler = createRequestHandler(config);
  const common = {
    maxAttempts: config.maxAttempts,
    retryMode: 'standard',
    requestHandler,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
  };
  const sessions = createRoleSessions(config, TAGS_ROLE_SESSION_NAME);
  const clients = new Map<string, Promise<EKSClient>>();
  const created: EKSClient[] = [];

  const call = <T>(operation: string, send: () => Promise<T>, signal?: AbortSignal): Promise<T> =>
    limit(async () => {
      signal?.throwIfAborted();
      try {
        return await send();
      } catch (error) {
        if (signal?.aborted) throw error;
        throw toCloudApiError(error, operation, { endpoint: config.endpoint });
      }
    });

  async function eksFor(cluster: Cluster, _signal?: AbortSignal): Promise<EKSClient> {
    const key = `${cluster.scope}/${cluster.region}`;
    let client = clients.get(key);
    if (!client) {
      client = (async () => {
        const account = config.accounts.find((a) => a.id === cluster.scope);
        if (!account) {
          throw new CloudApiError(`aws account ${cluster.scope} is not configured`, {
            cloud: 'aws',
            operation: 'AssumeRole',
            retryable: false,
          });
        }
        // A provider, so credentials renew before they expire; the first call fails fast when the role cannot be assumed.
        await sessions.credentials(account);
        const eks = new EKSClient({
          ...common,
          region: cluster.region,
          credentials: () => sessions.credentials(account),
        });
        created.push(eks);
        return eks;
      })();
      clients.set(key, client);
      // A failed AssumeRole is not kept: the next cluster of the account tries again.
      client.catch(() => clients.delete(key));
    }
    return client;
  }

  return {
    cloud: 'aws',
    async read(cluster, options = {}) {
      const { signal } = options;
      const eks = await eksFor(cluster, signal);
      const out = await call(
        'DescribeCluster',
        () =>
          eks.send(new DescribeClusterCommand({ name: cluster.name }), signal ? { abortSignal: signal } : {}),
        signal,
      );
      const tags: Record<string, string> = {};
      for (const [k, v] of Object.entries(out.cluster?.tags ?? {})) if (typeof v === 'string') tags[k] = v;
      return tags;
    },
    async write(cluster, changes, options = {}) {
      if (Object.keys(changes).length === 0) return;
      const { signal } = options;
      const eks = await eksFor(cluster, signal);
      await call(
        'TagResource',
        () =>
          eks.send(
            new TagResourceCommand({ resourceArn: clusterArn(cluster), tags: changes }),
            signal ? { abortSignal: signal } : {},
          ),
        signal,
      );
      ctx.logger.info('Tags written', { cluster: cluster.id, keys: Object.keys(changes) });
    },
    async close() {
      for (const client of created) client.destroy();
      sessions.close();
      requestHandler.destroy();
    },
  };
}

/** Provider permissions of this adapter's calls (shared/clouds/permissions.ts). */
export const PERMISSIONS: readonly import('../permissions.ts').PermissionGrant[] = [
  {
    provider: 'aws',
    holder: 'member',
    capability: 'tags',
    permission: 'eks:DescribeCluster',
    calls: ['eks:DescribeCluster'],
    why: "read a cluster's current tags before writing the missing or drifted ones",
  },
  {
    provider: 'aws',
    holder: 'member',
    capability: 'tags',
    permission: 'eks:TagResource',
    calls: ['eks:TagResource'],
    why: 'write the cost tags the fleet policy asks for on each EKS cluster',
  },
];
