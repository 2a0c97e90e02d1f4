/**
 * IAM for the local stack (`stack.ts`): each function's execution environment signs its AWS
 * calls with its own access key, and the stack's AWS proxy asks {@link StackIam.authorize}
 * whether the function's role (the template's `AWS::IAM::Role`, its inline policies resolved
 * against the stack's moto resources) allows each one. moto accepts any key and checks nothing;
 * this is the check.
 *
 * What is evaluated, as IAM does for identity-based policies in one account:
 * - `Action` with `*` and `?` wildcards, case-insensitive; `Resource` with wildcards,
 *   case-sensitive; an explicit `Deny` wins over any `Allow`; no matching `Allow` denies.
 * - The IAM action of a request comes from its operation (`<signing name>:<Operation>`), with
 *   the cases where IAM names it otherwise (`sqs:SendMessageBatch` needs `sqs:SendMessage`,
 *   S3 `HeadObject` needs `s3:GetObject`, `ListObjectsV2` needs `s3:ListBucket`, a `versionId`
 *   needs `s3:GetObjectVersion`, an Object Lock header on `PutObject` adds
 *   `s3:PutObjectRetention`, `TransactWriteItems` needs the action of each item...).
 *   `sts:GetCallerIdentity` needs no permission, as in AWS.
 * - The resource, where the request names it: the queue ARN from `QueueUrl`, the table ARN from
 *   `TableName` (and `RequestItems`, the index ARN for `IndexName`), the parameter ARN from
 *   `Name`, the secret ARN from `SecretId`, the AppConfig configuration ARN from the session's
 *   identifiers, bucket and object ARNs from the S3 path, the role ARN of `AssumeRole`, the key
 *   ARN of KMS calls. Actions that take no resource (`sts:GetWebIdentityToken`) need `"*"`.
 *
 * What is not:
 * - `Condition` blocks are not evaluated (a statement with one applies as if it held);
 *   `NotAction`, `NotResource` and `NotPrincipal` statements are ignored (none is generated).
 * - A resource the request does not carry is not matched, only the action: any operation not
 *   listed in {@link iamRequests}, and AppConfig `GetLatestConfiguration` unless the caller maps
 *   its session token to the configuration (the local stack does, from the sessions it answers).
 *   A secret named without its ARN gets the placeholder suffix `-xxxxxx` (AWS appends 6 random
 *   characters), so only a policy ending in a wildcard matches it.
 *   An AppConfig application, environment or profile is identified by its name locally, where
 *   AWS uses generated ids in the ARN.
 * - Managed policies, permission boundaries, SCPs, session policies and resource policies
 *   (bucket and queue policies, KMS key policies) are not evaluated.
 */
import { createHash } from 'node:crypto';
import type { ProxiedRequest } from './aws-proxy.ts';

/** `enforce`: refuse what the role does not allow; `record`: allow it but record it; `off`: no check (moto answers all). */
export type IamMode = 'enforce' | 'record' | 'off';

/** One statement of a role's inline policy, resolved. */
export interface Statement {
  effect: 'Allow' | 'Deny';
  actions: string[];
  resources: string[];
  /** The statement has a `Condition` (not evaluated). */
  conditional: boolean;
}

/** What one call needs: an IAM action on some resources (none: the request names none that can be derived). */
export interface IamRequest {
  action: string;
  resources: string[];
}

/** One authorization decision of the stack's proxy. */
export interface IamCall {
  /** The function key (`backup-clusters`). */
  function: string;
  action: string;
  resources: string[];
  allowed: boolean;
  /** The AWS-shaped refusal, when not allowed. */
  message?: string;
  /** The operation as the proxy named it (`sqs:SendMessage`, `s3:HeadObject`). */
  call: string;
  at: number;
}

/** The deterministic access key pair a function's execution environment signs with (moto accepts any). */
export function functionCredentials(functionName: string): { accessKeyId: string; secretAccessKey: string } {
  const digest = createHash('sha256').update(`fleetward-stack:${functionName}`).digest('hex').toUpperCase();
  return { accessKeyId: `AKIA${digest.slice(0, 16)}`, secretAccessKey: digest.slice(16, 56) };
}

