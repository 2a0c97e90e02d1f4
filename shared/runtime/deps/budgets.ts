/**
 * The wiring of the budgets job (`reconcile-budgets`, `fleetward budgets`): the budget adapters
 * of the configured clouds. Its own module, so that bundle reaches the budget adapters only.
 */
import { createBudgetProviders } from '../../clouds/budget-registry.ts';
import type { FleetConfig } from '../../config/schema.ts';
import type { BudgetJobDeps } from '../../jobs/budgets.ts';
import { type Log, systemClock } from '../../ports.ts';
import { stateConfig } from '../../state/config.ts';
import { openStateStore } from '../../state/index.ts';

/** The deps of the budgets job: the state store and the budget adapters, built per cloud on first use. */
export async function budgetJobDeps(config: FleetConfig, logger: Log): Promise<BudgetJobDeps> {
  const store = await openStateStore(stateConfig(config));
  return { config, store, providers: createBudgetProviders(config, { logger }), logger, clock: systemClock };
}

/** Releases the state store and every budget client. */
export async function closeBudgetJobDeps(deps: BudgetJobDeps): Promise<void> {
  await Promise.allSettled([deps.providers.close(), deps.store.close()]);
}
