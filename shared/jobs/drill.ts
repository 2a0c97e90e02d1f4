/**
 * Restore drills. A drill restores a cluster's newest Completed backup into labelled
 * scratch namespaces (`fw-drill-...`) on the same cluster, or on the drill cluster its
 * jurisdiction names (same jurisdiction only), verifies the result, measures RTO =
 * Restore created -> workloads verified ready, and always deletes its scratch namespaces.
 *
 * Drills are phase-gated and re-entrant: each invocation moves every active drill at most
 * one phase forward (restoring -> verifying -> cleaning -> done) and never sleeps waiting
 * for Velero; the Restore's name is the drill's id, so a retried start finds its Restore.
 */
import { type Cluster, isRegionCloud } from '../model.ts';
import type { KubeApi, KubeObject } from '../ports.ts';
import { type ClusterWork, type Dispatcher, inProcess } from '../runtime/dispatch.ts';
import { CloudApiError, errorInfo, FleetwardError, ResidencyError } from '../runtime/errors.ts';
import { type DrillRecord, INVENTORY, NS } from '../state/records.ts';
import { CONDITION, type Finding } from '../velero/preflight.ts';
import {
  assertScratchOnly,
  buildRestore,
  isDrillScratch,
  isTerminalRestore,
  LABELS,
  MANAGED_BY,
  stamp,
  UnsafeRestoreError,
  VELERO_API,
  type VeleroBackup,
  type VeleroRestore,
  windowStart,
} from '../velero/resources.ts';
import { type ClusterJobDeps, type ClusterScope, inventory, recordFindings, runId } from './fleet.ts';
import { type OnProgress, reporting } from './progress.ts';

const DAY_MS = 86_400_000;
/** Scratch namespaces older than this that no active drill owns are removed by the sweeper. */
export const SWEEP_AFTER_MS = DAY_MS;

export interface DrillStepResult {
  clusterId: string;
  drill: DrillRecord | null;
  started: boolean;
  /** The drill ended in this step (`drill.result` says how). */
  finished?: boolean;
  findings: Finding[];
}

interface Workload extends KubeObject {
  spec?: { replicas?: number };
  status?: { readyReplicas?: number; availableReplicas?: number };
}

const key = (d: Pick<DrillRecord, 'sourceClusterId' | 'id'>) => `${d.sourceClusterId}/${d.id}`;

async function save(deps: ClusterJobDeps, drill: DrillRecord): Promise<void> {
  drill.updatedAt = deps.clock.now().toISOString();
  await deps.store.putMany(NS.drills, [{ key: key(drill), value: drill }]);
}

function fail(drill: DrillRecord, reason: string): void {
  drill.result = 'fail';
  drill.reasons.push(reason);
  drill.phase = 'cleaning';
}

/**
 * Newest Completed Fleetward Backup of a cluster. A cluster that does not serve Velero's Backup
 * kind (404) has no Velero: refused in the words the backup preflight uses.
 */
async function newestCompleted(api: KubeApi, namespace: string): Promise<VeleroBackup | undefined> {
  let backups: VeleroBackup[];
  try {
    backups = await api.list<VeleroBackup>(VELERO_API, 'Backup', {
      namespace,
      labelSelector: `${LABELS.managedBy}=${MANAGED_BY}`,
    });
  } catch (error) {
    if (error instanceof CloudApiError && error.status === 404)
      throw new DrillRefusedError(CONDITION.veleroMissing);
    throw error;
  }
  return backups
    .filter((b) => b.status?.phase === 'Completed' && b.status.completionTimestamp)
    .sort((a, b) => (a.status!.completionTimestamp! < b.status!.completionTimestamp! ? 1 : -1))[0];
}

