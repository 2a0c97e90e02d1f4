/**
 * The discovery job: ask every cloud adapter for its clusters, place each cluster in
 * a jurisdiction, diff against the stored inventory and save the new one.
 *
 * Nothing is lost on failure: a cluster that was not seen because its scope (account,
 * region, project, subscription, context) failed is kept in the inventory as it was,
 * and is neither reported removed nor overwritten.
 */
import {
  type CloudId,
  type Cluster,
  type ClusterChange,
  type DiscoveredCluster,
  type DiscoveryFailure,
  type DiscoveryOutcome,
  type DiscoveryScope,
  type InventoryDiff,
  UNASSIGNED,
} from '../model.ts';
import type { Clock, ClusterDiscovery, Log, StateStore } from '../ports.ts';
import { type Residency, type ResidencyFinding, regionCountry } from '../residency/index.ts';
import { errorInfo } from '../runtime/errors.ts';
import { INVENTORY } from '../state/records.ts';
import type { OnProgress } from './progress.ts';

/** State-store namespace of the run ledger. */
export const RUNS = 'runs';

export interface DiscoverDeps {
  discoveries: readonly ClusterDiscovery[];
  store: StateStore;
  residency: Residency;
  logger: Log;
  clock: Clock;
}

export interface DiscoverResult {
  clusters: Cluster[];
  diff: InventoryDiff;
  failures: DiscoveryFailure[];
  /** Ids kept from the previous inventory because their scope failed this run. */
  stale: string[];
  /** Jurisdictions with nowhere to keep their data (no in-country region, no live exception) or expired exceptions. */
  residencyFindings: ResidencyFinding[];
  startedAt: string;
  durationMs: number;
}

/** Stable, locale-independent ordering of cluster ids. */
const compareIds = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Places a discovered cluster: its region's country, then the jurisdiction covering that country. */
export function place(cluster: DiscoveredCluster, residency: Residency): Cluster {
  const country =
    cluster.country !== undefined
      ? cluster.country
      : cluster.cloud === 'kubeconfig'
        ? null
        : (regionCountry(cluster.cloud, cluster.region) ?? null);
  return {
    ...cluster,
    country,
    jurisdiction: country ? residency.jurisdictionForCountry(country) : UNASSIGNED,
  };
}

/** Whether two locations overlap: equal, or one is a zone of the other (`asia-south1-c` in `asia-south1`). */
function overlaps(a: string, b: string): boolean {
  return a === b || a.startsWith(`${b}-`) || b.startsWith(`${a}-`);
}

/**
 * Whether a failure means `cluster` may not have been observed this run. An unparseable
 * payload hides its whole scope and region too: its name may be missing or may not match
 * the stored record, and guessing wrong would report a live cluster removed.
 */
function hidByFailure(cluster: Cluster, failure: DiscoveryFailure): boolean {
  if (failure.cloud !== cluster.cloud) return false;
  if (failure.scope === '*') return true;
  if (failure.scope !== cluster.scope) return false;
  return failure.region === undefined || overlaps(failure.region, cluster.region);
}

function flatten(value: unknown, prefix: string, out: Map<string, unknown>): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.set(prefix, value);
  }
}

/** Field-level changes between two records of the same cluster (`tags.owner`, `kubernetesVersion`, ...). */
export function diffCluster(before: Cluster, after: Cluster): ClusterChange['fields'] {
  const a = new Map<string, unknown>();
  const b = new Map<string, unknown>();
  flatten(before, '', a);
  flatten(after, '', b);
  const fields: ClusterChange['fields'] = [];
  for (const field of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(field);
    const y = b.get(field);
    if (JSON.stringify(x) !== JSON.stringify(y)) fields.push({ field, before: x ?? null, after: y ?? null });
  }
  return fields;
}

/** The inventory diff between the previous and the current cluster lists. */
export function diffInventory(previous: readonly Cluster[], current: readonly Cluster[]): InventoryDiff {
  const before = new Map(previous.map((c) => [c.id, c]));
  const after = new Map(current.map((c) => [c.id, c]));
  const diff: InventoryDiff = { added: [], removed: [], changed: [] };
  for (const [id, cluster] of after) {
    const old = before.get(id);
    if (!old) diff.added.push(id);
    else {
      const fields = diffCluster(old, cluster);
      if (fields.length > 0) diff.changed.push({ id, fields });
    }
  }
  for (const id of before.keys()) if (!after.has(id)) diff.removed.push(id);
  diff.added.sort();
  diff.removed.sort();
  diff.changed.sort((x, y) => compareIds(x.id, y.id));
  return diff;
}

