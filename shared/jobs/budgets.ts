/**
 * The budgets job: budgets in fleet.yaml are desired state. `plan` compares them with the
 * Fleetward-managed budgets that exist in each cloud; `apply` creates the missing ones,
 * updates drifted ones and deletes managed ones that left the config. Budgets without the
 * `fleetward-` prefix are never listed, so never touched.
 *
 * Rules (as for every mutating job): more changes than `maxChanges` refuses the whole apply
 * and writes nothing to any cloud; each cloud is independent (one cloud failing to list or
 * to apply a change never stops the others, and the result names the cloud and budget).
 * Records go to the state store namespace `budgets`: `plan/latest` (drift as last seen),
 * `applied/<timestamp>` (what an apply did), `scopes` (where managed budgets were seen, so a
 * budget whose scope left the config is still found and deleted). Every AWS, GCP and Azure
 * cluster of the inventory that no configured budget covers gets a `budget-missing` finding
 * (`findings` namespace, key `budgets/<cluster-id>`).
 */
import {
  type BudgetChange,
  type BudgetFinding,
  budgetFindings,
  type CoverageFinding,
  coverageFindings,
  planBudgets,
  summarise,
} from '../budgets/plan.ts';
import { BUDGET_CLOUDS, type BudgetCloud, type BudgetProviders, scopeKey } from '../budgets/port.ts';
import type { FleetConfig } from '../config/schema.ts';
import type { Clock, Log, StateStore } from '../ports.ts';
import { type ErrorInfo, errorInfo } from '../runtime/errors.ts';
import { wrapHanging } from '../runtime/table.ts';
import {
  BUDGET_PLAN_KEY,
  BUDGETS_NS,
  type BudgetFailure,
  type BudgetPlanResult,
  type ChangeView,
  NS,
} from '../state/records.ts';
import { inventory, runId } from './fleet.ts';

export interface BudgetJobDeps {
  config: FleetConfig;
  store: StateStore;
  providers: BudgetProviders;
  logger: Log;
  clock: Clock;
}

export interface ChangeOutcome extends ChangeView {
  status: 'applied' | 'failed' | 'planned' | 'refused';
  error?: ErrorInfo;
}

export interface BudgetApplyResult {
  runId: string;
  at: string;
  dryRun: boolean;
  /** Set when the plan had more changes than allowed: nothing was written. */
  refused?: { changes: number; maxChanges: number };
  changes: ChangeOutcome[];
  findings: CoverageFinding[];
  budgetFindings: BudgetFinding[];
  failures: BudgetFailure[];
  /** Clouds with a failure (listing or a change). */
  failedClouds: BudgetCloud[];
  summary: string;
}

type KnownScopes = Partial<Record<BudgetCloud, string[]>>;

const view = (c: BudgetChange): ChangeView => ({
  action: c.action,
  address: c.address,
  cloud: c.cloud,
  name: c.name,
  ...(c.action === 'update' ? { diffs: c.diffs } : {}),
  ...(c.action === 'create' ? { detail: money(c.desired) } : {}),
  ...(c.action === 'delete' ? { detail: money(c.actual) } : {}),
});

function money(b: { amount: number; currency: string | null; period: string }): string {
  return `amount ${b.amount}${b.currency ? ` ${b.currency}` : ''} ${b.period}`;
}

/** Scopes to list per cloud: the config's budgets, the configured accounts/subscriptions, and where managed budgets were seen. */
function scopesToList(config: FleetConfig, known: KnownScopes): Record<BudgetCloud, string[]> {
  const out: Record<BudgetCloud, Set<string>> = { aws: new Set(), gcp: new Set(), azure: new Set() };
  for (const b of config.budgets) out[b.cloud].add(scopeKey(b));
  for (const a of config.clouds.aws?.accounts ?? []) out.aws.add(a.id);
  for (const s of config.clouds.azure?.subscriptions ?? []) out.azure.add(s.id.toLowerCase());
  for (const cloud of BUDGET_CLOUDS) for (const s of known[cloud] ?? []) out[cloud].add(s);
  return { aws: [...out.aws].sort(), gcp: [...out.gcp].sort(), azure: [...out.azure].sort() };
}

function configured(config: FleetConfig, cloud: BudgetCloud): boolean {
  return config.clouds[cloud] !== undefined;
}

interface InternalPlan {
  id: string;
  at: Date;
  changes: BudgetChange[];
  findings: CoverageFinding[];
  budgetFindings: BudgetFinding[];
  failures: BudgetFailure[];
}

