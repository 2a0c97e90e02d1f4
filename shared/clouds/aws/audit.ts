/**
 * EKS control-plane audit logs; the S3 Object Lock bucket they are archived into is
 * ./evidence.ts (re-exported here).
 *
 * Audit source ({@link createAuditSource}):
 * - `enabled`: EKS `DescribeCluster`; audit logging is on when `logging.clusterLogging` has an
 *   enabled entry whose `types` include `audit`.
 * - `read`: CloudWatch Logs `FilterLogEvents` on `/aws/eks/<cluster>/cluster`, streams
 *   `kube-apiserver-audit-*`, `[since, until)` as `startTime`/`endTime` in milliseconds
 *   (`endTime` is inclusive in the API, so it is `until - 1`), following `nextToken`. A log
 *   group that does not exist (the cluster never sent audit logs) reads as no events.
 * - Credentials: the cluster account's role (`roleArn`, `externalId`) assumed with the base
 *   credentials, kept per account until five minutes before they expire; region: the
 *   cluster's.
 *
 * Every AWS call takes a slot of one limiter of `concurrency` per source or store; retries are
 * the SDK's standard mode (`maxAttempts`, backoff with jitter, throttling honoured); failures
 * are wrapped once as {@link CloudApiError}.
 *
 * Quota: every FilterLogEvents page first takes a token of the bucket of its scope
 * `aws:<account>:<region>` (5 requests/s, shared by every cluster of the scope in the process:
 * shared/audit/quota.ts), and the scope counts the requests, bytes (UTF-8 of the messages) and
 * events it read.
 */