/** IAM wildcard match: `*` any run of characters, `?` one character. */
export function wildcard(pattern: string, value: string, ignoreCase = false): boolean {
  const source = pattern
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`, ignoreCase ? 'is' : 's').test(value);
}

const list = (value: unknown): string[] =>
  value === undefined ? [] : (Array.isArray(value) ? value : [value]).map(String);

/** The statements of a resolved policy document (`Statement` may be one object or a list). */
export function statementsOf(document: unknown): Statement[] {
  const raw = (document as { Statement?: unknown } | null)?.Statement;
  const all = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]) as Record<string, unknown>[];
  return all
    .filter((s) => s.Action !== undefined && s.Resource !== undefined)
    .map((s) => ({
      effect: s.Effect === 'Deny' ? 'Deny' : 'Allow',
      actions: list(s.Action),
      resources: list(s.Resource),
      conditional: s.Condition !== undefined,
    }));
}

/**
 * Whether `statements` allow `request`: every resource must be allowed by some `Allow` and
 * denied by no `Deny` (a request with no derivable resource is matched on the action only).
 * Answers the first resource refused, or `undefined` when all are allowed.
 */
export function refusedResource(statements: readonly Statement[], request: IamRequest): string | undefined {
  const forAction = statements.filter((s) => s.actions.some((a) => wildcard(a, request.action, true)));
  const matches = (s: Statement, resource: string | undefined) =>
    resource === undefined || s.resources.some((r) => wildcard(r, resource));
  for (const resource of request.resources.length > 0 ? request.resources : [undefined]) {
    const denied = forAction.some((s) => s.effect === 'Deny' && matches(s, resource));
    const allowed = forAction.some((s) => s.effect === 'Allow' && matches(s, resource));
    if (denied || !allowed) return resource ?? '*';
  }
  return undefined;
}

/** IAM actions whose name differs from the operation's. */
const ACTION_OF: Record<string, string> = {
  'sqs:SendMessageBatch': 'sqs:SendMessage',
  'sqs:DeleteMessageBatch': 'sqs:DeleteMessage',
  'sqs:ChangeMessageVisibilityBatch': 'sqs:ChangeMessageVisibility',
  's3:HeadObject': 's3:GetObject',
  's3:HeadBucket': 's3:ListBucket',
  's3:ListObjects': 's3:ListBucket',
  's3:ListObjectsV2': 's3:ListBucket',
  's3:ListObjectVersions': 's3:ListBucketVersions',
  's3:ListBuckets': 's3:ListAllMyBuckets',
  's3:GetObjectLockConfiguration': 's3:GetBucketObjectLockConfiguration',
  's3:PutObjectLockConfiguration': 's3:PutBucketObjectLockConfiguration',
  's3:DeleteObjects': 's3:DeleteObject',
  's3:CopyObject': 's3:PutObject',
  'dynamodb:TransactGetItems': 'dynamodb:GetItem',
};

/** Calls no policy needs to allow. */
const FREE = new Set(['sts:GetCallerIdentity']);

const TRANSACT_ACTIONS: Record<string, string> = {
  Put: 'dynamodb:PutItem',
  Update: 'dynamodb:UpdateItem',
  Delete: 'dynamodb:DeleteItem',
  ConditionCheck: 'dynamodb:ConditionCheckItem',
  Get: 'dynamodb:GetItem',
};

function parameters(req: ProxiedRequest): Record<string, unknown> {
  const type = String(req.headers['content-type'] ?? '');
  const text = req.body.toString('utf8');
  if (type.includes('x-www-form-urlencoded')) return Object.fromEntries(new URLSearchParams(text));
  if (text.startsWith('{')) {
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch {
      return {};
    }
  }
  return Object.fromEntries(new URL(req.url, 'http://stack.invalid').searchParams);
}

/**
 * The IAM actions and resources a request needs (several for a transaction or an Object Lock
 * put), `[]` for a call that needs none, in the stack's own `account`; the resources rules are
 * in the module comment.
 */
export function iamRequests(
  req: ProxiedRequest,
  account: string,
  options: {
    /** The configuration ARN an AppConfig session token was issued for (when the caller tracks sessions). */
    configurationOf?: (token: string) => string | undefined;
  } = {},
): IamRequest[] {
  const { service, operation } = req.info;
  const region = req.info.region ?? 'us-east-1';
  if (!service) return [{ action: `unknown:${operation}`, resources: [] }];
  const call = `${service}:${operation}`;
  if (FREE.has(call)) return [];
  const p = parameters(req);
  const url = new URL(req.url, 'http://stack.invalid');
  const arn = (svc: string, rest: string) => `arn:aws:${svc}:${region}:${account}:${rest}`;
  const one = (action: string, resources: string[]): IamRequest[] => [{ action, resources }];
  const action = ACTION_OF[call] ?? call;
  switch (service) {
    case 'sqs': {
      const queueUrl = typeof p.QueueUrl === 'string' ? p.QueueUrl : undefined;
      if (queueUrl) {
        const [owner, name] = new URL(queueUrl).pathname.split('/').filter(Boolean).slice(-2);
        return one(action, [`arn:aws:sqs:${region}:${owner}:${name}`]);
      }
      if (typeof p.QueueName === 'string') {
        const owner = typeof p.QueueOwnerAWSAccountId === 'string' ? p.QueueOwnerAWSAccountId : account;
        return one(action, [`arn:aws:sqs:${region}:${owner}:${p.QueueName}`]);
      }
      return one(action, []);
    }
    case 'dynamodb': {
      const table = (name: string) => (name.startsWith('arn:') ? name : arn('dynamodb', `table/${name}`));
      if (operation === 'TransactWriteItems' || operation === 'TransactGetItems') {
        const items = (p.TransactItems as Record<string, { TableName?: string }>[] | undefined) ?? [];
        return items.flatMap((item) =>
          Object.entries(item).map(([kind, body]) => ({
            action: TRANSACT_ACTIONS[kind] ?? `dynamodb:${kind}`,
            resources: body?.TableName ? [table(body.TableName)] : [],
          })),
        );
      }
      if (p.RequestItems && typeof p.RequestItems === 'object') {
        return one(action, Object.keys(p.RequestItems).map(table));
      }
      if (typeof p.TableName !== 'string') return one(action, []);
      const base = table(p.TableName);
      return one(action, [typeof p.IndexName === 'string' ? `${base}/index/${p.IndexName}` : base]);
    }
    case 'ssm': {
      const names = typeof p.Name === 'string' ? [p.Name] : list(p.Names);
      return one(
        action,
        names.map((n) =>
          n.startsWith('arn:') ? n : arn('ssm', `parameter${n.startsWith('/') ? n : `/${n}`}`),
        ),
      );
    }
    case 'secretsmanager': {
      const id = typeof p.SecretId === 'string' ? p.SecretId : undefined;
      if (!id) return one(action, []);
      return one(action, [id.startsWith('arn:') ? id : arn('secretsmanager', `secret:${id}-xxxxxx`)]);
    }
    case 'appconfig': {
      const {
        ApplicationIdentifier: app,
        EnvironmentIdentifier: env,
        ConfigurationProfileIdentifier: profile,
      } = p as Record<string, string | undefined>;
      if (operation === 'StartConfigurationSession' && app && env && profile) {
        return one(action, [
          arn('appconfig', `application/${app}/environment/${env}/configuration/${profile}`),
        ]);
      }
      const token = url.searchParams.get('configuration_token');
      const configuration = token ? options.configurationOf?.(token) : undefined;
      return one(action, configuration ? [configuration] : []);
    }
    case 's3': {
      const [bucket, ...key] = url.pathname.slice(1).split('/');
      if (!bucket) return one(action, ['*']);
      const objectKey = decodeURIComponent(key.join('/'));
      const versioned = url.searchParams.has('versionId');
      if (!objectKey) return one(action, [`arn:aws:s3:::${bucket}`]);
      const object = [`arn:aws:s3:::${bucket}/${objectKey}`];
      if (versioned && (operation === 'GetObject' || operation === 'HeadObject'))
        return one('s3:GetObjectVersion', object);
      if (versioned && operation === 'DeleteObject') return one('s3:DeleteObjectVersion', object);
      const out = one(action, object);
      if (operation === 'PutObject' || operation === 'CopyObject') {
        if (req.headers['x-amz-object-lock-mode'])
          out.push({ action: 's3:PutObjectRetention', resources: object });
        if (req.headers['x-amz-object-lock-legal-hold'])
          out.push({ action: 's3:PutObjectLegalHold', resources: object });
      }
      return out;
    }
    case 'sts':
      if (operation === 'AssumeRole' || operation === 'AssumeRoleWithWebIdentity')
        return one(action, list(p.RoleArn));
      return one(action, ['*']);
    case 'kms': {
      const id = typeof p.KeyId === 'string' ? p.KeyId : undefined;
      if (!id) return one(action, []);
      return one(action, [
        id.startsWith('arn:') ? id : arn('kms', id.startsWith('alias/') ? id : `key/${id}`),
      ]);
    }
    default:
      return one(action, []);
  }
}

/**
 * The refusal AWS gives an identity-based policy that does not allow a call: it names the
 * assumed role and session (Lambda's session is the function name), the action and the resource.
 */
export function accessDeniedMessage(
  account: string,
  role: string,
  functionName: string,
  action: string,
  resource: string,
): string {
  const on = resource === '*' ? '' : ` on resource: ${resource}`;
  return `User: arn:aws:sts::${account}:assumed-role/${role}/${functionName} is not authorized to perform: ${action}${on} because no identity-based policy allows the ${action} action`;
}