/** What discovery reports as each cloud finishes (see `run`'s `onProgress`). */
export interface CloudDiscovered {
  cloud: CloudId;
  clusters: number;
  failures: number;
}

/** Runs every adapter; an adapter that throws (it should not) becomes one failure for its whole cloud. */
async function discoverAll(
  deps: DiscoverDeps,
  signal?: AbortSignal,
  onProgress?: OnProgress<CloudDiscovered>,
) {
  let finished = 0;
  const report = (o: DiscoveryOutcome, cloud: CloudId) =>
    onProgress?.(++finished, deps.discoveries.length, {
      cloud,
      clusters: o.clusters.length,
      failures: o.failures.length,
    });
  const outcomes = await Promise.all(
    deps.discoveries.map(async (d) => {
      try {
        const outcome = await d.discover(signal ? { signal } : {});
        report(outcome, d.cloud);
        return outcome;
      } catch (error) {
        if (signal?.aborted) throw error;
        const failure: DiscoveryFailure = {
          cloud: d.cloud,
          scope: '*',
          kind: 'scope',
          error: errorInfo(error),
        };
        const outcome = { clusters: [], failures: [failure], completedScopes: [] as DiscoveryScope[] };
        report(outcome, d.cloud);
        return outcome;
      }
    }),
  );
  return {
    clusters: outcomes.flatMap((o) => o.clusters),
    failures: outcomes.flatMap((o) => o.failures),
  };
}

/**
 * Discovers the fleet, saves the inventory and returns clusters, diff and failures. With
 * `jurisdiction` (a regional deployment) only that jurisdiction's clusters are kept: its state
 * store, in its own region, holds no other jurisdiction's inventory.
 */
export async function run(
  deps: DiscoverDeps,
  options: {
    signal?: AbortSignal;
    jurisdiction?: string | undefined;
    /** Called as each cloud's adapter finishes (every scope of that cloud answered or failed). */
    onProgress?: OnProgress<CloudDiscovered>;
  } = {},
): Promise<DiscoverResult> {
  const started = deps.clock.now();
  const [found, previousItems] = await Promise.all([
    discoverAll(deps, options.signal, options.onProgress),
    deps.store.list<Cluster>(INVENTORY),
  ]);
  const previous = previousItems.map((i) => i.value);
  const byId = new Map<string, Cluster>();
  for (const d of found.clusters) {
    const cluster = place(d, deps.residency);
    if (options.jurisdiction === undefined || cluster.jurisdiction === options.jurisdiction)
      byId.set(d.id, cluster);
  }

  // A cluster we could not observe keeps its last known record (a failing scope is not a deletion).
  const stale: string[] = [];
  for (const old of previous) {
    if (byId.has(old.id)) continue;
    if (found.failures.some((f) => hidByFailure(old, f))) {
      byId.set(old.id, old);
      stale.push(old.id);
    }
  }
  const clusters = [...byId.values()].sort((x, y) => compareIds(x.id, y.id));
  const diff = diffInventory(previous, clusters);

  const changedIds = new Set([...diff.added, ...diff.changed.map((c) => c.id)]);
  await deps.store.putMany(
    INVENTORY,
    clusters.filter((c) => changedIds.has(c.id)).map((c) => ({ key: c.id, value: c })),
  );
  await deps.store.deleteMany(INVENTORY, diff.removed);

  const durationMs = deps.clock.now().getTime() - started.getTime();
  const startedAt = started.toISOString();
  await deps.store.putMany(RUNS, [
    {
      key: `discover/${startedAt}`,
      value: {
        job: 'discover',
        startedAt,
        durationMs,
        clusters: clusters.length,
        added: diff.added.length,
        removed: diff.removed.length,
        changed: diff.changed.length,
        failures: found.failures,
      },
    },
  ]);
  deps.logger.info('Discovery finished', {
    clusters: clusters.length,
    added: diff.added.length,
    removed: diff.removed.length,
    changed: diff.changed.length,
    failures: found.failures.length,
    stale: stale.length,
    durationMs,
  });
  if (diff.added.length + diff.removed.length + diff.changed.length > 0)
    deps.logger.info('Inventory changed', { diff });
  for (const failure of found.failures) deps.logger.warn('Discovery scope failed', { failure });
  const residencyFindings = deps.residency.findings();
  for (const finding of residencyFindings) deps.logger.warn('Residency finding', { finding });
  return { clusters, diff, failures: found.failures, stale, residencyFindings, startedAt, durationMs };
}
