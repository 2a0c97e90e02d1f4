/**
 * `fleetward budgets plan|apply`: budgets in fleet.yaml as desired state.
 * Exit codes: 0 done, 1 some cloud or budget failed or the apply was refused, 2 bad usage or config.
 */
import { DEFAULT_CONFIG_FILE, loadConfig } from '../shared/config/load.ts';
import { apply, type BudgetApplyResult, plan, renderApply, renderPlan } from '../shared/jobs/budgets.ts';
import { budgetJobDeps, closeBudgetJobDeps } from '../shared/runtime/deps/budgets.ts';
import { ConfigError, UsageError } from '../shared/runtime/errors.ts';
import { cliLogger } from '../shared/runtime/logger.ts';
import type { BudgetPlanResult } from '../shared/state/records.ts';
import { LOG_OPTIONS, parseCommandArgs } from './args.ts';
import { ensureInventory } from './inventory.ts';
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

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('budgets', {
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      'max-changes': { type: 'string' },
      json: { type: 'boolean', default: false },
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
  if (sub !== 'plan' && sub !== 'apply')
    throw new UsageError(`unknown budgets command "${sub}" (expected plan or apply)`);
  const maxChanges = positiveInt(values['max-changes']);
  if (maxChanges !== undefined && sub !== 'apply')
    throw new UsageError('--max-changes applies to "budgets apply" only');
  const logger = cliLogger(values);
  const config = await loadConfig(values.config ?? process.env.FLEETWARD_CONFIG ?? DEFAULT_CONFIG_FILE);
  const deps = await budgetJobDeps(config, logger);
  try {
    // Coverage findings need the inventory.
    await ensureInventory(config, deps.store, logger);
    if (sub === 'plan') {
      const result = await plan(deps);
      const code = result.failures.length > 0 ? EXIT.failed : EXIT.ok;
      console.log(
        values.json
          ? JSON.stringify(result, null, 2)
          : `${renderPlan(result)}\n${summaryLine(planCounts(result), code)}`,
      );
      return code;
    }
    const result = await apply(deps, maxChanges === undefined ? {} : { maxChanges });
    const code = result.refused || result.failures.length > 0 ? EXIT.failed : EXIT.ok;
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

/** `fleetward budgets ...`; prints its own usage and config errors, so it runs alone too. */
export async function cmdBudgets(args: string[]): Promise<number> {
  try {
    return await run(args);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`fleetward: invalid config${error.file ? ` ${error.file}` : ''}:`);
      for (const issue of error.issues) console.error(`  ${issue.path}: ${issue.message}`);
      return EXIT.usage;
    }
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`fleetward: ${(error as Error).message}\nRun 'fleetward budgets --help' for usage.`);
      return EXIT.usage;
    }
    console.error(`fleetward: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
    return EXIT.failed;
  }
}

if (import.meta.main) {
  process.exitCode = await cmdBudgets(process.argv.slice(2));
}
