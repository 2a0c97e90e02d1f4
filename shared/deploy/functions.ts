/**
 * The deployed functions: which deployment role carries each one and which capabilities
 * (shared/clouds/permissions.ts) it uses. Each function's IAM role is generated from this
 * table and the adapters' permission grants; nothing else lists a function's rights.
 *
 * Only deploy-time tools and tests import this module, never a Lambda handler.
 */
import type { Capability } from '../clouds/permissions.ts';

/** `home`: one region, metadata only. `regional`: once per jurisdiction, in its region. */
export type DeploymentRole = 'home' | 'regional';

export interface FunctionSpec {
  /** The kebab-case name: folder under functions/, serverless.yml key, POWERTOOLS_SERVICE_NAME. */
  name: string;
  /** The deployment roles that deploy it. */
  roles: readonly DeploymentRole[];
  /** What it does with the clouds, Fleetward's own account included. */
  capabilities: readonly Capability[];
  /** Reachable from the internet (an HTTP API route): never `sts:AssumeRole`, never evidence writes. */
  internetFacing?: boolean;
}

export const FUNCTIONS: readonly FunctionSpec[] = [
  {
    name: 'discover-clusters',
    roles: ['home', 'regional'],
    capabilities: ['config', 'state', 'secrets', 'identity', 'discovery', 'project-directory'],
  },
  {
    name: 'reconcile-tags',
    roles: ['home'],
    capabilities: ['config', 'state', 'secrets', 'identity', 'tags', 'queue-send'],
  },
  {
    name: 'reconcile-tags-worker',
    roles: ['home'],
    capabilities: ['config', 'state', 'secrets', 'identity', 'tags'],
  },
  {
    name: 'reconcile-budgets',
    roles: ['home'],
    capabilities: ['config', 'state', 'secrets', 'identity', 'budgets'],
  },
  {
    name: 'backup-clusters',
    roles: ['regional'],
    capabilities: ['config', 'state', 'secrets', 'identity', 'kube', 'velero', 'queue-send'],
  },
  {
    name: 'backup-clusters-worker',
    roles: ['regional'],
    capabilities: ['config', 'state', 'secrets', 'identity', 'kube', 'velero'],
  },
  {
    name: 'reconcile-backups',
    roles: ['regional'],
    capabilities: ['config', 'state', 'secrets', 'identity', 'kube', 'velero', 'queue-send'],
  },
  {
    name: 'reconcile-backups-worker',
    roles: ['regional'],
    capabilities: ['config', 'state', 'secrets', 'identity', 'kube', 'velero'],
  },
  {
    name: 'restore-drill',
    roles: ['regional'],
    capabilities: ['config', 'state', 'secrets', 'identity', 'kube', 'velero', 'queue-send'],
  },
  {
    name: 'restore-drill-worker',
    roles: ['regional'],
    capabilities: ['config', 'state', 'secrets', 'identity', 'kube', 'velero'],
  },
  {
    name: 'collect-audit-logs',
    roles: ['regional'],
    capabilities: ['config', 'state', 'secrets', 'identity', 'audit-read', 'evidence-write', 'queue-send'],
  },
  {
    name: 'collect-audit-logs-worker',
    roles: ['regional'],
    capabilities: ['config', 'state', 'secrets', 'identity', 'audit-read', 'evidence-write'],
  },
  {
    name: 'publish-compliance-snapshot',
    roles: ['home', 'regional'],
    capabilities: ['config', 'state', 'secrets', 'evidence-read', 'evidence-write'],
  },
  {
    // Records EKS events and enqueues them like the HTTP endpoints; the worker calls the clouds.
    name: 'on-cluster-event',
    roles: ['home'],
    capabilities: ['config', 'state', 'secrets', 'queue-send'],
  },
  {
    name: 'rediscover-clusters-worker',
    roles: ['home'],
    capabilities: ['config', 'state', 'secrets', 'identity', 'discovery', 'project-directory'],
  },
  {
    name: 'gcp-cluster-events',
    roles: ['home'],
    capabilities: ['config', 'state', 'secrets', 'queue-send'],
    internetFacing: true,
  },
  {
    name: 'azure-cluster-events',
    roles: ['home'],
    capabilities: ['config', 'state', 'secrets', 'queue-send'],
    internetFacing: true,
  },
];
