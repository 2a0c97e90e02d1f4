/**
 * EKS audit logs and evidence buckets in moto, for the audit archive.
 *
 * - {@link seedAuditLogs}: per cluster, the log group `/aws/eks/<name>/cluster` and one
 *   `kube-apiserver-audit-<hash>` stream in the cluster's account and region (the account's
 *   `fleetward-reader` role is assumed, as the sandbox's EKS seeding does), filled with
 *   audit.k8s.io/v1 Event lines as the API server writes them, plus a few lines that are not
 *   JSON (truncated writes). CloudWatch Logs (and moto) refuse events older than 14 days:
 *   `start` must be recent.
 * - {@link createLockedBucket} / {@link createUnlockedBucket}: evidence buckets with and
 *   without S3 Object Lock default retention.
 * - {@link alterObject}: writes a new version over a key, which is what tampering with a
 *   locked bucket can at most do (the locked version stays).
 *
 * Every call uses the emulator's placeholder `testing` credentials (moto's default account)
 * unless it assumes an account's role.
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  type InputLogEvent,
  PutLogEventsCommand,
} from '@aws-sdk/client-cloudwatch-logs';
import { CreateClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import {
  type BucketLocationConstraint,
  CreateBucketCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  PutObjectLockConfigurationCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';

/** Placeholder credentials moto accepts (its default account). */
const TESTING = { accessKeyId: 'testing', secretAccessKey: 'testing' };

/** The role assumed in each cluster's account to seed its logs. */
export const SEED_ROLE = (account: string) => `arn:aws:iam::${account}:role/fleetward-reader`;

export interface AuditSeedCluster {
  account: string;
  region: string;
  name: string;
}

/** One line written to a cluster's audit stream. */
export interface SeededAuditLine {
  /** The Event's `auditID`; `null` for a malformed line. */
  auditID: string | null;
  /** Milliseconds since the epoch (the CloudWatch event timestamp). */
  timestamp: number;
  message: string;
}

export interface SeededAuditLog {
  cluster: AuditSeedCluster;
  logGroupName: string;
  logStreamName: string;
  /** Every line written, in timestamp order. */
  lines: SeededAuditLine[];
}

/** The key of a seeded cluster in {@link seedAuditLogs}' answer. */
export const auditSeedKey = (c: AuditSeedCluster) => `${c.account}/${c.region}/${c.name}`;

/** PutLogEvents limits: 10,000 events and 1,048,576 bytes (message bytes + 26 per event) per batch. */
const BATCH_EVENTS = 10_000;
const BATCH_BYTES = 1_048_576;
const EVENT_OVERHEAD = 26;

