/**
 * EKS discovery across accounts and regions.
 *
 * Per account: one STS AssumeRole, then the regions (the configured list, or EC2
 * DescribeRegions in the home region for `all`), then per region EKS ListClusters
 * (every page) and one DescribeCluster per listed cluster, started as soon as its page
 * arrives. Every AWS call of a run (STS, EC2, EKS) goes through one FIFO limiter, so
 * the nested fan-out never has more than `concurrency` calls in flight and never
 * leaves a slot idle while calls are queued. The SDK's standard retry (backoff with
 * jitter, Retry-After honoured) runs inside the slot of its call.
 *
 * `describe` (one cluster, for a cloud event) makes one DescribeCluster with the account's
 * assumed-role credentials from the shared {@link RoleSessions} (renewed shortly before they expire), and maps
 * the answer with the same {@link normaliseCluster} as the list path.
 */
import { DescribeRegionsCommand, EC2Client } from '@aws-sdk/client-ec2';
import {
  DescribeClusterCommand,
  type DescribeClusterCommandOutput,
  EKSClient,
  ListClustersCommand,
} from '@aws-sdk/client-eks';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import type { NodeHttpHandler } from '@smithy/node-http-handler';
import type { AwsAccount, AwsConfig } from '../../config/schema.ts';
import type {
  ClusterStatus,
  DiscoveredCluster,
  DiscoveryFailure,
  DiscoveryOutcome,
  DiscoveryScope,
  EndpointAccess,
} from '../../model.ts';
import type { ClusterDiscovery } from '../../ports.ts';
import { createLimiter } from '../../runtime/concurrency.ts';
import { CloudApiError, errorInfo, FleetwardError, UnparseableClusterError } from '../../runtime/errors.ts';
import type { AdapterContext } from '../context.ts';
import { onePerScope } from '../outcome.ts';
import {
  baseCredentials,
  type Credentials,
  configuredTarget,
  createRequestHandler,
  credentialsOf,
  rejectHtmlAnswers,
  type SdkErrorShape,
  statusOf,
  toCloudApiError,
} from './client.ts';
import { createRoleSessions, type RoleSessions } from './sessions.ts';

// The shared helpers lived here first; adapters import them from ./client.ts.
export {
  baseCredentials,
  type Credentials,
  configuredTarget,
  createRequestHandler,
  credentialsOf,
  rejectHtmlAnswers,
  toCloudApiError,
};

export const ROLE_SESSION_NAME = 'fleetward-discovery';
/** Page size asked of ListClusters (the API maximum). */
export const LIST_PAGE_SIZE = 100;

const STATUS: Record<string, ClusterStatus> = {
  ACTIVE: 'running',
  CREATING: 'provisioning',
  PENDING: 'provisioning',
  UPDATING: 'updating',
  DELETING: 'deleting',
  FAILED: 'failed',
};

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const nonEmptyString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const optionalString = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);

function isoDate(v: unknown): string | null {
  let date: Date | undefined;
  if (v instanceof Date) date = v;
  // The wire format (and the API reference sample) gives epoch seconds.
  else if (typeof v === 'number') date = new Date(v * 1000);
  else if (typeof v === 'string') date = new Date(/^\d+(\.\d+)?$/.test(v) ? Number(v) * 1000 : v);
  return date && !Number.isNaN(date.getTime()) ? date.toISOString() : null;
}

function endpointAccess(vpc: unknown): EndpointAccess {
  if (!isRecord(vpc)) return 'unknown';
  const pub = vpc.endpointPublicAccess === true;
  const priv = vpc.endpointPrivateAccess === true;
  if (pub && priv) return 'public-and-private';
  if (pub) return 'public';
  if (priv) return 'private';
  return 'unknown';
}

function secretsKey(encryption: unknown): string | null {
  if (!Array.isArray(encryption)) return null;
  for (const entry of encryption) {
    if (!isRecord(entry) || !Array.isArray(entry.resources) || !entry.resources.includes('secrets')) continue;
    const keyArn = isRecord(entry.provider) ? entry.provider.keyArn : undefined;
    if (nonEmptyString(keyArn)) return keyArn;
  }
  return null;
}

function auditLogging(logging: unknown): boolean | null {
  if (!isRecord(logging) || !Array.isArray(logging.clusterLogging)) return null;
  return logging.clusterLogging.some(
    (entry) =>
      isRecord(entry) &&
      entry.enabled === true &&
      Array.isArray(entry.types) &&
      entry.types.includes('audit'),
  );
}

