/**
 * EKS audit logs in export mode: the cloud delivers them, Fleetward only keeps the delivery
 * path as desired state (`fleetward audit plan` / `apply`). No Fleetward code is in the data path.
 *
 * Per EKS cluster, in the cluster's account and region:
 * - a CloudWatch Logs subscription filter named {@link EXPORT_FILTER_NAME} on the log group
 *   `/aws/eks/<name>/cluster`, whose pattern ({@link AUDIT_FILTER_PATTERN}) selects the
 *   audit.k8s.io/v1 Events EKS writes to its `kube-apiserver-audit-*` streams (the other
 *   control-plane logs of the group, api, authenticator, scheduler, are not such JSON), running
 *   as the role `clouds.aws.auditExport.logsRoleName`;
 * - into an Amazon Data Firehose stream `fleetward-audit-<12 hex of the SHA-256 of the cluster
 *   id>` ({@link exportStreamName}), source Direct PUT (a subscription puts records the way
 *   PutRecordBatch does), ExtendedS3 destination the jurisdiction's evidence bucket, prefix
 *   `audit-export/<cluster-id>/` (Firehose appends `YYYY/MM/DD/HH/`), error prefix
 *   `audit-export-errors/<cluster-id>/`, compression `UNCOMPRESSED` because CloudWatch Logs
 *   already gzips every record (each object is a series of gzip members), running as the role
 *   `clouds.aws.auditExport.firehoseRoleName`.
 *
 * `checkDestination` checks the evidence bucket the way pull mode does (the S3 archive store's
 * Object Lock check and bucket locator, ./evidence.ts) and that it lies in the cluster's region:
 * the issue's design delivers in-region. `apply` creates or updates only that filter and that
 * stream; a stream it just created must become ACTIVE before the filter can point at it: apply
 * waits a bounded time (`activeWaitMs`), else fails retryably and the next apply goes on.
 *
 * Credentials: the cluster account's role (`roleArn`, `externalId`), as the audit source.
 */

import { createHash } from 'node:crypto';
import {
  CloudWatchLogsClient,
  DescribeSubscriptionFiltersCommand,
  PutSubscriptionFilterCommand,
  type SubscriptionFilter,
} from '@aws-sdk/client-cloudwatch-logs';
import {
  CreateDeliveryStreamCommand,
  type DeliveryStreamDescription,
  DescribeDeliveryStreamCommand,
  type ExtendedS3DestinationConfiguration,
  FirehoseClient,
  UpdateDestinationCommand,
} from '@aws-sdk/client-firehose';
import { awsExportPrefix } from '../../audit/export-layout.ts';
import type { AwsConfig, FleetConfig } from '../../config/schema.ts';
import type { Cluster } from '../../model.ts';
import type { ArchiveStore, AuditExporter, ExportObserved, ExportSpec } from '../../ports.ts';
import { createLimiter } from '../../runtime/concurrency.ts';
import { CloudApiError, ConfigError, FleetwardError } from '../../runtime/errors.ts';
import type { AdapterContext } from '../context.ts';
import type { PermissionGrant } from '../permissions.ts';
import { auditLogGroup } from './audit.ts';
import { createRequestHandler } from './client.ts';
import { commonClientConfig, createS3ArchiveStore, sdkName, sendOptions } from './evidence.ts';
import { caller, createRoleSessions } from './sessions.ts';

/** The subscription filter's name; Fleetward never touches a filter of another name. */
export const EXPORT_FILTER_NAME = 'fleetward-audit';
/** Every Firehose stream Fleetward manages starts with this. */
export const EXPORT_STREAM_PREFIX = 'fleetward-audit-';
/**
 * The subscription's filter pattern: the Kubernetes audit Events (CloudWatch Logs JSON filter
 * pattern syntax; EKS writes one audit.k8s.io/v1 Event object per log event).
 */
export const AUDIT_FILTER_PATTERN = '{ ($.apiVersion = "audit.k8s.io/v1") && ($.kind = "Event") }';
/** The role session name of the exporter's AssumeRole calls (shows in CloudTrail). */
export const EXPORT_ROLE_SESSION_NAME = 'fleetward-audit-export';
/** How long `apply` waits for a stream it created to become ACTIVE (Firehose takes about a minute). */
export const DEFAULT_ACTIVE_WAIT_MS = 120_000;

