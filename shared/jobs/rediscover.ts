/**
 * Rediscovery of one cluster, for a cloud event that says "cluster X changed": ask its
 * cloud's adapter for just that cluster, place it as the full discovery does, diff it
 * against its saved inventory record and save (or delete) that one record. Nothing else
 * is written: no run ledger entry, no other cluster's record.
 *
 * A failing cloud call rejects and leaves the inventory as it was (a failure is not a
 * deletion); only the cloud's own "does not exist" removes a record.
 */
import type { Cluster, InventoryDiff, RegionCloud } from '../model.ts';
import { ConfigError, FleetwardError } from '../runtime/errors.ts';
import { INVENTORY } from '../state/records.ts';
import { type DiscoverDeps, diffInventory, place } from './discover.ts';

/** One cluster by its coordinates, as a cloud event names it. */
export interface ClusterRef {
  cloud: RegionCloud;
  /** AWS account id, GCP project id or Azure subscription id. */
  scope: string;
  /** AWS region or GKE location; may be `''` for Azure (Event Grid does not say the location). */
  region: string;
  name: string;
  /** Azure resource group (required for Azure). */
  resourceGroup?: string;
}

/**
 * What happened to the cluster: `added` (new to the inventory), `removed` (the cloud says it
 * is gone and it was in the inventory), `changed` / `unchanged` (compared with its record),
 * `absent` (neither in the cloud nor in the inventory).
 */
export type RediscoverOutcome = 'added' | 'removed' | 'changed' | 'unchanged' | 'absent';

export interface RediscoverResult {
  clusterId: string;
  outcome: RediscoverOutcome;
  /** The cluster as the cloud describes it now, placed in its jurisdiction; `null` when it does not exist. */
  cluster: Cluster | null;
  /** The inventory diff restricted to this cluster, computed as the full discovery computes it. */
  diff: InventoryDiff;
}

/** A cluster reference that cannot name a cluster (empty name, Azure without resource group...). */
export class InvalidClusterRefError extends FleetwardError {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidClusterRefError';
  }
}

/**
 * The inventory id of a cluster, by the rules the adapters' list paths follow (see
 * `Cluster.id`): `<cloud>/<scope>/<region>/<name>` for AWS and GCP, and
 * `azure/<subscription>/<resource-group, lower case>/<name>` for Azure, whose id has no region.
 */
export function clusterIdOf(ref: ClusterRef): string {
  if (ref.cloud === 'azure')
    return `azure/${ref.scope}/${(ref.resourceGroup ?? '').toLowerCase()}/${ref.name}`;
  return `${ref.cloud}/${ref.scope}/${ref.region}/${ref.name}`;
}

function checkRef(ref: ClusterRef): void {
  if (!ref.scope || !ref.name)
    throw new InvalidClusterRefError('a cluster reference needs a scope and a name');
  if (ref.cloud !== 'azure' && !ref.region) {
    throw new InvalidClusterRefError(`a ${ref.cloud} cluster reference needs a region`);
  }
  if (ref.cloud === 'azure' && !ref.resourceGroup) {
    throw new InvalidClusterRefError('an azure cluster reference needs a resource group');
  }
}

/**
 * Rediscovers one cluster and updates its inventory record. Rejects, writing nothing, when
 * the ref is incomplete ({@link InvalidClusterRefError}), when the cloud, its scope or (AWS)
 * region is not configured (`ConfigError`, before any cloud call), and when the cloud call
 * fails (`CloudApiError`) or its answer cannot be read (`UnparseableClusterError`).
 */
export async function rediscoverCluster(
  deps: DiscoverDeps,
  ref: ClusterRef,
  options: { signal?: AbortSignal } = {},
): Promise<RediscoverResult> {
  checkRef(ref);
  const adapter = deps.discoveries.find((d) => d.cloud === ref.cloud);
  if (!adapter) {
    throw new ConfigError([{ path: `clouds.${ref.cloud}`, message: `${ref.cloud} is not configured` }]);
  }
  if (!adapter.describe) {
    throw new InvalidClusterRefError(`the ${ref.cloud} adapter cannot describe a single cluster`);
  }
  const { cloud: _cloud, ...coordinates } = ref;
  const found = await adapter.describe(coordinates, options.signal ? { signal: options.signal } : {});
  const cluster = found ? place(found, deps.residency) : null;
  const clusterId = cluster?.id ?? clusterIdOf(ref);
  if (cluster && cluster.id !== clusterIdOf(ref)) {
    // The adapter's id wins (it is the one the full run stores); a mismatch means the event
    // spelled a coordinate differently from the cloud (case, zone versus region).
    deps.logger.warn('Cluster id differs from the event', { expected: clusterIdOf(ref), clusterId });
  }

  const previous = await deps.store.get<Cluster>(INVENTORY, clusterId);
  const diff = diffInventory(previous ? [previous] : [], cluster ? [cluster] : []);
  let outcome: RediscoverOutcome;
  if (cluster && !previous) outcome = 'added';
  else if (cluster) outcome = diff.changed.length > 0 ? 'changed' : 'unchanged';
  else outcome = previous ? 'removed' : 'absent';

  if (cluster && (outcome === 'added' || outcome === 'changed')) {
    await deps.store.putMany(INVENTORY, [{ key: clusterId, value: cluster }]);
  } else if (outcome === 'removed') {
    await deps.store.deleteMany(INVENTORY, [clusterId]);
  }
  deps.logger.info('Cluster rediscovered', { clusterId, outcome });
  if (outcome !== 'unchanged' && outcome !== 'absent') deps.logger.info('Inventory changed', { diff });
  return { clusterId, outcome, cluster, diff };
}
