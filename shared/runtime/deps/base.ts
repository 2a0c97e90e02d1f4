/**
 * What every job's wiring starts from: the config, the state store it names, the residency
 * guard of its jurisdictions, the logger and the system clock.
 */
import type { FleetConfig } from '../../config/schema.ts';
import { type Clock, type Log, type StateStore, systemClock } from '../../ports.ts';
import { Residency } from '../../residency/index.ts';
import { stateConfig } from '../../state/config.ts';
import { openStateStore } from '../../state/index.ts';

export interface BaseDeps {
  config: FleetConfig;
  store: StateStore;
  residency: Residency;
  logger: Log;
  clock: Clock;
}

/** Opens the state store and builds the rest of the shared wiring; the caller closes `store`. */
export async function baseDeps(config: FleetConfig, logger: Log): Promise<BaseDeps> {
  return {
    config,
    store: await openStateStore(stateConfig(config)),
    residency: new Residency(config.jurisdictions),
    logger,
    clock: systemClock,
  };
}