/** A small deterministic PRNG (mulberry32), so seeded fleets are reproducible apart from ids. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Request {
  verb: string;
  resource: string;
  group: string;
  version: string;
  namespaced: boolean;
  names: string[];
  subresource?: string;
}

const REQUESTS: Request[] = [
  {
    verb: 'get',
    resource: 'pods',
    group: '',
    version: 'v1',
    namespaced: true,
    names: ['web-7d9f8b6c5-x2k4p', 'api-5c8d7f9b4-q8r2t'],
  },
  { verb: 'list', resource: 'pods', group: '', version: 'v1', namespaced: true, names: [] },
  { verb: 'watch', resource: 'configmaps', group: '', version: 'v1', namespaced: true, names: [] },
  {
    verb: 'get',
    resource: 'secrets',
    group: '',
    version: 'v1',
    namespaced: true,
    names: ['db-credentials', 'tls-cert'],
  },
  {
    verb: 'update',
    resource: 'leases',
    group: 'coordination.k8s.io',
    version: 'v1',
    namespaced: true,
    names: ['kube-controller-manager', 'kube-scheduler'],
  },
  {
    verb: 'patch',
    resource: 'deployments',
    group: 'apps',
    version: 'v1',
    namespaced: true,
    names: ['web', 'api'],
  },
  { verb: 'create', resource: 'events', group: '', version: 'v1', namespaced: true, names: [] },
  {
    verb: 'delete',
    resource: 'pods',
    group: '',
    version: 'v1',
    namespaced: true,
    names: ['batch-job-28731-abcde'],
  },
  {
    verb: 'get',
    resource: 'nodes',
    group: '',
    version: 'v1',
    namespaced: false,
    names: ['ip-10-0-1-23.ec2.internal'],
  },
  {
    verb: 'create',
    resource: 'pods',
    group: '',
    version: 'v1',
    namespaced: true,
    names: ['web-7d9f8b6c5-x2k4p'],
    subresource: 'exec',
  },
];
const NAMESPACES = ['default', 'kube-system', 'payments', 'web'];
const USERS = [
  {
    username: 'system:serviceaccount:kube-system:replicaset-controller',
    groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
    userAgent:
      'kube-controller-manager/v1.31.2 (linux/amd64) kubernetes/5864a46/system:serviceaccount:kube-system:replicaset-controller',
  },
  {
    username: 'system:kube-scheduler',
    groups: ['system:authenticated'],
    userAgent: 'kube-scheduler/v1.31.2 (linux/amd64) kubernetes/5864a46/leader-election',
  },
  {
    username: 'arn:aws:sts::111122223333:assumed-role/platform-admin/session',
    groups: ['system:masters', 'system:authenticated'],
    userAgent: 'kubectl/v1.31.1 (darwin/arm64) kubernetes/948afe5',
  },
  {
    username: 'system:node:ip-10-0-1-23.ec2.internal',
    groups: ['system:nodes', 'system:authenticated'],
    userAgent: 'kubelet/v1.31.2 (linux/amd64) kubernetes/5864a46',
  },
];
const CODES = [200, 200, 200, 200, 201, 403, 404, 409];

/** One audit.k8s.io/v1 Event (stage ResponseComplete) as the API server logs it, one JSON line. */
export function auditEventLine(at: number, random: () => number, auditID = randomUUID()): string {
  const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)] as T;
  const req = pick(REQUESTS);
  const user = pick(USERS);
  const namespace = req.namespaced ? pick(NAMESPACES) : undefined;
  const name =
    req.names.length > 0 && req.verb !== 'list' && req.verb !== 'watch' ? pick(req.names) : undefined;
  const prefix = req.group ? `/apis/${req.group}/${req.version}` : `/api/${req.version}`;
  const requestURI = `${prefix}${namespace ? `/namespaces/${namespace}` : ''}/${req.resource}${name ? `/${name}` : ''}${req.subresource ? `/${req.subresource}?command=sh&stdin=true&tty=true` : req.verb === 'watch' ? '?watch=true&resourceVersion=48213&timeout=7m' : ''}`;
  const code = req.verb === 'create' && !req.subresource ? 201 : pick(CODES);
  const received = new Date(at - 3 - Math.floor(random() * 40));
  const stage = new Date(at - 1);
  const level = req.resource === 'secrets' ? 'Metadata' : pick(['Metadata', 'Metadata', 'RequestResponse']);
  const objectRef = {
    resource: req.resource,
    ...(namespace ? { namespace } : {}),
    ...(name ? { name } : {}),
    ...(req.group ? { apiGroup: req.group } : {}),
    apiVersion: req.version,
    ...(req.subresource ? { subresource: req.subresource } : {}),
  };
  const event = {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level,
    auditID,
    stage: 'ResponseComplete',
    requestURI,
    verb: req.verb,
    user: { username: user.username, groups: user.groups },
    sourceIPs: [`10.0.${Math.floor(random() * 4)}.${1 + Math.floor(random() * 250)}`],
    userAgent: user.userAgent,
    objectRef,
    responseStatus:
      code >= 400
        ? {
            metadata: {},
            status: 'Failure',
            reason: code === 403 ? 'Forbidden' : code === 404 ? 'NotFound' : 'AlreadyExists',
            code,
          }
        : { metadata: {}, code },
    ...(level === 'RequestResponse' && req.verb === 'patch'
      ? { requestObject: { spec: { replicas: 3 } } }
      : {}),
    requestReceivedTimestamp: received.toISOString().replace('Z', '000Z'),
    stageTimestamp: stage.toISOString().replace('Z', '000Z'),
    annotations: {
      'authorization.k8s.io/decision': code === 403 ? 'forbid' : 'allow',
      'authorization.k8s.io/reason':
        code === 403 ? '' : 'RBAC: allowed by ClusterRoleBinding "system:controller:replicaset-controller"',
    },
  };
  return JSON.stringify(event);
}