const sha12 = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 12);

/** The Firehose stream of a cluster: `fleetward-audit-<12 hex>`, within Firehose's 64-character names. */
export function exportStreamName(clusterId: string): string {
  return `${EXPORT_STREAM_PREFIX}${sha12(clusterId)}`;
}

/** Where the exported objects of a cluster land in the evidence bucket. */
export const exportPrefix = awsExportPrefix;

/** Where Firehose writes what it could not deliver as asked. */
export function exportErrorPrefix(clusterId: string): string {
  return `audit-export-errors/${clusterId}/`;
}

/** The ARN partition of a region (`aws`, `aws-cn`, `aws-us-gov`). */
export function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

/** The bucket name of an S3 bucket ARN (`arn:aws:s3:::name`), or `undefined`. */
export function bucketOfArn(arn: string): string | undefined {
  return /^arn:[\w-]+:s3:::([^/]+)$/.exec(arn)?.[1];
}

/** What a CloudWatch Logs filter and a Firehose description say, as an {@link ExportObserved} (pure). */
export function observedOf(
  filter: Pick<
    SubscriptionFilter,
    'filterName' | 'logGroupName' | 'filterPattern' | 'destinationArn' | 'roleArn'
  >,
  stream: DeliveryStreamDescription | undefined,
): ExportObserved {
  const s3 = stream?.Destinations?.[0]?.ExtendedS3DestinationDescription;
  const failure = stream?.FailureDescription;
  return {
    name: filter.filterName ?? '',
    // A stream that is gone or not ACTIVE takes no records: the subscription does not deliver.
    enabled: stream?.DeliveryStreamStatus === 'ACTIVE',
    destination: filter.destinationArn ?? '',
    filter: filter.filterPattern ?? '',
    settings: {
      logGroup: filter.logGroupName ?? '',
      logsRoleArn: filter.roleArn ?? '',
      stream: stream?.DeliveryStreamName ?? '',
      bucketArn: s3?.BucketARN ?? '',
      prefix: s3?.Prefix ?? '',
      errorOutputPrefix: s3?.ErrorOutputPrefix ?? '',
      compression: s3?.CompressionFormat ?? '',
      firehoseRoleArn: s3?.RoleARN ?? '',
    },
    deliveryErrors: failure
      ? [`${failure.Type ?? 'UNKNOWN_ERROR'}${failure.Details ? `: ${failure.Details}` : ''}`]
      : [],
  };
}

/** The ExtendedS3 destination a spec asks for. */
function destinationOf(spec: ExportSpec): ExtendedS3DestinationConfiguration {
  const s = spec.settings;
  return {
    RoleARN: s.firehoseRoleArn,
    BucketARN: s.bucketArn,
    Prefix: s.prefix,
    ErrorOutputPrefix: s.errorOutputPrefix,
    CompressionFormat: 'UNCOMPRESSED',
  };
}

/** The evidence bucket configured for `jurisdiction` on AWS, if it is `bucket`. */
function evidenceOf(config: FleetConfig, jurisdiction: string, bucket: string) {
  const e = config.jurisdictions[jurisdiction]?.evidence?.aws;
  return e && e.bucket === bucket ? e : undefined;
}

/**
 * The EKS exporter of a fleet config (which must configure `clouds.aws`). `options.activeWaitMs`
 * bounds the wait for a new stream to become ACTIVE, polled every `options.pollMs`.
 */