/** The cluster drills of `source` run on: the jurisdiction's drill cluster, else the source itself. */
async function drillTarget(deps: ClusterJobDeps, source: Cluster): Promise<Cluster> {
  const id = deps.config.jurisdictions[source.jurisdiction]?.drill.drillCluster;
  if (!id || id === source.id) return source;
  const target_ = (await inventory(deps.store, id))[0]!;
  // The one promise: restored data stays in the source's jurisdiction.
  if (isRegionCloud(target_.cloud)) {
    deps.residency.assertResidency(
      { jurisdiction: source.jurisdiction, clusterId: source.id },
      { cloud: target_.cloud, region: target_.region, what: `restore drill on ${target_.id}` },
    );
  }
  if (target_.jurisdiction !== source.jurisdiction) {
    throw new ResidencyError(
      `refusing a restore drill of ${source.id} on ${target_.id}: another jurisdiction`,
      {
        jurisdiction: source.jurisdiction,
        targetRegion: target_.region,
        targetCountry: target_.country ?? undefined,
      },
    );
  }
  return target_;
}

async function start(deps: ClusterJobDeps, source: Cluster, id: string, run: string): Promise<DrillRecord> {
  const now = deps.clock.now();
  const policy = deps.config.jurisdictions[source.jurisdiction]!.drill;
  const namespace = deps.config.velero.namespace;
  const prefix = deps.config.velero.scratchPrefix;
  const target = await drillTarget(deps, source);
  const sourceApi = await deps.kube.connect(source);
  const backup = await newestCompleted(sourceApi, namespace);
  if (!backup) throw new DrillRefusedError(CONDITION.noCompletedBackup);
  const namespaces = backup.spec.includedNamespaces ?? [];
  if (namespaces.length === 0 || namespaces.includes('*')) {
    throw new DrillRefusedError(`backup ${backup.metadata.name} does not list its namespaces`);
  }
  const restore = buildRestore({
    name: id,
    namespace,
    backupName: backup.metadata.name!,
    namespaces,
    scratchPrefix: prefix,
    runId: run,
  });
  assertScratchOnly(restore, prefix);
  const scratch = Object.values(restore.spec.namespaceMapping ?? {});
  const drill: DrillRecord = {
    id,
    sourceClusterId: source.id,
    targetClusterId: target.id,
    jurisdiction: source.jurisdiction,
    backupName: backup.metadata.name!,
    backupItems: backup.status?.progress?.itemsBackedUp ?? null,
    namespaces,
    scratchNamespaces: scratch,
    phase: 'restoring',
    result: null,
    reasons: [],
    startedAt: now.toISOString(),
    restoreCreatedAt: now.toISOString(),
    restorePhase: null,
    itemsRestored: null,
    workloads: null,
    verifiedAt: null,
    rtoSeconds: null,
    rtoTargetSeconds: policy.rtoMinutes * 60,
    scratchLeft: null,
    finishedAt: null,
    updatedAt: now.toISOString(),
  };
  // Recorded before anything is created, so a crash after this point is cleaned up by the next step.
  await save(deps, drill);
  const api = target.id === source.id ? sourceApi : await deps.kube.connect(target);
  try {
    await sweep(deps, api, target.id, new Set([id]));
    // Scratch namespaces are created (labelled) by us, so the sweeper can always find them.
    for (const ns of scratch) {
      await api.create({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: {
          name: ns,
          labels: { [LABELS.managedBy]: MANAGED_BY, [LABELS.scratch]: 'true', [LABELS.drill]: id },
        },
      });
    }
    const { object } = await api.create<VeleroRestore>(restore);
    if (object.metadata.labels?.[LABELS.drill] !== id)
      throw new UnsafeRestoreError("a Restore of that name exists and is not this drill's", id);
    deps.logger.info('Drill started', {
      cluster: source.id,
      target: target.id,
      drill: id,
      backup: drill.backupName,
    });
    // RTO starts at the Restore's creation as the API server stamped it, not at our clock.
    drill.restoreCreatedAt = object.metadata.creationTimestamp ?? deps.clock.now().toISOString();
  } catch (error) {
    fail(drill, `could not start: ${errorInfo(error).message}`);
  }
  await save(deps, drill);
  return drill;
}

export class DrillRefusedError extends FleetwardError {
  constructor(message: string) {
    super(message);
    this.name = 'DrillRefusedError';
  }
}

function elapsedSeconds(deps: ClusterJobDeps, since: string): number {
  return (deps.clock.now().getTime() - Date.parse(since)) / 1000;
}

