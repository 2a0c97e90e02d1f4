/**
 * Maps each configured cloud to its discovery adapter (and the GCP project directory),
 * imported lazily so a run (or a bundle) loads only the SDKs of the clouds it actually uses:
 * bundles are split (serverless.yml `custom.esbuild.splitting`), so each adapter is a chunk
 * loaded on first use. The deployment's own work queues and state store are not clouds of the
 * fleet and are not here (`shared/runtime/dispatch.ts`, `shared/state/index.ts`), so a
 * function that needs only those never reaches this module. The budget adapters have their own
 * registry (./budget-registry.ts): esbuild emits a chunk for every `import()` a bundle reaches,
 * so a function that discovers must not reach the budget adapters' imports, nor the reverse.
 */
import type { FleetConfig, GcpConfig } from '../config/schema.ts';
import type { CloudId } from '../model.ts';
import type { ClusterDiscovery, ProjectDirectory } from '../ports.ts';
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
