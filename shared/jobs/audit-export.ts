/**
 * The audit export job: export mode (`audit.mode: export`) as desired state, like tags and
 * budgets. For every cluster of the inventory in export mode, the cloud's own export path
 * (./../audit/exporters.ts: a CloudWatch Logs subscription to Firehose, a Log Router sink, an
 * AKS diagnostic setting) must deliver its audit log into the jurisdiction's evidence store
 * on the cluster's own cloud. No Fleetward code is in that data path.
 *
 * `plan` per cluster: the destination is the jurisdiction's evidence bucket on the cluster's
 * cloud (none there is a finding: export cannot cross clouds); `spec = exporter.desired(...)`;
 * the destination must pass the exporter's write-once check and the residency guard (a refusal
 * is a critical finding and nothing is applied to that cluster); the resource is observed and
 * diffed with the spec: `create`, `update` (the fields that differ) or `none`. Drift is a
 * finding: the resource gone after it was applied once, disabled, its destination changed, its
 * filter narrowed or changed, other settings changed, delivery errors. A cluster in `pull` mode
 * whose export Fleetward applied once and which still exists is reported, never deleted.
 *
 * `apply` plans, then (not dry run, not over `maxChanges` clusters to change, which refuses the
 * whole apply) creates or updates each cluster's export; one cluster failing never stops the
 * others. State store namespace `audit-export`: `plan/<cluster-id>` (the latest plan) and
 * `applied/<cluster-id>` (the spec last applied, which tells a resource that disappeared from one
 * never made). Open findings: `findings` / `audit-export/<cluster-id>`.
 */

import type { AuditExporters } from '../audit/exporters.ts';
import { type AuditMode, auditModeOf } from '../audit/mode.ts';
import type { FleetConfig } from '../config/schema.ts';
import type { Cluster, Finding, RegionCloud } from '../model.ts';
import type {
  ArchiveStore,
  AuditExporter,
  Clock,
  ExportObserved,
  ExportSpec,
  Log,
  StateStore,
} from '../ports.ts';
import type { Residency } from '../residency/index.ts';
import { type ErrorInfo, errorInfo, FleetwardError, ResidencyError } from '../runtime/errors.ts';
import { type ClusterScope, findingsOf, forEachCluster, inventory, recordFindings, runId } from './fleet.ts';
import type { OnProgress } from './progress.ts';

/** The job name findings are recorded under (`findings` / `audit-export/<cluster-id>`). */
export const AUDIT_EXPORT_JOB = 'audit-export';
/** State-store namespace of the job. */
export const AUDIT_EXPORT_NS = 'audit-export';
/** Clusters planned and applied at once. */
const CLUSTER_CONCURRENCY = 8;

export interface AuditExportDeps {
  config: Pick<FleetConfig, 'jurisdictions' | 'policies' | 'stage'>;
  store: StateStore;
  residency: Residency;
  logger: Log;
  clock: Clock;
  exporters: AuditExporters;
  /** The jurisdiction's evidence store on a cloud (may reject: a finding). */
  evidence: { for(jurisdiction: string, cloud: RegionCloud): Promise<ArchiveStore> };
}

/** One field of a spec that the resource does not say (`before` null: the resource does not exist). */
export interface FieldChange {
  field: string;
  before: string | null;
  after: string;
}

export type ExportAction = 'create' | 'update' | 'none' | 'skip';

/** What `plan` found for one cluster. */
export interface ClusterExportPlan {
  clusterId: string;
  cloud: Cluster['cloud'];
  jurisdiction: string;
  mode: AuditMode;
  /** `skip`: nothing to manage (a finding says why, or the cluster is in pull mode). */
  action: ExportAction;
  /** The desired resource, when there is one. */
  spec?: ExportSpec;
  changes: FieldChange[];
  findings: Finding[];
  /** Why the destination was refused (write-once or residency): nothing is applied. */
  refused?: string;
  /** The resource could not be observed: nothing is applied. */
  error?: ErrorInfo;
}

/** What `applied/<cluster-id>` holds: the spec last applied. */
export interface AppliedExportRecord {
  runId: string;
  at: string;
  clusterId: string;
  spec: ExportSpec;
}