export function createAuditExporter(
  config: FleetConfig,
  ctx: AdapterContext,
  options: { activeWaitMs?: number; pollMs?: number } = {},
): AuditExporter {
  const aws: AwsConfig | undefined = config.clouds.aws;
  if (!aws) throw new ConfigError([{ path: 'clouds.aws', message: 'export mode on EKS needs clouds.aws' }]);
  const activeWaitMs = options.activeWaitMs ?? DEFAULT_ACTIVE_WAIT_MS;
  const pollMs = options.pollMs ?? 2000;
  const call = caller(createLimiter(aws.concurrency), { endpoint: aws.endpoint });
  const common = commonClientConfig(aws);
  const sessions = createRoleSessions(aws, EXPORT_ROLE_SESSION_NAME);
  const stores = new Map<string, ArchiveStore>();

  function accountOf(cluster: Cluster) {
    if (cluster.cloud !== 'aws') {
      throw new FleetwardError(`cluster ${cluster.id} is not an eks cluster: it has no cloudwatch export`);
    }
    const account = aws!.accounts.find((a) => a.id === cluster.scope);
    if (!account)
      throw new FleetwardError(`cluster ${cluster.id}: aws account ${cluster.scope} is not configured`);
    return account;
  }

  /** The jurisdiction's evidence bucket `bucket` as an S3 archive store (one per bucket). */
  function storeOf(cluster: Cluster, bucket: string): ArchiveStore {
    const evidence = evidenceOf(config, cluster.jurisdiction, bucket);
    if (!evidence) {
      throw new FleetwardError(
        `s3 bucket ${bucket} is not the evidence bucket of jurisdiction ${cluster.jurisdiction}`,
      );
    }
    let store = stores.get(bucket);
    if (!store) {
      store = createS3ArchiveStore(aws!, evidence, ctx);
      stores.set(bucket, store);
    }
    return store;
  }

  /** Clients of the cluster's account and region, destroyed by `done()`. */
  async function clients(cluster: Cluster, signal: AbortSignal | undefined) {
    signal?.throwIfAborted();
    const credentials = await sessions.credentials(accountOf(cluster));
    const requestHandler = createRequestHandler(aws!);
    const base = { ...common, credentials, requestHandler, region: cluster.region };
    const logs = new CloudWatchLogsClient(base);
    const firehose = new FirehoseClient(base);
    return {
      logs,
      firehose,
      done() {
        logs.destroy();
        firehose.destroy();
        requestHandler.destroy();
      },
    };
  }

  type Clients = Awaited<ReturnType<typeof clients>>;

  async function describeStream(
    c: Clients,
    name: string,
    signal: AbortSignal | undefined,
  ): Promise<DeliveryStreamDescription | undefined> {
    try {
      const out = await call('DescribeDeliveryStream', `firehose stream ${name}`, signal, () =>
        c.firehose.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: name }), sendOptions(signal)),
      );
      return out.DeliveryStreamDescription;
    } catch (error) {
      if (sdkName((error as Error).cause) === 'ResourceNotFoundException') return undefined;
      throw error;
    }
  }

  async function describeFilter(
    c: Clients,
    logGroupName: string,
    signal: AbortSignal | undefined,
  ): Promise<SubscriptionFilter | undefined | null> {
    try {
      const out = await call('DescribeSubscriptionFilters', `log group ${logGroupName}`, signal, () =>
        c.logs.send(
          new DescribeSubscriptionFiltersCommand({ logGroupName, filterNamePrefix: EXPORT_FILTER_NAME }),
          sendOptions(signal),
        ),
      );
      return (out.subscriptionFilters ?? []).find((f) => f.filterName === EXPORT_FILTER_NAME);
    } catch (error) {
      // No log group: the cluster never sent control-plane logs, so nothing can subscribe.
      if (sdkName((error as Error).cause) === 'ResourceNotFoundException') return null;
      throw error;
    }
  }

  return {
    cloud: 'aws',

    desired(cluster, store) {
      if (!store.id.startsWith('aws:')) {
        throw new FleetwardError(
          `evidence store ${store.id} is not an s3 bucket: eks export delivers only into s3 (export cannot cross clouds)`,
        );
      }
      const bucket = store.id.slice('aws:'.length);
      const account = cluster.scope;
      const partition = partitionOf(cluster.region);
      const stream = exportStreamName(cluster.id);
      const role = (name: string) => `arn:${partition}:iam::${account}:role/${name}`;
      return {
        name: EXPORT_FILTER_NAME,
        destination: `arn:${partition}:firehose:${cluster.region}:${account}:deliverystream/${stream}`,
        filter: AUDIT_FILTER_PATTERN,
        settings: {
          logGroup: auditLogGroup(cluster.name),
          logsRoleArn: role(aws.auditExport.logsRoleName),
          stream,
          bucketArn: `arn:${partition}:s3:::${bucket}`,
          prefix: exportPrefix(cluster.id),
          errorOutputPrefix: exportErrorPrefix(cluster.id),
          compression: 'UNCOMPRESSED',
          firehoseRoleArn: role(aws.auditExport.firehoseRoleName),
        },
      };
    },

    async checkDestination(cluster, spec, retentionDays, opts = {}) {
      const bucket = bucketOfArn(spec.settings.bucketArn ?? '');
      if (!bucket)
        throw new FleetwardError(`export destination ${spec.settings.bucketArn ?? ''} is no s3 bucket`);
      const store = storeOf(cluster, bucket);
      await store.assertImmutable(retentionDays, opts);
      const located = await store.location(opts);
      if (!located) throw new FleetwardError(`the region of s3 bucket ${bucket} is unknown`);
      if (located.region !== cluster.region) {
        throw new FleetwardError(
          `s3 bucket ${bucket} is in ${located.region}, not in the cluster's region ${cluster.region}: eks export delivers in-region`,
        );
      }
      return located;
    },

    async observe(cluster, spec, opts = {}) {
      const { signal } = opts;
      const c = await clients(cluster, signal);
      try {
        const filter = await describeFilter(c, spec.settings.logGroup ?? auditLogGroup(cluster.name), signal);
        if (!filter) return null;
        const stream = await describeStream(c, spec.settings.stream ?? exportStreamName(cluster.id), signal);
        return observedOf(filter, stream);
      } finally {
        c.done();
      }
    },

    async apply(cluster, spec, opts = {}) {
      const { signal } = opts;
      const name = spec.settings.stream ?? '';
      if (!name.startsWith(EXPORT_STREAM_PREFIX)) {
        throw new FleetwardError(
          `refusing to manage firehose stream "${name}": not a ${EXPORT_STREAM_PREFIX}* stream`,
        );
      }
      const c = await clients(cluster, signal);
      try {
        const wanted = destinationOf(spec);
        let stream = await describeStream(c, name, signal);
        if (!stream) {
          await call('CreateDeliveryStream', `firehose stream ${name}`, signal, () =>
            c.firehose.send(
              new CreateDeliveryStreamCommand({
                DeliveryStreamName: name,
                DeliveryStreamType: 'DirectPut',
                ExtendedS3DestinationConfiguration: wanted,
                Tags: [
                  { Key: 'managed-by', Value: 'fleetward' },
                  { Key: 'fleetward-cluster', Value: cluster.id.slice(0, 256) },
                ],
              }),
              sendOptions(signal),
            ),
          );
          ctx.logger.info('Export stream created', { cluster: cluster.id, stream: name });
          stream = await describeStream(c, name, signal);
        } else {
          const s3 = stream.Destinations?.[0]?.ExtendedS3DestinationDescription;
          const differs =
            s3?.RoleARN !== wanted.RoleARN ||
            s3?.BucketARN !== wanted.BucketARN ||
            (s3?.Prefix ?? '') !== wanted.Prefix ||
            (s3?.ErrorOutputPrefix ?? '') !== wanted.ErrorOutputPrefix ||
            s3?.CompressionFormat !== wanted.CompressionFormat;
          if (differs) {
            const current = stream;
            await call('UpdateDestination', `firehose stream ${name}`, signal, () =>
              c.firehose.send(
                new UpdateDestinationCommand({
                  DeliveryStreamName: name,
                  CurrentDeliveryStreamVersionId: current.VersionId,
                  DestinationId: current.Destinations?.[0]?.DestinationId,
                  ExtendedS3DestinationUpdate: wanted,
                }),
                sendOptions(signal),
              ),
            );
            ctx.logger.info('Export stream updated', { cluster: cluster.id, stream: name });
          }
        }
        // A subscription can only point at an ACTIVE stream (CloudWatch Logs sends it a test record).
        const deadline = Date.now() + activeWaitMs;
        while (stream?.DeliveryStreamStatus !== 'ACTIVE') {
          if (Date.now() >= deadline) {
            throw new CloudApiError(
              `firehose stream ${name} is ${stream?.DeliveryStreamStatus ?? 'absent'}, not ACTIVE yet: apply again shortly`,
              { cloud: 'aws', operation: 'DescribeDeliveryStream', retryable: true },
            );
          }
          await new Promise((resolve) => setTimeout(resolve, pollMs));
          signal?.throwIfAborted();
          stream = await describeStream(c, name, signal);
        }
        const logGroupName = spec.settings.logGroup ?? auditLogGroup(cluster.name);
        await call('PutSubscriptionFilter', `log group ${logGroupName}`, signal, () =>
          c.logs.send(
            new PutSubscriptionFilterCommand({
              logGroupName,
              filterName: spec.name,
              filterPattern: spec.filter,
              destinationArn: spec.destination,
              roleArn: spec.settings.logsRoleArn,
            }),
            sendOptions(signal),
          ),
        );
        ctx.logger.info('Export subscription put', { cluster: cluster.id, logGroup: logGroupName });
      } finally {
        c.done();
      }
    },

    async exported(cluster, spec) {
      const bucket = bucketOfArn(spec.settings.bucketArn ?? '');
      if (!bucket)
        throw new FleetwardError(`export destination ${spec.settings.bucketArn ?? ''} is no s3 bucket`);
      return { store: storeOf(cluster, bucket), prefix: spec.settings.prefix ?? exportPrefix(cluster.id) };
    },
  };
}

