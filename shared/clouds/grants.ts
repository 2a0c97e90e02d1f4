/**
 * The provider-permission table: every adapter's `PERMISSIONS`, collected, and the look-ups
 * the role generators, `fleetward doctor` and the permission meta test use.
 *
 * Imports every adapter statically: only deploy-time tools, the CLI and tests import this
 * module, never a Lambda handler (it would load every cloud SDK).
 */

import { PERMISSIONS as CONFIG } from '../config/appconfig.ts';
import { PERMISSIONS as KUBE_API } from '../kube/api.ts';
import { PERMISSIONS as SECRETS } from '../runtime/secrets.ts';
import { PERMISSIONS as STATE } from '../state/dynamodb.ts';
import { PERMISSIONS as VELERO } from '../velero/resources.ts';
import { PERMISSIONS as AWS_AUDIT } from './aws/audit.ts';
import { PERMISSIONS as AWS_AUDIT_EXPORT } from './aws/audit-export.ts';
import { PERMISSIONS as AWS_BUCKETS } from './aws/buckets.ts';
import { PERMISSIONS as AWS_BUDGETS } from './aws/budgets.ts';
import { PERMISSIONS as AWS_DISCOVERY } from './aws/discovery.ts';
import { PERMISSIONS as AWS_EVIDENCE } from './aws/evidence.ts';
import { PERMISSIONS as AWS_IDENTITY } from './aws/identity.ts';
import { PERMISSIONS as AWS_KMS } from './aws/kms.ts';
import { PERMISSIONS as AWS_KUBE } from './aws/kube.ts';
import { PERMISSIONS as AWS_QUEUE } from './aws/queue.ts';
import { PERMISSIONS as AWS_SESSIONS } from './aws/sessions.ts';
import { PERMISSIONS as AWS_TAGS } from './aws/tags.ts';
import { PERMISSIONS as AZURE_AUDIT } from './azure/audit.ts';
import { PERMISSIONS as AZURE_AUDIT_EXPORT } from './azure/audit-export.ts';
import { PERMISSIONS as AZURE_BUCKETS } from './azure/buckets.ts';
import { PERMISSIONS as AZURE_BUDGETS } from './azure/budgets.ts';
import { PERMISSIONS as AZURE_DISCOVERY } from './azure/discovery.ts';
import { PERMISSIONS as AZURE_EVIDENCE } from './azure/evidence.ts';
import { PERMISSIONS as AZURE_KUBE } from './azure/kube.ts';
import { PERMISSIONS as AZURE_TAGS } from './azure/tags.ts';
import { PERMISSIONS as GCP_AUDIT } from './gcp/audit.ts';
import { PERMISSIONS as GCP_AUDIT_EXPORT } from './gcp/audit-export.ts';
import { PERMISSIONS as GCP_BUCKETS } from './gcp/buckets.ts';
import { PERMISSIONS as GCP_BUDGETS } from './gcp/budgets.ts';
import { PERMISSIONS as GCP_DISCOVERY } from './gcp/discovery.ts';
import { PERMISSIONS as GCP_FEDERATION } from './gcp/federation.ts';
import { PERMISSIONS as GCP_KUBE } from './gcp/kube.ts';
import { PERMISSIONS as GCP_PROJECTS } from './gcp/projects.ts';
import { PERMISSIONS as GCP_TAGS } from './gcp/tags.ts';
import { PERMISSIONS as KUBECONFIG_DISCOVERY } from './kubeconfig/discovery.ts';
import type { Capability, PermissionGrant, PermissionHolder, PermissionProvider } from './permissions.ts';

const ALL: readonly PermissionGrant[] = [
  ...AWS_SESSIONS,
  ...AWS_IDENTITY,
  ...AWS_DISCOVERY,
  ...AWS_TAGS,
  ...AWS_BUDGETS,
  ...AWS_AUDIT,
  ...AWS_AUDIT_EXPORT,
  ...AWS_EVIDENCE,
  ...AWS_BUCKETS,
  ...AWS_KMS,
  ...AWS_QUEUE,
  ...AWS_KUBE,
  ...GCP_DISCOVERY,
  ...GCP_FEDERATION,
  ...GCP_PROJECTS,
  ...GCP_TAGS,
  ...GCP_BUDGETS,
  ...GCP_AUDIT,
  ...GCP_AUDIT_EXPORT,
  ...AZURE_AUDIT_EXPORT,
  ...GCP_BUCKETS,
  ...GCP_KUBE,
  ...AZURE_DISCOVERY,
  ...AZURE_TAGS,
  ...AZURE_BUDGETS,
  ...AZURE_AUDIT,
  ...AZURE_EVIDENCE,
  ...AZURE_BUCKETS,
  ...AZURE_KUBE,
  ...KUBECONFIG_DISCOVERY,
  ...KUBE_API,
  ...VELERO,
  ...STATE,
  ...SECRETS,
  ...CONFIG,
];

/** Every declared grant: each adapter's `PERMISSIONS`, in a stable order. */
export function allGrants(): readonly PermissionGrant[] {
  return ALL;
}

/**
 * The grants that serve any of `capabilities`, optionally of one provider and one holder
 * (a function's Lambda role: `grantsFor(spec.capabilities, 'aws', 'function')`).
 */
export function grantsFor(
  capabilities: readonly Capability[],
  provider?: PermissionProvider,
  holder?: PermissionHolder,
  grants: readonly PermissionGrant[] = ALL,
): PermissionGrant[] {
  const wanted = new Set(capabilities);
  return grants.filter(
    (g) =>
      wanted.has(g.capability) &&
      (provider === undefined || g.provider === provider) &&
      (holder === undefined || g.holder === holder),
  );
}

/** Every grant whose `calls` name `call` (one call may need several permissions, or serve several capabilities). */
export function grantsOfCall(
  provider: PermissionProvider,
  call: string,
  grants: readonly PermissionGrant[] = ALL,
): PermissionGrant[] {
  return grants.filter((g) => g.provider === provider && g.calls.includes(call));
}

/** The first grant whose `calls` name `call`, or `undefined` when no grant declares it. */
export function grantOfCall(
  provider: PermissionProvider,
  call: string,
  grants: readonly PermissionGrant[] = ALL,
): PermissionGrant | undefined {
  return grants.find((g) => g.provider === provider && g.calls.includes(call));
}

/** The distinct permission names of some grants, sorted (what a role or a message lists). */
export function permissionNames(grants: readonly PermissionGrant[]): string[] {
  return [...new Set(grants.map((g) => g.permission))].sort();
}
