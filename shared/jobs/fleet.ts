/**
 * What the cluster jobs (backups, drills) share: the deps they see, the inventory they
 * act on, findings they record, and a bounded fan-out over clusters.
 */
import { randomUUID } from 'node:crypto';
import type { FleetConfig } from '../config/schema.ts';
import type { Cluster, Finding } from '../model.ts';
import type { BucketLocator, Clock, KubeAccess, Log, StateStore } from '../ports.ts';
import type { Residency } from '../residency/index.ts';
import { createLimiter } from '../runtime/concurrency.ts';
import { FleetwardError } from '../runtime/errors.ts';
import { distance } from '../runtime/suggest.ts';
import { findingsKey, INVENTORY, NS } from '../state/records.ts';

export interface ClusterJobDeps {
  config: FleetConfig;
  store: StateStore;
  kube: KubeAccess;
  buckets: BucketLocator;
  residency: Residency;
  logger: Log;
  clock: Clock;
}

/** A `--cluster` that names no cluster of the inventory, or more than one; `candidates` are the ids it could mean. */
export class UnknownClusterError extends FleetwardError {
  readonly candidates: readonly string[];
  constructor(id: string, candidates: readonly string[] = [], ambiguous = false) {
    super(
      ambiguous
        ? `cluster "${id}" is ambiguous: give one of its ids`
        : `no cluster "${id}" in the inventory (run discover first, or give an id or name 'discover' lists)`,
    );
    this.name = 'UnknownClusterError';
    this.candidates = candidates;
  }
}

/**
 * The one cluster `ref` names: its id, or an unambiguous short name (the cluster's `name`).
 * Throws `UnknownClusterError` with the ids it could mean (same name, or a near id or name).
 */
export function resolveCluster(clusters: readonly Cluster[], ref: string): Cluster {
  const exact = clusters.find((c) => c.id === ref);
  if (exact) return exact;
  const named = clusters.filter((c) => c.name === ref);
  if (named.length === 1) return named[0] as Cluster;
  if (named.length > 1) throw new UnknownClusterError(ref, named.map((c) => c.id).sort(), true);
  const near = clusters
    .map((c) => ({ id: c.id, d: Math.min(distance(ref, c.id), distance(ref, c.name)) }))
    .filter((x) => x.d <= Math.max(2, Math.floor(ref.length / 4)))
    .sort((x, y) => x.d - y.d || x.id.localeCompare(y.id))
    .slice(0, 5)
    .map((x) => x.id);
  throw new UnknownClusterError(ref, near);
}

/** Which clusters a job acts on: one cluster (which must exist), one jurisdiction (a regional deployment), or all. */
export interface ClusterScope {
  clusterId?: string | undefined;
  jurisdiction?: string | undefined;
}

/** The saved inventory, narrowed to a scope. */
export async function inventory(store: StateStore, scope: ClusterScope | string = {}): Promise<Cluster[]> {
  const { clusterId, jurisdiction } =
    typeof scope === 'string' ? { clusterId: scope, jurisdiction: undefined } : scope;
  if (clusterId) {
    const one = await store.get<Cluster>(INVENTORY, clusterId);
    if (one) return [one];
    // Not an id: a short name, or a typo to suggest near matches for.
    return [
      resolveCluster(
        (await store.list<Cluster>(INVENTORY)).map((i) => i.value),
        clusterId,
      ),
    ];
  }
  const all = (await store.list<Cluster>(INVENTORY)).map((i) => i.value);
  return jurisdiction ? all.filter((c) => c.jurisdiction === jurisdiction) : all;
}

/** A run id: sortable by time, unique across concurrent invocations. */
export function runId(now: Date): string {
  return `${now
    .toISOString()
    .replace(/[-:.TZ]/g, '')
    .slice(0, 14)}-${randomUUID().slice(0, 8)}`;
}

/** Replaces the open findings of `job` for a cluster (an empty list closes them). */
/** The `{ signal }` options of a call, empty without a signal (exact optional properties). */
export type Sig = { signal?: AbortSignal };
export const sig = (signal: AbortSignal | undefined): Sig => (signal ? { signal } : {});

/** Builds the findings of one cluster at one instant: `finding(kind, severity, message)`. */
export function findingsOf(
  cluster: Pick<Cluster, 'id' | 'jurisdiction'>,
  at: Date | string,
): (kind: string, severity: Finding['severity'], message: string) => Finding {
  const when = typeof at === 'string' ? at : at.toISOString();
  return (kind, severity, message) => ({
    clusterId: cluster.id,
    jurisdiction: cluster.jurisdiction,
    kind,
    severity,
    message,
    at: when,
  });
}

/**
 * Runs `fn` and answers its value or its error as data, so a per-cluster step can turn a
 * failure into a finding; an abort of `signal` still rejects.
 */
export async function settled<T>(
  fn: () => Promise<T>,
  signal: AbortSignal | undefined,
): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await fn() };
  } catch (error) {
    if (signal?.aborted) throw error;
    return { ok: false, error };
  }
}

export async function recordFindings(
  store: StateStore,
  job: string,
  clusterId: string,
  findings: Finding[],
): Promise<void> {
  const key = findingsKey(job, clusterId);
  if (findings.length === 0) await store.deleteMany(NS.findings, [key]);
  else await store.putMany(NS.findings, [{ key, value: findings }]);
}

/** Runs `fn` for every cluster with bounded concurrency; one cluster's failure never stops the others. */
export async function forEachCluster<T>(
  clusters: readonly Cluster[],
  concurrency: number,
  fn: (cluster: Cluster) => Promise<T>,
): Promise<T[]> {
  const limit = createLimiter(concurrency);
  return Promise.all(clusters.map((c) => limit(() => fn(c))));
}