/**
 * Why a terminal Restore does not count as a good restore (empty: it does). A restore is judged
 * by its own status: phase Completed, no errors, and every item of its own plan restored
 * (`progress.itemsRestored` of `progress.totalItems`). The backup's item count is no yardstick:
 * Velero never restores nodes, events or its own resources, so a good restore of a good backup
 * restores fewer items than were backed up. Warnings are recorded, not failed (Velero: warnings
 * do not change the completion status).
 */
export function judgeRestore(restore: Pick<VeleroRestore, 'status'>, _backupItems?: number | null): string[] {
  const reasons: string[] = [];
  const s = restore.status ?? {};
  if (s.phase !== 'Completed') {
    reasons.push(`restore ended ${s.phase || 'New'}${s.failureReason ? `: ${s.failureReason}` : ''}`);
  }
  if ((s.errors ?? 0) > 0) reasons.push(`restore reported ${s.errors} error(s)`);
  const total = s.progress?.totalItems;
  const restored = s.progress?.itemsRestored ?? 0;
  if (total !== undefined && restored < total) reasons.push(`restored ${restored} of ${total} items`);
  return reasons;
}

/** A condition of a Deployment's status. */
interface Condition {
  type?: string;
  status?: string;
  reason?: string;
  lastUpdateTime?: string;
  lastTransitionTime?: string;
}

const latestTime = (times: (string | undefined)[]): string | null =>
  times
    .filter((t): t is string => !!t && !Number.isNaN(Date.parse(t)))
    .sort((a, b) => Date.parse(a) - Date.parse(b))
    .at(-1) ?? null;

/**
 * Whether a restored Deployment or StatefulSet is ready, and since when by the object's own
 * evidence (null: ready, but the object carries no time for it). Deployment: ready replicas reach
 * `spec.replicas`; the time is the later of the `Available`=True condition's `lastTransitionTime`
 * and, when the rollout completed, the `Progressing` condition's `lastUpdateTime` (reason
 * `NewReplicaSetAvailable`: all replicas updated and available). StatefulSet: ready (and, where
 * reported, available) replicas reach `spec.replicas`; it has no condition with a time, so the
 * time is the newest `managedFields` entry of a status write (`subresource: status`), the last
 * time its controller changed the status.
 */
export function readySince(
  w: KubeObject,
  kind: string | undefined = w.kind,
): { ready: boolean; at: string | null } {
  const spec = (w.spec ?? {}) as { replicas?: number };
  const status = (w.status ?? {}) as {
    readyReplicas?: number;
    availableReplicas?: number;
    conditions?: Condition[];
  };
  const want = spec.replicas ?? 1;
  const readyCount = (status.readyReplicas ?? 0) >= want;
  if (kind === 'StatefulSet') {
    const ready = readyCount && (status.availableReplicas === undefined || status.availableReplicas >= want);
    if (!ready) return { ready: false, at: null };
    const fields = w.metadata.managedFields ?? [];
    return { ready, at: latestTime(fields.filter((f) => f.subresource === 'status').map((f) => f.time)) };
  }
  if (!readyCount) return { ready: false, at: null };
  const conditions = status.conditions ?? [];
  const available = conditions.find((c) => c.type === 'Available' && c.status === 'True');
  const complete = conditions.find(
    (c) => c.type === 'Progressing' && c.status === 'True' && c.reason === 'NewReplicaSetAvailable',
  );
  if (!available) return { ready: true, at: null };
  return { ready: true, at: latestTime([available.lastTransitionTime, complete?.lastUpdateTime]) };
}

