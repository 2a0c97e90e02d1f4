/**
 * The backup job: for every cluster, preflight its Velero, then create one `velero.io/v1
 * Backup` for the current schedule window of its jurisdiction. The Backup name derives
 * from the window, so a retried or duplicated invocation finds its own Backup (409 is
 * success) and a window never gets two.
 */
import type { Cluster } from '../model.ts';
import { type ClusterWork, type Dispatcher, inProcess } from '../runtime/dispatch.ts';
import { errorInfo } from '../runtime/errors.ts';
import { type BackupRecord, INVENTORY, NS } from '../state/records.ts';
import { type BucketCache, type CheckedLocation, type Finding, preflight } from '../velero/preflight.ts';
import {
  backupName,
  buildBackup,
  isDrillScratch,
  LABELS,
  rateMs,
  SYSTEM_NAMESPACES,
  type VeleroBackup,
  windowStart,
} from '../velero/resources.ts';
import { recordedScratch } from './drill.ts';
import { type ClusterJobDeps, type ClusterScope, inventory, recordFindings, runId } from './fleet.ts';
import { type OnProgress, reporting } from './progress.ts';
import { mergeBackup } from './reconcile-backups.ts';

export type BackupOutcome =
  | { clusterId: string; status: 'created' | 'exists' | 'planned'; backup: string; location: CheckedLocation }
  | { clusterId: string; status: 'skipped'; findings: Finding[] }
  | { clusterId: string; status: 'failed'; error: { name: string; message: string } };

export interface BackupRunResult {
  runId: string;
  dryRun: boolean;
  outcomes: BackupOutcome[];
}

/** The window a jurisdiction's schedule puts `now` in. */
export function backupWindow(deps: ClusterJobDeps, cluster: Cluster): Date {
  const policy = deps.config.jurisdictions[cluster.jurisdiction]?.backup;
  return windowStart(deps.clock.now(), rateMs(policy?.schedule ?? 'rate(1 day)'));
}

/** Namespaces a Backup includes: the policy's list, with `*` resolved to the cluster's non-system namespaces. */
async function resolveNamespaces(
  deps: ClusterJobDeps,
  cluster: Cluster,
  api: Awaited<ReturnType<ClusterJobDeps['kube']['connect']>>,
  wanted: string[],
): Promise<string[]> {
  if (!wanted.includes('*')) return [...wanted].sort();
  const all = await api.list('v1', 'Namespace');
  // Drill scratch space is skipped by the rule the sweeper deletes by: only namespaces a drill created.
  const recorded = await recordedScratch(deps.store, cluster.id);
  return all
    .filter(
      (ns) =>
        !SYSTEM_NAMESPACES.includes(ns.metadata.name ?? '') &&
        !isDrillScratch(ns, deps.config.velero.scratchPrefix, (id) => recorded.get(id)),
    )
    .map((ns) => ns.metadata.name!)
    .sort();
}