export interface ExportSummary {
  create: number;
  update: number;
  unchanged: number;
  refused: number;
  failed: number;
  findings: number;
}

export interface ExportPlanResult {
  runId: string;
  at: string;
  plans: ClusterExportPlan[];
  summary: ExportSummary;
}

export type ExportOutcome = {
  clusterId: string;
  action: ExportAction;
  status: 'applied' | 'unchanged' | 'planned' | 'refused' | 'skipped' | 'failed';
  error?: ErrorInfo;
};

export interface ExportApplyResult extends ExportPlanResult {
  dryRun: boolean;
  /** Set when the plan changes more clusters than allowed: nothing was applied. */
  tooMany?: { clusters: number; maxChanges: number; message: string };
  outcomes: ExportOutcome[];
  applied: number;
}

export class TooManyExportChangesError extends FleetwardError {
  constructor(clusters: number, maxChanges: number) {
    super(
      `refusing to apply: the plan creates or updates the audit export of ${clusters} clusters, more than the limit of ${maxChanges} (raise --max-changes or policies.maxChanges); nothing was applied`,
    );
    this.name = 'TooManyExportChangesError';
  }
}

type RunOptions = ClusterScope & { signal?: AbortSignal | undefined; onProgress?: OnProgress | undefined };

// ---------------------------------------------------------------------------------------------
// Pure: diff and drift

/** The fields of `spec` that `observed` does not say; every field when nothing is observed. */
export function diffExport(spec: ExportSpec, observed: ExportObserved | null): FieldChange[] {
  const changes: FieldChange[] = [];
  const field = (name: string, before: string | undefined | null, after: string) => {
    if (observed === null) changes.push({ field: name, before: null, after });
    else if ((before ?? '') !== after) changes.push({ field: name, before: before ?? '', after });
  };
  field('destination', observed?.destination, spec.destination);
  field('filter', observed?.filter, spec.filter);
  for (const [key, value] of Object.entries(spec.settings).sort(([a], [b]) => a.localeCompare(b))) {
    field(`settings.${key}`, observed?.settings[key], value);
  }
  if (observed && !observed.enabled) changes.push({ field: 'enabled', before: 'false', after: 'true' });
  return changes;
}

/** The conditions of a filter, for telling a narrowed filter from a changed one. */
function conditions(filter: string): string[] {
  return filter
    .replace(/^\s*\{|\}\s*$/g, '')
    .split(/&&|\bAND\b/)
    .map((c) => c.replace(/[()\s]/g, ''))
    .filter(Boolean);
}

/**
 * `narrowed` when the observed filter keeps every condition of the desired one and adds more
 * (it lets through fewer events), `changed` otherwise.
 */
export function filterDrift(desired: string, observed: string): 'narrowed' | 'changed' {
  const want = conditions(desired);
  const have = conditions(observed);
  return have.length > want.length && want.every((c) => have.includes(c)) ? 'narrowed' : 'changed';
}

