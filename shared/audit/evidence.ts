/**
 * The write-once evidence stores of each jurisdiction, shared by audit archives and compliance
 * snapshots: the jurisdiction's evidence bucket on the cluster's own cloud, else any evidence
 * bucket of that jurisdiction, else — only when the run allows local evidence (the CLI's
 * `--local-evidence`; never a deployed run) — a write-once directory under
 * `.fleetward/evidence/`, marked not compliant. Otherwise a jurisdiction without an evidence
 * bucket has no store ({@link NoEvidenceStoreError}). Each cloud's store is imported on first
 * use, and apart from the audit log sources (./wiring.ts), so a function that only publishes
 * snapshots bundles no log reader.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FleetConfig } from '../config/schema.ts';
import type { RegionCloud } from '../model.ts';
import type { ArchiveStore, Log } from '../ports.ts';
import { ConfigError, FleetwardError } from '../runtime/errors.ts';
import { LocalArchiveStore } from './local-store.ts';

export class NoEvidenceStoreError extends FleetwardError {
  readonly jurisdiction: string;
  constructor(jurisdiction: string) {
    super(
      `jurisdictions.${jurisdiction}.evidence names no evidence bucket (a local directory needs --local-evidence and is not compliant storage)`,
    );
    this.name = 'NoEvidenceStoreError';
    this.jurisdiction = jurisdiction;
  }
}

/** Directory of local, non-compliant evidence (only with `localEvidence`, when a jurisdiction has no evidence bucket). */
export const LOCAL_EVIDENCE_DIR = join('.fleetward', 'evidence');

/** The write-once evidence stores of each jurisdiction (audit archives and compliance snapshots share them). */
export interface EvidenceStores {
  /** The store of `jurisdiction` on `cloud`, else on any cloud it has one, else a local directory (only with `localEvidence`). @throws NoEvidenceStoreError */
  for(jurisdiction: string, cloud: RegionCloud): Promise<ArchiveStore>;
  /**
   * Another container of the jurisdiction's Azure evidence storage account: the one Azure
   * Monitor writes a diagnostic log category into (`insights-logs-<category>`), whose blobs are
   * appended to. @throws ConfigError when the jurisdiction has no Azure evidence
   */
  azureContainer(jurisdiction: string, container: string): Promise<ArchiveStore>;
  /** Every evidence bucket the jurisdiction configures (one per cloud), else its local directory (only with `localEvidence`). @throws NoEvidenceStoreError */
  all(jurisdiction: string): Promise<ArchiveStore[]>;
}

const EVIDENCE_CLOUDS = ['aws', 'gcp', 'azure'] as const;

/** How the evidence stores are built. */
export interface EvidenceContext {
  logger: Log;
  /** Allow a local, non-compliant directory for a jurisdiction without an evidence bucket (default false). */
  localEvidence?: boolean | undefined;
  /** Where that directory is (default {@link LOCAL_EVIDENCE_DIR}). */
  localEvidenceDir?: string | undefined;
}

export function createEvidenceStores(config: FleetConfig, ctx: EvidenceContext): EvidenceStores {
  const stores = new Map<string, Promise<ArchiveStore>>();

  /** A container of the jurisdiction's Azure evidence account (its own, unless `e` says another). */
  async function azureStore(
    jurisdiction: string,
    e: NonNullable<NonNullable<FleetConfig['jurisdictions'][string]['evidence']>['azure']>,
    appendWrites = false,
  ): Promise<ArchiveStore> {
    const azure = config.clouds.azure;
    if (!azure)
      throw new ConfigError([
        { path: `jurisdictions.${jurisdiction}.evidence.azure`, message: 'needs clouds.azure' },
      ]);
    const { StorageSharedKeyCredential } = await import('@azure/storage-blob');
    const credential = azure.storageKeyFile
      ? new StorageSharedKeyCredential(e.storageAccount, readFileSync(azure.storageKeyFile, 'utf8').trim())
      : undefined;
    const account =
      e.resourceGroup && (e.subscriptionId ?? azure.subscriptions[0]?.id)
        ? { subscriptionId: e.subscriptionId ?? azure.subscriptions[0]!.id, resourceGroup: e.resourceGroup }
        : undefined;
    return (await import('../clouds/azure/evidence.ts')).createBlobArchiveStore(
      azure,
      { ...e, appendWrites },
      { ...ctx, ...(credential ? { credential } : {}), ...(account ? { account } : {}) },
    );
  }

  async function store(jurisdiction: string, cloud: RegionCloud): Promise<ArchiveStore> {
    const evidence = config.jurisdictions[jurisdiction]?.evidence;
    const choice = (evidence?.[cloud] ? cloud : EVIDENCE_CLOUDS.find((c) => evidence?.[c])) ?? 'local';
    const key = `${jurisdiction}/${choice}`;
    let made = stores.get(key);
    if (!made) {
      made = (async (): Promise<ArchiveStore> => {
        if (choice === 'aws') {
          const aws = config.clouds.aws;
          if (!aws)
            throw new ConfigError([
              { path: `jurisdictions.${jurisdiction}.evidence.aws`, message: 'needs clouds.aws' },
            ]);
          return (await import('../clouds/aws/evidence.ts')).createS3ArchiveStore(aws, evidence!.aws!, ctx);
        }
        if (choice === 'gcp') {
          const gcp = config.clouds.gcp;
          if (!gcp)
            throw new ConfigError([
              { path: `jurisdictions.${jurisdiction}.evidence.gcp`, message: 'needs clouds.gcp' },
            ]);
          return (await import('../clouds/gcp/audit.ts')).createGcsArchiveStore(gcp, evidence!.gcp!, ctx);
        }
        if (choice === 'azure') return azureStore(jurisdiction, evidence!.azure!);
        if (ctx.localEvidence !== true) throw new NoEvidenceStoreError(jurisdiction);
        return new LocalArchiveStore(join(ctx.localEvidenceDir ?? LOCAL_EVIDENCE_DIR, jurisdiction));
      })();
      stores.set(key, made);
    }
    return made;
  }

  return {
    for: store,
    azureContainer(jurisdiction, container) {
      const e = config.jurisdictions[jurisdiction]?.evidence?.azure;
      if (!e)
        return Promise.reject(
          new ConfigError([
            {
              path: `jurisdictions.${jurisdiction}.evidence.azure`,
              message: 'no azure evidence storage account',
            },
          ]),
        );
      const key = `${jurisdiction}/azure/${container}`;
      let made = stores.get(key);
      if (!made) {
        made = azureStore(jurisdiction, { ...e, container }, true);
        stores.set(key, made);
      }
      return made;
    },
    all(jurisdiction) {
      const evidence = config.jurisdictions[jurisdiction]?.evidence;
      const clouds = EVIDENCE_CLOUDS.filter((c) => evidence?.[c]);
      return Promise.all(
        (clouds.length > 0 ? clouds : (['aws'] as const)).map((c) => store(jurisdiction, c)),
      );
    },
  };
}
