/**
 * The tag job: per cluster of the saved inventory, read its tags fresh from the cloud, plan
 * (`shared/tags/plan.ts`) the derived and defaulted values it lacks and the findings (missing
 * or invalid required tags), and, when applying, write the planned values through the
 * cloud's {@link ClusterTagger}. Only derived and defaulted values are ever written.
 *
 * - Dry run is the default outside the `prod` stage (`dryRun` unset); an explicit
 *   `dryRun: false` applies anywhere (the CLI's `tags apply` is that explicit action).
 * - The change limit counts changed resources, as `terraform plan` does: a plan that would
 *   write the tags of more clusters than `maxChanges` (default `policies.maxChanges`)
 *   refuses the whole apply, and nothing is written.
 * - Each cluster's write is independent: one failing (a cloud down) never stops the others,
 *   and the outcome of each says `applied`, `failed` (with the error), `unchanged` or `planned`.
 * - State store namespace `tags`: `plan/<cluster-id>` is the latest plan (the drift), and
 *   `applied/<cluster-id>/<timestamp>` each applied change set. Open findings are kept
 *   under `findings` / `tags/<cluster-id>`, like the other jobs'.
 */
import type { FleetConfig } from '../config/schema.ts';
import { CLOUDS, type Cluster } from '../model.ts';
import type { Clock, Log, StateStore } from '../ports.ts';
import { type ClusterWork, type Dispatcher, inProcess, type WorkItem } from '../runtime/dispatch.ts';
import { type ErrorInfo, errorInfo, FleetwardError } from '../runtime/errors.ts';
import { INVENTORY, NS, type StoredTagPlan, TAGS_NS } from '../state/records.ts';
import { changeSet, notTaggable, planTags, type TagChange, type TagFinding } from '../tags/plan.ts';
import type { TaggerSet } from '../tags/port.ts';
import { type ClusterTagPlan, type PlanSummary, summarise } from '../tags/render.ts';
import { type ClusterScope, forEachCluster, inventory, runId } from './fleet.ts';
import { counting, type OnProgress } from './progress.ts';

/** The job name findings are recorded under (`findings` / `tags/<cluster-id>`). */
export const TAGS_JOB = 'tags';
/** Clusters read and written at once (each cloud's tagger has its own call limit too). */
const CLUSTER_CONCURRENCY = 32;

export interface TagJobDeps {
  config: FleetConfig;
  store: StateStore;
  taggers: TaggerSet;
  logger: Log;
  clock: Clock;
}

/** A finding as every job records it (`Finding` of the Velero jobs, with the tag kinds). */
export interface TagFindingRecord {
  clusterId: string;
  jurisdiction: string;
  kind: TagFinding['kind'];
  severity: 'medium' | 'high' | 'critical';
  message: string;
  at: string;
}

/** What `applied/<cluster-id>/<timestamp>` holds. */
export interface AppliedTagRecord {
  runId: string;
  at: string;
  clusterId: string;
  changes: TagChange[];
}

export interface TagPlanResult {
  runId: string;
  plans: ClusterTagPlan[];
  summary: PlanSummary;
}

export type TagOutcome = {
  clusterId: string;
  cloud: Cluster['cloud'];
  changes: TagChange[];
  findings: TagFinding[];
} & (
  | { status: 'applied' | 'unchanged' | 'planned' | 'not-taggable' }
  | { status: 'failed'; error: ErrorInfo }
);

export interface TagApplyResult {
  runId: string;
  dryRun: boolean;
  /** Set when the plan had more changes than allowed: nothing was written. */
  refused?: { changes: number; clusters: number; maxChanges: number; message: string };
  plans: ClusterTagPlan[];
  outcomes: TagOutcome[];
  summary: PlanSummary & { applied: number; failed: number };
}

export class TooManyChangesError extends FleetwardError {
  readonly clusters: number;
  readonly maxChanges: number;
  constructor(changes: number, clusters: number, maxChanges: number) {
    super(
      `refusing to apply: the plan changes the tags of ${clusters} clusters (${changes} tag changes), more than the limit of ${maxChanges} (raise --max-changes or policies.maxChanges); nothing was written`,
    );
    this.name = 'TooManyChangesError';
    this.clusters = clusters;
    this.maxChanges = maxChanges;
  }
}

type RunOptions = ClusterScope & {
  signal?: AbortSignal | undefined;
  /** Called as each cluster's tags are read and, in an apply, written (in-process runs). */
  onProgress?: OnProgress | undefined;
};

async function planCluster(
  deps: TagJobDeps,
  cluster: Cluster,
  signal?: AbortSignal,
): Promise<ClusterTagPlan> {
  const tagger = await deps.taggers.for(cluster.cloud);
  if (!tagger) return notTaggable(cluster);
  try {
    const current = await tagger.read(cluster, signal ? { signal } : {});
    return planTags(cluster, current, deps.config.policies.tags);
  } catch (error) {
    if (signal?.aborted) throw error;
    deps.logger.warn('Tags could not be read', { cluster: cluster.id, error: errorInfo(error) });
    return { ...notTaggable(cluster), taggable: true, error: errorInfo(error) };
  }
}