/** The drift findings of one export-mode cluster (pure). `applied`: the spec last applied, if any. */
export function driftFindings(
  cluster: Pick<Cluster, 'id' | 'jurisdiction'>,
  spec: ExportSpec,
  observed: ExportObserved | null,
  applied: AppliedExportRecord | undefined,
  at: string,
): Finding[] {
  const f = (kind: string, severity: Finding['severity'], message: string): Finding => ({
    clusterId: cluster.id,
    jurisdiction: cluster.jurisdiction,
    kind,
    severity,
    message,
    at,
  });
  if (observed === null) {
    return applied
      ? [
          f(
            'export-missing',
            'critical',
            `audit export ${spec.name}, applied ${applied.at}, is gone: no audit events reach the evidence store`,
          ),
        ]
      : [
          f(
            'export-not-set-up',
            'high',
            `audit export ${spec.name} does not exist yet: run 'fleetward audit apply' (the cluster is in export mode, so collect skips it)`,
          ),
        ];
  }
  const out: Finding[] = [];
  if (!observed.enabled) {
    out.push(f('export-disabled', 'high', `audit export ${spec.name} exists but does not deliver`));
  }
  if (observed.destination !== spec.destination) {
    out.push(
      f(
        'export-destination-changed',
        'critical',
        `audit export ${spec.name} delivers to ${observed.destination || '(none)'}, not to ${spec.destination}`,
      ),
    );
  }
  if (observed.filter !== spec.filter) {
    const how = filterDrift(spec.filter, observed.filter);
    out.push(
      f(
        `export-filter-${how}`,
        'high',
        `audit export ${spec.name} filter is ${JSON.stringify(observed.filter)}, not ${JSON.stringify(spec.filter)}${how === 'narrowed' ? ': audit events are left out' : ''}`,
      ),
    );
  }
  const settings = Object.keys(spec.settings)
    .sort()
    .filter((k) => (observed.settings[k] ?? '') !== spec.settings[k]);
  if (settings.length > 0) {
    out.push(
      f(
        'export-settings-changed',
        // Where the objects land or which bucket takes them is as grave as the destination.
        settings.some((k) => /bucket|prefix/i.test(k)) ? 'critical' : 'medium',
        `audit export ${spec.name} differs in ${settings.map((k) => `${k} (${JSON.stringify(observed.settings[k] ?? '')}, want ${JSON.stringify(spec.settings[k])})`).join(', ')}`,
      ),
    );
  }
  if (observed.deliveryErrors.length > 0) {
    out.push(
      f(
        'export-delivery-errors',
        'high',
        `audit export ${spec.name} reports delivery errors: ${observed.deliveryErrors.slice(0, 3).join('; ')}`,
      ),
    );
  }
  return out;
}

/** Counts of a plan. */
export function summariseExport(plans: readonly ClusterExportPlan[]): ExportSummary {
  const live = plans.filter((p) => !p.refused && !p.error);
  return {
    create: live.filter((p) => p.action === 'create').length,
    update: live.filter((p) => p.action === 'update').length,
    unchanged: live.filter((p) => p.action === 'none').length,
    refused: plans.filter((p) => p.refused).length,
    failed: plans.filter((p) => p.error).length,
    findings: plans.reduce((n, p) => n + p.findings.length, 0),
  };
}

const toChange = (p: ClusterExportPlan) =>
  !p.refused && !p.error && (p.action === 'create' || p.action === 'update');

// ---------------------------------------------------------------------------------------------
// Planning

