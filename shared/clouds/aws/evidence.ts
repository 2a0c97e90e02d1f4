/**
 * The S3 Object Lock evidence bucket: audit archives and compliance snapshots.
 *
 * Archive store ({@link createS3ArchiveStore}): one evidence bucket, reached with the base
 * credentials (the bucket lives in the deployment's own account, or the configured owner
 * account), every call with `ExpectedBucketOwner`; conditional create
 * (`If-None-Match: *`) with the SHA-256 checksum S3 verifies, reads by version, and version
 * listings that show any overwrite.
 *
 * Every call takes a slot of one limiter of `concurrency` per store; retries are the SDK's
 * standard mode; failures are wrapped once as {@link CloudApiError}. Apart from the audit log
 * source (./audit.ts), so a function that only writes or reads evidence bundles no log reader.
 */
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
import type { AwsConfig } from '../../config/schema.ts';
import type { ArchiveStore } from '../../ports.ts';
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
import { baseCredentials, createRequestHandler } from './client.ts';
import { caller } from './sessions.ts';

/** The error name of an SDK error (`ResourceNotFoundException`, `NoSuchKey`...). */
export function sdkName(error: unknown): string | undefined {
  const name = (error as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? name : undefined;
}

export function sdkStatus(error: unknown): number | undefined {
  const status = (error as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

export const sendOptions = (signal: AbortSignal | undefined) => (signal ? { abortSignal: signal } : {});

export function commonClientConfig(config: AwsConfig) {
  return {
    maxAttempts: config.maxAttempts,
    retryMode: 'standard',
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
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
        .map(([key, versions]) => {
          // S3 lists a key's versions newest first; the sort only guards that (stable on ties).
          versions.sort((a, b) => b.modified - a.modified || a.order - b.order);
          const latest = versions[0]?.modified;
          return {
            key,
            versions: versions.map((v) => v.version),
            // The latest version's LastModified: when the object's current bytes were created.
            created: latest ? new Date(latest).toISOString() : undefined,
          };
        });
    },
  };
}

/** Provider permissions of this adapter's calls (shared/clouds/permissions.ts). */
export const PERMISSIONS: readonly import('../permissions.ts').PermissionGrant[] = [
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