async function record(
  deps: TagJobDeps,
  run: string,
  clusters: Cluster[],
  plans: ClusterTagPlan[],
): Promise<void> {
  const at = deps.clock.now().toISOString();
  const byId = new Map(clusters.map((c) => [c.id, c]));
  const readable = plans.filter((p) => p.taggable && !p.error);
  if (readable.length > 0) {
    await deps.store.putMany(
      TAGS_NS,
      readable.map((plan) => ({
        key: `plan/${plan.clusterId}`,
        value: { runId: run, at, plan } satisfies StoredTagPlan,
      })),
    );
  }
  for (const plan of readable) {
    const findings: TagFindingRecord[] = plan.findings.map((f) => ({
      clusterId: plan.clusterId,
      jurisdiction: byId.get(plan.clusterId)?.jurisdiction ?? 'unassigned',
      kind: f.kind,
      severity: 'medium',
      message: f.message,
      at,
    }));
    const key = `${TAGS_JOB}/${plan.clusterId}`;
    if (findings.length === 0) await deps.store.deleteMany(NS.findings, [key]);
    else await deps.store.putMany(NS.findings, [{ key, value: findings }]);
  }
}

/** Reads every cluster's tags (or one's) and plans; records the plans and findings, writes nothing to any cloud. */
export async function plan(deps: TagJobDeps, options: RunOptions = {}): Promise<TagPlanResult> {
  const clusters = await inventory(deps.store, options);
  const run = runId(deps.clock.now());
  const plans = await forEachCluster(
    clusters,
    CLUSTER_CONCURRENCY,
    counting(clusters.length, options.onProgress, (c: Cluster) => planCluster(deps, c, options.signal)),
  );
  await record(deps, run, clusters, plans);
  const summary = summarise(plans);
  deps.logger.info('Tags planned', { runId: run, ...summary });
  return { runId: run, plans, summary };
}

/**
 * Plans, then writes the planned values (unless dry run or refused). Dry run defaults to
 * `config.stage !== 'prod'`; changing more clusters than `maxChanges` refuses the whole apply.
 */
export async function apply(
  deps: TagJobDeps,
  options: RunOptions & { maxChanges?: number | undefined; dryRun?: boolean | undefined } = {},
  dispatcher: Dispatcher = inProcess(CLUSTER_CONCURRENCY),
): Promise<TagApplyResult & { enqueued?: number }> {
  const dryRun = options.dryRun ?? deps.config.stage !== 'prod';
  const maxChanges = options.maxChanges ?? deps.config.policies.maxChanges;
  const clusters = await inventory(deps.store, options);
  const run = runId(deps.clock.now());
  const { signal, onProgress } = options;
  // Progress counts every read, then every write.
  let progressed = 0;
  let units = clusters.length;
  const tick = onProgress ? () => onProgress(++progressed, units) : undefined;
  const plans = await forEachCluster(clusters, CLUSTER_CONCURRENCY, (c) =>
    planCluster(deps, c, signal).finally(tick),
  );
  await record(deps, run, clusters, plans);
  const summary = summarise(plans);
  const outcomeOf = (p: ClusterTagPlan, status: 'unchanged' | 'planned' | 'not-taggable'): TagOutcome => ({
    clusterId: p.clusterId,
    cloud: p.cloud,
    changes: p.changes,
    findings: p.findings,
    status: p.changes.length === 0 && status === 'planned' ? 'unchanged' : status,
  });
  const failedRead = (p: ClusterTagPlan): TagOutcome | undefined =>
    p.error
      ? {
          clusterId: p.clusterId,
          cloud: p.cloud,
          changes: [],
          findings: [],
          status: 'failed',
          error: p.error,
        }
      : undefined;
  const finish = (outcomes: TagOutcome[], refused?: TagApplyResult['refused']): TagApplyResult => {
    const result: TagApplyResult = {
      runId: run,
      dryRun,
      ...(refused ? { refused } : {}),
      plans,
      outcomes,
      summary: {
        ...summary,
        applied: outcomes.filter((o) => o.status === 'applied').length,
        failed: outcomes.filter((o) => o.status === 'failed').length,
      },
    };
    deps.logger.info('Tags applied', {
      runId: run,
      dryRun,
      refused: refused !== undefined,
      ...result.summary,
    });
    return result;
  };

  // One change is one cluster whose tags are written (a resource, as terraform counts them).
  if (summary.clusters > maxChanges) {
    const error = new TooManyChangesError(summary.changes, summary.clusters, maxChanges);
    deps.logger.warn('Tag apply refused', { runId: run, clusters: summary.clusters, maxChanges });
    return finish(
      plans.map((p) => failedRead(p) ?? outcomeOf(p, p.taggable ? 'planned' : 'not-taggable')),
      { changes: summary.changes, clusters: summary.clusters, maxChanges, message: error.message },
    );
  }
  if (dryRun) {
    return finish(plans.map((p) => failedRead(p) ?? outcomeOf(p, p.taggable ? 'planned' : 'not-taggable')));
  }

  // Only clusters with changes become items; each is planned again where it runs, so a write
  // never carries a stale plan and a redelivered item finds its tags already written.
  const items: WorkItem[] = plans
    .filter((p) => !p.error && p.taggable && p.changes.length > 0)
    .map((p) => ({ job: 'reconcile-tags', clusterId: p.clusterId, runId: run }));
  // Run in-process, the items write the plans just made instead of reading every tag again.
  planned.set(deps, { runId: run, plans: new Map(plans.map((p) => [p.clusterId, p])) });
  units += items.length;
  const work = tick
    ? { ...tagWork, run: (...a: Parameters<typeof tagWork.run>) => tagWork.run(...a).finally(tick) }
    : tagWork;
  const done = await dispatcher.dispatch(work, deps, items, signal).finally(() => planned.delete(deps));
  if (done.mode === 'queue') {
    deps.logger.info('Tag writes enqueued', { runId: run, enqueued: done.enqueued });
    const planned = plans.map((p) => failedRead(p) ?? outcomeOf(p, p.taggable ? 'planned' : 'not-taggable'));
    return { ...finish(planned), enqueued: done.enqueued };
  }
  const written = new Map(done.results.map((o) => [o.clusterId, o]));
  const outcomes = plans.map(
    (p) =>
      written.get(p.clusterId) ?? failedRead(p) ?? outcomeOf(p, p.taggable ? 'unchanged' : 'not-taggable'),
  );
  return finish(outcomes);
}

