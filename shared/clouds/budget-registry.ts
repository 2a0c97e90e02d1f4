/**
 * Maps each configured cloud to its budget adapter, imported lazily on first use, so a run
 * loads only the SDKs of the clouds it asks for budgets of. Apart from the discovery registry
 * (./registry.ts) so the bundle of a function without the `budgets` capability never reaches
 * the budget adapters' imports (esbuild emits a chunk for every `import()` a bundle reaches).
 */
import type { BudgetCloud, BudgetProvider, BudgetProviders } from '../budgets/port.ts';
import type { FleetConfig } from '../config/schema.ts';
import type { Log } from '../ports.ts';
import { FleetwardError } from '../runtime/errors.ts';

/** Budgets asked of a cloud that `clouds` in the config does not configure. */
export class CloudNotConfiguredError extends FleetwardError {
  constructor(cloud: BudgetCloud) {
    super(`budgets on ${cloud} need clouds.${cloud} in the config (endpoint and credentials)`);
    this.name = 'CloudNotConfiguredError';
  }
}

/** The budget adapters of the configured clouds, each built on first use; `close()` releases every one built. */
export function createBudgetProviders(config: FleetConfig, ctx: { logger: Log }): BudgetProviders {
  const built = new Map<BudgetCloud, Promise<BudgetProvider>>();
  const build = async (cloud: BudgetCloud): Promise<BudgetProvider> => {
    switch (cloud) {
      case 'aws': {
        const aws = config.clouds.aws;
        if (!aws) throw new CloudNotConfiguredError(cloud);
        return (await import('./aws/budgets.ts')).createBudgetProvider(aws, ctx);
      }
      case 'gcp': {
        const gcp = config.clouds.gcp;
        if (!gcp) throw new CloudNotConfiguredError(cloud);
        return (await import('./gcp/budgets.ts')).createBudgetProvider(gcp, ctx);
      }
      case 'azure': {
        const azure = config.clouds.azure;
        if (!azure) throw new CloudNotConfiguredError(cloud);
        return (await import('./azure/budgets.ts')).createBudgetProvider(azure, ctx);
      }
    }
  };
  return {
    get(cloud) {
      let p = built.get(cloud);
      if (!p) {
        p = build(cloud);
        built.set(cloud, p);
      }
      return p;
    },
    async close() {
      const all = await Promise.allSettled(built.values());
      built.clear();
      await Promise.allSettled(all.map((s) => (s.status === 'fulfilled' ? s.value.close() : undefined)));
    },
  };
}