/** Lines that are not JSON: what a truncated write or a stray log line looks like. */
const MALFORMED = [
  '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"5f4c2b0e-trunc',
  'I0312 10:15:02.123456      11 trace.go:236] Trace[1042]: "List" url:/api/v1/pods (12-Mar-2025 10:15:01.9)',
  'not json at all',
];

async function accountCredentials(motoUrl: string, accounts: string[]) {
  const sts = new STSClient({ endpoint: motoUrl, region: 'us-east-1', credentials: TESTING });
  const creds = new Map<string, { accessKeyId: string; secretAccessKey: string; sessionToken: string }>();
  try {
    for (const account of accounts) {
      const out = await sts.send(
        new AssumeRoleCommand({ RoleArn: SEED_ROLE(account), RoleSessionName: 'sandbox-audit-seed' }),
      );
      const c = out.Credentials;
      if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken)
        throw new Error('moto answered AssumeRole without credentials');
      creds.set(account, {
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        sessionToken: c.SessionToken,
      });
    }
  } finally {
    sts.destroy();
  }
  return creds;
}

/**
 * Writes each cluster's audit log: `eventsPerCluster` Events plus `malformed` (default 3)
 * non-JSON lines spread among them, one line every `spacingMs` from `start`. Answers what was
 * written, by {@link auditSeedKey}.
 */
export async function seedAuditLogs(
  motoUrl: string,
  clusters: AuditSeedCluster[],
  options: { eventsPerCluster: number; start: Date; spacingMs: number; malformed?: number; seed?: number },
): Promise<Map<string, SeededAuditLog>> {
  const malformed = options.malformed ?? 3;
  const creds = await accountCredentials(motoUrl, [...new Set(clusters.map((c) => c.account))]);
  const seeded = new Map<string, SeededAuditLog>();
  let index = 0;
  for (const cluster of clusters) {
    const random = prng((options.seed ?? 42) + index++);
    const total = options.eventsPerCluster + malformed;
    // Malformed lines at evenly spread positions (never the first or the last line).
    const badAt = new Set(
      Array.from({ length: malformed }, (_, i) => Math.floor(((i + 1) * total) / (malformed + 1))),
    );
    const lines: SeededAuditLine[] = [];
    let bad = 0;
    for (let i = 0; i < total; i++) {
      const timestamp = options.start.getTime() + i * options.spacingMs;
      if (badAt.has(i)) {
        lines.push({ auditID: null, timestamp, message: MALFORMED[bad++ % MALFORMED.length] as string });
      } else {
        const auditID = randomUUID();
        lines.push({ auditID, timestamp, message: auditEventLine(timestamp, random, auditID) });
      }
    }
    const logGroupName = `/aws/eks/${cluster.name}/cluster`;
    const hash = createHash('md5').update(auditSeedKey(cluster)).digest('hex');
    const logStreamName = `kube-apiserver-audit-${hash}`;
    const logs = new CloudWatchLogsClient({
      endpoint: motoUrl,
      region: cluster.region,
      credentials: creds.get(cluster.account) ?? TESTING,
    });
    try {
      // Seeding more events later appends to the same group and stream.
      const exists = (error: unknown) => (error as Error).name === 'ResourceAlreadyExistsException';
      await logs.send(new CreateLogGroupCommand({ logGroupName })).catch((error) => {
        if (!exists(error)) throw error;
      });
      await logs.send(new CreateLogStreamCommand({ logGroupName, logStreamName })).catch((error) => {
        if (!exists(error)) throw error;
      });
      let batch: InputLogEvent[] = [];
      let bytes = 0;
      const flush = async () => {
        if (batch.length === 0) return;
        await logs.send(new PutLogEventsCommand({ logGroupName, logStreamName, logEvents: batch }));
        batch = [];
        bytes = 0;
      };
      for (const line of lines) {
        const size = Buffer.byteLength(line.message) + EVENT_OVERHEAD;
        if (batch.length >= BATCH_EVENTS || bytes + size > BATCH_BYTES) await flush();
        batch.push({ timestamp: line.timestamp, message: line.message });
        bytes += size;
      }
      await flush();
    } finally {
      logs.destroy();
    }
    seeded.set(auditSeedKey(cluster), { cluster, logGroupName, logStreamName, lines });
  }
  return seeded;
}

