/**
 * Where an S3 bucket lives: S3 `GetBucketLocation`, asked with the credentials of the
 * cluster's account.
 *
 * - Credentials: when the cluster runs on AWS in a configured account, that account's role
 *   is assumed (`roleArn`, `externalId`) with the base credentials, as discovery does; the
 *   temporary credentials are kept per account until five minutes before they expire. Any
 *   other cluster (GKE, AKS, a kubeconfig context, an unconfigured account) is answered with
 *   the base credentials themselves (the profile of `clouds.aws.credentials`, else the SDK's
 *   default chain: the Lambda role when deployed).
 * - The request goes to the region the BSL names (`config.region`), else the cluster's
 *   region, else `homeRegion`; `followRegionRedirects` follows S3's redirect when that is
 *   not the bucket's region. With an `endpoint` (an emulator, a proxy) addressing is
 *   path-style (`forcePathStyle`), as emulators need.
 * - `LocationConstraint` is the answer: S3 leaves it empty (`null`/absent) for buckets in
 *   `us-east-1`, and answers the legacy value `EU` for buckets created with it, which live in
 *   `eu-west-1`. Both are mapped ({@link regionOfLocationConstraint}).
 * - A BSL whose `s3Url` points at S3-compatible storage outside AWS (MinIO, Ceph, another
 *   vendor) cannot be located through AWS: it is refused rather than answered with whatever
 *   region the AWS account would report.
 *
 * Retries are the SDK's standard mode (`maxAttempts`, backoff with jitter, Retry-After);
 * every AWS call takes a slot of one limiter of `concurrency`. Failures are wrapped once as
 * {@link CloudApiError} (`operation` `AssumeRole` or `GetBucketLocation`).
 */
import { GetBucketLocationCommand, S3Client } from '@aws-sdk/client-s3';
import type { AwsConfig } from '../../config/schema.ts';
import type { Cluster } from '../../model.ts';
import type { BucketLocator, BucketRef } from '../../ports.ts';
import { createLimiter } from '../../runtime/concurrency.ts';
import { CloudApiError, errorInfo, FleetwardError } from '../../runtime/errors.ts';
import type { AdapterContext } from '../context.ts';
import { baseCredentials, createRequestHandler, rejectHtmlAnswers } from './client.ts';
import { caller, createRoleSessions } from './sessions.ts';

/** The role session name of the locator's AssumeRole calls (shows in CloudTrail). */
export const BUCKET_ROLE_SESSION_NAME = 'fleetward-bucket-locator';
/** An AWS region name (`eu-central-1`, `us-gov-west-1`, `cn-north-1`). */
const AWS_REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

/**
 * The region of a `GetBucketLocation` answer. S3 answers no constraint (empty or absent)
 * for `us-east-1` and the legacy `EU` for buckets created in `eu-west-1` with it; every
 * other answer is the region name itself.
 */
export function regionOfLocationConstraint(constraint: string | null | undefined): string {
  if (constraint === undefined || constraint === null || constraint === '') return 'us-east-1';
  if (constraint === 'EU') return 'eu-west-1';
  return constraint;
}

/** Whether `s3Url` names AWS S3 itself (`*.amazonaws.com`, `*.amazonaws.com.cn`) or the configured endpoint. */
function isAwsS3(s3Url: string, endpoint: string | undefined): boolean {
  let url: URL;
  try {
    url = new URL(s3Url);
  } catch {
    return false;
  }
  if (endpoint !== undefined && url.origin === new URL(endpoint).origin) return true;
  return /(^|\.)amazonaws\.com(\.cn)?$/.test(url.hostname);
}

/** The S3 bucket locator of an AWS config. */
export function createBucketLocator(config: AwsConfig, ctx: AdapterContext): BucketLocator {
  const limiter = createLimiter(config.concurrency);
  const base = baseCredentials(config);
  const common = {
    maxAttempts: config.maxAttempts,
    retryMode: 'standard',
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
  };
  const sessions = createRoleSessions(config, BUCKET_ROLE_SESSION_NAME);

  const call = caller(limiter, { endpoint: config.endpoint });

  return {
    async locate(bucket: BucketRef, cluster: Cluster, options = {}) {
      const { signal } = options;
      signal?.throwIfAborted();
      const name = bucket.bucket;
      const s3Url = bucket.config.s3Url;
      if (s3Url && !isAwsS3(s3Url, config.endpoint)) {
        throw new FleetwardError(
          `s3 bucket ${name} is served by ${s3Url}, storage outside aws s3: its location cannot be read through aws`,
        );
      }
      const account =
        cluster.cloud === 'aws' ? config.accounts.find((a) => a.id === cluster.scope) : undefined;
      const credentials = account ? { credentials: await sessions.credentials(account) } : base;
      const bslRegion = bucket.config.region;
      const region =
        bslRegion && AWS_REGION.test(bslRegion)
          ? bslRegion
          : cluster.cloud === 'aws' && AWS_REGION.test(cluster.region)
            ? cluster.region
            : config.homeRegion;
      const requestHandler = createRequestHandler(config);
      // An HTML page parses as a GetBucketLocation answer without a constraint, i.e. us-east-1.
      const s3 = rejectHtmlAnswers(
        new S3Client({
          ...common,
          ...credentials,
          requestHandler,
          region,
          forcePathStyle: config.endpoint !== undefined,
          followRegionRedirects: true,
        }),
      );
      try {
        const out = await call('GetBucketLocation', `s3 bucket ${name}`, signal, () =>
          s3.send(new GetBucketLocationCommand({ Bucket: name }), signal ? { abortSignal: signal } : {}),
        );
        const located = regionOfLocationConstraint(out.LocationConstraint);
        if (!AWS_REGION.test(located)) {
          throw new CloudApiError(
            `s3 bucket ${name}: GetBucketLocation answered an unknown location constraint "${located}"`,
            { cloud: 'aws', operation: 'GetBucketLocation', retryable: false },
          );
        }
        ctx.logger.debug('Bucket located', {
          cloud: 'aws',
          bucket: name,
          region: located,
          cluster: cluster.id,
          ...(account ? { account: account.id } : {}),
        });
        return { cloud: 'aws', region: located };
      } catch (error) {
        if (!signal?.aborted) {
          ctx.logger.debug('Bucket location failed', { cloud: 'aws', bucket: name, error: errorInfo(error) });
        }
        throw error;
      } finally {
        s3.destroy();
        requestHandler.destroy();
      }
    },
  };
}

/** Provider permissions of this adapter's calls (shared/clouds/permissions.ts). */
export const PERMISSIONS: readonly import('../permissions.ts').PermissionGrant[] = [
  {
    provider: 'aws',
    holder: 'member',
    capability: 'velero',
    permission: 's3:GetBucketLocation',
    calls: ['s3:GetBucketLocation'],
    why: "check that a Velero backup bucket lies in the cluster's jurisdiction",
  },
];
