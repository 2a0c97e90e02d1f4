/**
 * Builds what jobs need from a validated config. The CLI and the Lambda handlers
 * both go through here, so a scheduled run and a local run see the same wiring.
 */
import { createBudgetProviders, createDiscoveries, createProjectDirectory } from '../clouds/registry.ts';
import type { FleetConfig, GcpConfig } from '../config/schema.ts';
import type { AuditJobDeps } from '../jobs/audit.ts';
import type { BudgetJobDeps } from '../jobs/budgets.ts';
import type { OpenEventDeps } from '../jobs/cluster-event.ts';
import type { DiscoverDeps } from '../jobs/discover.ts';
import type { ClusterJobDeps } from '../jobs/fleet.ts';
import type { SnapshotDeps } from '../jobs/snapshot.ts';
import type { CloudId } from '../model.ts';
import { type Log, type ProjectDirectory, systemClock } from '../ports.ts';
import { Residency } from '../residency/index.ts';
import { stateConfig } from '../state/config.ts';
import { openStateStore } from '../state/index.ts';

export { stateConfig };

export async function discoverDeps(
  config: FleetConfig,
  logger: Log,
  clouds?: readonly CloudId[],
): Promise<DiscoverDeps> {
  const [discoveries, store] = await Promise.all([
    createDiscoveries(config, { logger }, clouds),
    openStateStore(stateConfig(config)),
  ]);
  return { discoveries, store, residency: new Residency(config.jurisdictions), logger, clock: systemClock };
}

/** What the backup, reconcile and drill jobs need: kube access and bucket lookups on top of the state store. */
export async function clusterJobDeps(config: FleetConfig, logger: Log): Promise<ClusterJobDeps> {
  const [{ createKubeAccess }, { createBucketLocator }, store] = await Promise.all([
    import('../kube/access.ts'),
    import('../clouds/buckets.ts'),
    openStateStore(stateConfig(config)),
  ]);
  return {
    config,
    store,
    kube: createKubeAccess(config, { logger }),
    buckets: createBucketLocator(config, { logger }),
    residency: new Residency(config.jurisdictions),
    logger,
    clock: systemClock,
  };
}

/** The deps of the budgets job: the state store and the budget adapters, built per cloud on first use. */
export async function budgetJobDeps(config: FleetConfig, logger: Log): Promise<BudgetJobDeps> {
  const store = await openStateStore(stateConfig(config));
  return { config, store, providers: createBudgetProviders(config, { logger }), logger, clock: systemClock };
}

/** Releases the state store and every budget client. */
export async function closeBudgetJobDeps(deps: BudgetJobDeps): Promise<void> {
  await Promise.allSettled([deps.providers.close(), deps.store.close()]);
}

/** Whether a run may write evidence to a local, non-compliant directory (CLI `--local-evidence` only). */
export interface EvidenceOptions {
  localEvidence?: boolean | undefined;
}

/**
 * What the audit collection and verification jobs need: log sources and write-once archives
 * per cluster. Local evidence is refused unless `options.localEvidence` (never in a deployment).
 */
export async function auditJobDeps(
  config: FleetConfig,
  logger: Log,
  options: EvidenceOptions = {},
): Promise<AuditJobDeps> {
  const [{ createAuditWiring }, store] = await Promise.all([
    import('../audit/wiring.ts'),
    openStateStore(stateConfig(config)),
  ]);
  const localEvidence = options.localEvidence === true;
  const wiring = await createAuditWiring(config, { logger, localEvidence });
  return {
    config,
    store,
    residency: new Residency(config.jurisdictions),
    logger,
    clock: systemClock,
    allowLocalEvidence: localEvidence,
    ...wiring,
  };
}

/** What the snapshot job needs: the state store (evidence) and the jurisdictions' evidence stores. */
export async function snapshotDeps(
  config: FleetConfig,
  logger: Log,
  options: EvidenceOptions = {},
): Promise<SnapshotDeps> {
  const [{ createEvidenceStores }, store] = await Promise.all([
    import('../audit/wiring.ts'),
    openStateStore(stateConfig(config)),
  ]);
  return {
    config,
    store,
    residency: new Residency(config.jurisdictions),
    logger,
    clock: systemClock,
    evidence: createEvidenceStores(config, { logger, localEvidence: options.localEvidence === true }),
    allowLocalEvidence: options.localEvidence === true,
  };
}

/** The deps of the `rediscover-clusters` worker: the configured discoveries of `clouds`, the state store, a notifier. */
export const openEventDeps: OpenEventDeps = async (config, logger, clouds) => {
  const gcp = clouds.includes('gcp') ? config.clouds.gcp : undefined;
  const [discoveries, store, notifier, projects] = await Promise.all([
    createDiscoveries(config, { logger }, clouds),
    openStateStore(stateConfig(config)),
    import('../notify/notifier.ts').then((m) => m.createNotifier(config, { logger })),
    gcp ? directoryOf(gcp, logger) : undefined,
  ]);
  return {
    config,
    discoveries,
    store,
    notifier,
    projects,
    residency: new Residency(config.jurisdictions),
    logger,
    clock: systemClock,
    async close() {
      await notifier.close();
      await store.close();
    },
  };
};

// One directory per GCP config for the life of the process: resolved numbers stay cached across invocations.
const directories = new WeakMap<object, ProjectDirectory>();

async function directoryOf(gcp: GcpConfig, logger: Log): Promise<ProjectDirectory> {
  const held = directories.get(gcp);
  if (held) return held;
  const created = await createProjectDirectory(gcp, { logger });
  // Two batches opened at once may both have built one: the first stored is the one every batch shares.
  const stored = directories.get(gcp);
  if (stored) return stored;
  directories.set(gcp, created);
  return created;
}