async function computePlan(deps: BudgetJobDeps, signal?: AbortSignal): Promise<InternalPlan> {
  const at = deps.clock.now();
  const id = runId(at);
  const { config, store } = deps;
  const known = (await store.get<KnownScopes>(BUDGETS_NS, 'scopes')) ?? {};
  const scopes = scopesToList(config, known);
  const failures: BudgetFailure[] = [];
  const changes: BudgetChange[] = [];
  const unreadable: BudgetFinding[] = [];
  const seen: KnownScopes = {};
  await Promise.all(
    BUDGET_CLOUDS.map(async (cloud) => {
      const desired = config.budgets.filter((b) => b.cloud === cloud);
      if (scopes[cloud].length === 0) return;
      // A cloud that is not configured and has no budgets in the config is none of this run's business.
      if (!configured(config, cloud) && desired.length === 0) return;
      try {
        const provider = await deps.providers.get(cloud);
        const actual = await provider.list(scopes[cloud], signal ? { signal } : {});
        changes.push(...planBudgets(desired, actual));
        unreadable.push(...budgetFindings(actual, at));
        seen[cloud] = [...new Set([...desired.map(scopeKey), ...actual.map(scopeKey)])].sort();
      } catch (error) {
        if (signal?.aborted) throw error;
        deps.logger.warn('Budgets could not be listed', { cloud, error: errorInfo(error) });
        failures.push({ cloud, error: errorInfo(error) });
        // Keep what was known: a cloud that failed this time must still be listed next time.
        seen[cloud] = known[cloud] ?? [];
      }
    }),
  );
  changes.sort((a, b) => a.address.localeCompare(b.address));
  unreadable.sort((a, b) => a.address.localeCompare(b.address));
  for (const f of unreadable)
    deps.logger.warn('Budget could not be read in full', { address: f.address, problem: f.message });
  failures.sort((a, b) => a.cloud.localeCompare(b.cloud));
  await store.putMany(BUDGETS_NS, [{ key: 'scopes', value: seen }]);

  const clusters = await inventory(store);
  const findings = coverageFindings(config.budgets, clusters, at);
  const open = new Set(findings.map((f) => f.clusterId));
  if (findings.length > 0)
    await store.putMany(
      NS.findings,
      findings.map((f) => ({ key: `budgets/${f.clusterId}`, value: [f] })),
    );
  const closed = clusters.filter((c) => !open.has(c.id)).map((c) => `budgets/${c.id}`);
  if (closed.length > 0) await store.deleteMany(NS.findings, closed);
  return { id, at, changes, findings, budgetFindings: unreadable, failures };
}

async function recordPlan(deps: BudgetJobDeps, plan: InternalPlan): Promise<BudgetPlanResult> {
  const result: BudgetPlanResult = {
    runId: plan.id,
    at: plan.at.toISOString(),
    changes: plan.changes.map(view),
    findings: plan.findings,
    budgetFindings: plan.budgetFindings,
    failures: plan.failures,
    summary: summarise(plan.changes, plan.findings, plan.budgetFindings),
  };
  await deps.store.putMany(BUDGETS_NS, [{ key: BUDGET_PLAN_KEY, value: result }]);
  return result;
}

/** What applying the config would change, and which clusters no budget covers. Writes no cloud. */
export async function plan(
  deps: BudgetJobDeps,
  options: { signal?: AbortSignal } = {},
): Promise<BudgetPlanResult> {
  const p = await computePlan(deps, options.signal);
  const result = await recordPlan(deps, p);
  deps.logger.info('Budgets planned', { runId: p.id, summary: result.summary, failures: p.failures.length });
  return result;
}

/**
 * Plans, then applies. `dryRun` stops after the plan; more changes than `maxChanges`
 * (default `policies.maxChanges`) refuses every change. Changes of one cloud run one after
 * another; clouds run side by side and fail independently.
 */
