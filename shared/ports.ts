/**
 * The interfaces jobs depend on. Jobs never import a cloud SDK: they see these
 * ports, and `shared/clouds/<cloud>/` (plus the storage adapters) implement them.
 * Keep each port small and every method documented (Velero's ObjectStore is the model).
 */
import type { CloudId, DiscoveryOutcome } from './model.ts';

/** Finds clusters in one cloud, across every scope (account+region, project, subscription, context) it was configured with. */
export interface ClusterDiscovery {
  /** The cloud this adapter covers. */
  readonly cloud: CloudId;
  /**
   * Lists every cluster in every configured scope. A failing scope (or a cluster
   * payload that cannot be parsed) is reported in `failures` and never stops the
   * other scopes; only an aborted `signal` rejects.
   */
  discover(options?: { signal?: AbortSignal }): Promise<DiscoveryOutcome>;
}

/** One stored item: a key inside a namespace and its JSON-serialisable value. */
export interface StoredItem<T = unknown> {
  key: string;
  value: T;
}

/**
 * Durable key/value state (inventory, checkpoints, run ledger, drill history).
 * Values are JSON-serialisable; keys are unique within a namespace.
 */
export interface StateStore {
  /** Reads one item, or `undefined` when absent. */
  get<T>(namespace: string, key: string): Promise<T | undefined>;
  /** Lists every item of a namespace whose key starts with `prefix` (all when omitted), in key order. */
  list<T>(namespace: string, options?: { prefix?: string }): Promise<StoredItem<T>[]>;
  /** Creates or replaces items; all or nothing is not promised across batches, each item is atomic. */
  putMany(namespace: string, items: StoredItem[]): Promise<void>;
  /** Deletes items by key; absent keys are ignored. */
  deleteMany(namespace: string, keys: string[]): Promise<void>;
  /** Releases connections or file handles. */
  close(): Promise<void>;
}

/** Structured logger (Powertools Logger satisfies it). Messages are constant; data goes in fields. */
export interface Log {
  debug(message: string, ...extra: Record<string, unknown>[]): void;
  info(message: string, ...extra: Record<string, unknown>[]): void;
  warn(message: string, ...extra: Record<string, unknown>[]): void;
  error(message: string, ...extra: Record<string, unknown>[]): void;
}

/** The time source, injected so tests and re-entrant jobs agree on "now". */
export interface Clock {
  /** The current instant. */
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