import {
  CloudWatchLogsClient,
  FilterLogEventsCommand,
  type FilterLogEventsCommandOutput,
} from '@aws-sdk/client-cloudwatch-logs';
import { DescribeClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { eventIdentity } from '../../audit/identity.ts';
import {
  type AuditQuota,
  awsScopeKey,
  CLOUDWATCH_FILTER_LOG_EVENTS,
  processQuotas,
  type QuotaAwareSource,
  type QuotaRegistry,
} from '../../audit/quota.ts';
import type { AwsAccount, AwsConfig } from '../../config/schema.ts';
import type { Cluster } from '../../model.ts';
import type { AuditEvent } from '../../ports.ts';
import { createLimiter } from '../../runtime/concurrency.ts';
import { CloudApiError, FleetwardError } from '../../runtime/errors.ts';
import type { AdapterContext } from '../context.ts';
import { baseCredentials, type Credentials, createRequestHandler } from './client.ts';
import { commonClientConfig, sdkName, sendOptions } from './evidence.ts';
import { caller, createRoleSessions } from './sessions.ts';

// The archive store lived here first; it is apart so the snapshot's bundle has no log reader.
export { createS3ArchiveStore, sha256HexToBase64 } from './evidence.ts';

/** The role session name of the audit reader's AssumeRole calls (shows in CloudTrail). */
export const AUDIT_ROLE_SESSION_NAME = 'fleetward-audit';
/** The log stream prefix EKS gives the API server's audit streams. */
export const AUDIT_STREAM_PREFIX = 'kube-apiserver-audit-';
/** Events asked per FilterLogEvents page (the API maximum). */
export const AUDIT_PAGE_SIZE = 10_000;

/** The CloudWatch Logs group EKS sends a cluster's control-plane logs to. */
export function auditLogGroup(clusterName: string): string {
  return `/aws/eks/${clusterName}/cluster`;
}

/** The `auditID` of one audit.k8s.io Event line; `null` when the line is not a JSON object with one. */
export function auditIdOf(message: string): string | null {
  return eventIdentityOf(message).auditID;
}

/**
 * The `auditID` and `stage` of one audit.k8s.io Event line (`null` for what the line lacks), as
 * `JSON.parse` of the line gives them, without building the object (every line goes through it).
 */
export function eventIdentityOf(message: string): { auditID: string | null; stage: string | null } {
  return eventIdentity(message);
}

/**
 * Turns one FilterLogEvents page into audit events (events without a timestamp or message are
 * kept with what is there). `recordId` is the event's `eventId`, CloudWatch's identity of it.
 */
export function toAuditEvents(events: FilterLogEventsCommandOutput['events']): AuditEvent[] {
  return (events ?? []).map((e) => {
    const raw = e.message ?? '';
    const { auditID, stage } = eventIdentityOf(raw);
    return {
      auditID,
      stage,
      recordId: e.eventId ?? null,
      timestamp: new Date(e.timestamp ?? 0).toISOString(),
      raw,
    };
  });
}

/** The part of a CloudWatch Logs client the source uses. */
export type LogsClient = Pick<CloudWatchLogsClient, 'send' | 'destroy'>;

export interface AuditSourceOptions {
  /** Events asked per FilterLogEvents page (default {@link AUDIT_PAGE_SIZE}, the API maximum). */
  pageSize?: number;
  /** The buckets the reads take tokens from (default: the process's, shared by every source). */
  quotas?: QuotaRegistry;
  /** Builds the CloudWatch Logs client of a region (default: the SDK's, with the config's endpoint). */
  logsClient?: (region: string, credentials: Credentials) => LogsClient;
  /** The credentials of an account (default: its role, assumed with the base credentials). */
  credentials?: (account: AwsAccount) => Promise<Credentials>;
}

/** The audit log source of an AWS config (see the module comment). */
export function createAuditSource(
  config: AwsConfig,
  ctx: AdapterContext,
  options: AuditSourceOptions = {},
): QuotaAwareSource {
  const pageSize = options.pageSize ?? AUDIT_PAGE_SIZE;
  const quotas = options.quotas ?? processQuotas;
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > AUDIT_PAGE_SIZE) {
    throw new RangeError(`pageSize must be an integer in 1..${AUDIT_PAGE_SIZE}, got ${pageSize}`);
  }
  const call = caller(createLimiter(config.concurrency), { endpoint: config.endpoint });
  const _base = baseCredentials(config);
  const common = commonClientConfig(config);
  const sessions = createRoleSessions(config, AUDIT_ROLE_SESSION_NAME);

  function accountOf(cluster: Cluster): AwsAccount {
    if (cluster.cloud !== 'aws') {
      throw new FleetwardError(
        `cluster ${cluster.id} is not an eks cluster: its audit log is not in cloudwatch`,
      );
    }
    const account = config.accounts.find((a) => a.id === cluster.scope);
    if (!account) {
      throw new FleetwardError(`cluster ${cluster.id}: aws account ${cluster.scope} is not configured`);
    }
    return account;
  }

  /** The account's role credentials (one AssumeRole per account, shared, renewed before expiry). */
  const credentialsFor = (account: AwsAccount, signal: AbortSignal | undefined): Promise<Credentials> => {
    signal?.throwIfAborted();
    return options.credentials ? options.credentials(account) : sessions.credentials(account);
  };

  const quota: AuditQuota = {
    quota: CLOUDWATCH_FILTER_LOG_EVENTS,
    clock: quotas.clock,
    scopeOf: (cluster) => (cluster.cloud === 'aws' ? awsScopeKey(cluster) : undefined),
    usage: (scope) => quotas.usage(scope),
  };

  return {
    quota,
    async enabled(cluster, opts = {}) {
      const { signal } = opts;
      signal?.throwIfAborted();
      const credentials = await credentialsFor(accountOf(cluster), signal);
      const requestHandler = createRequestHandler(config);
      const eks = new EKSClient({ ...common, credentials, requestHandler, region: cluster.region });
      try {
        const out = await call('DescribeCluster', `eks cluster ${cluster.id}`, signal, () =>
          eks.send(new DescribeClusterCommand({ name: cluster.name }), sendOptions(signal)),
        );
        const entries = out.cluster?.logging?.clusterLogging ?? [];
        if (entries.some((e) => e.enabled === true && (e.types ?? []).includes('audit'))) {
          return { enabled: true };
        }
        const on = [...new Set(entries.filter((e) => e.enabled === true).flatMap((e) => e.types ?? []))];
        return {
          enabled: false,
          reason: `eks control-plane audit logging is not enabled (enabled log types: ${on.length > 0 ? on.join(', ') : 'none'})`,
        };
      } finally {
        eks.destroy();
        requestHandler.destroy();
      }
    },

    read(cluster, window, opts = {}) {
      const { signal } = opts;
      return {
        async *[Symbol.asyncIterator]() {
          signal?.throwIfAborted();
          const startTime = window.since.getTime();
          // FilterLogEvents' endTime is inclusive; the window is half-open.
          const endTime = window.until.getTime() - 1;
          if (endTime < startTime) return;
          const credentials = await credentialsFor(accountOf(cluster), signal);
          const scope = quotas.scope(awsScopeKey(cluster), CLOUDWATCH_FILTER_LOG_EVENTS);
          const requestHandler = options.logsClient ? undefined : createRequestHandler(config);
          const logs: LogsClient = options.logsClient
            ? options.logsClient(cluster.region, credentials)
            : new CloudWatchLogsClient({ ...common, credentials, requestHandler, region: cluster.region });
          const logGroupName = auditLogGroup(cluster.name);
          const seenTokens = new Set<string>();
          let nextToken: string | undefined;
          let total = 0;
          try {
            do {
              const token = nextToken;
              let page: FilterLogEventsCommandOutput;
              // The scope's token first: 5 requests/s per account and region, whoever asks.
              await scope.take(signal);
              try {
                page = await call('FilterLogEvents', `log group ${logGroupName}`, signal, () =>
                  logs.send(
                    new FilterLogEventsCommand({
                      logGroupName,
                      logStreamNamePrefix: AUDIT_STREAM_PREFIX,
                      startTime,
                      endTime,
                      limit: pageSize,
                      ...(token ? { nextToken: token } : {}),
                    }),
                    sendOptions(signal),
                  ),
                );
              } catch (error) {
                // No log group: the cluster never sent control-plane logs. Nothing to read.
                if (token === undefined && sdkName((error as Error).cause) === 'ResourceNotFoundException') {
                  ctx.logger.debug('Audit log group absent', { cluster: cluster.id, logGroup: logGroupName });
                  return;
                }
                throw error;
              }
              const events = toAuditEvents(page.events);
              scope.record(
                events.reduce((n, e) => n + Buffer.byteLength(e.raw), 0),
                events.length,
              );
              total += events.length;
              if (events.length > 0) yield events;
              nextToken = page.nextToken || undefined;
              if (nextToken !== undefined) {
                if (seenTokens.has(nextToken)) {
                  throw new CloudApiError(`log group ${logGroupName}: FilterLogEvents repeated a nextToken`, {
                    cloud: 'aws',
                    operation: 'FilterLogEvents',
                    retryable: false,
                  });
                }
                seenTokens.add(nextToken);
              }
            } while (nextToken !== undefined);
            ctx.logger.debug('Audit log read', { cluster: cluster.id, events: total });
          } finally {
            logs.destroy();
            requestHandler?.destroy();
          }
        },
      };
    },
  };
}

/** Provider permissions of this adapter's calls (shared/clouds/permissions.ts). */
export const PERMISSIONS: readonly import('../permissions.ts').PermissionGrant[] = [
  {
    provider: 'aws',
    holder: 'member',
    capability: 'audit-read',
    permission: 'eks:DescribeCluster',
    calls: ['eks:DescribeCluster'],
    why: 'check that a cluster sends its control-plane audit log to CloudWatch Logs',
  },
  {
    provider: 'aws',
    holder: 'member',
    capability: 'audit-read',
    permission: 'logs:FilterLogEvents',
    calls: ['logs:FilterLogEvents'],
    why: 'read the kube-apiserver-audit streams of /aws/eks/<cluster>/cluster',
  },
];
