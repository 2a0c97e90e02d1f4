/**
 * Budget adapters by cloud, built lazily: a cloud's SDK is imported only when a run
 * touches that cloud's budgets.
 */
import type { FleetConfig } from '../config/schema.ts';
import type { Log } from '../ports.ts';
import { FleetwardError } from '../runtime/errors.ts';
import type { BudgetCloud, BudgetProvider } from './port.ts';

/** Hands out one provider per cloud, built on first use; `close()` releases every one built. */
export interface BudgetProviders {
  /** The cloud's provider; rejects when the cloud is not configured under `clouds`. */
  get(cloud: BudgetCloud): Promise<BudgetProvider>;
  close(): Promise<void>;
}

export class CloudNotConfiguredError extends FleetwardError {
  constructor(cloud: BudgetCloud) {
    super(`budgets on ${cloud} need clouds.${cloud} in the config (endpoint and credentials)`);
    this.name = 'CloudNotConfiguredError';
  }
}

export function createBudgetProviders(config: FleetConfig, ctx: { logger: Log }): BudgetProviders {
  const built = new Map<BudgetCloud, Promise<BudgetProvider>>();
  const build = async (cloud: BudgetCloud): Promise<BudgetProvider> => {
    switch (cloud) {
      case 'aws': {
        const aws = config.clouds.aws;
        if (!aws) throw new CloudNotConfiguredError(cloud);
        return (await import('../clouds/aws/budgets.ts')).createBudgetProvider(aws, ctx);
      }
      case 'gcp': {
        const gcp = config.clouds.gcp;
        if (!gcp) throw new CloudNotConfiguredError(cloud);
        return (await import('../clouds/gcp/budgets.ts')).createBudgetProvider(gcp, ctx);
      }
      case 'azure': {
        const azure = config.clouds.azure;
        if (!azure) throw new CloudNotConfiguredError(cloud);
        return (await import('../clouds/azure/budgets.ts')).createBudgetProvider(azure, ctx);
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