export async function apply(
  deps: BudgetJobDeps,
  options: { maxChanges?: number; dryRun?: boolean; signal?: AbortSignal } = {},
): Promise<BudgetApplyResult> {
  const { signal } = options;
  const p = await computePlan(deps, signal);
  const planned = await recordPlan(deps, p);
  const maxChanges = options.maxChanges ?? deps.config.policies.maxChanges;
  const dryRun = options.dryRun ?? false;
  const base = {
    runId: p.id,
    at: p.at.toISOString(),
    dryRun,
    findings: p.findings,
    budgetFindings: p.budgetFindings,
  };
  const failedClouds = (failures: BudgetFailure[]) => [...new Set(failures.map((f) => f.cloud))].sort();
  if (dryRun) {
    return {
      ...base,
      changes: p.changes.map((c) => ({ ...view(c), status: 'planned' })),
      failures: p.failures,
      failedClouds: failedClouds(p.failures),
      summary: planned.summary,
    };
  }
  if (p.changes.length > maxChanges) {
    deps.logger.warn('Budget apply refused', { changes: p.changes.length, maxChanges });
    return {
      ...base,
      refused: { changes: p.changes.length, maxChanges },
      changes: p.changes.map((c) => ({ ...view(c), status: 'refused' })),
      failures: p.failures,
      failedClouds: failedClouds(p.failures),
      summary: `Refused: ${p.changes.length} changes exceed the limit of ${maxChanges} (policies.maxChanges or --max-changes); nothing was changed.`,
    };
  }
  const failures = [...p.failures];
  const outcomes: ChangeOutcome[] = [];
  await Promise.all(
    BUDGET_CLOUDS.map(async (cloud) => {
      const mine = p.changes.filter((c) => c.cloud === cloud);
      if (mine.length === 0) return;
      const provider = await deps.providers.get(cloud);
      const callOptions = signal ? { signal } : {};
      for (const change of mine) {
        signal?.throwIfAborted();
        try {
          if (change.action === 'create') await provider.create(change.desired, callOptions);
          else if (change.action === 'update')
            await provider.update(change.desired, change.actual, callOptions);
          else await provider.delete(change.actual, callOptions);
          outcomes.push({ ...view(change), status: 'applied' });
        } catch (error) {
          if (signal?.aborted) throw error;
          const info = errorInfo(error);
          deps.logger.warn('Budget change failed', {
            address: change.address,
            action: change.action,
            error: info,
          });
          outcomes.push({ ...view(change), status: 'failed', error: info });
          failures.push({ cloud, address: change.address, error: info });
        }
      }
    }),
  );
  outcomes.sort((a, b) => a.address.localeCompare(b.address));
  failures.sort((a, b) => `${a.cloud}/${a.address ?? ''}`.localeCompare(`${b.cloud}/${b.address ?? ''}`));
  const n = (s: ChangeOutcome['status']) => outcomes.filter((o) => o.status === s).length;
  const result: BudgetApplyResult = {
    ...base,
    changes: outcomes,
    failures,
    failedClouds: failedClouds(failures),
    summary: `Apply: ${n('applied')} applied, ${n('failed')} failed; ${p.findings.length} clusters without a budget.`,
  };
  if (outcomes.length > 0) {
    await deps.store.putMany(BUDGETS_NS, [
      { key: `applied/${p.at.toISOString()}-${p.id.slice(-8)}`, value: result },
    ]);
  }
  deps.logger.info('Budgets applied', { runId: p.id, summary: result.summary });
  return result;
}

function renderFailures(failures: readonly BudgetFailure[]): string[] {
  return failures.flatMap((f) =>
    f.address
      ? wrapHanging(`! ${f.address}: `, f.error.message, 4)
      : wrapHanging(`! ${f.cloud}: `, `budgets could not be read: ${f.error.message}`, 4),
  );
}

function renderFindings(
  findings: readonly CoverageFinding[],
  unreadable: readonly BudgetFinding[] = [],
): string[] {
  return [
    ...unreadable.flatMap((f) => wrapHanging(`? ${f.address}: `, f.message, 4)),
    ...findings.flatMap((f) => wrapHanging(`? ${f.clusterId}: `, f.message, 4)),
  ];
}

/** Terraform-like text of a plan. */
export function renderPlan(result: BudgetPlanResult): string {
  return [
    ...renderChangeViews(result.changes),
    ...renderFindings(result.findings, result.budgetFindings ?? []),
    ...renderFailures(result.failures),
    result.summary,
  ].join('\n');
}

function renderChangeViews(changes: readonly ChangeView[]): string[] {
  return changes.flatMap((c) =>
    c.action === 'update'
      ? [
          `~ ${c.address}`,
          ...(c.diffs ?? []).map((d) => `    ${d.field}: ${show(d.before)} -> ${show(d.after)}`),
        ]
      : [`${c.action === 'create' ? '+' : '-'} ${c.address}${c.detail ? `  ${c.detail}` : ''}`],
  );
}

const show = (v: unknown): string =>
  typeof v === 'string' || typeof v === 'number' ? String(v) : JSON.stringify(v);

/** Text of an apply: what was done per change, then failures and the summary. */
export function renderApply(result: BudgetApplyResult): string {
  const lines = result.changes.flatMap((c) => {
    const mark = c.action === 'create' ? '+' : c.action === 'update' ? '~' : '-';
    return wrapHanging(`${mark} ${c.address}  `, `${c.status}${c.error ? `: ${c.error.message}` : ''}`, 4);
  });
  return [
    ...lines,
    ...renderFindings(result.findings, result.budgetFindings),
    ...renderFailures(result.failures.filter((f) => !f.address)),
    result.summary,
  ].join('\n');
}
