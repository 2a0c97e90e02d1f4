/**
 * TEMPORARY stand-in for shared/clouds/grants.ts (branch `perms`) until that branch is merged;
 * removed then. Same exports, a few AWS grants only.
 */
import type {
  Capability,
  PermissionGrant,
  PermissionHolder,
  PermissionProvider,
} from '../clouds/permissions.ts';

const g = (capability: Capability, holder: PermissionHolder, permission: string): PermissionGrant => ({
  provider: 'aws',
  holder,
  capability,
  permission,
  calls: [],
  why: 'stub',
});

const GRANTS: readonly PermissionGrant[] = [
  ...['GetItem', 'PutItem', 'DeleteItem', 'Query', 'BatchWriteItem'].map((a) =>
    g('state', 'function', `dynamodb:${a}`),
  ),
  g('queue-send', 'function', 'sqs:SendMessage'),
  g('secrets', 'function', 'ssm:GetParameter'),
  g('secrets', 'function', 'secretsmanager:GetSecretValue'),
  g('config', 'function', 'appconfig:StartConfigurationSession'),
  g('config', 'function', 'appconfig:GetLatestConfiguration'),
  g('identity', 'function', 'sts:GetWebIdentityToken'),
  ...['PutObject', 'GetBucketLocation', 'GetBucketObjectLockConfiguration', 'GetBucketVersioning'].map((a) =>
    g('evidence-write', 'function', `s3:${a}`),
  ),
  ...['GetObject', 'GetObjectVersion', 'ListBucketVersions'].map((a) =>
    g('evidence-read', 'function', `s3:${a}`),
  ),
  g('discovery', 'member', 'eks:ListClusters'),
  g('tags', 'member', 'eks:TagResource'),
  g('budgets', 'member', 'budgets:ViewBudget'),
  g('kube', 'member', 'eks:DescribeCluster'),
  g('audit-read', 'member', 'logs:FilterLogEvents'),
];

export function allGrants(): readonly PermissionGrant[] {
  return GRANTS;
}

export function grantsFor(
  capabilities: readonly Capability[],
  provider?: PermissionProvider,
  holder?: PermissionHolder,
): PermissionGrant[] {
  return GRANTS.filter(
    (x) =>
      capabilities.includes(x.capability) &&
      (provider === undefined || x.provider === provider) &&
      (holder === undefined || x.holder === holder),
  );
}