function s3Client(motoUrl: string, region: string): S3Client {
  return new S3Client({ endpoint: motoUrl, region, credentials: TESTING, forcePathStyle: true });
}

async function createBucket(
  s3: S3Client,
  bucket: string,
  region: string,
  objectLock: boolean,
): Promise<void> {
  await s3.send(
    new CreateBucketCommand({
      Bucket: bucket,
      ...(objectLock ? { ObjectLockEnabledForBucket: true } : {}),
      // us-east-1 takes no location constraint.
      ...(region === 'us-east-1'
        ? {}
        : { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } }),
    }),
  );
}

/**
 * An evidence bucket with Object Lock and a default retention of `retentionDays` (mode
 * COMPLIANCE unless `mode` says GOVERNANCE). Object Lock turns versioning on.
 */
export async function createLockedBucket(
  motoUrl: string,
  bucket: string,
  region: string,
  retentionDays: number,
  options: { mode?: 'COMPLIANCE' | 'GOVERNANCE' } = {},
): Promise<void> {
  const s3 = s3Client(motoUrl, region);
  try {
    await createBucket(s3, bucket, region, true);
    await s3.send(
      new PutObjectLockConfigurationCommand({
        Bucket: bucket,
        ObjectLockConfiguration: {
          ObjectLockEnabled: 'Enabled',
          Rule: { DefaultRetention: { Mode: options.mode ?? 'COMPLIANCE', Days: retentionDays } },
        },
      }),
    );
  } finally {
    s3.destroy();
  }
}

/** A bucket without Object Lock (versioning on when `versioning` is set). */
export async function createUnlockedBucket(
  motoUrl: string,
  bucket: string,
  region: string,
  options: { versioning?: boolean } = {},
): Promise<void> {
  const s3 = s3Client(motoUrl, region);
  try {
    await createBucket(s3, bucket, region, false);
    if (options.versioning) {
      await s3.send(
        new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }),
      );
    }
  } finally {
    s3.destroy();
  }
}

/**
 * Puts a new version of `key` (unconditionally): on a locked bucket this is what tampering
 * looks like, a second version next to the locked one. Answers the new version id.
 */
export async function alterObject(
  motoUrl: string,
  bucket: string,
  key: string,
  bytes: Uint8Array,
  region = 'us-east-1',
): Promise<string | undefined> {
  const s3 = s3Client(motoUrl, region);
  try {
    const out = await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: bytes,
        ChecksumAlgorithm: 'SHA256',
        ChecksumSHA256: createHash('sha256').update(bytes).digest('base64'),
      }),
    );
    return out.VersionId;
  } finally {
    s3.destroy();
  }
}

/**
 * An EKS cluster in moto (the account's role assumed), with control-plane logging of `audit`
 * on or explicitly off (`api` stays on either way).
 */
export async function createAuditCluster(
  motoUrl: string,
  cluster: AuditSeedCluster & { auditLogging: boolean },
): Promise<void> {
  const creds = await accountCredentials(motoUrl, [cluster.account]);
  const eks = new EKSClient({
    endpoint: motoUrl,
    region: cluster.region,
    credentials: creds.get(cluster.account) ?? TESTING,
  });
  try {
    await eks.send(
      new CreateClusterCommand({
        name: cluster.name,
        version: '1.31',
        roleArn: `arn:aws:iam::${cluster.account}:role/fleetward-eks-cluster`,
        resourcesVpcConfig: { subnetIds: ['subnet-0a1b2c3d', 'subnet-4e5f6a7b'] },
        logging: {
          clusterLogging: cluster.auditLogging
            ? [{ types: ['api', 'audit', 'authenticator'], enabled: true }]
            : [
                { types: ['api'], enabled: true },
                { types: ['audit'], enabled: false },
              ],
        },
      }),
    );
  } finally {
    eks.destroy();
  }
}
