/**
 * Maps each configured cloud to its adapters (discovery, budgets, the GCP project directory),
 * imported lazily so a run (or a bundle) loads only the SDKs of the clouds it actually uses:
 * bundles are split (serverless.yml `custom.esbuild.splitting`), so each adapter is a chunk
 * loaded on first use. The deployment's own work queues and state store are not clouds of the
 * fleet and are not here (`shared/runtime/dispatch.ts`, `shared/state/index.ts`), so a
 * function that needs only those never reaches this module.
 */
import type { BudgetCloud, BudgetProvider, BudgetProviders } from '../budgets/port.ts';
import type { FleetConfig, GcpConfig } from '../config/schema.ts';
import type { CloudId } from '../model.ts';
import type { ClusterDiscovery, Log, ProjectDirectory } from '../ports.ts';
import { FleetwardError } from '../runtime/errors.ts';
import type { AdapterContext } from './context.ts';

/** One discovery adapter per configured cloud (optionally only the given clouds). */
export async function createDiscoveries(
  config: FleetConfig,
  ctx: AdapterContext,
  only?: readonly CloudId[],
): Promise<ClusterDiscovery[]> {
  const wanted = (cloud: CloudId) => !only || only.includes(cloud);
  const { aws, gcp, azure, kubeconfig } = config.clouds;
  const adapters: Promise<ClusterDiscovery>[] = [];
  if (aws && wanted('aws'))
    adapters.push(import('./aws/discovery.ts').then((m) => m.createDiscovery(aws, ctx)));
  if (gcp && wanted('gcp'))
    adapters.push(import('./gcp/discovery.ts').then((m) => m.createDiscovery(gcp, ctx)));
  if (azure && wanted('azure'))
    adapters.push(import('./azure/discovery.ts').then((m) => m.createDiscovery(azure, ctx)));
  if (kubeconfig && wanted('kubeconfig')) {
    const probe = config.policies.discovery.probeKubeconfig;
    adapters.push(
      import('./kubeconfig/discovery.ts').then((m) => m.createDiscovery(kubeconfig, { ...ctx, probe })),
    );
  }
  return Promise.all(adapters);
}

/** The GCP project directory (project numbers of GKE notifications to configured ids) of a GCP config. */
export async function createProjectDirectory(gcp: GcpConfig, ctx: AdapterContext): Promise<ProjectDirectory> {
  return (await import('./gcp/projects.ts')).createProjectDirectory(gcp, ctx);
}

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
