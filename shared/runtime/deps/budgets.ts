/**
 * The wiring of the budgets job (`reconcile-budgets`, `fleetward budgets`): the budget adapters
 * of the configured clouds. Its own module, so that bundle reaches the budget adapters only.
 */
import { createBudgetProviders } from '../../clouds/budget-registry.ts';
import type { FleetConfig } from '../../config/schema.ts';
import type { BudgetJobDeps } from '../../jobs/budgets.ts';
import type { Log } from '../../ports.ts';
import { baseDeps } from './base.ts';

/** The deps of the budgets job: the state store and the budget adapters, built per cloud on first use. */
export async function budgetJobDeps(config: FleetConfig, logger: Log): Promise<BudgetJobDeps> {
  return { ...(await baseDeps(config, logger)), providers: createBudgetProviders(config, { logger }) };
}

/** Releases the state store and every budget client. */
export async function closeBudgetJobDeps(deps: BudgetJobDeps): Promise<void> {
  await Promise.allSettled([deps.providers.close(), deps.store.close()]);
}
