/**
 * EKS control-plane audit logs, and the S3 Object Lock bucket they are archived into.
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
 * Archive store ({@link createS3ArchiveStore}): one evidence bucket, reached with the base
 * credentials (the bucket lives in the deployment's own account, or the configured owner
 * account), every call with `ExpectedBucketOwner`; conditional create
 * (`If-None-Match: *`) with the SHA-256 checksum S3 verifies, reads by version, and version
 * listings that show any overwrite.
 *
 * Every AWS call takes a slot of one limiter of `concurrency` per source or store; retries are
 * the SDK's standard mode (`maxAttempts`, backoff with jitter, throttling honoured); failures
 * are wrapped once as {@link CloudApiError}.
 */
import {
  CloudWatchLogsClient,
  FilterLogEventsCommand,
  type FilterLogEventsCommandOutput,
} from '@aws-sdk/client-cloudwatch-logs';
import { DescribeClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import {
  GetBucketLocationCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  type GetObjectLockConfigurationCommandOutput,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import type { AwsAccount, AwsConfig } from '../../config/schema.ts';
import type { Cluster } from '../../model.ts';
import type { ArchiveStore, AuditEvent, AuditLogSource } from '../../ports.ts';
import { createLimiter } from '../../runtime/concurrency.ts';
import {
  CloudApiError,
  errorInfo,
  FleetwardError,
  NotImmutableError,
  ObjectExistsError,
} from '../../runtime/errors.ts';
import type { AdapterContext } from '../context.ts';
import { callerAccount, expectBucketOwner } from './bucket-owner.ts';
import { regionOfLocationConstraint } from './buckets.ts';
import { baseCredentials, type Credentials, createRequestHandler } from './discovery.ts';
import { caller, createRoleSessions } from './sessions.ts';

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

/** The `auditID` and `stage` of one audit.k8s.io Event line (`null` for what the line lacks). */
export function eventIdentityOf(message: string): { auditID: string | null; stage: string | null } {
  try {
    const parsed: unknown = JSON.parse(message);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      return { auditID: null, stage: null };
    const { auditID, stage } = parsed as Record<string, unknown>;
    const id = typeof auditID === 'string' && auditID.length > 0 ? auditID : null;
    return { auditID: id, stage: id !== null && typeof stage === 'string' && stage !== '' ? stage : null };
  } catch {
    return { auditID: null, stage: null };
  }
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

/** The error name of an SDK error (`ResourceNotFoundException`, `NoSuchKey`...). */
function sdkName(error: unknown): string | undefined {
  const name = (error as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? name : undefined;
}

function sdkStatus(error: unknown): number | undefined {
  const status = (error as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

const sendOptions = (signal: AbortSignal | undefined) => (signal ? { abortSignal: signal } : {});

function commonClientConfig(config: AwsConfig) {
  return {
    maxAttempts: config.maxAttempts,
    retryMode: 'standard',
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
  };
}

/**
 * The audit log source of an AWS config. `options.pageSize` caps the events asked per
 * FilterLogEvents page (default {@link AUDIT_PAGE_SIZE}, the API maximum).
 */
export function createAuditSource(
  config: AwsConfig,
  ctx: AdapterContext,
  options: { pageSize?: number } = {},
): AuditLogSource {
  const pageSize = options.pageSize ?? AUDIT_PAGE_SIZE;
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
    return sessions.credentials(account);
  };

  return {
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
          const requestHandler = createRequestHandler(config);
          const logs = new CloudWatchLogsClient({
            ...common,
            credentials,
            requestHandler,
            region: cluster.region,
          });
          const logGroupName = auditLogGroup(cluster.name);
          const seenTokens = new Set<string>();
          let nextToken: string | undefined;
          let total = 0;
          try {
            do {
              const token = nextToken;
              let page: FilterLogEventsCommandOutput;
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
            requestHandler.destroy();
          }
        },
      };
    },
  };
}

/** The base64 form S3's `x-amz-checksum-sha256` takes, from a hex SHA-256 digest. */
export function sha256HexToBase64(hex: string): string {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new FleetwardError('expected a sha-256 digest of 64 hexadecimal characters');
  }
  return Buffer.from(hex, 'hex').toString('base64');
}

/**
 * The S3 archive store of one evidence bucket (`id` `aws:<bucket>`), reached with the base
 * credentials (the profile of `config.credentials`, else the SDK's default chain: the Lambda
 * role) in the bucket's configured region. Every call sends `ExpectedBucketOwner`:
 * `evidence.account`, else the account of those credentials (see `bucket-owner.ts`), so S3
 * refuses a bucket of the same name owned by anyone else.
 */
export function createS3ArchiveStore(
  config: AwsConfig,
  evidence: { bucket: string; region: string; account?: string | undefined },
  ctx: AdapterContext,
): ArchiveStore {
  const { bucket, region } = evidence;
  const id = `aws:${bucket}`;
  const call = caller(createLimiter(config.concurrency));
  // One long-lived client (one keep-alive socket pool; idle sockets do not hold the process).
  // Every call on it names the bucket's owner: the configured account, else the credentials' own.
  const s3 = expectBucketOwner(
    new S3Client({
      ...commonClientConfig(config),
      ...baseCredentials(config),
      requestHandler: createRequestHandler(config),
      region,
      forcePathStyle: config.endpoint !== undefined,
      followRegionRedirects: true,
    }),
    evidence.account ? async () => evidence.account! : () => callerAccount(config, region),
  );
  let located: Promise<{ cloud: 'aws'; region: string }> | undefined;

  async function locate(signal: AbortSignal | undefined): Promise<{ cloud: 'aws'; region: string }> {
    const out = await call('GetBucketLocation', `s3 bucket ${bucket}`, signal, () =>
      s3.send(new GetBucketLocationCommand({ Bucket: bucket }), sendOptions(signal)),
    );
    const actual = regionOfLocationConstraint(out.LocationConstraint);
    if (actual !== region) {
      // The residency guard must judge where the bucket really is, not where the config says.
      ctx.logger.warn('Evidence bucket region differs from configuration', {
        store: id,
        configured: region,
        actual,
      });
    }
    return { cloud: 'aws', region: actual };
  }

  return {
    id,

    location(opts = {}) {
      opts.signal?.throwIfAborted();
      if (!located) {
        const pending = locate(opts.signal);
        located = pending;
        pending.catch(() => {
          if (located === pending) located = undefined;
        });
      }
      return located;
    },

    async assertImmutable(retentionDays, opts = {}) {
      const { signal } = opts;
      signal?.throwIfAborted();
      let lock: GetObjectLockConfigurationCommandOutput['ObjectLockConfiguration'];
      try {
        const out = await call('GetObjectLockConfiguration', `s3 bucket ${bucket}`, signal, () =>
          s3.send(new GetObjectLockConfigurationCommand({ Bucket: bucket }), sendOptions(signal)),
        );
        lock = out.ObjectLockConfiguration;
      } catch (error) {
        const cause = error instanceof CloudApiError ? error.cause : error;
        if (sdkName(cause) === 'ObjectLockConfigurationNotFoundError') {
          throw new NotImmutableError(`s3 bucket ${bucket} does not have object lock enabled`, id, {
            cause: error,
          });
        }
        throw error;
      }
      if (lock?.ObjectLockEnabled !== 'Enabled') {
        throw new NotImmutableError(`s3 bucket ${bucket} does not have object lock enabled`, id);
      }
      const retention = lock.Rule?.DefaultRetention;
      if (!retention) {
        throw new NotImmutableError(
          `s3 bucket ${bucket} has object lock but no default retention: objects would not be locked`,
          id,
        );
      }
      if (retention.Mode !== 'COMPLIANCE') {
        throw new NotImmutableError(
          `s3 bucket ${bucket} default retention mode is ${retention.Mode ?? 'unset'}, not COMPLIANCE: it can be bypassed`,
          id,
        );
      }
      const days = retention.Days ?? (retention.Years === undefined ? 0 : retention.Years * 365);
      if (days < retentionDays) {
        throw new NotImmutableError(
          `s3 bucket ${bucket} default retention is ${days} days, less than the ${retentionDays} days required`,
          id,
        );
      }
      const versioning = await call('GetBucketVersioning', `s3 bucket ${bucket}`, signal, () =>
        s3.send(new GetBucketVersioningCommand({ Bucket: bucket }), sendOptions(signal)),
      );
      if (versioning.Status !== 'Enabled') {
        throw new NotImmutableError(
          `s3 bucket ${bucket} versioning is ${versioning.Status ?? 'not enabled'}, not Enabled`,
          id,
        );
      }
    },

    async create(key, body, meta, opts = {}) {
      const { signal } = opts;
      signal?.throwIfAborted();
      const checksum = sha256HexToBase64(meta.sha256);
      try {
        const out = await call('PutObject', `s3 object ${bucket}/${key}`, signal, () =>
          s3.send(
            new PutObjectCommand({
              Bucket: bucket,
              Key: key,
              Body: body,
              ContentType: meta.contentType,
              ContentLength: body.byteLength,
              ChecksumAlgorithm: 'SHA256',
              ChecksumSHA256: checksum,
              IfNoneMatch: '*',
            }),
            sendOptions(signal),
          ),
        );
        if (!out.VersionId) {
          throw new NotImmutableError(`s3 bucket ${bucket} stored ${key} without a version id`, id);
        }
        return { key, version: out.VersionId };
      } catch (error) {
        const cause = error instanceof CloudApiError ? error.cause : error;
        if (sdkStatus(cause) === 412 || sdkName(cause) === 'PreconditionFailed') {
          throw new ObjectExistsError(key, { cause: error });
        }
        if (!signal?.aborted) {
          ctx.logger.debug('Archive object create failed', { store: id, key, error: errorInfo(error) });
        }
        throw error;
      }
    },

    async get(key, opts = {}) {
      const { signal, version } = opts;
      signal?.throwIfAborted();
      try {
        return await call('GetObject', `s3 object ${bucket}/${key}`, signal, async () => {
          const out = await s3.send(
            new GetObjectCommand({ Bucket: bucket, Key: key, ...(version ? { VersionId: version } : {}) }),
            sendOptions(signal),
          );
          if (!out.Body) return new Uint8Array();
          return await out.Body.transformToByteArray();
        });
      } catch (error) {
        const cause = error instanceof CloudApiError ? error.cause : error;
        const name = sdkName(cause);
        if (
          name === 'NoSuchKey' ||
          name === 'NoSuchVersion' ||
          (name === 'NotFound' && sdkStatus(cause) === 404)
        ) {
          return undefined;
        }
        throw error;
      }
    },

    async list(prefix, opts = {}) {
      const { signal } = opts;
      signal?.throwIfAborted();
      const byKey = new Map<string, { version: string; modified: number; order: number }[]>();
      let keyMarker: string | undefined;
      let versionIdMarker: string | undefined;
      let order = 0;
      for (;;) {
        const km = keyMarker;
        const vm = versionIdMarker;
        const page = await call('ListObjectVersions', `s3 bucket ${bucket}`, signal, () =>
          s3.send(
            new ListObjectVersionsCommand({
              Bucket: bucket,
              Prefix: prefix,
              ...(km !== undefined ? { KeyMarker: km } : {}),
              ...(vm !== undefined ? { VersionIdMarker: vm } : {}),
            }),
            sendOptions(signal),
          ),
        );
        // Delete markers are not objects: only versions that hold bytes are listed.
        for (const v of page.Versions ?? []) {
          if (!v.Key || !v.VersionId) continue;
          const versions = byKey.get(v.Key) ?? [];
          versions.push({ version: v.VersionId, modified: v.LastModified?.getTime() ?? 0, order: order++ });
          byKey.set(v.Key, versions);
        }
        if (!page.IsTruncated) break;
        if (page.NextKeyMarker === km && page.NextVersionIdMarker === vm) {
          throw new CloudApiError(`s3 bucket ${bucket}: ListObjectVersions repeated its markers`, {
            cloud: 'aws',
            operation: 'ListObjectVersions',
            retryable: false,
          });
        }
        keyMarker = page.NextKeyMarker;
        versionIdMarker = page.NextVersionIdMarker;
      }
      return [...byKey.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([key, versions]) => ({
          key,
          // S3 lists a key's versions newest first; the sort only guards that (stable on ties).
          versions: versions
            .sort((a, b) => b.modified - a.modified || a.order - b.order)
            .map((v) => v.version),
        }));
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
  {
    provider: 'aws',
    holder: 'function',
    capability: 'evidence-write',
    permission: 's3:GetBucketLocation',
    calls: ['s3:GetBucketLocation'],
    why: "check that the evidence bucket lies in its jurisdiction's region",
  },
  {
    provider: 'aws',
    holder: 'function',
    capability: 'evidence-write',
    permission: 's3:GetBucketObjectLockConfiguration',
    calls: ['s3:GetObjectLockConfiguration'],
    why: 'check that the evidence bucket is write-once (Object Lock on, default retention long enough)',
  },
  {
    provider: 'aws',
    holder: 'function',
    capability: 'evidence-write',
    permission: 's3:GetBucketVersioning',
    calls: ['s3:GetBucketVersioning'],
    why: 'check that the evidence bucket keeps every version',
  },
  {
    provider: 'aws',
    holder: 'function',
    capability: 'evidence-read',
    permission: 's3:GetBucketLocation',
    calls: ['s3:GetBucketLocation'],
    why: "check that the evidence bucket lies in its jurisdiction's region",
  },
  {
    provider: 'aws',
    holder: 'function',
    capability: 'evidence-read',
    permission: 's3:GetBucketObjectLockConfiguration',
    calls: ['s3:GetObjectLockConfiguration'],
    why: 'check that the evidence bucket is write-once (Object Lock on, default retention long enough)',
  },
  {
    provider: 'aws',
    holder: 'function',
    capability: 'evidence-read',
    permission: 's3:GetBucketVersioning',
    calls: ['s3:GetBucketVersioning'],
    why: 'check that the evidence bucket keeps every version',
  },
  {
    provider: 'aws',
    holder: 'function',
    capability: 'evidence-write',
    permission: 's3:PutObject',
    calls: ['s3:PutObject'],
    why: 'write audit chunks, manifests and snapshots once (If-None-Match) with a SHA-256 checksum',
  },
  {
    provider: 'aws',
    holder: 'function',
    capability: 'evidence-write',
    permission: 's3:GetObject',
    calls: ['s3:GetObject'],
    why: 'read back an object that already exists, to tell a repeat from a conflicting write',
  },
  {
    provider: 'aws',
    holder: 'function',
    capability: 'evidence-read',
    permission: 's3:GetObject',
    calls: ['s3:GetObject'],
    why: 'read archived evidence to verify it',
  },
  {
    provider: 'aws',
    holder: 'function',
    capability: 'evidence-read',
    permission: 's3:GetObjectVersion',
    calls: ['s3:GetObject'],
    why: 'read archived evidence by version id',
  },
  {
    provider: 'aws',
    holder: 'function',
    capability: 'evidence-read',
    permission: 's3:ListBucketVersions',
    calls: ['s3:ListObjectVersions'],
    why: 'list object versions, so an overwrite or a deletion shows',
  },
];