async function planCluster(
  deps: AuditExportDeps,
  cluster: Cluster,
  at: Date,
  signal?: AbortSignal,
): Promise<ClusterExportPlan | undefined> {
  const mode = auditModeOf(deps.config, cluster);
  const now = at.toISOString();
  const s = signal ? { signal } : {};
  const base = {
    clusterId: cluster.id,
    cloud: cluster.cloud,
    jurisdiction: cluster.jurisdiction,
    mode,
    changes: [] as FieldChange[],
  };
  const finding = findingsOf(cluster, now);
  const skip = (f: Finding): ClusterExportPlan => ({ ...base, action: 'skip', findings: [f] });
  const applied = await deps.store.get<AppliedExportRecord>(AUDIT_EXPORT_NS, `applied/${cluster.id}`);

  if (mode === 'pull') {
    // Only a cluster whose export Fleetward applied once can still have one: others cost no call.
    if (!applied || cluster.cloud === 'kubeconfig') return undefined;
    const exporter = await deps.exporters.for(cluster.cloud);
    if (!exporter) return undefined;
    try {
      const observed = await exporter.observe(cluster, applied.spec, s);
      if (!observed) {
        // Gone: nothing left to report, and no call for it next time.
        await deps.store.deleteMany(AUDIT_EXPORT_NS, [`applied/${cluster.id}`]);
        return undefined;
      }
      return skip(
        finding(
          'export-left-in-pull-mode',
          'medium',
          `the cluster is in pull mode, but its audit export ${observed.name} (applied ${applied.at}) still exists; Fleetward does not delete it: remove it by hand, or set audit.mode to export`,
        ),
      );
    } catch (error) {
      if (signal?.aborted) throw error;
      return { ...base, action: 'skip', findings: [], error: errorInfo(error) };
    }
  }

  const jurisdiction = deps.config.jurisdictions[cluster.jurisdiction];
  if (!jurisdiction) {
    return skip(
      finding(
        'unassigned',
        'high',
        'cluster is in no configured jurisdiction: its audit log is not exported',
      ),
    );
  }
  if (cluster.cloud === 'kubeconfig') {
    return skip(
      finding(
        'export-unsupported',
        'high',
        'a kubeconfig cluster has no cloud export path: use audit.mode pull for it',
      ),
    );
  }
  if (!jurisdiction.evidence?.[cluster.cloud]) {
    return skip(
      finding(
        'export-no-evidence-bucket',
        'high',
        `jurisdictions.${cluster.jurisdiction}.evidence has no ${cluster.cloud} bucket: export cannot cross clouds, so the ${cluster.cloud} export path has nowhere to deliver`,
      ),
    );
  }
  const exporter: AuditExporter | undefined = await deps.exporters.for(cluster.cloud);
  if (!exporter) {
    return skip(
      finding('export-unsupported', 'high', `clouds.${cluster.cloud} is not configured: no export path`),
    );
  }
  let store: ArchiveStore;
  try {
    store = await deps.evidence.for(cluster.jurisdiction, cluster.cloud);
  } catch (error) {
    if (signal?.aborted) throw error;
    return skip(finding('archive-unavailable', 'high', `no evidence store: ${errorInfo(error).message}`));
  }
  const spec = exporter.desired(cluster, store);

  let observed: ExportObserved | null;
  try {
    observed = await exporter.observe(cluster, spec, s);
  } catch (error) {
    if (signal?.aborted) throw error;
    deps.logger.warn('Audit export could not be observed', { cluster: cluster.id, error: errorInfo(error) });
    return { ...base, action: 'skip', spec, findings: [], error: errorInfo(error) };
  }
  const changes = diffExport(spec, observed);
  const findings = driftFindings(cluster, spec, observed, applied, now);
  const action: ExportAction = observed === null ? 'create' : changes.length > 0 ? 'update' : 'none';

  // Every destination passes the write-once check and the residency guard, on every plan: a
  // bucket unlocked or moved since the last apply is drift too.
  let refused: string | undefined;
  try {
    const location = await exporter.checkDestination(cluster, spec, jurisdiction.audit.retentionDays, s);
    deps.residency.assertResidency(
      { jurisdiction: cluster.jurisdiction, clusterId: cluster.id },
      { cloud: location.cloud, region: location.region, what: 'audit export destination' },
    );
  } catch (error) {
    if (signal?.aborted) throw error;
    if (!(error instanceof FleetwardError)) throw error;
    refused = error.message;
    findings.push(
      finding(
        error instanceof ResidencyError ? 'export-outside-jurisdiction' : 'export-destination-refused',
        'critical',
        `audit export destination refused, nothing is applied: ${error.message}`,
      ),
    );
  }
  return { ...base, action, spec, changes, findings, ...(refused ? { refused } : {}) };
}

async function record(deps: AuditExportDeps, run: string, at: string, plans: ClusterExportPlan[]) {
  const readable = plans.filter((p) => !p.error);
  if (readable.length > 0) {
    await deps.store.putMany(
      AUDIT_EXPORT_NS,
      readable.map((plan) => ({ key: `plan/${plan.clusterId}`, value: { runId: run, at, plan } })),
    );
  }
  for (const plan of readable)
    await recordFindings(deps.store, AUDIT_EXPORT_JOB, plan.clusterId, plan.findings);
}

async function planAll(deps: AuditExportDeps, options: RunOptions) {
  const at = deps.clock.now();
  const run = runId(at);
  const clusters = await inventory(deps.store, options);
  let done = 0;
  const planned = await forEachCluster(clusters, CLUSTER_CONCURRENCY, (c) =>
    planCluster(deps, c, at, options.signal).finally(() => options.onProgress?.(++done, clusters.length)),
  );
  const plans = planned.filter((p): p is ClusterExportPlan => p !== undefined);
  plans.sort((a, b) => a.clusterId.localeCompare(b.clusterId));
  // Clusters with nothing to report (pull mode, no export left) close their old findings.
  const quiet = clusters.filter((c) => !plans.some((p) => p.clusterId === c.id));
  for (const c of quiet) await recordFindings(deps.store, AUDIT_EXPORT_JOB, c.id, []);
  await record(deps, run, at.toISOString(), plans);
  return { run, at, clusters, plans, summary: summariseExport(plans) };
}