/**
 * The plans `apply` just made, for the items it runs in this process (a queue worker has other
 * deps, finds none and plans its cluster afresh, so it never writes a stale plan).
 */
const planned = new WeakMap<TagJobDeps, { runId: string; plans: Map<string, ClusterTagPlan> }>();

/** Writes one cluster's planned values (planning it afresh unless the plan is given). */
async function applyCluster(
  deps: TagJobDeps,
  cluster: Cluster,
  run: string,
  signal?: AbortSignal,
  plan?: ClusterTagPlan,
): Promise<TagOutcome> {
  const p = plan ?? (await planCluster(deps, cluster, signal));
  const base = { clusterId: p.clusterId, cloud: p.cloud, changes: p.changes, findings: p.findings };
  if (p.error) return { ...base, changes: [], findings: [], status: 'failed', error: p.error };
  if (!p.taggable) return { ...base, status: 'not-taggable' };
  if (p.changes.length === 0) return { ...base, status: 'unchanged' };
  const tagger = (await deps.taggers.for(cluster.cloud))!;
  try {
    await tagger.write(cluster, changeSet(p), signal ? { signal } : {});
  } catch (error) {
    if (signal?.aborted) throw error;
    deps.logger.warn('Tags could not be written', { cluster: cluster.id, error: errorInfo(error) });
    return { ...base, status: 'failed', error: errorInfo(error) };
  }
  const at = deps.clock.now().toISOString();
  await deps.store.putMany(TAGS_NS, [
    {
      key: `applied/${cluster.id}/${at}`,
      value: { runId: run, at, clusterId: cluster.id, changes: p.changes } satisfies AppliedTagRecord,
    },
  ]);
  return { ...base, status: 'applied' };
}

/**
 * The tag write as the dispatcher runs it. `apply` plans the whole scope first (the change
 * limit is a property of the whole plan) and dispatches one item per cluster with changes.
 */
export const tagWork: ClusterWork<TagJobDeps, RunOptions, TagOutcome> = {
  job: 'reconcile-tags',
  async plan(deps, scope) {
    const clusters = await inventory(deps.store, scope);
    const run = runId(deps.clock.now());
    return clusters.map((c) => ({ job: 'reconcile-tags', clusterId: c.id, runId: run }));
  },
  async run(deps, item, signal) {
    const cluster = await deps.store.get<Cluster>(INVENTORY, item.clusterId);
    // A cluster gone from the inventory since the plan has nothing left to tag.
    if (!cluster) {
      const cloud = CLOUDS.find((c) => item.clusterId.startsWith(`${c}/`)) ?? 'kubeconfig';
      return { clusterId: item.clusterId, cloud, changes: [], findings: [], status: 'unchanged' };
    }
    const cached = planned.get(deps);
    const plan = cached?.runId === item.runId ? cached.plans.get(item.clusterId) : undefined;
    return applyCluster(deps, cluster, item.runId, signal, plan);
  },
  failure: (outcome) => (outcome.status === 'failed' ? (outcome.error?.message ?? 'failed') : undefined),
};
