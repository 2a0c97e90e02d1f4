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
  /**
   * The work queues it hands items to, by job name (`backup-clusters` is the queue
   * `BackupClustersQueue`, its URL in `FLEETWARD_QUEUE_BACKUP_CLUSTERS`). Required with the
   * `queue-send` capability; its role may send to these queues and no other.
   */
  sendsTo?: readonly string[];
  /**
   * The state namespaces it reads and writes, when its role is held to them (a DynamoDB
   * `dynamodb:LeadingKeys` condition): required for internet-facing functions.
   */
  stateNamespaces?: readonly string[];
  /**
   * The one event source whose secret it reads (`events.<source>.auth` of fleet.yaml): its role
   * may read that secret and no other. Absent: the Slack webhooks and other `fleetward/` secrets.
   */
  eventSecretOf?: 'gcp' | 'azure';
  /**
   * Capabilities it holds only where the regional role deploys it (the home role's run of the
   * same function needs fewer: the fleet summary publishes no evidence).
   */
  regionalCapabilities?: readonly Capability[];
}

/** The capabilities a function holds where `role` deploys it. */
export function capabilitiesIn(spec: FunctionSpec, role: DeploymentRole): Capability[] {
  return role === 'regional'
    ? [...spec.capabilities, ...(spec.regionalCapabilities ?? [])]
    : [...spec.capabilities];
}

/** Every capability a function holds in any role: what its one bundle may call. */
export function allCapabilities(
  spec: Pick<FunctionSpec, 'capabilities' | 'regionalCapabilities'>,
): Capability[] {
  return [...new Set([...spec.capabilities, ...(spec.regionalCapabilities ?? [])])];
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
    sendsTo: ['reconcile-tags'],
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
    sendsTo: ['backup-clusters'],
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
    sendsTo: ['reconcile-backups'],
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
    sendsTo: ['restore-drill'],
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
    sendsTo: ['collect-audit-logs'],
  },
  {
    name: 'collect-audit-logs-worker',
    roles: ['regional'],
    capabilities: ['config', 'state', 'secrets', 'identity', 'audit-read', 'evidence-write'],
  },
  {
    // Reads the archived objects, writes digests and the public key write-once, signs with KMS;
    // identity: Azure evidence containers sign in by federation.
    name: 'audit-digest',
    roles: ['regional'],
    capabilities: [
      'config',
      'state',
      'secrets',
      'identity',
      'evidence-read',
      'evidence-write',
      'digest-sign',
    ],
  },
  {
    name: 'publish-compliance-snapshot',
    roles: ['home', 'regional'],
    // Home evaluates the fleet summary from the state store and publishes nothing.
    capabilities: ['config', 'state', 'secrets'],
    // Regional publishes its jurisdiction's snapshot files write-once; identity: it writes and
    // verifies Azure evidence containers, signing in by federation.
    regionalCapabilities: ['identity', 'evidence-read', 'evidence-write'],
  },
  {
    // Records EKS events and enqueues them like the HTTP endpoints; the worker calls the clouds.
    name: 'on-cluster-event',
    roles: ['home'],
    capabilities: ['config', 'state', 'secrets', 'queue-send'],
    sendsTo: ['rediscover-clusters'],
  },
  {
    name: 'rediscover-clusters-worker',
    roles: ['home'],
    capabilities: ['config', 'state', 'secrets', 'identity', 'discovery', 'project-directory'],
  },
  {
    name: 'gcp-cluster-events',
    roles: ['home'],
    // Verifies, records and enqueues: its one secret, its state items, one queue; no cloud access.
    capabilities: ['config', 'state', 'secrets', 'queue-send'],
    sendsTo: ['rediscover-clusters'],
    stateNamespaces: ['cluster-events'],
    eventSecretOf: 'gcp',
    internetFacing: true,
  },
  {
    name: 'azure-cluster-events',
    roles: ['home'],
    // Verifies, records and enqueues: its one secret, its state items, one queue; no cloud access.
    capabilities: ['config', 'state', 'secrets', 'queue-send'],
    sendsTo: ['rediscover-clusters'],
    stateNamespaces: ['cluster-events'],
    eventSecretOf: 'azure',
    internetFacing: true,
  },
];