/** Observes every export-mode cluster (or one) and plans; records the plan and findings, changes no cloud. */
export async function plan(deps: AuditExportDeps, options: RunOptions = {}): Promise<ExportPlanResult> {
  const p = await planAll(deps, options);
  deps.logger.info('Audit export planned', { runId: p.run, ...p.summary });
  return { runId: p.run, at: p.at.toISOString(), plans: p.plans, summary: p.summary };
}

/**
 * Plans, then creates or updates each cluster's export (unless dry run, or more clusters to
 * change than `maxChanges`: then nothing is applied). Dry run defaults to `stage !== 'prod'`.
 */
export async function apply(
  deps: AuditExportDeps,
  options: RunOptions & { dryRun?: boolean | undefined; maxChanges?: number | undefined } = {},
): Promise<ExportApplyResult> {
  const dryRun = options.dryRun ?? deps.config.stage !== 'prod';
  const maxChanges = options.maxChanges ?? deps.config.policies.maxChanges;
  const p = await planAll(deps, options);
  const base = { runId: p.run, at: p.at.toISOString(), plans: p.plans, summary: p.summary, dryRun };
  const passive = (plan: ClusterExportPlan): ExportOutcome => ({
    clusterId: plan.clusterId,
    action: plan.action,
    status: plan.error
      ? 'failed'
      : plan.refused
        ? 'refused'
        : plan.action === 'skip'
          ? 'skipped'
          : plan.action === 'none'
            ? 'unchanged'
            : 'planned',
    ...(plan.error ? { error: plan.error } : {}),
  });
  const changing = p.plans.filter(toChange);
  if (changing.length > maxChanges) {
    const error = new TooManyExportChangesError(changing.length, maxChanges);
    deps.logger.warn('Audit export apply refused', { runId: p.run, clusters: changing.length, maxChanges });
    return {
      ...base,
      tooMany: { clusters: changing.length, maxChanges, message: error.message },
      outcomes: p.plans.map(passive),
      applied: 0,
    };
  }
  if (dryRun) return { ...base, outcomes: p.plans.map(passive), applied: 0 };

  const byId = new Map(p.clusters.map((c) => [c.id, c]));
  const outcomes = await forEachCluster(
    p.plans.map((plan) => byId.get(plan.clusterId)!),
    CLUSTER_CONCURRENCY,
    async (cluster): Promise<ExportOutcome> => {
      const plan = p.plans.find((x) => x.clusterId === cluster.id)!;
      if (!toChange(plan) || !plan.spec) return passive(plan);
      try {
        const exporter = (await deps.exporters.for(cluster.cloud as RegionCloud))!;
        await exporter.apply(cluster, plan.spec, options.signal ? { signal: options.signal } : {});
      } catch (error) {
        if (options.signal?.aborted) throw error;
        deps.logger.warn('Audit export could not be applied', {
          cluster: cluster.id,
          error: errorInfo(error),
        });
        return { clusterId: cluster.id, action: plan.action, status: 'failed', error: errorInfo(error) };
      }
      const at = deps.clock.now().toISOString();
      await deps.store.putMany(AUDIT_EXPORT_NS, [
        {
          key: `applied/${cluster.id}`,
          value: { runId: p.run, at, clusterId: cluster.id, spec: plan.spec } satisfies AppliedExportRecord,
        },
      ]);
      // What the apply put right is no longer open; delivery errors stay until the cloud clears them.
      const open = plan.findings.filter((f) => f.kind === 'export-delivery-errors');
      await recordFindings(deps.store, AUDIT_EXPORT_JOB, cluster.id, open);
      return { clusterId: cluster.id, action: plan.action, status: 'applied' };
    },
  );
  const applied = outcomes.filter((o) => o.status === 'applied').length;
  deps.logger.info('Audit export applied', {
    runId: p.run,
    applied,
    failed: outcomes.filter((o) => o.status === 'failed').length,
  });
  return { ...base, outcomes, applied };
}