/** Moves a drill at most one phase forward (verifying follows a completed restore at once). */
async function advance(deps: ClusterJobDeps, drill: DrillRecord, api: KubeApi): Promise<void> {
  const namespace = deps.config.velero.namespace;
  if (drill.phase === 'restoring') {
    const restore = await api.read<VeleroRestore>({
      apiVersion: VELERO_API,
      kind: 'Restore',
      name: drill.id,
      namespace,
    });
    const phase = restore?.status?.phase;
    if (!restore) fail(drill, 'the Restore disappeared');
    else if (!isTerminalRestore(phase)) {
      if (elapsedSeconds(deps, drill.startedAt) > drill.rtoTargetSeconds) {
        fail(drill, `restore still ${phase ?? 'New'} after the RTO target of ${drill.rtoTargetSeconds} s`);
      }
    } else {
      drill.restorePhase = phase!;
      const st = restore.status ?? {};
      drill.itemsRestored = st.progress?.itemsRestored ?? null;
      drill.restoreTotalItems = st.progress?.totalItems ?? null;
      drill.restoreCompletedAt = st.completionTimestamp ?? null;
      drill.restoreErrors = st.errors ?? 0;
      drill.restoreWarnings = st.warnings ?? 0;
      if (st.failureReason) drill.restoreFailureReason = st.failureReason;
      if (phase === 'Completed' || phase === 'PartiallyFailed') drill.phase = 'verifying';
      else
        fail(
          drill,
          `restore ended ${phase}${restore.status?.failureReason ? `: ${restore.status.failureReason}` : ''}`,
        );
    }
  }
  if (drill.phase === 'verifying') {
    // Items of built-in lists carry no kind (like a real API server): keep the kind each came from.
    const workloads: { w: Workload; kind: string }[] = [];
    for (const ns of drill.scratchNamespaces) {
      for (const kind of ['Deployment', 'StatefulSet']) {
        for (const w of await api.list<Workload>('apps/v1', kind, { namespace: ns }))
          workloads.push({ w, kind });
      }
    }
    const evidence = workloads.map(({ w, kind }) => readySince(w, kind));
    const ready = evidence.filter((e) => e.ready).length;
    drill.workloads = { total: workloads.length, ready };
    if (ready === workloads.length) {
      const now = deps.clock.now();
      // The cluster's own times: restore completion and each workload's availability.
      const times = [
        drill.restoreCompletedAt ?? undefined,
        ...evidence.map((e) => e.at ?? now.toISOString()),
      ];
      const verifiedAt = latestTime(times) ?? now.toISOString();
      drill.verifiedAt = verifiedAt;
      drill.observedAt = now.toISOString();
      drill.pollLagMs = Math.max(0, now.getTime() - Date.parse(verifiedAt));
      drill.rtoEvidence = evidence.every((e) => e.at !== null) ? 'cluster' : 'observed';
      drill.rtoSeconds = Math.max(
        0,
        Math.round((Date.parse(verifiedAt) - Date.parse(drill.restoreCreatedAt)) / 100) / 10,
      );
      const reasons = judgeRestore({
        status: {
          phase: drill.restorePhase ?? '',
          ...(drill.restoreErrors ? { errors: drill.restoreErrors } : {}),
          ...(drill.restoreFailureReason ? { failureReason: drill.restoreFailureReason } : {}),
          progress: {
            ...(drill.restoreTotalItems != null ? { totalItems: drill.restoreTotalItems } : {}),
            itemsRestored: drill.itemsRestored ?? 0,
          },
        },
      });
      if (drill.rtoSeconds > drill.rtoTargetSeconds)
        reasons.push(`RTO ${drill.rtoSeconds} s exceeds the target of ${drill.rtoTargetSeconds} s`);
      drill.result = reasons.length === 0 ? 'pass' : 'fail';
      drill.reasons.push(...reasons);
      drill.phase = 'cleaning';
    } else if (elapsedSeconds(deps, drill.startedAt) > drill.rtoTargetSeconds) {
      fail(
        drill,
        `${workloads.length - ready} of ${workloads.length} workloads not ready within the RTO target of ${drill.rtoTargetSeconds} s`,
      );
    }
  }
  if (drill.phase === 'cleaning') {
    const prefix = deps.config.velero.scratchPrefix;
    const ours = async () =>
      (await api.list('v1', 'Namespace', { labelSelector: `${LABELS.drill}=${drill.id}` })).filter((ns) =>
        isDrillScratch(ns, prefix, (id) => (id === drill.id ? drill.scratchNamespaces : undefined)),
      );
    for (const ns of await ours())
      await api.delete({ apiVersion: 'v1', kind: 'Namespace', name: ns.metadata.name! });
    const after = await ours();
    drill.scratchLeft = after.length;
    if (after.length === 0) {
      drill.phase = 'done';
      drill.finishedAt = deps.clock.now().toISOString();
      drill.result ??= 'fail';
      deps.logger.info('Drill finished', {
        cluster: drill.sourceClusterId,
        drill: drill.id,
        result: drill.result,
        rtoSeconds: drill.rtoSeconds,
        pollLagMs: drill.pollLagMs ?? null,
      });
    }
  }
}

