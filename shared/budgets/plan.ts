/**
 * The budget plan, pure: configured budgets against the managed budgets that exist, as
 * `create | update | delete` changes, and the clusters no configured budget covers.
 */
import type { BudgetConfig } from '../config/schema.ts';
import type { Cluster } from '../model.ts';
import { type ActualBudget, budgetAddress } from './port.ts';

/** One field that differs between the cloud and the config. */
export interface FieldDiff {
  field: string;
  before: unknown;
  after: unknown;
}

export type BudgetChange =
  | { action: 'create'; address: string; cloud: BudgetConfig['cloud']; name: string; desired: BudgetConfig }
  | {
      action: 'update';
      address: string;
      cloud: BudgetConfig['cloud'];
      name: string;
      desired: BudgetConfig;
      actual: ActualBudget;
      diffs: FieldDiff[];
    }
  | { action: 'delete'; address: string; cloud: BudgetConfig['cloud']; name: string; actual: ActualBudget };

/** A cluster whose account, project or subscription no configured budget covers. */
export interface CoverageFinding {
  clusterId: string;
  jurisdiction: string;
  kind: 'budget-missing';
  severity: 'medium';
  message: string;
  at: string;
}

/** A managed budget the adapter could not read in full (see `ActualBudget.problems`). */
export interface BudgetFinding {
  address: string;
  cloud: BudgetConfig['cloud'];
  kind: 'budget-unreadable';
  severity: 'medium';
  message: string;
  at: string;
}

/** One `budget-unreadable` finding per problem of each listed budget, in address order. */
export function budgetFindings(actual: readonly ActualBudget[], now: Date): BudgetFinding[] {
  return actual
    .flatMap((a) =>
      (a.problems ?? []).map((message) => ({
        address: budgetAddress(a),
        cloud: a.cloud,
        kind: 'budget-unreadable' as const,
        severity: 'medium' as const,
        message,
        at: now.toISOString(),
      })),
    )
    .sort((x, y) => x.address.localeCompare(y.address));
}

const sorted = (values: readonly string[] | undefined): string[] => [...(values ?? [])].sort();

function thresholds(t: BudgetConfig['thresholds']): string[] {
  return t.map((x) => `${x.spend}@${Number(x.percent.toFixed(6))}`).sort();
}

function tagFilter(f: { key: string; values: string[] } | undefined): string | null {
  return f ? `${f.key}=${sorted(f.values).join('|')}` : null;
}

/** The comparable fields of a budget, canonical (sorted lists, rounded numbers), by field name. */
export function comparable(b: BudgetConfig | ActualBudget): Record<string, unknown> {
  const common = {
    amount: Number(b.amount.toFixed(6)),
    currency: b.currency,
    period: b.period,
    thresholds: thresholds(b.thresholds),
    // A configured budget has none; a listed one has those the config cannot say.
    otherFilters: sorted('filtersNotInConfig' in b ? b.filtersNotInConfig : []),
  };
  switch (b.cloud) {
    case 'aws':
      return {
        ...common,
        tagFilter: tagFilter(b.scope.tagFilter),
        emails: sorted(b.notify.emails),
        snsTopicArn: b.notify.snsTopicArn ?? null,
      };
    case 'gcp':
      return {
        ...common,
        projects: sorted(b.scope.projects),
        labels: Object.fromEntries(
          Object.entries(b.scope.labels ?? {})
            .sort(([x], [y]) => x.localeCompare(y))
            .map(([k, v]) => [k, sorted(v)]),
        ),
        pubsubTopic: b.notify.pubsubTopic ?? null,
        channels: sorted(b.notify.channels),
      };
    case 'azure':
      return {
        ...common,
        tagFilter: tagFilter(b.scope.tagFilter),
        emails: sorted(b.notify.emails),
        actionGroups: sorted(b.notify.actionGroups),
      };
  }
}

/** The fields in which `actual` differs from `desired` (a currency the cloud does not report is not compared). */
export function diffBudget(desired: BudgetConfig, actual: ActualBudget): FieldDiff[] {
  const want = comparable(desired);
  const have = comparable(actual);
  const diffs: FieldDiff[] = [];
  for (const [field, after] of Object.entries(want)) {
    const before = have[field];
    if (field === 'currency' && before === null) continue;
    if (JSON.stringify(before) !== JSON.stringify(after)) diffs.push({ field, before, after });
  }
  return diffs;
}

/**
 * Desired against actual. Budgets are matched by cloud, scope and name: one whose scope
 * moved is deleted where it was and created where it belongs. `actual` must hold managed
 * budgets only (adapters never list others). Changes come in address order.
 */
