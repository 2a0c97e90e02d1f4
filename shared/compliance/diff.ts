/**
 * What changed between the previous snapshot of a jurisdiction and this run's cluster
 * results: the `changes` block of a {@link JurisdictionSnapshot}.
 */
import type {
  ClusterResult,
  ControlChange,
  ControlStatus,
  JurisdictionSnapshot,
  SnapshotDiff,
} from './schema.ts';

/** The previous snapshot document of the same jurisdiction, with the SHA-256 of its JSON file. */
export interface PreviousSnapshotDocument {
  snapshot: JurisdictionSnapshot;
  sha256: string;
}

/**
 * What a diff needs of the previous snapshot, kept small enough to store per cluster:
 * when it was generated, the SHA-256 of its JSON file, and cluster id -> control id -> status.
 */
export interface PreviousSnapshot {
  generatedAt: string;
  sha256: string;
  clusters: ReadonlyMap<string, Readonly<Record<string, ControlStatus>>>;
}

/**
 * Compares this run's cluster results with the previous snapshot in its compact form
 * ({@link PreviousSnapshot}; {@link compactSnapshot} reduces a document to it).
 *
 * - `newlyFailing`: a control was not `fail` (or absent) and is `fail` now. A cluster that was
 *   not in the previous snapshot lists its failing controls here, with `before: null`.
 * - `newlyFixed`: a control was `fail` and is `pass` or `not-applicable` now.
 * - `otherChanges`: every other status change of a cluster present in both snapshots
 *   (to or from `unknown`, a control added to or dropped from the catalogue, ...).
 * - `addedClusters` / `removedClusters`: cluster ids only in this run / only in the previous
 *   snapshot. A removed cluster adds nothing to `newlyFixed`: it was not fixed, it is gone.
 *
 * With no previous snapshot (the first one) every list is empty. Output is sorted by
 * cluster id, then control id (code-unit order), so the same input gives the same document.
 */
export function diffSnapshots(
  prior: PreviousSnapshot | null,
  clusters: readonly ClusterResult[],
): SnapshotDiff {
  const diff: SnapshotDiff = {
    previous: prior ? { generatedAt: prior.generatedAt, sha256: prior.sha256 } : null,
    newlyFailing: [],
    newlyFixed: [],
    otherChanges: [],
    addedClusters: [],
    removedClusters: [],
  };
  if (!prior) return diff;

  const before = new Map(
    [...prior.clusters].map(([id, statuses]) => [
      id,
      new Map(Object.entries(statuses) as [string, ControlStatus][]),
    ]),
  );
  const now = new Set<string>();

  for (const cluster of clusters) {
    // A cluster id listed twice is compared once, as its first entry.
    if (now.has(cluster.id)) continue;
    now.add(cluster.id);
    const after = statusesOf(cluster);
    const was = before.get(cluster.id);
    if (!was) {
      diff.addedClusters.push(cluster.id);
      for (const [control, status] of after) {
        if (status === 'fail') diff.newlyFailing.push(change(cluster.id, control, null, status));
      }
      continue;
    }
    for (const control of new Set([...was.keys(), ...after.keys()])) {
      const from = was.get(control) ?? null;
      const to = after.get(control) ?? null;
      if (from === to) continue;
      const item = change(cluster.id, control, from, to);
      if (to === 'fail') diff.newlyFailing.push(item);
      else if (from === 'fail' && (to === 'pass' || to === 'not-applicable')) diff.newlyFixed.push(item);
      else diff.otherChanges.push(item);
    }
  }
  for (const id of before.keys()) {
    if (!now.has(id)) diff.removedClusters.push(id);
  }

  diff.newlyFailing.sort(byClusterThenControl);
  diff.newlyFixed.sort(byClusterThenControl);
  diff.otherChanges.sort(byClusterThenControl);
  diff.addedClusters.sort(compareCodeUnits);
  diff.removedClusters.sort(compareCodeUnits);
  return diff;
}

/** The statuses of a previous snapshot document, in the compact form. */
export function compactSnapshot(previous: PreviousSnapshotDocument): PreviousSnapshot {
  const clusters = new Map<string, Record<string, ControlStatus>>();
  for (const cluster of previous.snapshot.clusters) {
    if (!clusters.has(cluster.id)) clusters.set(cluster.id, Object.fromEntries(statusesOf(cluster)));
  }
  return { generatedAt: previous.snapshot.generatedAt, sha256: previous.sha256, clusters };
}

/** Control id -> status of one cluster (a duplicated control keeps its first result). */
function statusesOf(cluster: ClusterResult): Map<string, ControlStatus> {
  const statuses = new Map<string, ControlStatus>();
  for (const result of cluster.results) {
    if (!statuses.has(result.control)) statuses.set(result.control, result.status);
  }
  return statuses;
}

function change(
  clusterId: string,
  control: string,
  before: ControlStatus | null,
  after: ControlStatus | null,
): ControlChange {
  return { clusterId, control, before, after };
}

/** Plain code-unit order: the same in every locale and runtime. */
function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function byClusterThenControl(a: ControlChange, b: ControlChange): number {
  return compareCodeUnits(a.clusterId, b.clusterId) || compareCodeUnits(a.control, b.control);
}
