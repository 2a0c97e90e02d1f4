/**
 * Provider permissions as data. Each cloud adapter declares, next to its calls, the permissions
 * those calls need (`export const PERMISSIONS: readonly PermissionGrant[]` in the adapter file);
 * this module collects them. Everything that grants access is generated from this one table:
 * each function's Lambda role (serverless.yml), the member-account reader role, the GCP custom
 * role, the Azure custom role definition and the Kubernetes RBAC (`fleetward onboard`), and what
 * `fleetward doctor` names when a check fails. The permission meta test maps every call the
 * sandbox flows make to its grant and fails on a call no grant declares.
 *
 * Only deploy-time tools and tests import this module, never a Lambda handler.
 */

/** Whose permission system a grant belongs to. */
export type PermissionProvider = 'aws' | 'gcp' | 'azure' | 'kubernetes';

/**
 * Where a grant is held:
 * - `function`: the Lambda function's own role, in Fleetward's own account (state table, queues,
 *   evidence buckets, secrets, AppConfig, KMS);
 * - `member`: the identity Fleetward uses inside a member account / project / subscription / cluster
 *   (the AWS reader role, the GCP custom role, the Azure custom role, the Kubernetes ClusterRole).
 */
export type PermissionHolder = 'function' | 'member';

/**
 * The capability a grant serves. A function's role is the union of the grants of the
 * capabilities it uses (see shared/deploy/functions.ts).
 */
export type Capability =
  | 'discovery' // list and describe clusters, regions, projects
  | 'project-directory' // GCP project numbers (Cloud Resource Manager)
  | 'tags' // read and write cost tags / labels
  | 'budgets' // read and write budgets
  | 'kube' // reach the Kubernetes API (EKS token, GKE token, AKS credentials)
  | 'velero' // Velero Backup / Restore objects and drill namespaces inside clusters
  | 'audit-read' // read control-plane audit logs
  | 'audit-export' // manage the native audit-log export paths (sinks, subscriptions, diagnostic settings)
  | 'evidence-read' // read and verify archived evidence
  | 'evidence-write' // write-once evidence objects (audit archives, snapshots)
  | 'digest-sign' // sign the hourly audit digests with the jurisdiction's KMS key
  | 'state' // the state table
  | 'queue-send' // hand work items to the jobs' queues
  | 'config' // read fleet.yaml from AppConfig
  | 'secrets' // Slack webhooks and event endpoint tokens from SSM / Secrets Manager
  | 'identity'; // cross-cloud identity (web identity tokens for GCP WIF and Azure federation)

export interface PermissionGrant {
  provider: PermissionProvider;
  holder: PermissionHolder;
  capability: Capability;
  /**
   * The provider's permission name: an IAM action (`eks:ListClusters`), a GCP IAM permission
   * (`container.clusters.list`), an Azure RBAC action
   * (`Microsoft.ContainerService/managedClusters/read`), or a Kubernetes rule
   * (`velero.io/backups:create`, `namespaces:delete`).
   */
  permission: string;
  /**
   * The API calls that need it, named as the sandbox request logs name them: `<service>:<operation>`
   * with the operation as the API names it (AWS: the signing name and operation, `eks:ListClusters`;
   * GCP: the API host's service and method, `container:ListClusters`, `storage:objects.insert`,
   * `logging:entries.list`; Azure: `arm:<operationGroup>.<method>` for Resource Manager,
   * `loganalytics:query`, `blob:<Operation>` for blob data); Kubernetes: `<verb> <group>/<resource>`,
   * `<verb> <resource>` for the core group, `get /version` for a non-resource URL.
   */
  calls: readonly string[];
  /** Why Fleetward needs it, in words an approver reads. */
  why: string;
}