export function planBudgets(
  desired: readonly BudgetConfig[],
  actual: readonly ActualBudget[],
): BudgetChange[] {
  const have = new Map(actual.map((a) => [budgetAddress(a), a]));
  const changes: BudgetChange[] = [];
  const wanted = new Set<string>();
  for (const d of desired) {
    const address = budgetAddress(d);
    wanted.add(address);
    const a = have.get(address);
    if (!a) {
      changes.push({ action: 'create', address, cloud: d.cloud, name: d.name, desired: d });
      continue;
    }
    const diffs = diffBudget(d, a);
    if (diffs.length > 0)
      changes.push({ action: 'update', address, cloud: d.cloud, name: d.name, desired: d, actual: a, diffs });
  }
  for (const [address, a] of have) {
    if (!wanted.has(address))
      changes.push({ action: 'delete', address, cloud: a.cloud, name: a.name, actual: a });
  }
  return changes.sort((x, y) => x.address.localeCompare(y.address));
}

/** Whether a configured budget covers a cluster's account, project or subscription (tag and label filters aside). */
export function covers(budget: BudgetConfig, cluster: Cluster): boolean {
  if (budget.cloud !== cluster.cloud) return false;
  switch (budget.cloud) {
    case 'aws':
      return budget.scope.account === cluster.scope;
    case 'gcp':
      // No projects: every project of the billing account.
      return budget.scope.projects.length === 0 || budget.scope.projects.includes(cluster.scope);
    case 'azure':
      return (
        budget.scope.subscription.toLowerCase() === cluster.scope.toLowerCase() &&
        (budget.scope.resourceGroup === undefined ||
          budget.scope.resourceGroup.toLowerCase() === cluster.resourceGroup?.toLowerCase())
      );
  }
}

const SCOPE_WORD = { aws: 'AWS account', gcp: 'GCP project', azure: 'Azure subscription' } as const;

/** One `budget-missing` finding per AWS, GCP or Azure cluster that no configured budget covers. */
export function coverageFindings(
  desired: readonly BudgetConfig[],
  clusters: readonly Cluster[],
  now: Date,
): CoverageFinding[] {
  const findings: CoverageFinding[] = [];
  for (const cluster of clusters) {
    if (cluster.cloud !== 'aws' && cluster.cloud !== 'gcp' && cluster.cloud !== 'azure') continue;
    if (desired.some((b) => covers(b, cluster))) continue;
    findings.push({
      clusterId: cluster.id,
      jurisdiction: cluster.jurisdiction,
      kind: 'budget-missing',
      severity: 'medium',
      message: `no budget covers ${SCOPE_WORD[cluster.cloud]} ${cluster.scope}${
        cluster.cloud === 'azure' && cluster.resourceGroup ? ` (resource group ${cluster.resourceGroup})` : ''
      }: add one to budgets in fleet.yaml`,
      at: now.toISOString(),
    });
  }
  return findings.sort((a, b) => a.clusterId.localeCompare(b.clusterId));
}

function money(b: { amount: number; currency: string | null; period: string }): string {
  return `amount ${b.amount}${b.currency ? ` ${b.currency}` : ''} ${b.period}`;
}

const show = (v: unknown): string =>
  typeof v === 'string' || typeof v === 'number' ? String(v) : JSON.stringify(v);

/** Terraform-like lines of a plan: `+`, `~` with one line per field, `-`. */
export function renderChanges(changes: readonly BudgetChange[]): string[] {
  const lines: string[] = [];
  for (const c of changes) {
    if (c.action === 'create') lines.push(`+ ${c.address}  ${money(c.desired)}`);
    else if (c.action === 'delete') lines.push(`- ${c.address}  ${money(c.actual)}`);
    else {
      lines.push(`~ ${c.address}`);
      for (const d of c.diffs) lines.push(`    ${d.field}: ${show(d.before)} -> ${show(d.after)}`);
    }
  }
  return lines;
}

/** `Plan: N to create, N to update, N to delete; K clusters without a budget[; U budgets not fully readable].` */
export function summarise(
  changes: readonly BudgetChange[],
  findings: readonly CoverageFinding[],
  unreadable: readonly BudgetFinding[] = [],
): string {
  const n = (a: BudgetChange['action']) => changes.filter((c) => c.action === a).length;
  const budgets = new Set(unreadable.map((f) => f.address)).size;
  return `Plan: ${n('create')} to create, ${n('update')} to update, ${n('delete')} to delete; ${findings.length} clusters without a budget${
    budgets > 0 ? `; ${budgets} budgets not fully readable` : ''
  }.`;
}