const member = (permission: string, calls: string[], why: string): PermissionGrant => ({
  provider: 'aws',
  holder: 'member',
  capability: 'audit-export',
  permission,
  calls,
  why,
});
const fn = (permission: string, calls: string[], why: string): PermissionGrant => ({
  provider: 'aws',
  holder: 'function',
  capability: 'audit-export',
  permission,
  calls,
  why,
});

/** Provider permissions of this adapter's calls (shared/clouds/permissions.ts). */
export const PERMISSIONS: readonly PermissionGrant[] = [
  fn(
    'sts:AssumeRole',
    ['sts:AssumeRole'],
    "assume the member account's role to manage the audit export there",
  ),
  fn(
    's3:GetBucketLocation',
    ['s3:GetBucketLocation'],
    "check that the export's evidence bucket lies in the cluster's region and jurisdiction",
  ),
  fn(
    's3:GetBucketObjectLockConfiguration',
    ['s3:GetObjectLockConfiguration'],
    "check that the export's evidence bucket is write-once (Object Lock COMPLIANCE, retention long enough)",
  ),
  fn(
    's3:GetBucketVersioning',
    ['s3:GetBucketVersioning'],
    "check that the export's evidence bucket keeps every version",
  ),
  member(
    'logs:DescribeSubscriptionFilters',
    ['logs:DescribeSubscriptionFilters'],
    'read the fleetward-audit subscription filter of /aws/eks/<cluster>/cluster',
  ),
  member(
    'logs:PutSubscriptionFilter',
    ['logs:PutSubscriptionFilter'],
    'create or update the fleetward-audit subscription filter (audit Events to Firehose)',
  ),
  member(
    'firehose:DescribeDeliveryStream',
    ['firehose:DescribeDeliveryStream'],
    'read the fleetward-audit-* stream: status, destination, prefix, failures',
  ),
  member(
    'firehose:CreateDeliveryStream',
    ['firehose:CreateDeliveryStream'],
    'create the fleetward-audit-* stream into the evidence bucket',
  ),
  member(
    'firehose:TagDeliveryStream',
    ['firehose:CreateDeliveryStream'],
    'tag the fleetward-audit-* stream (managed-by, cluster) as it is created',
  ),
  member(
    'firehose:UpdateDestination',
    ['firehose:UpdateDestination'],
    "put the fleetward-audit-* stream's destination back as configured",
  ),
  member(
    'iam:PassRole',
    ['logs:PutSubscriptionFilter', 'firehose:CreateDeliveryStream', 'firehose:UpdateDestination'],
    'hand the configured logs-to-Firehose and Firehose-to-S3 roles (clouds.aws.auditExport) to the services',
  ),
];