/** The scratch namespaces each drill that ran on `targetClusterId` recorded, by drill id. */
export async function recordedScratch(
  store: ClusterJobDeps['store'],
  targetClusterId: string,
): Promise<Map<string, readonly string[]>> {
  const drills = await store.list<Pick<DrillRecord, 'id' | 'targetClusterId' | 'scratchNamespaces'>>(
    NS.drills,
  );
  return new Map(
    drills
      .map((i) => i.value)
      .filter((d) => d.targetClusterId === targetClusterId)
      .map((d) => [d.id, d.scratchNamespaces ?? []]),
  );
}

/**
 * Deletes scratch namespaces older than a day that no active drill owns (leftovers of crashed
 * runs): only namespaces a drill created and recorded (`isDrillScratch`), never one that merely
 * carries a Fleetward label.
 */
async function sweep(
  deps: ClusterJobDeps,
  api: KubeApi,
  targetClusterId: string,
  active: Set<string>,
): Promise<number> {
  const now = deps.clock.now().getTime();
  const recorded = await recordedScratch(deps.store, targetClusterId);
  const scratch = (await api.list('v1', 'Namespace', { labelSelector: `${LABELS.scratch}=true` })).filter(
    (ns) => isDrillScratch(ns, deps.config.velero.scratchPrefix, (id) => recorded.get(id)),
  );
  let removed = 0;
  for (const ns of scratch) {
    const created = Date.parse(ns.metadata.creationTimestamp ?? '');
    if (active.has(ns.metadata.labels?.[LABELS.drill] ?? '') || !(now - created > SWEEP_AFTER_MS)) continue;
    if (await api.delete({ apiVersion: 'v1', kind: 'Namespace', name: ns.metadata.name! })) removed++;
  }
  if (removed > 0) deps.logger.warn('Leftover scratch namespaces removed', { removed });
  return removed;
}

/** The drill id for `now`: one per interval window, or per minute when forced. */
export function drillId(deps: ClusterJobDeps, cluster: Cluster, force: boolean): string {
  const now = deps.clock.now();
  const days = deps.config.jurisdictions[cluster.jurisdiction]?.drill.intervalDays ?? 30;
  return `fleetward-drill-${stamp(force ? now : windowStart(now, days * DAY_MS))}`;
}