function tags(v: unknown): Record<string, string> {
  if (!isRecord(v)) return {};
  return Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

/**
 * Turns one EKS cluster (the `cluster` member of DescribeCluster, as the SDK returns it or
 * as raw wire JSON) into a `DiscoveredCluster`. Throws `UnparseableClusterError` when the
 * payload lacks `name`, `arn` or `status` or is not an object.
 */
export function normaliseCluster(
  raw: unknown,
  where: { account: string; region: string },
): DiscoveredCluster {
  if (!isRecord(raw)) throw new UnparseableClusterError('cluster payload is not an object');
  const missing = (['name', 'arn', 'status'] as const).filter((k) => !nonEmptyString(raw[k]));
  if (missing.length > 0) throw new UnparseableClusterError(`cluster payload lacks ${missing.join(', ')}`);
  const name = raw.name as string;
  const providerStatus = raw.status as string;
  return {
    id: `aws/${where.account}/${where.region}/${name}`,
    cloud: 'aws',
    scope: where.account,
    region: where.region,
    name,
    kubernetesVersion: optionalString(raw.version),
    endpoint: optionalString(raw.endpoint),
    endpointAccess: endpointAccess(raw.resourcesVpcConfig),
    secretsEncryptionKey: secretsKey(raw.encryptionConfig),
    auditLogging: auditLogging(raw.logging),
    tags: tags(raw.tags),
    status: STATUS[providerStatus] ?? 'unknown',
    providerStatus,
    createdAt: isoDate(raw.createdAt),
  };
}

/** A 2xx answer whose body the SDK could not deserialise (truncated or invalid JSON/XML). */
function isBadPayload(error: unknown): boolean {
  const e = error as SdkErrorShape | null;
  if (!e || typeof e !== 'object') return false;
  const status = statusOf(error);
  const okStatus = status === undefined || (status >= 200 && status < 300);
  return okStatus && (e.name === 'SyntaxError' || typeof e.$responseBodyText === 'string');
}

/** Waits for every promise (none is left running), then rejects with the first rejection if any. */
async function settleAll<T>(promises: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(promises);
  const rejected = settled.find((s) => s.status === 'rejected');
  if (rejected) throw rejected.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

/** Thrown inside a run when the caller's signal aborts; never reported as a failure. */
function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('discovery aborted', 'AbortError');
}

/** The options every AWS client of the adapter shares: retries, one socket pool, the endpoint override. */
function clientConfig(config: AwsConfig, requestHandler: NodeHttpHandler) {
  return {
    maxAttempts: config.maxAttempts,
    retryMode: 'standard',
    requestHandler,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
  };
}

/** The AssumeRole request for an account's configured role. */
function assumeRoleCommand(account: AwsAccount): AssumeRoleCommand {
  return new AssumeRoleCommand({
    RoleArn: account.roleArn,
    RoleSessionName: ROLE_SESSION_NAME,
    ...(account.externalId ? { ExternalId: account.externalId } : {}),
  });
}

export function createDiscovery(config: AwsConfig, ctx: AdapterContext): ClusterDiscovery {
  // `describe` shares the adapters' cached AssumeRole per account (renewed before expiry, a
  // failure not kept), so a burst of events costs one AssumeRole per account, not one per event.
  const sessions = createRoleSessions(config, ROLE_SESSION_NAME);
  return {
    cloud: 'aws',
    discover: (options) => runDiscovery(config, ctx, options?.signal),
    describe: (ref, options) => describeCluster(config, ctx, sessions, ref, options?.signal),
  };
}

/** `ResourceNotFoundException` (HTTP 404): the cluster does not exist in that account and region. */
function isNotFound(error: unknown): boolean {
  const e = error as SdkErrorShape | null;
  return e?.name === 'ResourceNotFoundException' || statusOf(error) === 404;
}

async function describeCluster(
  config: AwsConfig,
  ctx: AdapterContext,
  sessions: RoleSessions,
  ref: { scope: string; region: string; name: string },
  signal?: AbortSignal,
): Promise<DiscoveredCluster | null> {
  const account = configuredTarget(config, ref);
  if (!ref.name) throw new FleetwardError('an eks cluster reference needs a name');
  signal?.throwIfAborted();
  const requestHandler = createRequestHandler(config);
  const common = clientConfig(config, requestHandler);
  const sendOptions = signal ? { abortSignal: signal } : {};
  const clients: { destroy(): void }[] = [];
  try {
    const credentials = await sessions.credentials(account).catch((error: unknown) => {
      throw signal?.aborted ? abortReason(signal) : error;
    });
    const eks = new EKSClient({ ...common, region: ref.region, credentials });
    clients.push(eks);
    let out: DescribeClusterCommandOutput;
    try {
      out = await eks.send(new DescribeClusterCommand({ name: ref.name }), sendOptions);
    } catch (error) {
      if (signal?.aborted) throw abortReason(signal);
      if (isNotFound(error)) {
        ctx.logger.info('Cluster not found', { account: account.id, region: ref.region, cluster: ref.name });
        return null;
      }
      if (isBadPayload(error)) {
        throw new UnparseableClusterError(
          `DescribeCluster answer could not be deserialised: ${String((error as Error)?.message ?? error).split('\n')[0]}`,
          { cause: error },
        );
      }
      throw toCloudApiError(error, 'DescribeCluster', { endpoint: config.endpoint, region: ref.region });
    }
    return normaliseCluster(out.cluster, { account: account.id, region: ref.region });
  } finally {
    for (const client of clients) client.destroy();
    requestHandler.destroy();
  }
}

async function runDiscovery(
  config: AwsConfig,
  ctx: AdapterContext,
  signal?: AbortSignal,
): Promise<DiscoveryOutcome> {
  signal?.throwIfAborted();
  const limiter = createLimiter(config.concurrency);
  // One handler (one socket pool) for every client of the run; `requestTimeout` is per attempt.
  const requestHandler = createRequestHandler(config);
  const common = clientConfig(config, requestHandler);
  const clients: { destroy(): void }[] = [];
  const track = <C extends { destroy(): void }>(client: C): C => {
    clients.push(client);
    return client;
  };

  const clusters: DiscoveredCluster[] = [];
  const failures: DiscoveryFailure[] = [];
  const completedScopes: DiscoveryScope[] = [];
  const sendOptions = signal ? { abortSignal: signal } : {};

  /** Runs one AWS call in a limiter slot; SDK errors come out as `CloudApiError` (the SDK error as `cause`). */
  const call = <T>(operation: string, send: () => Promise<T>, region?: string): Promise<T> =>
    limiter(async () => {
      if (signal?.aborted) throw abortReason(signal);
      try {
        return await send();
      } catch (error) {
        if (signal?.aborted) throw abortReason(signal);
        throw toCloudApiError(error, operation, { endpoint: config.endpoint, region });
      }
    });

  const scopeFailure = (
    account: string,
    region: string | undefined,
    error: unknown,
    extra: Pick<DiscoveryFailure, 'cluster'> = {},
  ): DiscoveryFailure => ({
    cloud: 'aws',
    scope: account,
    ...(region === undefined ? {} : { region }),
    kind: 'scope',
    ...extra,
    error: errorInfo(error),
  });

  // Base credentials assume each account's role: a named profile when configured, else the default chain.
  const base = baseCredentials(config);
  const sts = track(rejectHtmlAnswers(new STSClient({ ...common, ...base, region: config.homeRegion })));

  async function describe(eks: EKSClient, account: string, region: string, name: string): Promise<boolean> {
    try {
      const out = await call(
        'DescribeCluster',
        () => eks.send(new DescribeClusterCommand({ name }), sendOptions),
        region,
      );
      clusters.push(normaliseCluster(out.cluster, { account, region }));
      return true;
    } catch (error) {
      if (signal?.aborted) throw abortReason(signal);
      const cause = error instanceof CloudApiError ? error.cause : error;
      if (error instanceof UnparseableClusterError || isBadPayload(cause)) {
        const reason =
          error instanceof UnparseableClusterError
            ? error
            : new UnparseableClusterError(
                `DescribeCluster answer could not be deserialised: ${String((cause as Error)?.message ?? cause).split('\n')[0]}`,
                { cause },
              );
        failures.push({
          cloud: 'aws',
          scope: account,
          region,
          kind: 'unparseable',
          cluster: name,
          error: errorInfo(reason),
        });
        ctx.logger.debug('Cluster unparseable', { account, region, cluster: name, error: errorInfo(reason) });
      } else {
        failures.push(scopeFailure(account, region, error, { cluster: name }));
        ctx.logger.debug('Cluster describe failed', {
          account,
          region,
          cluster: name,
          error: errorInfo(error),
        });
      }
      return false;
    }
  }

  async function discoverRegion(account: string, region: string, credentials: Credentials): Promise<void> {
    const eks = track(new EKSClient({ ...common, region, credentials }));
    const described: Promise<boolean>[] = [];
    const seenTokens = new Set<string>();
    let nextToken: string | undefined;
    try {
      do {
        const token = nextToken;
        const page = await call(
          'ListClusters',
          () =>
            eks.send(new ListClustersCommand({ maxResults: LIST_PAGE_SIZE, nextToken: token }), sendOptions),
          region,
        );
        for (const name of page.clusters ?? []) {
          const pending = describe(eks, account, region, name);
          // Only an abort rejects; it is collected by settleAll below, not left unhandled meanwhile.
          pending.catch(() => {});
          described.push(pending);
        }
        nextToken = page.nextToken || undefined;
        if (nextToken !== undefined) {
          if (seenTokens.has(nextToken)) {
            throw new CloudApiError('aws ListClusters returned a repeated nextToken', {
              cloud: 'aws',
              operation: 'ListClusters',
              retryable: false,
            });
          }
          seenTokens.add(nextToken);
        }
      } while (nextToken !== undefined);
    } catch (error) {
      if (signal?.aborted) throw abortReason(signal);
      failures.push(scopeFailure(account, region, error));
      ctx.logger.debug('Region discovery failed', { account, region, error: errorInfo(error) });
      // Clusters of pages already listed are still reported; the region is not complete.
      await settleAll(described);
      return;
    }
    const results = await settleAll(described);
    if (results.every(Boolean)) completedScopes.push({ cloud: 'aws', scope: account, region });
    ctx.logger.info('Region discovered', {
      account,
      region,
      clusters: results.filter(Boolean).length,
      complete: results.every(Boolean),
    });
  }

  async function regionsOf(account: AwsAccount, credentials: Credentials): Promise<string[]> {
    if (account.regions !== 'all') return account.regions;
    const ec2 = track(new EC2Client({ ...common, region: config.homeRegion, credentials }));
    // Without AllRegions, DescribeRegions lists the regions enabled for the account; opt-in regions
    // not opted into are dropped as well in case an endpoint lists them.
    const out = await call(
      'DescribeRegions',
      () => ec2.send(new DescribeRegionsCommand({}), sendOptions),
      config.homeRegion,
    );
    return (out.Regions ?? [])
      .filter((r) => r.OptInStatus !== 'not-opted-in')
      .map((r) => r.RegionName)
      .filter(nonEmptyString)
      .sort();
  }

  async function discoverAccount(account: AwsAccount): Promise<void> {
    let credentials: Credentials;
    let regions: string[];
    try {
      const out = await call(
        'AssumeRole',
        () => sts.send(assumeRoleCommand(account), sendOptions),
        config.homeRegion,
      );
      credentials = credentialsOf(out);
      regions = await regionsOf(account, credentials);
    } catch (error) {
      if (signal?.aborted) throw abortReason(signal);
      failures.push(scopeFailure(account.id, undefined, error));
      ctx.logger.debug('Account discovery failed', { account: account.id, error: errorInfo(error) });
      return;
    }
    await settleAll(regions.map((region) => discoverRegion(account.id, region, credentials)));
  }

  try {
    // Only an abort rejects a branch; every branch has stopped before the run returns or rejects.
    await settleAll(config.accounts.map(discoverAccount));
    signal?.throwIfAborted();
  } finally {
    for (const client of clients) client.destroy();
    requestHandler.destroy();
  }

  clusters.sort((a, b) => a.id.localeCompare(b.id));
  completedScopes.sort((a, b) => `${a.scope}/${a.region}`.localeCompare(`${b.scope}/${b.region}`));
  return { clusters, failures: onePerScope(failures), completedScopes };
}

/** Provider permissions of this adapter's calls (shared/clouds/permissions.ts); `sts:AssumeRole` is declared in sessions.ts. */
export const PERMISSIONS: readonly import('../permissions.ts').PermissionGrant[] = [
  {
    provider: 'aws',
    holder: 'member',
    capability: 'discovery',
    permission: 'eks:ListClusters',
    calls: ['eks:ListClusters'],
    why: 'list the EKS clusters of each configured account and region',
  },
  {
    provider: 'aws',
    holder: 'member',
    capability: 'discovery',
    permission: 'eks:DescribeCluster',
    calls: ['eks:DescribeCluster'],
    why: 'read each cluster (version, endpoint, tags, logging) to build the inventory',
  },
  {
    provider: 'aws',
    holder: 'member',
    capability: 'discovery',
    permission: 'ec2:DescribeRegions',
    calls: ['ec2:DescribeRegions'],
    why: 'find the regions enabled in an account when its regions are not configured',
  },
];
