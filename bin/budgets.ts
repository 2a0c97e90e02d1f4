/**
 * `fleetward budgets plan|apply`: budgets in fleet.yaml as desired state.
 * Exit codes: 0 done, 1 some cloud or budget failed or the apply was refused, 2 bad usage or config.
 */
import { configPath, loadConfig } from '../shared/config/load.ts';
import { apply, type BudgetApplyResult, plan, renderApply, renderPlan } from '../shared/jobs/budgets.ts';
import { budgetJobDeps, closeBudgetJobDeps } from '../shared/runtime/deps/budgets.ts';
import { UsageError } from '../shared/runtime/errors.ts';
import { cliLogger } from '../shared/runtime/logger.ts';
import type { BudgetPlanResult } from '../shared/state/records.ts';
import { LOG_OPTIONS, parseCommandArgs, subcommand } from './args.ts';
import { runReported } from './errors.ts';
import { ensureInventory } from './inventory.ts';
import { notifyAfter } from './notify.ts';
import { EXIT, summaryLine } from './output.ts';

export const BUDGETS_HELP = `Usage:
  fleetward budgets plan  [--config FILE] [--json] [--log-level LEVEL] [--log-format FORMAT]
  fleetward budgets apply [--max-changes N] [--config FILE] [--json] [--log-level LEVEL] [--log-format FORMAT]

Budgets in fleet.yaml are desired state. 'plan' lists the Fleetward-managed budgets (named
fleetward-<name>) of every AWS account, GCP billing account and Azure subscription or
resource group the config mentions and prints what 'apply' would do:
  + create a missing budget, ~ update a drifted one (field: before -> after),
  - delete a managed budget that left the config. Budgets not named fleetward-* are never touched.
It also names every AWS, GCP and Azure cluster whose account, project or subscription no
budget covers. 'apply' makes those changes; more than --max-changes (default
policies.maxChanges) refuses all of them. One cloud failing does not stop the others.
Runs discover first when the inventory is empty.

Options:
  --max-changes N   refuse an apply with more than N changes
  --json            print {"changes": [...], "findings": [...], "failures": [...], "summary": "..."}
  --notify          send the job's Slack digest of new findings, as the scheduled function does
Exit: 0 done, 1 some cloud or budget failed or the apply was refused, 2 bad usage or config.`;

function positiveInt(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError(`--max-changes must be a whole number, got "${value}"`);
  return n;
}

/** A plan's changes and findings for the summary line. */
function planCounts(result: BudgetPlanResult): Record<string, number> {
  const n = (action: string) => result.changes.filter((c) => c.action === action).length;
  return {
    'to create': n('create'),
    'to update': n('update'),
    'to delete': n('delete'),
    'clusters without a budget': result.findings.length,
    'clouds failed': result.failures.filter((f) => !f.address).length,
  };
}

/** What an apply did, for the summary line. */
function applyCounts(result: BudgetApplyResult): Record<string, number> {
  const n = (action: string) =>
    result.changes.filter((c) => c.action === action && c.status === 'applied').length;
  return {
    created: n('create'),
    updated: n('update'),
    deleted: n('delete'),
    'refused (over --max-changes)': result.changes.filter((c) => c.status === 'refused').length,
    failed: result.changes.filter((c) => c.status === 'failed').length,
    'clusters without a budget': result.findings.length,
    'clouds failed': result.failures.filter((f) => !f.address).length,
  };
}

/** `fleetward budgets ...`; returns the exit code, throws what `reportError` reports. */
export async function cmdBudgets(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('budgets', {
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      'max-changes': { type: 'string' },
      json: { type: 'boolean', default: false },
      notify: { type: 'boolean' },
      ...LOG_OPTIONS,
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [sub, ...rest] = positionals;
  if (values.help || !sub) {
    console.log(BUDGETS_HELP);
    return values.help ? EXIT.ok : EXIT.usage;
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  subcommand('budgets', sub, ['plan', 'apply']);
  const maxChanges = positiveInt(values['max-changes']);
  if (maxChanges !== undefined && sub !== 'apply')
    throw new UsageError('--max-changes applies to "budgets apply" only');
  const logger = cliLogger(values);
  const config = await loadConfig(configPath(values.config));
  const deps = await budgetJobDeps(config, logger);
  try {
    // Coverage findings need the inventory.
    await ensureInventory(config, deps.store, logger);
    if (sub === 'plan') {
      const result = await plan(deps);
      const notified = await notifyAfter(values.notify, deps, { job: 'budgets', runId: result.runId });
      const code = result.failures.length > 0 || !notified ? EXIT.failed : EXIT.ok;
      console.log(
        values.json
          ? JSON.stringify(result, null, 2)
          : `${renderPlan(result)}\n${summaryLine(planCounts(result), code)}`,
      );
      return code;
    }
    const result = await apply(deps, maxChanges === undefined ? {} : { maxChanges });
    const notified = await notifyAfter(values.notify, deps, { job: 'budgets', runId: result.runId });
    const code = result.refused || result.failures.length > 0 || !notified ? EXIT.failed : EXIT.ok;
    console.log(
      values.json
        ? JSON.stringify(result, null, 2)
        : `${renderApply(result)}\n${summaryLine(applyCounts(result), code)}`,
    );
    return code;
  } finally {
    await closeBudgetJobDeps(deps);
  }
}

if (import.meta.main) {
  process.exitCode = await runReported('budgets', cmdBudgets, process.argv.slice(2));
}