async function backupCluster(
  deps: ClusterJobDeps,
  cluster: Cluster,
  run: string,
  options: { dryRun: boolean; cache: BucketCache; signal?: AbortSignal; window?: Date },
): Promise<BackupOutcome> {
  const now = deps.clock.now();
  const policy = deps.config.jurisdictions[cluster.jurisdiction]?.backup;
  if (!policy) {
    const findings: Finding[] = [
      {
        clusterId: cluster.id,
        jurisdiction: cluster.jurisdiction,
        kind: 'unassigned',
        severity: 'high',
        message: `cluster is in no configured jurisdiction (region ${cluster.region}): it is not backed up`,
        at: now.toISOString(),
      },
    ];
    await recordFindings(deps.store, 'backup', cluster.id, findings);
    return { clusterId: cluster.id, status: 'skipped', findings };
  }
  const namespace = deps.config.velero.namespace;
  let api: Awaited<ReturnType<ClusterJobDeps['kube']['connect']>>;
  let checked: Awaited<ReturnType<typeof preflight>>;
  try {
    api = await deps.kube.connect(cluster, options.signal ? { signal: options.signal } : {});
    checked = await preflight(api, cluster, {
      buckets: deps.buckets,
      residency: deps.residency,
      namespace,
      now,
      cache: options.cache,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (error) {
    if (options.signal?.aborted) throw error;
    const findings: Finding[] = [
      {
        clusterId: cluster.id,
        jurisdiction: cluster.jurisdiction,
        kind: 'kube-unreachable',
        severity: 'high',
        message: `cannot check Velero: ${errorInfo(error).message}`,
        at: now.toISOString(),
      },
    ];
    await recordFindings(deps.store, 'backup', cluster.id, findings);
    return { clusterId: cluster.id, status: 'skipped', findings };
  }
  const location =
    checked.locations.find((l) => l.name === policy.storageLocation) ??
    (policy.storageLocation === 'default' ? checked.locations.find((l) => l.default) : undefined);
  if (!checked.ok || !location) {
    const findings = checked.ok
      ? [
          {
            clusterId: cluster.id,
            jurisdiction: cluster.jurisdiction,
            kind: 'bsl-missing' as const,
            severity: 'high' as const,
            message: `no usable storage location "${policy.storageLocation}"`,
            at: now.toISOString(),
          },
        ]
      : checked.findings;
    await recordFindings(deps.store, 'backup', cluster.id, findings);
    // The outcome (skipped, with the findings) says it, and the findings are recorded: not a warning.
    deps.logger.info('Backup preflight failed', {
      cluster: cluster.id,
      findings: findings.map((f) => f.kind),
    });
    return { clusterId: cluster.id, status: 'skipped', findings };
  }
  try {
    // The planner's window: an item delivered late still requests the Backup it was planned for.
    const window = options.window ?? backupWindow(deps, cluster);
    const name = backupName(window);
    const namespaces = await resolveNamespaces(deps, cluster, api, policy.includedNamespaces);
    const backup = buildBackup({
      name,
      namespace,
      storageLocation: location.name,
      ttlDays: policy.ttlDays,
      includedNamespaces: namespaces,
      window,
      runId: run,
    });
    const { object, created } = await api.create<VeleroBackup>(backup, { dryRun: options.dryRun });
    await recordFindings(deps.store, 'backup', cluster.id, []);
    if (options.dryRun) return { clusterId: cluster.id, status: 'planned', backup: name, location };
    // A Backup found rather than created belongs to an earlier invocation of this window: keep its record.
    if (created || !(await deps.store.get(NS.backups, `${cluster.id}/${name}`))) {
      const base: BackupRecord = {
        clusterId: cluster.id,
        jurisdiction: cluster.jurisdiction,
        name,
        window: window.toISOString(),
        runId: object.metadata.labels?.[LABELS.run] ?? run,
        storageLocation: location.name,
        bucket: { name: location.bucket, cloud: location.cloud, region: location.region },
        namespaces: object.spec.includedNamespaces ?? namespaces,
        createdAt: object.metadata.creationTimestamp ?? now.toISOString(),
        phase: 'New',
      };
      // A Backup found may already be terminal, and the reconciler never rewrites a terminal record:
      // record its whole status (completion, counts, failure) now, as the reconciler would.
      const record = mergeBackup(base, object, cluster);
      await deps.store.putMany(NS.backups, [{ key: `${cluster.id}/${name}`, value: record }]);
    }
    deps.logger.info('Backup requested', { cluster: cluster.id, backup: name, created });
    return { clusterId: cluster.id, status: created ? 'created' : 'exists', backup: name, location };
  } catch (error) {
    if (options.signal?.aborted) throw error;
    deps.logger.warn('Backup request failed', { cluster: cluster.id, error: errorInfo(error) });
    return { clusterId: cluster.id, status: 'failed', error: errorInfo(error) };
  }
}

export type BackupScope = ClusterScope & { dryRun?: boolean };

/** Bucket lookups are remembered for the life of the deps (one invocation, or one CLI run). */
const bucketCaches = new WeakMap<ClusterJobDeps, BucketCache>();

/** The backup job as the dispatcher runs it: one item per cluster and window. */
export const backupWork: ClusterWork<ClusterJobDeps, BackupScope, BackupOutcome> = {
  job: 'backup-clusters',
  async plan(deps, scope) {
    const clusters = await inventory(deps.store, scope);
    const run = runId(deps.clock.now());
    return clusters.map((cluster) => ({
      job: 'backup-clusters',
      clusterId: cluster.id,
      runId: run,
      window: backupWindow(deps, cluster).toISOString(),
      ...(scope.dryRun ? { dryRun: true } : {}),
    }));
  },
  async run(deps, item, signal) {
    const cluster = await deps.store.get<Cluster>(INVENTORY, item.clusterId);
    // A cluster gone from the inventory since the plan has nothing left to back up.
    if (!cluster) return { clusterId: item.clusterId, status: 'skipped', findings: [] };
    const cache = bucketCaches.get(deps) ?? new Map();
    bucketCaches.set(deps, cache);
    return backupCluster(deps, cluster, item.runId, {
      dryRun: item.dryRun ?? false,
      cache,
      ...(signal ? { signal } : {}),
      ...(item.window ? { window: new Date(item.window) } : {}),
    });
  },
  failure: (outcome) => (outcome.status === 'failed' ? outcome.error.message : undefined),
  metrics: (outcome) => ({ BackupsCreated: outcome.status === 'created' ? 1 : 0 }),
};

/** Requests this window's Backup on every cluster (or one). Dry run validates on the server and writes nothing. */
export async function run(
  deps: ClusterJobDeps,
  options: BackupScope & { signal?: AbortSignal; onProgress?: OnProgress<BackupOutcome> } = {},
  dispatcher: Dispatcher = inProcess(deps.config.kubeAccess.concurrency * 4),
): Promise<BackupRunResult & { enqueued?: number }> {
  const items = await backupWork.plan(deps, options);
  const id = items[0]?.runId ?? runId(deps.clock.now());
  const dryRun = options.dryRun ?? false;
  const work = reporting(backupWork, items.length, options.onProgress);
  const done = await dispatcher.dispatch(work, deps, items, options.signal);
  if (done.mode === 'queue') {
    deps.logger.info('Backups enqueued', { runId: id, dryRun, enqueued: done.enqueued });
    return { runId: id, dryRun, outcomes: [], enqueued: done.enqueued };
  }
  const outcomes = done.results;
  const count = (s: BackupOutcome['status']) => outcomes.filter((o) => o.status === s).length;
  deps.logger.info('Backups requested', {
    runId: id,
    dryRun,
    created: count('created'),
    exists: count('exists'),
    planned: count('planned'),
    skipped: count('skipped'),
    failed: count('failed'),
  });
  return { runId: id, dryRun, outcomes };
}
