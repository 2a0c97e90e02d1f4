/** The clouds Fleetward discovers clusters in. `kubeconfig` covers any cluster reachable by a context. */
export const CLOUDS = ['aws', 'gcp', 'azure', 'kubeconfig'] as const;
export type CloudId = (typeof CLOUDS)[number];

/** Clouds that have a public region table (kubeconfig contexts borrow one of these). */
export type RegionCloud = Exclude<CloudId, 'kubeconfig'>;

/** The jurisdiction id given to a cluster whose region no configured jurisdiction covers. */
export const UNASSIGNED = 'unassigned';

/** How the Kubernetes API endpoint is reachable. */
export type EndpointAccess = 'public' | 'private' | 'public-and-private' | 'unknown';

/** Provider status normalised across clouds; the provider's own word is kept in `providerStatus`. */
export type ClusterStatus =
  | 'running'
  | 'provisioning'
  | 'updating'
  | 'deleting'
  | 'failed'
  | 'degraded'
  | 'unknown';

/**
 * One cluster, normalised across clouds. Every field is always present; `null` means
 * the cloud does not tell (for example audit logging of a kubeconfig context).
 */
export interface Cluster {
  /**
   * Stable id: `<cloud>/<scope>/<region>/<name>` for AWS and GCP (names are unique per region or
   * location), `azure/<subscription>/<resource-group>/<name>` (unique per resource group), and
   * `kubeconfig/<alias>/<region>/<context>`.
   */
  id: string;
  cloud: CloudId;
  /** AWS account id, GCP project id, Azure subscription id, or the kubeconfig alias. */
  scope: string;
  /** Cloud region (GKE zonal clusters keep their zone here; `location` rules are in residency). */
  region: string;
  name: string;
  kubernetesVersion: string | null;
  endpoint: string | null;
  endpointAccess: EndpointAccess;
  /** KMS key ARN / Cloud KMS key name / Key Vault key id used for envelope encryption of secrets. */
  secretsEncryptionKey: string | null;
  /** Whether control-plane audit logs are sent to the cloud's log service. */
  auditLogging: boolean | null;
  tags: Record<string, string>;
  status: ClusterStatus;
  providerStatus: string | null;
  createdAt: string | null;
  /** ISO 3166-1 alpha-2 country of the region, or `null` when the region is not in the table. */
  country: string | null;
  /** Jurisdiction id from the config, or `unassigned`. */
  jurisdiction: string;
  /** Azure resource group; absent on other clouds. */
  resourceGroup?: string;
}

/**
 * A cluster as an adapter reports it, before residency places it. Cloud adapters leave
 * `country` to the region table; the kubeconfig adapter sets it from its context config.
 */
export type DiscoveredCluster = Omit<Cluster, 'jurisdiction' | 'country'> & { country?: string | null };

/** The unit of discovery an adapter queries: an AWS account+region, a GCP project, an Azure subscription, a kubeconfig context. */
export interface DiscoveryScope {
  cloud: CloudId;
  scope: string;
  region?: string;
}

/** A scope that failed or a cluster payload that could not be parsed; the run continues past both. */
export interface DiscoveryFailure extends DiscoveryScope {
  kind: 'scope' | 'unparseable';
  /** Cluster name (or kubeconfig context) when the failure concerns one cluster rather than a whole scope. */
  cluster?: string;
  error: { name: string; message: string; status?: number };
}

/** What one adapter returns for one run. */
export interface DiscoveryOutcome {
  clusters: DiscoveredCluster[];
  failures: DiscoveryFailure[];
  /** Scopes that answered completely; clusters last seen in other scopes are kept, not reported removed. */
  completedScopes: DiscoveryScope[];
}

/** Field-level change of one cluster between two inventories. */
export interface ClusterChange {
  id: string;
  fields: { field: string; before: unknown; after: unknown }[];
}

export interface InventoryDiff {
  added: string[];
  removed: string[];
  changed: ClusterChange[];
}

/** Whether a cloud has a public region table (every cloud but kubeconfig). */
export function isRegionCloud(cloud: CloudId): cloud is RegionCloud {
  return cloud !== 'kubeconfig';
}

/**
 * Something a person has to fix, about one cluster: recorded per job, reported, never
 * thrown. Each job names its own kinds (`velero-missing`, `missing-tag`, `budget-missing`...).
 */
export interface Finding {
  clusterId: string;
  jurisdiction: string;
  kind: string;
  severity: 'low' | 'medium' | 'high' | 'critical';
  message: string;
  at: string;
}