async function stepCluster(
  deps: ClusterJobDeps,
  cluster: Cluster,
  options: { start: 'due' | 'force' | 'never'; run: string },
): Promise<DrillStepResult> {
  const now = deps.clock.now();
  const drills = (await deps.store.list<DrillRecord>(NS.drills, { prefix: `${cluster.id}/` })).map(
    (i) => i.value,
  );
  let drill = drills
    .filter((d) => d.phase !== 'done')
    .sort((a, b) => (a.startedAt < b.startedAt ? -1 : 1))[0];
  const findings: Finding[] = [];
  let started = false;
  let attempted = drill !== undefined;
  if (!drill && options.start !== 'never' && deps.config.jurisdictions[cluster.jurisdiction]) {
    const id = drillId(deps, cluster, options.start === 'force');
    if (!drills.some((d) => d.id === id)) {
      attempted = true;
      try {
        drill = await start(deps, cluster, id, options.run);
        started = true;
      } catch (error) {
        const refused =
          error instanceof DrillRefusedError ||
          error instanceof ResidencyError ||
          error instanceof UnsafeRestoreError;
        findings.push({
          clusterId: cluster.id,
          jurisdiction: cluster.jurisdiction,
          kind: refused ? 'drill-refused' : 'drill-failed',
          severity: 'high',
          message: `${NOT_STARTED}: ${errorInfo(error).message}`,
          at: now.toISOString(),
        });
      }
    }
  }
  if (drill && !started) {
    try {
      const [target] = await inventory(deps.store, drill.targetClusterId);
      const api = await deps.kube.connect(target!);
      await advance(deps, drill, api);
      await sweep(deps, api, drill.targetClusterId, new Set([drill.id]));
    } catch (error) {
      // A drill that fails half-way still owns scratch namespaces: move it to cleaning, retried next step.
      if (drill.phase === 'restoring' || drill.phase === 'verifying')
        fail(drill, `step failed: ${errorInfo(error).message}`);
      deps.logger.warn('Drill step failed', {
        cluster: cluster.id,
        drill: drill.id,
        error: errorInfo(error),
      });
    }
    await save(deps, drill);
  }
  if (drill?.phase === 'done' && drill.result === 'fail') {
    findings.push({
      clusterId: cluster.id,
      jurisdiction: cluster.jurisdiction,
      kind: 'drill-failed',
      severity: 'high',
      message: `drill ${drill.id} failed: ${drill.reasons.join('; ')}`,
      at: now.toISOString(),
    });
  }
  // A step that neither tried to start nor advanced a drill leaves the open findings as they are.
  if (attempted) await recordFindings(deps.store, 'restore-drill', cluster.id, findings);
  const latest = drill ?? drills.sort((a, b) => (a.startedAt < b.startedAt ? 1 : -1))[0] ?? null;
  // The drill this step worked on ended in it (an active drill is never `done` when a step begins).
  const finished = drill?.phase === 'done';
  return { clusterId: cluster.id, drill: latest, started, finished, findings };
}

/** How the finding of a drill that could not be started begins. */
const NOT_STARTED = 'drill not started';

/** Whether a drill finding says the drill could not be started (refused, or its start failed). */
export function couldNotStart(finding: Pick<Finding, 'kind' | 'message'>): boolean {
  return finding.kind === 'drill-refused' || finding.message.startsWith(`${NOT_STARTED}:`);
}

export type DrillScope = ClusterScope & { start?: 'due' | 'force' | 'never' };

/** The drill as the dispatcher runs it: one step per assigned cluster (advance, or start when due). */
export const drillWork: ClusterWork<ClusterJobDeps, DrillScope, DrillStepResult | undefined> = {
  job: 'restore-drill',
  async plan(deps, scope) {
    const clusters = (await inventory(deps.store, scope)).filter((c) => c.jurisdiction !== 'unassigned');
    const run = runId(deps.clock.now());
    return clusters.map((c) => ({
      job: 'restore-drill',
      clusterId: c.id,
      runId: run,
      start: scope.start ?? 'due',
    }));
  },
  async run(deps, item) {
    const cluster = await deps.store.get<Cluster>(INVENTORY, item.clusterId);
    return cluster ? stepCluster(deps, cluster, { start: item.start ?? 'due', run: item.runId }) : undefined;
  },
  metrics: (r) => ({
    DrillsPassed: r?.finished && r.drill?.result === 'pass' ? 1 : 0,
    DrillsFailed: r?.finished && r.drill?.result === 'fail' ? 1 : 0,
  }),
};

/**
 * One drill step for every cluster in a jurisdiction (or one cluster): advance the active
 * drill, or start one when due (`start: 'due'`, the schedule), now (`'force'`, the CLI's
 * `drill run`), or not at all (`'never'`, `drill status`). With a queue dispatcher the steps
 * are enqueued and this returns none.
 */
export async function step(
  deps: ClusterJobDeps,
  options: DrillScope & { onProgress?: OnProgress<DrillStepResult | undefined> } = {},
  dispatcher: Dispatcher = inProcess(deps.config.kubeAccess.concurrency * 4),
): Promise<DrillStepResult[]> {
  const items = await drillWork.plan(deps, options);
  const done = await dispatcher.dispatch(reporting(drillWork, items.length, options.onProgress), deps, items);
  if (done.mode === 'queue') {
    deps.logger.info('Drill steps enqueued', { enqueued: done.enqueued });
    return [];
  }
  return done.results.filter((r) => r !== undefined);
}
