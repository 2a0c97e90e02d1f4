/**
 * The audit exporters of export mode, one per cloud, each imported on first use (a function
 * bundles only the SDKs of the clouds it meets): `shared/clouds/<cloud>/audit-export.ts`,
 * whose `createAuditExporter(config, ctx)` gets the whole fleet config (an exporter needs the
 * jurisdictions' evidence buckets and export settings, not only its cloud's section).
 */

import type { AdapterContext } from '../clouds/context.ts';
import type { FleetConfig } from '../config/schema.ts';
import type { RegionCloud } from '../model.ts';
import type { AuditExporter } from '../ports.ts';

/** What each cloud's `audit-export.ts` module exports. */
export interface AuditExportModule {
  createAuditExporter(config: FleetConfig, ctx: AdapterContext): AuditExporter;
}

/** The exporter of each cloud, built once. */
export interface AuditExporters {
  /** The exporter of `cloud`; `undefined` when the config does not configure that cloud. */
  for(cloud: RegionCloud): Promise<AuditExporter | undefined>;
}

/* Literal specifiers, so esbuild bundles each module as a lazy chunk. */
const LOADERS: Record<RegionCloud, () => Promise<AuditExportModule>> = {
  aws: () => import('../clouds/aws/audit-export.ts'),
  gcp: () => import('../clouds/gcp/audit-export.ts'),
  azure: () => import('../clouds/azure/audit-export.ts'),
};

/**
 * The exporters of `config`'s clouds. `loaders` replaces the module of a cloud (tests give a
 * fake exporter).
 */
export function createAuditExporters(
  config: FleetConfig,
  ctx: AdapterContext,
  loaders: Partial<Record<RegionCloud, () => Promise<AuditExportModule>>> = {},
): AuditExporters {
  const made = new Map<RegionCloud, Promise<AuditExporter>>();
  return {
    async for(cloud) {
      if (!config.clouds[cloud] && !loaders[cloud]) return undefined;
      let exporter = made.get(cloud);
      if (!exporter) {
        const load = loaders[cloud] ?? LOADERS[cloud];
        exporter = load().then((m) => m.createAuditExporter(config, ctx));
        // A failed load is not kept: the next call tries again.
        exporter.catch(() => made.delete(cloud));
        made.set(cloud, exporter);
      }
      return exporter;
    },
  };
}
