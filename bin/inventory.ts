/**
 * The cluster commands act on the saved inventory. On a fresh state store there is none
 * yet, so the CLI discovers first (the deployed functions rely on the discovery schedule).
 */
import type { FleetConfig } from '../shared/config/schema.ts';
import { run as runDiscover } from '../shared/jobs/discover.ts';
import type { Log, StateStore } from '../shared/ports.ts';
import { discoverDeps } from '../shared/runtime/deps/discover.ts';
import { INVENTORY } from '../shared/state/records.ts';
import { progress } from './output.ts';

export async function ensureInventory(config: FleetConfig, store: StateStore, logger: Log): Promise<void> {
  if ((await store.list(INVENTORY)).length > 0) return;
  process.stderr.write('The inventory is empty: discovering clusters first...\n');
  const discovery = await discoverDeps(config, logger);
  const bar = progress('Discovering');
  try {
    const result = await runDiscover(discovery, {
      onProgress: (done, total) => bar.update(done, total, 'clouds'),
    });
    bar.done();
    process.stderr.write(
      `Discovered ${result.clusters.length} clusters (${result.failures.length} scope failures).\n`,
    );
  } finally {
    bar.done();
    await discovery.store.close();
  }
}
