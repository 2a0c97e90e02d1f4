import type { Log } from '../ports.ts';

/** What every adapter factory receives besides its own cloud's config. */
export interface AdapterContext {
  logger: Log;
}
